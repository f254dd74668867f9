"""The MCP surface: composition and lifespan, the tools, tasks, authentication, the texts an assistant reads.

Everything MCP-specific lives in this package; the rules it dispatches to live in `cutout_mcp.core`.
"""

from cutout_mcp.core.context import AppContext
from cutout_mcp.server.app import build_server

__all__ = ["AppContext", "build_server"]
