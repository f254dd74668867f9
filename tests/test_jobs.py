"""The polling policy and the progress reporter, on their own."""

from __future__ import annotations

import itertools

import pytest

from cutout_mcp.core.jobs.pace import Pace, PollPolicy, ProgressReporter, Reading
from cutout_mcp.core.results import VideoJob, job_status

pytestmark = pytest.mark.anyio


def job(status: str = "processing", percentage: float = 0, wait_number: int = 0) -> VideoJob:
    return VideoJob(
        id=1,
        status=status,  # type: ignore[arg-type]
        percentage=percentage,
        wait_number=wait_number,
        credits_charged=0,
        message=f"{status} {percentage}",
    )


@pytest.mark.parametrize(
    ("upstream", "wait_number", "expected"),
    [
        (0, 3, "queued"),
        (0, 0, "processing"),
        (1, 0, "succeeded"),
        (2, 0, "failed"),
        (3, 0, "queued"),
        (None, 0, "queued"),
    ],
)
def test_upstream_status_codes_are_mapped(upstream: int | None, wait_number: int, expected: str) -> None:
    assert job_status(upstream, wait_number) == expected


def paced(*readings: tuple[float, VideoJob]) -> Pace:
    pace = Pace()
    for at, state in readings:
        pace.observe(state, at)
    return pace


def test_a_long_queue_is_polled_less_often_than_a_short_one() -> None:
    policy = PollPolicy()
    long_queue = policy.next_interval(job("queued", wait_number=50), Pace())
    short_queue = policy.next_interval(job("queued", wait_number=1), Pace())
    assert long_queue == policy.max_interval
    assert policy.min_interval <= short_queue < long_queue


def test_the_queue_interval_follows_how_fast_the_queue_actually_moves() -> None:
    policy = PollPolicy()
    unknown = policy.next_interval(job("queued", wait_number=4), paced((0, job("queued", wait_number=4))))
    assert unknown == policy.min_interval + policy.seconds_per_queued_job * 4  # the guess, before any evidence
    fast = paced(
        (0, job("queued", wait_number=5)), (2, job("queued", wait_number=4)), (3, job("queued", wait_number=1))
    )
    assert fast.seconds_per_queued_job == pytest.approx(0.75)  # 4 positions in 3 s
    assert policy.next_interval(job("queued", wait_number=1), fast) == pytest.approx(policy.min_interval + 0.75)
    slow = paced((0, job("queued", wait_number=9)), (12, job("queued", wait_number=8)))
    assert policy.next_interval(job("queued", wait_number=8), slow) == policy.max_interval  # 12 s a position
    grown = paced((0, job("queued", wait_number=3)), (4, job("queued", wait_number=6)))
    assert grown.seconds_per_queued_job is None, "a queue that grew starts measuring afresh"


def test_a_nearly_finished_render_is_polled_soon() -> None:
    policy = PollPolicy()
    fast = policy.next_interval(job(percentage=95), paced((0, job(percentage=80)), (10, job(percentage=95))))
    assert fast == policy.min_interval  # 1.5 %/s, 5 % left
    slow = policy.next_interval(job(percentage=10), paced((0, job(percentage=5)), (10, job(percentage=10))))
    assert slow == policy.max_interval  # 0.5 %/s, 90 % left
    assert policy.next_interval(job(percentage=10), paced((0, job(percentage=10)))) == (
        policy.default_processing_interval
    )


def test_a_reading_estimates_where_the_job_is_now_and_what_is_left() -> None:
    pace = paced((0, job(percentage=20)), (10, job(percentage=40)))  # 2 %/s
    reading = Reading.of(job(percentage=40), 10, pace)
    assert reading.progress(15) == pytest.approx(50)
    assert reading.seconds_left(15) == pytest.approx(25)
    assert reading.progress(1000) == 99, "only a read says a job is done"
    assert "about 25 s left" in reading.message(15, waited=15)
    assert "waited 15 s" in reading.message(15, waited=15)
    assert Reading.of(job(percentage=40), 10, Pace()).seconds_left(15) is None


async def test_progress_always_increases_and_queue_moves_within_the_first_percent() -> None:
    sent: list[tuple[float, float, str]] = []

    async def send(progress: float, total: float, message: str) -> None:
        sent.append((progress, total, message))

    reporter = ProgressReporter(send, job_id=1, started=0)
    await reporter.report(None, 0)
    for at, state in enumerate(
        [
            job("queued", wait_number=5),
            job("queued", wait_number=5),
            job("queued", wait_number=2),
            job("processing", 0),
            job("processing", 30),
            job("processing", 20),
            job("succeeded", 100),
        ],
        start=1,
    ):
        await reporter.report(Reading(state, at), at)
    values = [p for p, _, _ in sent]
    assert all(a < b for a, b in itertools.pairwise(values)), values
    assert values[:5] == [0, pytest.approx(1 / 7), pytest.approx(1 / 7), pytest.approx(1 / 4), pytest.approx(1 / 4)]
    assert values[5:] == [30, pytest.approx(30), 100]
    assert all(total == 100 for _, total, _ in sent)
    assert "Checking on video job 1" in sent[0][2]
    assert "5 jobs ahead" in sent[1][2]


async def test_no_progress_is_sent_without_a_listener() -> None:
    reporter = ProgressReporter(None)
    await reporter.report(Reading(job(percentage=50), 0), 0)
    assert reporter.last == -1.0
