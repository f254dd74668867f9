"""Benchmarks for cutout-mcp against the local sandbox; run them all with `python bench/run_all.py`."""
