"""`python -m cutout_mcp` is the same as the `cutout-mcp` command."""

import sys

from cutout_mcp.cli import main

sys.exit(main())
