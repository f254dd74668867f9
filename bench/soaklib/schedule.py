"""The seeded fault schedule: every fault's time, kind and parameters drawn from one `random.Random`.

The same seed draws the same schedule; what the faults then hit depends on the timing of real processes,
so a rerun meets the same faults at the same moments, not always the same requests."""

from __future__ import annotations

import random
from dataclasses import dataclass

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
STAGING = "/staging/*"

WEIGHTS: dict[str, int] = {
    "kill9": 3,
    "sigterm": 3,
    "postgres_restart": 1,
    "burst_5xx": 3,
    "hang": 2,
    "disconnect": 3,
    "malformed": 2,
    "store_outage": 2,
    "output_unwritable": 2,
}
"""How often each kind of fault is drawn, relatively."""
QUIET_END = 8.0
"""Seconds at the end of the run with no new fault, so the last ones have ended before the checks."""
POSTGRES_EVERY = 40.0
"""At most one PostgreSQL restart in this many seconds (each costs every replica its pool)."""


@dataclass(frozen=True)
class Planned:
    """One fault to inject `at` seconds into the run."""

    at: float
    kind: str
    replica: int = 0
    pause: float = 0.0
    """Seconds a stopped thing stays stopped (replica, PostgreSQL, output folder)."""
    fault: dict[str, object] | None = None
    """For faults of the sandbox: the body for `POST /__sandbox__/faults`."""


def _sandbox_fault(rng: random.Random, kind: str, http_timeout: float) -> dict[str, object]:
    api_path = rng.choice([None, GENERATE, EDIT, RESULT])
    if kind == "burst_5xx":
        return {
            "kind": "http_error",
            "status": rng.choice([500, 502, 503]),
            "count": rng.randint(2, 6),
            "path": api_path,
        }
    if kind == "hang":
        return {"kind": "slow", "delay": http_timeout + 2.0, "count": rng.randint(1, 2), "path": api_path}
    if kind == "store_outage":
        return {"kind": "http_error", "status": 503, "count": rng.randint(3, 8), "path": STAGING}
    return {"kind": kind, "count": rng.randint(1, 3), "path": api_path}


def draw(rng: random.Random, seconds: float, replicas: int, http_timeout: float) -> list[Planned]:
    """The whole schedule for a run of `seconds`, faults every 2-8 s after a quiet first 5 s."""
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    plan: list[Planned] = []
    at = 5.0
    last_postgres = -POSTGRES_EVERY
    while True:
        at += rng.uniform(2.0, 8.0)
        if at > seconds - QUIET_END:
            return plan
        kind = rng.choices(kinds, weights)[0]
        if kind == "postgres_restart":
            if at - last_postgres < POSTGRES_EVERY:
                kind = "burst_5xx"
            else:
                last_postgres = at
        replica = rng.randrange(replicas)
        pause = round(rng.uniform(1.0, 5.0), 2)
        fault = _sandbox_fault(rng, kind, http_timeout) if kind in SANDBOX_KINDS else None
        plan.append(Planned(round(at, 2), kind, replica, pause, fault))


SANDBOX_KINDS = {"burst_5xx", "hang", "disconnect", "malformed", "store_outage"}
