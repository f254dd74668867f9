"""The seeded soak: three replicas, PostgreSQL, the sandbox and clients under faults mixed at random.

`bench/soak.py` is the entry point; `harness` runs the processes, `schedule` draws the faults,
`workload` is the clients, `checker` holds the invariants (pure: it reads a `History`)."""
