"""What a soak prints: the run's figures, and for a violation the seed, the fault log and the calls
around it, so the run can be read and rerun by its seed."""

from __future__ import annotations

from collections import Counter

from bench.soaklib.history import History
from bench.soaklib.limit_checks import REFUSALS, policy_of, refused_by
from bench.soaklib.records import Violation
from cutout_mcp.config.allowances import principal_name

AROUND = 10.0
"""Seconds of calls shown either side of a violation."""


def summary(h: History, violations: list[Violation]) -> str:
    injected = Counter(f.kind for f in h.faults if not f.skipped)
    calls = Counter(f"{op.tool}:{op.outcome}" for op in h.ops)
    maybe = sum(1 for c in h.charges if c["ref_id"] is None)
    lines = [
        f"soak seed {h.seed}: {(h.ended - h.started) / 60:.1f} min, budget {h.budget} credits",
        f"faults injected: {sum(injected.values())} ({', '.join(f'{k} {n}' for k, n in sorted(injected.items()))}); "
        f"skipped {sum(1 for f in h.faults if f.skipped)}; sandbox faults fired {len(h.sandbox.get('fault_log', []))}",
        f"calls: {len(h.ops)} ({', '.join(f'{k} {n}' for k, n in sorted(calls.items()))})",
        f"cutout.pro charged {len(h.sandbox.get('jobs', []))} videos and {len(h.sandbox.get('edits', []))} edits, "
        f"{h.sandbox.get('credits_spent', 0)} credits; ledger: {len(h.charges)} charges, {maybe} may-have-been-charged",
        f"checked: {len(h.jobs_seen)} job and {len(h.tasks_seen)} task sightings on {len(h.ready)} replicas",
        refusals(h),
        f"violations: {len(violations)}",
    ]
    return "\n".join(lines)


def refusals(h: History) -> str:
    """Paid calls refused before sending, by the limit that refused them, and how each session cap was met."""
    by_limit = Counter(refused_by(op) for op in h.ops)
    line = "refused before sending, by limit: " + ", ".join(f"{limit} {by_limit[limit]}" for limit in REFUSALS)
    policy = policy_of(h)
    if policy is None:
        return line + " (no allowances)"
    for name in ("alice", "bob", "carol"):
        cap = policy.for_principal(name)[1].session_credits
        if cap is not None:
            mine = [c for c in h.charges if principal_name(c["principal"]) == name and c.get("session_id")]
            sessions: Counter[str] = Counter()
            for charge in mine:
                sessions[charge["session_id"]] += charge["credits"]
            most = max(sessions.values(), default=0)
            line += f"; {name}'s charges in {len(sessions)} sessions, at most {most} credits in one (cap {cap})"
    return line


def explain(h: History, violation: Violation) -> str:
    lines = [
        f"VIOLATION [{violation.invariant}] {violation.message}",
        f"  reproduce: python bench/soak.py --seed {h.seed}",
    ]
    lines.append("  fault log:")
    lines += [
        f"    +{f.at - h.started:7.2f}s {f.kind}{' (skipped)' if f.skipped else ''}: {f.detail}" for f in h.faults
    ]
    for entry in h.sandbox.get("fault_log", []):
        lines.append(
            f"    +{entry['at'] - h.started:7.2f}s sandbox {entry['kind']} {entry['method']} {entry['path']}"
            f"{' after' if entry['after'] else ''} charged={entry['charged_id']}"
        )
    if violation.at is not None:
        near = [op for op in h.ops if abs(op.start - violation.at) <= AROUND or abs(op.end - violation.at) <= AROUND]
        lines.append(f"  calls within {AROUND:g} s:")
    else:
        near = h.ops[-15:]
        lines.append("  last calls:")
    for op in near:
        lines.append(
            f"    #{op.op_id} +{op.start - h.started:7.2f}s {op.client} {op.tool} {op.prompt!r} force={op.force_new} "
            f"-> {op.outcome} job={op.job_id} credits={op.credits_charged}: {op.text[:160]}"
        )
    return "\n".join(lines)
