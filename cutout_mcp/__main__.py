"""`python -m cutout_mcp` is the same as the `cutout-mcp` command."""

import sys

from .cli import main

sys.exit(main())
