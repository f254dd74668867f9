"""The MCP Bundle for Claude Desktop: the checked-in manifest and icon, and the build that packs them.

`python -m cutout_mcp.bundle` writes `dist/cutout-mcp-<version>.mcpb` from a source checkout.
The installed server never imports this package.
"""

from cutout_mcp.bundle.build import (
    ICON_PATH,
    MANIFEST_PATH,
    BundleError,
    build_bundle,
    bundle_files,
    bundle_name,
    load_manifest,
)

__all__ = ["ICON_PATH", "MANIFEST_PATH", "BundleError", "build_bundle", "bundle_files", "bundle_name", "load_manifest"]
