"""The rules that protect credits and jobs: the ledger, the one paid-call path, waiting and polling,
validation, pre-flight and the SSRF guard, downloads. Nothing here imports MCP."""
