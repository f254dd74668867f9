"""The soak's invariants, checked from both sides: the sandbox's record of what cutout.pro accepted and
charged, the ledger's charges, and what the clients were told. A pure function of a `History`."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from bench.soaklib.history import History, Sighting
from bench.soaklib.limit_checks import check_limits
from bench.soaklib.records import Violation, ledger_principal, principal_of, sandbox_charges

FINAL_JOB = {"succeeded", "failed"}
FINAL_TASK = {"completed", "failed", "cancelled"}
NOTHING_CHARGED = re.compile(r"nothing (?:was )?(?:sent|charged)|not sent:", re.IGNORECASE)
SLACK = 5.0
"""Seconds of clock and scheduling slack around a fault when deciding whether it explains a charge."""


PAID_PATHS = ("/api/v2/imageToVideo/generate", "/api/v1/image/edit")
OUTAGES = ("kill9", "sigterm", "postgres_restart")


def _fault_times(h: History) -> list[tuple[float, float]]:
    """When a fault could have interrupted a paid call after its charge was reserved: a sandbox fault that
    struck a paid submit (reserved just before it was sent), or a replica stopped or PostgreSQL restarted
    while the call was in flight (sent up to one HTTP timeout earlier)."""
    spans = [
        (entry["at"] - SLACK, entry["at"] + 1.0)
        for entry in h.sandbox.get("fault_log", [])
        if entry["path"] in PAID_PATHS and entry["method"] == "POST"
    ]
    reach = h.http_timeout + SLACK
    spans += [(f.at - reach, (f.end or f.at) + 1.0) for f in h.faults if not f.skipped and f.kind in OUTAGES]
    return spans


def _explained(at: float, spans: list[tuple[float, float]]) -> bool:
    return any(start <= at <= end for start, end in spans)


def check_money(h: History) -> list[Violation]:
    """Every charge cutout.pro made is in the ledger; every certain ledger charge was made by cutout.pro;
    "may have been charged" entries are exactly calls a fault interrupted after sending."""
    out: list[Violation] = []
    made = sandbox_charges(h)
    certain = {c["ref_id"]: c for c in h.charges if c["ref_id"] is not None}
    maybe = [c for c in h.charges if c["ref_id"] is None]
    spans = _fault_times(h)
    for ref, charge in certain.items():
        real = made.get(ref)
        if real is None:
            out.append(Violation("money", f"ledger charge {charge['seq']} names {ref}, never charged by cutout.pro"))
        elif (real["kind"], real["credits"]) != (charge["kind"], charge["credits"]):
            out.append(
                Violation(
                    "money",
                    f"ledger charge {charge['seq']} is {charge['kind']}/{charge['credits']}, "
                    f"cutout.pro charged {real['kind']}/{real['credits']}",
                    real["at"],
                )
            )
    lost_by: Counter[tuple[str, str]] = Counter()
    for ref, real in made.items():
        if ref in certain:
            continue
        lost_by[(principal_of(real["prompt"]), real["kind"])] += 1
        hit = any(e.get("charged_id") == ref for e in h.sandbox.get("fault_log", []))
        if not hit and not _explained(real["at"], spans):
            out.append(
                Violation(
                    "money",
                    f"cutout.pro charged {real['kind']} {ref} with no fault near it, and the "
                    "ledger has no certain charge for it",
                    real["at"],
                )
            )
    maybe_by = Counter((ledger_principal(c["principal"]), c["kind"]) for c in maybe)
    for key, lost in lost_by.items():
        if maybe_by[key] < lost:
            out.append(
                Violation(
                    "money",
                    f"{lost} {key[1]} charge(s) of {key[0]} made by cutout.pro are missing from "
                    f"the ledger: only {maybe_by[key]} 'may have been charged' entries cover them",
                )
            )
    for charge in maybe:
        if not _explained(charge["created_at"], spans):
            out.append(
                Violation(
                    "money",
                    f"ledger charge {charge['seq']} 'may have been charged' with no fault interrupting it",
                    charge["created_at"],
                )
            )
    return out


def check_told(h: History) -> list[Violation]:
    """What clients were told agrees with cutout.pro: job ids exist; "nothing charged" was true."""
    out: list[Violation] = []
    jobs = {job["id"] for job in h.sandbox.get("jobs", [])}
    prompts = Counter(real["prompt"] for real in sandbox_charges(h).values())
    by_prompt: dict[str, list[bool]] = {}
    for op in h.ops:
        if op.outcome == "ok" and op.job_id is not None and op.job_id not in jobs:
            out.append(Violation("told", f"op {op.op_id} was given job {op.job_id}, unknown to cutout.pro", op.end))
        if op.prompt is not None and op.tool in ("generate_video", "edit_image"):
            said_nothing = op.outcome == "tool_error" and bool(NOTHING_CHARGED.search(op.text))
            by_prompt.setdefault(op.prompt, []).append(said_nothing)
    for prompt, flags in by_prompt.items():
        if all(flags) and prompts[prompt]:
            out.append(
                Violation(
                    "told",
                    f"every call with prompt {prompt!r} was told nothing was charged, but "
                    f"cutout.pro charged {prompts[prompt]} time(s)",
                )
            )
    return out


def check_no_double_submit(h: History) -> list[Violation]:
    """No identical video (same caller, image content and prompt) was submitted while one was unfinished,
    unless force_new asked for it. Soak prompts name one image content each, so a prompt is the key."""
    out: list[Violation] = []
    forced = {op.prompt for op in h.ops if op.force_new}
    groups: dict[str, list[dict[str, Any]]] = {}
    for job in h.sandbox.get("jobs", []):
        groups.setdefault(job["prompt"], []).append(job)
    for prompt, jobs in groups.items():
        if prompt in forced:
            continue
        jobs.sort(key=lambda job: job["created_at"])
        running_until = jobs[0]["ends_at"]
        for job in jobs[1:]:
            if job["created_at"] < running_until:
                out.append(
                    Violation(
                        "dedupe",
                        f"job {job['id']} ({prompt!r}) was submitted while an identical job was unfinished",
                        job["created_at"],
                    )
                )
            running_until = max(running_until, job["ends_at"])
    return out


def check_budget(h: History) -> list[Violation]:
    out: list[Violation] = []
    spent = h.sandbox.get("credits_spent", 0)
    if spent > h.budget:
        out.append(Violation("budget", f"cutout.pro charged {spent} credits, past the budget of {h.budget}"))
    return out


REPORTED_FAILED = re.compile(
    r"^Error executing tool get_video_result: Video job \d+ failed at cutout\.pro \(status: failed\)"
)
SANDBOX_FAILED = 2
"""The sandbox's (cutout.pro's) status of a failed video job."""


def reported_failed(sighting: Sighting) -> bool:
    """`get_video_result` answers a failed job with a tool error naming it (its final state, by design)."""
    return sighting.status is None and REPORTED_FAILED.match(sighting.error or "") is not None


def check_final_states(h: History) -> list[Violation]:
    """Every job id and task a client was given is found on every replica, in a final state (a failed job is
    a tool error saying so, true only if cutout.pro failed it)."""
    out: list[Violation] = []
    replicas = sorted(h.ready)
    wanted = [("job", op.principal, str(op.job_id)) for op in h.ops if op.job_id is not None and op.outcome == "ok"]
    wanted += [("task", op.principal, op.task_id) for op in h.ops if op.task_id is not None]
    seen = {("job", s.principal, s.ident, s.replica): s for s in h.jobs_seen}
    seen.update({("task", s.principal, s.ident, s.replica): s for s in h.tasks_seen})
    failed_at_cutout_pro = {job["id"]: job.get("status") == SANDBOX_FAILED for job in h.sandbox.get("jobs", [])}
    for what, principal, ident in dict.fromkeys(wanted):
        final = FINAL_JOB if what == "job" else FINAL_TASK
        for replica in replicas:
            sighting = seen.get((what, principal, ident, replica))
            if what == "job" and sighting is not None and reported_failed(sighting):
                if failed_at_cutout_pro.get(int(ident)) is not True:
                    out.append(
                        Violation(
                            "final",
                            f"job {ident} of {principal} was reported failed, but cutout.pro "
                            f"did not fail it (replica {replica})",
                        )
                    )
                continue
            if sighting is None or sighting.status not in final:
                got = "not looked up" if sighting is None else (sighting.error or sighting.status)
                out.append(Violation("final", f"{what} {ident} of {principal} on replica {replica}: {got}"))
    return out


MAY_HAVE_SENT = re.compile(r"may (?:still )?have been", re.IGNORECASE)


def _kept_by_design(h: History) -> set[str]:
    """Objects the server keeps on purpose, left to the bucket's lifecycle rule (docs/images.md#deletion):
    an upload no call got a result from (refused before sending: kept for the next call; interrupted after
    sending: a lost job may still fetch it), an upload whose delete the store failed (never retried), and
    the staged copy of a content a call was interrupted with after sending (a lost job may still fetch it)."""
    answered: dict[str, bool] = {}
    interrupted: set[str] = set()
    for op in h.ops:
        if op.upload is not None:
            answered[op.upload] = answered.get(op.upload, False) or op.outcome == "ok"
        lost = op.outcome == "exception" or (op.outcome == "tool_error" and bool(MAY_HAVE_SENT.search(op.text)))
        if lost and op.image is not None and not op.image.endswith("/url"):
            interrupted.add(op.image.split("/")[0])
    kept = {upload for upload, got in answered.items() if not got}
    kept |= {
        e["path"].removeprefix("/staging/")
        for e in h.sandbox.get("fault_log", [])
        if e["method"] == "DELETE" and e["path"].startswith("/staging/uploads/")
    }
    kept |= {key for key, content in h.staged_contents.items() if content in interrupted}
    return kept


def check_leftovers(h: History) -> list[Violation]:
    """No staged object is left once its jobs ended, but for those the server keeps by design."""
    kept = _kept_by_design(h)
    out = [
        Violation("staged", f"staged object {key} left after its jobs ended")
        for key in h.sandbox.get("staged_objects", [])
        if key not in kept
    ]
    out += [Violation("ready", f"replica {r} did not end ready: {why}") for r, why in h.ready.items() if why != "ok"]
    out += [Violation("leak", leak) for leak in h.leaks]
    return out


def check(h: History) -> list[Violation]:
    """Every invariant; an empty list means the run kept every promise."""
    return [
        *check_money(h),
        *check_told(h),
        *check_no_double_submit(h),
        *check_budget(h),
        *check_limits(h),
        *check_final_states(h),
        *check_leftovers(h),
    ]
