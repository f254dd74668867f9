"""The one base of every failure this server expects, and the map of where each kind is raised.

```
CutoutMcpError                    a message a person can act on; becomes a tool error in one place
├── ConfigError                   config: a setting the server cannot run with
├── InvalidArgumentError          core.inputs.validation: an argument breaks a rule; nothing sent or charged
│   ├── ImageRefusedError         core.inputs.image_rules: the image itself breaks a rule, or cannot be fetched
│   │   └── PathRefusedError      core.inputs.input_paths: a local path breaks a safety rule; nothing read
│   └── StagingUnavailableError   core.inputs.image_sources: a local image, and no store (or a remote server)
├── SandboxStoreError             sandbox.store: the sandbox's object store could not be used
├── BudgetExceededError           core.storage: the call would pass CUTOUT_CREDIT_BUDGET; nothing sent
├── AllowanceExceededError        core.storage.limits: the call would pass the caller's allowance, the session
│                                 cap or the rate (`limit` says which); nothing sent
├── SpendNotConfirmedError        core.money.consent: CUTOUT_CONFIRM_SPEND asked and got no yes; nothing sent
├── UsageReportError              core.usage_report: `cutout-mcp usage` got a date or grouping it cannot read
├── StorageError                  core.storage: the ledger (SQLite or PostgreSQL) cannot be used
│   ├── LedgerUnusableError       core.storage.sqlite_db: the ledger file is damaged, foreign or newer; not started
│   └── LedgerUnavailableError    core.money.paid: so a paid call was stopped before it was sent
├── GuardLostError                core.storage: this call's expired guard was taken over before it paid; nothing sent
├── UnrecordedChargeError         core.money.paid: an identical request may have been charged, id unknown
├── GuardBusyError                core.money.paid: another process is still submitting the identical request
├── StagingError                  core.staging: the staging bucket is not set, refused, or cannot be reached
├── DownloadError                 core.outputs.result_fetch: a local copy could not be made (the result stays)
├── JobError                      core.jobs.videos, core.edits: a job or edit failed, or is not yours
└── CutoutError                   upstream.errors: cutout.pro failed; that tree is drawn there
```

The MCP layer turns any `CutoutMcpError` into a tool error (`server.boundary`), keeping the exception
as the cause; anything else is a bug, logged with its traceback, and the caller sees a generic error.
"""

from __future__ import annotations


class CutoutMcpError(Exception):
    """Base of every failure reported to the caller as an ordinary tool error."""
