"""The soak's invariant checker on small histories made by hand: a clean one passes, and each planted
violation is caught (so a soak reporting zero violations means something)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.soaklib.checker import check
from bench.soaklib.history import FaultEvent, History, Op, Sighting
from bench.soaklib.report import summary

T0 = 1_800_000_000.0
ALICE = '["alice",null,"alice"]'


def clean() -> History:
    """Alice made one video (paid, 5 credits) and one identical call answered free; an after-fault lost the
    answer of a second video, which the ledger holds as 'may have been charged'."""
    h = History(seed=3, budget=20, http_timeout=3.0, started=T0, ended=T0 + 60)
    h.ops = [
        Op(
            0,
            "alice0",
            "alice",
            "generate_video",
            "identical",
            T0 + 1,
            prompt="alice: same sample",
            end=T0 + 2,
            outcome="ok",
            job_id=101,
            credits_charged=5,
            status="queued",
        ),
        Op(
            1,
            "alice1",
            "alice",
            "generate_video",
            "identical",
            T0 + 2,
            prompt="alice: same sample",
            end=T0 + 3,
            outcome="ok",
            job_id=101,
            credits_charged=0,
            status="queued",
        ),
        Op(
            2,
            "alice0",
            "alice",
            "generate_video",
            "new",
            T0 + 20,
            prompt="alice: new 2",
            end=T0 + 21,
            outcome="tool_error",
            text="cutout.pro's answer was lost; it may have been charged",
        ),
    ]
    h.sandbox = {
        "credits_spent": 10,
        "jobs": [
            {"id": 101, "prompt": "alice: same sample", "created_at": T0 + 1.5, "ends_at": T0 + 6},
            {"id": 102, "prompt": "alice: new 2", "created_at": T0 + 20.5, "ends_at": T0 + 25},
        ],
        "edits": [],
        "fault_log": [
            {
                "at": T0 + 20.5,
                "path": "/api/v2/imageToVideo/generate",
                "method": "POST",
                "kind": "disconnect",
                "after": True,
                "charged_id": 102,
            }
        ],
        "staged_objects": [],
    }
    h.charges = [
        {"seq": 1, "principal": ALICE, "kind": "video", "ref_id": 101, "credits": 5, "created_at": T0 + 1.4},
        {"seq": 2, "principal": ALICE, "kind": "video", "ref_id": None, "credits": 5, "created_at": T0 + 20.4},
    ]
    h.ready = {0: "ok", 1: "ok"}
    h.jobs_seen = [Sighting("alice", "101", replica, "succeeded") for replica in (0, 1)]
    return h


def test_a_clean_history_keeps_every_promise() -> None:
    assert check(clean()) == []


def plant_missing_charge(h: History) -> None:
    h.charges.pop(1)  # cutout.pro charged job 102; the ledger forgot it


def plant_double_submit(h: History) -> None:
    h.sandbox["jobs"].append({"id": 103, "prompt": "alice: same sample", "created_at": T0 + 3, "ends_at": T0 + 8})
    h.charges.append({"seq": 3, "principal": ALICE, "kind": "video", "ref_id": 103, "credits": 5, "created_at": T0 + 3})
    h.sandbox["credits_spent"] = 15


def plant_over_budget(h: History) -> None:
    h.budget = 8


def plant_phantom_certain_charge(h: History) -> None:
    h.charges.append({"seq": 4, "principal": ALICE, "kind": "video", "ref_id": 999, "credits": 5, "created_at": T0 + 9})


def plant_unexplained_maybe(h: History) -> None:
    h.sandbox["fault_log"] = []
    h.faults = [FaultEvent(T0 + 50, "kill9", "replica 0")]  # far from the charge at +20 s


def plant_lost_job_on_a_replica(h: History) -> None:
    h.jobs_seen[1] = Sighting("alice", "101", 1, None, error="Unknown job id")


def plant_false_nothing_charged(h: History) -> None:
    h.ops[2].text = "Refused before contacting cutout.pro. Nothing was charged."


def plant_leftover_object(h: History) -> None:
    h.sandbox["staged_objects"] = ["staged/abc.jpg"]


def plant_leftover_upload(h: History) -> None:
    h.ops[0].upload = "uploads/" + "U" * 32 + "/cat.jpg"  # the call that made job 101, which ended
    h.sandbox["staged_objects"] = [h.ops[0].upload]


def test_an_upload_only_refused_calls_used_is_kept_by_design() -> None:
    history = clean()
    history.ops[2].upload = "uploads/" + "R" * 32 + "/cat.jpg"
    history.sandbox["staged_objects"] = [history.ops[2].upload]
    assert check(history) == []


@pytest.mark.parametrize(
    ("plant", "invariant"),
    [
        (plant_missing_charge, "money"),
        (plant_double_submit, "dedupe"),
        (plant_over_budget, "budget"),
        (plant_phantom_certain_charge, "money"),
        (plant_unexplained_maybe, "money"),
        (plant_lost_job_on_a_replica, "final"),
        (plant_false_nothing_charged, "told"),
        (plant_leftover_object, "staged"),
        (plant_leftover_upload, "staged"),
    ],
)
def test_a_planted_violation_is_caught(plant: Callable[[History], None], invariant: str) -> None:
    history = clean()
    plant(history)
    found = check(history)
    assert invariant in {v.invariant for v in found}, found


def test_a_kept_history_reads_back_the_same_for_checking_again() -> None:
    history = clean()
    plant_double_submit(history)
    again = History.load(history.dump())
    assert again == history
    assert check(again) == check(history) != []


def test_objects_kept_by_design_are_not_leftovers_but_others_are() -> None:
    history = clean()
    history.ops[2].image = "red/path"  # interrupted after sending: a lost job may still fetch red's copy
    history.staged_contents = {"staged/red.jpg": "red", "staged/blue.jpg": "blue"}
    failed_delete = "uploads/" + "D" * 32 + "/cat.jpg"
    history.sandbox["fault_log"].append(
        {
            "at": T0 + 30,
            "path": f"/staging/{failed_delete}",
            "method": "DELETE",
            "kind": "http_error",
            "after": False,
            "charged_id": None,
        }
    )
    history.sandbox["staged_objects"] = ["staged/red.jpg", failed_delete, "staged/blue.jpg"]
    found = check(history)
    assert [v.message for v in found] == ["staged object staged/blue.jpg left after its jobs ended"]


LIMITS = """
[default]
credits = 100

[principals.alice]
credits = 10
period = "60s"
paid_calls_per_minute = 2
session_credits = 5
"""
"""Alice's two charges in `clean()` (+1.4 s and +20.4 s, T0 a multiple of 60) fill her 60 s window and her
rate exactly; each was made in a session of its own."""


def limited() -> History:
    h = clean()
    h.allowances = LIMITS
    h.charges[0]["session_id"], h.charges[1]["session_id"] = "s1", "s2"
    return h


def add_edit(h: History, reserved: float, arrived: float, *, principal: str = ALICE, session: str = "s3") -> None:
    """A 4-credit edit cutout.pro charged, and its certain ledger entry."""
    h.sandbox["edits"].append({"id": 104, "credits": 4, "created_at": arrived, "prompt": "alice: edit 3"})
    h.sandbox["credits_spent"] += 4
    h.charges.append(
        {
            "seq": 3,
            "principal": principal,
            "kind": "edit",
            "ref_id": 104,
            "credits": 4,
            "created_at": reserved,
            "session_id": session,
        }
    )


def test_a_history_at_every_limit_but_past_none_keeps_every_promise() -> None:
    h = limited()
    add_edit(h, reserved=T0 + 80.5, arrived=T0 + 80.7)  # the next window; 60 s after +20.4
    h.budget = 30
    assert check(h) == []


def test_a_charge_counts_in_the_window_it_was_reserved_in_not_the_one_cutout_pro_received_it_in() -> None:
    """The server's window is the reservation's. Reserved at +59.9 s in alice's full first window, received
    at +60.1 s: past the allowance on cutout.pro's side too. Reserved at -0.2 s (the window before, empty),
    received at +0.1 s: within it, though cutout.pro's clock puts it in the full window."""
    late = limited()
    late.allowances = LIMITS.replace("paid_calls_per_minute = 2", "paid_calls_per_minute = 5")
    late.budget = 30
    add_edit(late, reserved=T0 + 59.9, arrived=T0 + 60.1)
    found = check(late)
    assert {v.invariant for v in found} == {"allowance"}
    assert any(v.message.startswith("cutout.pro charged 14 credits of alice") for v in found), found
    early = limited()
    early.allowances = late.allowances
    early.budget = 30
    add_edit(early, reserved=T0 - 0.2, arrived=T0 + 0.1)
    assert check(early) == []


def plant_over_allowance(h: History) -> None:
    h.allowances = LIMITS.replace("credits = 10", "credits = 9")


def plant_over_rate(h: History) -> None:
    h.allowances = LIMITS.replace("paid_calls_per_minute = 2", "paid_calls_per_minute = 1")


def plant_third_call_in_a_minute(h: History) -> None:
    h.allowances = LIMITS.replace("credits = 10", "credits = 20")
    h.budget = 30
    add_edit(h, reserved=T0 + 61.3, arrived=T0 + 61.5)  # +20.4 and +1.4 are within 60 s of it


def plant_over_session(h: History) -> None:
    h.charges[1]["session_id"] = "s1"


def plant_charged_after_refusal(h: History) -> None:
    h.ops[2].text = (
        "Refused before contacting cutout.pro: this call costs 5 credits, but alice's allowance of 10 credits "
        "per 60s has 0 left (10 used this period). It renews at 2027-01-15T08:01:00Z."
    )


def plant_charged_to_another(h: History) -> None:
    h.charges[0]["principal"] = '["bob",null,"bob"]'


@pytest.mark.parametrize(
    ("plant", "invariant"),
    [
        (plant_over_allowance, "allowance"),
        (plant_over_rate, "rate"),
        (plant_third_call_in_a_minute, "rate"),
        (plant_over_session, "session"),
        (plant_charged_after_refusal, "refused"),
        (plant_charged_to_another, "allowance"),
    ],
)
def test_a_planted_limit_violation_is_caught(plant: Callable[[History], None], invariant: str) -> None:
    history = limited()
    plant(history)
    found = check(history)
    assert invariant in {v.invariant for v in found}, found


def test_refusals_are_counted_by_the_limit_that_refused() -> None:
    history = limited()
    history.ops[2].text = "Refused before contacting cutout.pro: ... may start 2 paid calls per minute and ..."
    history.ops[1].outcome, history.ops[1].text = "tool_error", "... the session cap of 5 credits has 0 left ..."
    assert "allowance 0, session 1, rate 1, budget 0" in summary(history, check(history))


def test_a_failed_job_is_final_when_cutout_pro_failed_it() -> None:
    """`get_video_result` answers a failed job with a tool error naming it; that is its final state, but only
    true when cutout.pro's own record says the job failed."""
    failed = "Error executing tool get_video_result: Video job 101 failed at cutout.pro (status: failed). Its ..."
    history = clean()
    history.jobs_seen = [Sighting("alice", "101", replica, None, error=failed) for replica in (0, 1)]
    history.sandbox["jobs"][0]["status"] = 2
    assert check(history) == []
    history.sandbox["jobs"][0]["status"] = 1
    assert {v.invariant for v in check(history)} == {"final"}
