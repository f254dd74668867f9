"""Poll efficiency: upstream reads per job and completion-to-notification delay, by polling policy.

A deterministic simulation on a fake clock (it runs in well under a second):
one waiter waits on a job through the server's own `watch.JobWatcher`, whose
reads are answered from a scripted timeline shaped like cutout.pro's (queued
with `waitNumber` counting down, then processing with the percentage rising
evenly, then succeeded). Compared: the adaptive `jobs.PollPolicy` the server
uses, and fixed polling every 5 s and every 20 s (a `PollPolicy` whose
shortest and longest interval are equal). Each job is run at several phases
(how long before the waiter's first read it started) and averaged. Delay is from the moment the job
finished to the read that saw it, which is when the waiter is told.

    python bench/poll_efficiency.py
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import anyio.lowlevel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, print_rows
from cutout_mcp.core.watch import JobWatcher, PollPolicy
from cutout_mcp.upstream.models import UpstreamVideoJob


@dataclass(frozen=True)
class Timeline:
    """Queued for `queue` seconds behind `depth` jobs, then rendering for `render` seconds."""

    queue: float
    depth: int
    render: float
    phase: float = 0.0

    @property
    def end(self) -> float:
        """When it finishes, on the clock of the first read (which is at 0)."""
        return max(0.0, self.queue + self.render - self.phase)

    def at(self, t: float) -> UpstreamVideoJob:
        t += self.phase
        if t < self.queue:
            wait = math.ceil(self.depth * (self.queue - t) / self.queue)
            fields = {"status": 0, "percentage": 0, "waitNumber": wait}
        elif t < self.queue + self.render:
            fields = {"status": 0, "percentage": min(99, int(100 * (t - self.queue) / self.render)), "waitNumber": 0}
        else:
            fields = {"status": 1, "percentage": 100, "waitNumber": 0, "resultUrl": "https://example.invalid/v.mp4"}
        return UpstreamVideoJob.model_validate({"id": 1, **fields})


TIMELINES = (
    Timeline(queue=2.0, depth=1, render=8.7),
    Timeline(queue=5.0, depth=2, render=23.3),
    Timeline(queue=11.0, depth=3, render=47.9),
    Timeline(queue=19.0, depth=5, render=103.1),
    Timeline(queue=31.0, depth=8, render=146.6),
    Timeline(queue=58.0, depth=15, render=243.2),
    Timeline(queue=117.0, depth=30, render=481.4),
)
PHASES = (0.0, 1.7, 3.1, 4.6, 7.9, 13.3)
"""How long before the first read each job started (a waiter rarely arrives at the submit itself)."""

POLICIES = {
    "adaptive PollPolicy": PollPolicy(),
    "fixed 5 s": PollPolicy(min_interval=5, max_interval=5),
    "fixed 20 s": PollPolicy(min_interval=20, max_interval=20),
}


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


async def simulate(timeline: Timeline, policy: PollPolicy) -> tuple[float, float]:
    """(reads, seconds from the job's end to the read that saw it), averaged over `PHASES`."""
    runs = [await _simulate(replace(timeline, phase=phase), policy) for phase in PHASES]
    return sum(r for r, _ in runs) / len(runs), sum(d for _, d in runs) / len(runs)


async def _simulate(timeline: Timeline, policy: PollPolicy) -> tuple[int, float]:
    clock = FakeClock()
    reads = 0

    async def read(job_id: int) -> UpstreamVideoJob:
        nonlocal reads
        reads += 1
        return timeline.at(clock.t)

    watcher = JobWatcher(read, clock, policy)
    async with watcher.running():
        job = await watcher.wait(1, 3600)
    assert job.finished, "the simulated wait outlasts every timeline"
    return reads, clock.t - timeline.end


def results() -> dict[str, list[tuple[Timeline, float, float]]]:
    out: dict[str, list[tuple[Timeline, float, float]]] = {}
    for name, policy in POLICIES.items():
        out[name] = [(tl, *anyio.run(simulate, tl, policy)) for tl in TIMELINES]
    return out


def detail(res: dict[str, list[tuple[Timeline, float, float]]]) -> str:
    header = "| job (queue + render) | " + " | ".join(f"{n}: reads / delay" for n in res) + " |"
    lines = [header, "| --- |" + " --- |" * len(res)]
    for i, tl in enumerate(TIMELINES):
        cells = [f"{res[n][i][1]:.1f} / {res[n][i][2]:.1f} s" for n in res]
        lines.append(f"| {tl.queue:.0f} s ({tl.depth} ahead) + {tl.render:.1f} s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run() -> list[Row]:
    res = results()
    rows = []
    spread = f"{len(TIMELINES)} jobs of {TIMELINES[0].end:.0f}-{TIMELINES[-1].end:.0f} s"
    for name, runs in res.items():
        reads = [r for _, r, _ in runs]
        delays = [d for _, _, d in runs]
        rows.append(
            Row(
                "poll efficiency",
                f"{name}: reads per job, mean; mean delay median / max over jobs ({spread})",
                f"{sum(reads) / len(reads):.1f} reads; {median(delays):.1f} s / {max(delays):.1f} s",
                floor="1 read, 0 s (an oracle)",
            )
        )
    return rows


def main() -> None:
    print_rows(run())
    print()
    print(detail(results()))


if __name__ == "__main__":
    main()
