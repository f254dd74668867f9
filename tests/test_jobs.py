"""The polling policy and the progress reporter, on their own."""

from __future__ import annotations

import pytest

from cutout_mcp.core.results import VideoJob, job_status
from cutout_mcp.core.watch import PollPolicy, ProgressReporter, Sample

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


def test_a_long_queue_is_polled_less_often_than_a_short_one() -> None:
    policy = PollPolicy()
    long_queue = policy.next_interval(job("queued", wait_number=50), None, 0)
    short_queue = policy.next_interval(job("queued", wait_number=1), None, 0)
    assert long_queue == policy.max_interval
    assert policy.min_interval <= short_queue < long_queue


def test_a_nearly_finished_render_is_polled_soon() -> None:
    policy = PollPolicy()
    previous = Sample(percentage=80, at=0)
    fast = policy.next_interval(job(percentage=95), previous, now=10)  # 1.5 %/s, 5 % left
    assert fast == policy.min_interval
    slow = policy.next_interval(job(percentage=10), Sample(percentage=5, at=0), now=10)  # 0.5 %/s, 90 % left
    assert slow == policy.max_interval


async def test_progress_only_increases_and_queue_moves_within_the_first_percent() -> None:
    sent: list[tuple[float, float, str]] = []

    async def send(progress: float, total: float, message: str) -> None:
        sent.append((progress, total, message))

    reporter = ProgressReporter(send)
    for state in [
        job("queued", wait_number=5),
        job("queued", wait_number=5),
        job("queued", wait_number=2),
        job("processing", 0),
        job("processing", 30),
        job("processing", 20),
        job("succeeded", 100),
    ]:
        await reporter.report(state)
    values = [p for p, _, _ in sent]
    assert values == [pytest.approx(1 / 7), pytest.approx(1 / 4), 30, 100]
    assert all(total == 100 for _, total, _ in sent)


async def test_no_progress_is_sent_without_a_listener() -> None:
    reporter = ProgressReporter(None)
    await reporter.report(job(percentage=50))
    assert reporter.last == -1.0
