"""The two records the soak's checks read, made comparable: cutout.pro's charges (the sandbox's record)
and the ledger's principals, and what a check reports when a promise was broken."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.soaklib.history import History


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str
    at: float | None = None


def principal_of(prompt: str | None) -> str:
    """Every soak prompt starts with its caller's name: `alice: ...`."""
    return (prompt or "").split(":", 1)[0]


def ledger_principal(stored: str) -> str:
    """The ledger names a token's principal as a JSON list whose first item is the token's name."""
    if stored.startswith("["):
        return str(json.loads(stored)[0])
    return stored


def sandbox_charges(h: History) -> dict[int, dict[str, Any]]:
    """Every call cutout.pro charged, by job or edit id: kind, credits, when, prompt."""
    found: dict[int, dict[str, Any]] = {}
    for job in h.sandbox.get("jobs", []):
        found[job["id"]] = {"kind": "video", "credits": 5, "at": job["created_at"], "prompt": job["prompt"]}
    for edit in h.sandbox.get("edits", []):
        found[edit["id"]] = {
            "kind": "edit",
            "credits": edit["credits"],
            "at": edit["created_at"],
            "prompt": edit["prompt"],
        }
    return found
