"""The rules that protect credits and jobs, no MCP. Rooms by what a change is about:

- `inputs`: the images that come in (forms, path rules, image rules, pre-flight, the network guard,
  staging, uploads);
- `money`: the paid path (the guard, consent, the budget's and allowances' reservation, locks, owners,
  the drain);
- `jobs`: video jobs (submit, watch, pace);
- `outputs`: the results that go out (fetching, saving, previews, contact sheets);
- `storage`: the state every process shares (ledger, guards, tasks, limits), on SQLite or PostgreSQL;
- `staging`: the operator's bucket.

At the top stay only what the rooms share: `context` (the handles), `results` (what tools return),
`edits` (the edit tool's body) and `usage_report`.
"""
