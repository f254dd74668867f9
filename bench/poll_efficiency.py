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

import itertools
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import anyio.lowlevel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, print_rows
from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.core.jobs.watch import HEARTBEAT_SECONDS, JobWatcher
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
    """Time passes only once every task waits, as real time would (so a notification's time is true)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await anyio.wait_all_tasks_blocked()
        self.t += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


@dataclass(frozen=True)
class Outcome:
    reads: float
    delay: float
    """Seconds from the job's end to the read that saw it."""
    silence: float
    """Longest time the waiter went without a progress notification."""


async def simulate(timeline: Timeline, policy: PollPolicy, heartbeat: float = HEARTBEAT_SECONDS) -> Outcome:
    """The outcome averaged over `PHASES` (the longest silence: the longest of any phase)."""
    runs = [await _simulate(replace(timeline, phase=phase), policy, heartbeat) for phase in PHASES]
    return Outcome(
        sum(r.reads for r in runs) / len(runs),
        sum(r.delay for r in runs) / len(runs),
        max(r.silence for r in runs),
    )


async def _simulate(timeline: Timeline, policy: PollPolicy, heartbeat: float) -> Outcome:
    clock = FakeClock()
    reads = 0
    told = [0.0]

    async def read(job_id: int) -> UpstreamVideoJob:
        nonlocal reads
        reads += 1
        return timeline.at(clock.t)

    async def progress(value: float, total: float, message: str) -> None:
        told.append(clock.t)

    watcher = JobWatcher(read, clock, policy, heartbeat=heartbeat)
    async with watcher.running():
        job = await watcher.wait(1, 3600, on_progress=progress)
    assert job.finished, "the simulated wait outlasts every timeline"
    silence = max(b - a for a, b in itertools.pairwise(told))
    return Outcome(reads, clock.t - timeline.end, silence)


Results = dict[str, list[tuple[Timeline, Outcome]]]
QUIET = "adaptive, no heartbeat"
"""The adaptive policy with heartbeats switched off: the floor for reads, the old silence."""
SILENCE_TARGET = 3.0


def results() -> Results:
    out: Results = {}
    for name, policy in POLICIES.items():
        out[name] = [(tl, anyio.run(simulate, tl, policy)) for tl in TIMELINES]
    out[QUIET] = [(tl, anyio.run(simulate, tl, POLICIES["adaptive PollPolicy"], math.inf)) for tl in TIMELINES]
    return out


def detail(res: Results) -> str:
    names = [n for n in res if n != QUIET]
    header = "| job (queue + render) | " + " | ".join(f"{n}: reads / delay" for n in names)
    header += " | adaptive: longest silence (no heartbeat) |"
    lines = [header, "| --- |" + " --- |" * (len(names) + 1)]
    for i, tl in enumerate(TIMELINES):
        cells = [f"{res[n][i][1].reads:.1f} / {res[n][i][1].delay:.1f} s" for n in names]
        adaptive, quiet = res["adaptive PollPolicy"][i][1], res[QUIET][i][1]
        cells.append(f"{adaptive.silence:.1f} s ({quiet.silence:.1f} s)")
        lines.append(f"| {tl.queue:.0f} s ({tl.depth} ahead) + {tl.render:.1f} s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run() -> list[Row]:
    res = results()
    rows = []
    spread = f"{len(TIMELINES)} jobs of {TIMELINES[0].end:.0f}-{TIMELINES[-1].end:.0f} s"
    for name, runs in res.items():
        if name == QUIET:
            continue
        reads = [o.reads for _, o in runs]
        delays = [o.delay for _, o in runs]
        rows.append(
            Row(
                "poll efficiency",
                f"{name}: reads per job, mean; mean delay median / max over jobs ({spread})",
                f"{sum(reads) / len(reads):.1f} reads; {median(delays):.1f} s / {max(delays):.1f} s",
                floor="1 read, 0 s (an oracle)",
            )
        )
    beating = [o for _, o in res["adaptive PollPolicy"]]
    quiet = [o for _, o in res[QUIET]]
    silence = max(o.silence for o in beating)
    rows.append(
        Row(
            "poll efficiency",
            f"adaptive: longest time without a progress notification, any job and phase ({spread})",
            f"{silence:.1f} s",
            floor=f"{max(o.silence for o in quiet):.1f} s without heartbeats",
            target=f"<= {SILENCE_TARGET:.0f} s",
            met=silence <= SILENCE_TARGET,
        )
    )
    extra = sum(o.reads for o in beating) - sum(o.reads for o in quiet)
    rows.append(
        Row(
            "poll efficiency",
            "adaptive: upstream reads added by the heartbeats (all jobs)",
            f"{extra:.1f}",
            floor="0",
            target="0",
            met=extra == 0,
        )
    )
    return rows


def main() -> None:
    print_rows(run())
    print()
    print(detail(results()))


if __name__ == "__main__":
    main()
