"""cutout-mcp: a Model Context Protocol server for the cutout.pro video and image-edit APIs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
