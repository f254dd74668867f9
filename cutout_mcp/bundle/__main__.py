"""`python -m cutout_mcp.bundle [--out-dir DIR]`: build the `.mcpb` that Claude Desktop installs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cutout_mcp.bundle.build import SOURCE_ROOT, BundleError, build_bundle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cutout_mcp.bundle",
        description="Build dist/cutout-mcp-<version>.mcpb, the bundle Claude Desktop installs with a double-click.",
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write the bundle (default: ./dist)")
    args = parser.parse_args(argv)
    try:
        path = build_bundle(SOURCE_ROOT, args.out_dir)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
