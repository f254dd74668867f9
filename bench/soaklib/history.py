"""What a soak run saw, from every side: client calls, faults, the sandbox's record and the ledger's.

Plain data, so the checker is a pure function of it and can be tested on a history made by hand."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Op:
    """One tool call a client made, and what it was told."""

    op_id: int
    client: str
    principal: str
    tool: str
    kind: str
    """identical, burst, new, force, edit, result, list, task."""
    start: float
    prompt: str | None = None
    image: str | None = None
    """Which image content (a label), by whatever route it was passed."""
    force_new: bool = False
    upload: str | None = None
    """The `get_upload_url` object the call used, if any."""
    end: float = 0.0
    outcome: str = "pending"
    """ok, tool_error or exception."""
    text: str = ""
    job_id: int | None = None
    credits_charged: int | None = None
    status: str | None = None
    task_id: str | None = None


@dataclass
class FaultEvent:
    """One fault the schedule injected (or skipped, with why)."""

    at: float
    kind: str
    detail: str
    end: float | None = None
    skipped: bool = False


@dataclass
class Sighting:
    """A job (or task) looked up on one replica after the run: the final-state check."""

    principal: str
    ident: str
    replica: int
    status: str | None
    error: str | None = None


@dataclass
class History:
    seed: int
    budget: int
    http_timeout: float
    started: float = 0.0
    ended: float = 0.0
    allowances: str | None = None
    """The `CUTOUT_ALLOWANCES_FILE` text the replicas ran with (None: the budget alone)."""
    ops: list[Op] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    sandbox: dict[str, Any] = field(default_factory=dict)
    """The sandbox's `/__sandbox__/stats` at the end: jobs, edits, credits, fault log, staged objects."""
    charges: list[dict[str, Any]] = field(default_factory=list)
    """The ledger's charges table: seq, principal, kind, ref_id (None: may have been charged), credits,
    created_at (when the charge was reserved, before sending) and session_id (the session cap's key)."""
    jobs_seen: list[Sighting] = field(default_factory=list)
    tasks_seen: list[Sighting] = field(default_factory=list)
    ready: dict[int, str] = field(default_factory=dict)
    """Per replica: "ok" or what went wrong when it was asked to answer at the end."""
    staged_contents: dict[str, str] = field(default_factory=dict)
    """Staged object key -> the picture whose content it holds (computed with the servers' shared secret)."""
    leaks: list[str] = field(default_factory=list)
    """Processes or database connections left over, as found at the end."""

    def dump(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)

    @classmethod
    def load(cls, text: str) -> History:
        """A history `dump` wrote (`python bench/soak.py --check history.json` checks it again)."""
        data = json.loads(text)
        history = cls(**{k: v for k, v in data.items() if k not in ("ops", "faults", "jobs_seen", "tasks_seen")})
        history.ops = [Op(**op) for op in data["ops"]]
        history.faults = [FaultEvent(**fault) for fault in data["faults"]]
        history.jobs_seen = [Sighting(**s) for s in data["jobs_seen"]]
        history.tasks_seen = [Sighting(**s) for s in data["tasks_seen"]]
        history.ready = {int(replica): why for replica, why in data["ready"].items()}
        return history
