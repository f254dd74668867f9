"""cutout.pro over httpx: the client, the envelope and payload models, the error tree. Knows nothing of MCP."""
