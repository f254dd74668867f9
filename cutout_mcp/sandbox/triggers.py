"""Magic tokens that make the sandbox take an error path on purpose.

A token anywhere in the prompt or in an image URL selects the path, so every
failure a client must handle can be produced from an ordinary request.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Trigger(str, Enum):
    INAPPROPRIATE = "sandbox:inappropriate"
    """Submit answers 9011; nothing is charged."""
    ABNORMAL = "sandbox:abnormal"
    """Submit answers 1001 `The server is abnormal...`; nothing is charged."""
    NO_BALANCE = "sandbox:no-balance"
    """Submit answers 1001 `Insufficient balance`; nothing is charged."""
    JOB_FAILS = "sandbox:job-fails"
    """Accepted and charged; the video job ends with status 2, the edit with status 0."""


_PRIORITY = (Trigger.INAPPROPRIATE, Trigger.ABNORMAL, Trigger.NO_BALANCE, Trigger.JOB_FAILS)


def find_triggers(texts: Iterable[str | None]) -> set[Trigger]:
    """Every token that occurs in any of `texts` (case-insensitive)."""
    joined = "\n".join(t.lower() for t in texts if t)
    return {t for t in _PRIORITY if t.value in joined}


def first_rejecting(found: set[Trigger]) -> Trigger | None:
    """The token that rejects the submission, when several are present."""
    for trigger in _PRIORITY[:3]:
        if trigger in found:
            return trigger
    return None
