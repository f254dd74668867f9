"""The allowance invariants: per principal, what cutout.pro charged in each window of its period never
passed its allowance, no session passed its cap, no 60 s held more paid calls than its rate, and no call
refused by a limit was charged.

The limits are read from the same `CUTOUT_ALLOWANCES_FILE` text by the server's own loader, and windows
come from the server's own period arithmetic (`cutout_mcp.config.periods`), so the check follows the
server's definition and needs no slack:

- a window is decided by when a charge was *reserved* (the ledger's `created_at`, taken before the
  request is sent), not by when cutout.pro received it, which may be in the next window. The credits are
  cutout.pro's (the sandbox's record), each placed at the reservation of its ledger entry: the certain
  entry naming it, or for an answer a fault lost, the latest "may have been charged" entry of the same
  caller and kind reserved before cutout.pro received it and not already matched. The ledger's own
  reservations per window (certain and "may have been charged" alike, as the server counts them) are
  checked too;
- the rate and the session cap are the ledger's alone: a paid call starts at its reservation, and only
  the ledger knows the session. A released reservation (never sent) is deleted, so it counts for
  nothing, as the server counts it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from typing import Any

from bench.soaklib.history import History, Op
from bench.soaklib.records import Violation, principal_of, sandbox_charges
from cutout_mcp.clock import iso_utc
from cutout_mcp.config.allowances import AllowancePolicy, Limits, parse_policy, principal_name
from cutout_mcp.core.storage.limits import RATE_SECONDS

REFUSALS = {
    "allowance": re.compile(r"'s allowance of \d+ credits per "),
    "session": re.compile(r"the session cap of \d+ credits"),
    "rate": re.compile(r"may start \d+ paid calls per minute"),
    "budget": re.compile(r"the credit budget \(CUTOUT_CREDIT_BUDGET="),
}


def refused_by(op: Op) -> str | None:
    """Which limit refused this call before sending (allowance, session, rate, budget), if one did."""
    if op.outcome != "tool_error":
        return None
    return next((limit for limit, said in REFUSALS.items() if said.search(op.text)), None)


def policy_of(h: History) -> AllowancePolicy | None:
    return None if h.allowances is None else parse_policy(h.allowances, "the soak's allowances")


def placed_charges(h: History) -> tuple[list[tuple[str, int, float]], list[Violation]]:
    """cutout.pro's charges as (principal, credits, reserved at), and a violation for each certain ledger
    entry charged to someone other than the caller who made the call."""
    certain = {c["ref_id"]: c for c in h.charges if c["ref_id"] is not None}
    maybe = sorted((c for c in h.charges if c["ref_id"] is None), key=lambda c: c["created_at"])
    matched: set[int] = set()
    placed: list[tuple[str, int, float]] = []
    wrong: list[Violation] = []
    for ref, real in sorted(sandbox_charges(h).items(), key=lambda item: item[1]["at"]):
        who = principal_of(real["prompt"])
        entry = certain.get(ref)
        if entry is not None and principal_name(entry["principal"]) != who:
            wrong.append(
                Violation("allowance", f"{real['kind']} {ref} of {who} is charged to {entry['principal']}", real["at"])
            )
        if entry is None:
            entry = _latest_unmatched(maybe, matched, who, real["kind"], real["at"])
        # a charge with no ledger entry at all is check_money's finding; placed at its arrival meanwhile
        placed.append((who, real["credits"], real["at"] if entry is None else entry["created_at"]))
    return placed, wrong


def _latest_unmatched(
    maybe: list[dict[str, Any]], matched: set[int], who: str, kind: str, arrived: float
) -> dict[str, Any] | None:
    for entry in reversed(maybe):
        fits = entry["created_at"] <= arrived and principal_name(entry["principal"]) == who and entry["kind"] == kind
        if fits and entry["seq"] not in matched:
            matched.add(entry["seq"])
            return entry
    return None


def over_allowance(name: str, limits: Limits, charges: list[tuple[int, float]], whose: str) -> list[Violation]:
    """Windows of `limits.period` in which `charges` (credits, reserved at) add up past `limits.credits`."""
    if limits.credits is None:
        return []
    windows: dict[tuple[float, float], int] = defaultdict(int)
    for credits, at in charges:
        windows[limits.period.window(at)] += credits
    return [
        Violation(
            "allowance",
            f"{whose} {total} credits of {name} in the window {iso_utc(start)} to {iso_utc(renews)}, past the "
            f"allowance of {limits.credits} per {limits.period.text}",
            start,
        )
        for (start, renews), total in sorted(windows.items())
        if total > limits.credits
    ]


def over_rate(name: str, per_minute: int | None, starts: list[float]) -> list[Violation]:
    """Any 60 s (a charge's reservation and the 60 s before it, as the server counts) with more than
    `per_minute` paid calls started."""
    if per_minute is None:
        return []
    times = sorted(starts)
    for at in times:
        started = bisect_right(times, at) - bisect_right(times, at - RATE_SECONDS)
        if started > per_minute:
            return [
                Violation(
                    "rate",
                    f"{name} started {started} paid calls in the 60 s up to {iso_utc(at)}, past the rate of "
                    f"{per_minute} a minute",
                    at,
                )
            ]
    return []


def over_session(name: str, cap: int | None, charges: list[dict[str, Any]]) -> list[Violation]:
    if cap is None:
        return []
    sessions: dict[str, int] = defaultdict(int)
    for charge in charges:
        if charge.get("session_id") is not None:
            sessions[charge["session_id"]] += charge["credits"]
    return [
        Violation("session", f"{name} was charged {total} credits in one session, past the cap of {cap}")
        for total in sessions.values()
        if total > cap
    ]


def charged_after_refusal(h: History) -> list[Violation]:
    """A call refused by a limit sent nothing: no charge cutout.pro made for its prompt during the call
    that another call with that prompt, not refused, was in flight for."""
    charges = [c for c in sandbox_charges(h).values() if c["prompt"] is not None]
    refused = [op for op in h.ops if refused_by(op) is not None and op.prompt is not None]
    others = [op for op in h.ops if op.prompt is not None and refused_by(op) is None]
    out: list[Violation] = []
    for op in refused:
        for charge in charges:
            if charge["prompt"] != op.prompt or not op.start <= charge["at"] <= op.end:
                continue
            if not any(o.prompt == op.prompt and o.start <= charge["at"] <= (o.end or h.ended) for o in others):
                out.append(
                    Violation(
                        "refused",
                        f"op {op.op_id} was refused by the {refused_by(op)} ({op.text[:120]!r}), yet cutout.pro "
                        f"charged a {charge['kind']} for {op.prompt!r} during it",
                        charge["at"],
                    )
                )
    return out


def check_limits(h: History) -> list[Violation]:
    """Every limit of the policy the replicas ran with, per principal, from both records."""
    out = charged_after_refusal(h)
    policy = policy_of(h)
    if policy is None:
        return out
    placed, wrong = placed_charges(h)
    out += wrong
    ledger: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for charge in h.charges:
        ledger[principal_name(charge["principal"])].append(charge)
    for name in sorted({who for who, _, _ in placed} | set(ledger)):
        _, limits = policy.for_principal(name)
        mine = [(credits, at) for who, credits, at in placed if who == name]
        out += over_allowance(name, limits, mine, "cutout.pro charged")
        reserved = [(c["credits"], c["created_at"]) for c in ledger[name]]
        out += over_allowance(name, limits, reserved, "the ledger reserved")
        out += over_rate(name, limits.paid_calls_per_minute, [c["created_at"] for c in ledger[name]])
        out += over_session(name, limits.session_credits, ledger[name])
    return out
