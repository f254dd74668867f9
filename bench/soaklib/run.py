"""One soak run, start to end: the cluster, the clients and the faults, then the checks' inputs."""

from __future__ import annotations

import random
import time
from pathlib import Path

import anyio

from bench.soaklib.cluster import Cluster, Settings
from bench.soaklib.final import leftover_processes, restore, wind_down
from bench.soaklib.history import History
from bench.soaklib.inject import Injector
from bench.soaklib.policy import allowances_toml, budget_for
from bench.soaklib.schedule import draw
from bench.soaklib.workload import Shared, make_pictures, run_clients

CLIENTS_PER_PRINCIPAL = 2


async def soak(minutes: float, seed: int, settings: Settings) -> History:
    """Run for `minutes` with everything drawn from `seed`; every process is stopped before returning."""
    seconds = minutes * 60
    history = History(seed, settings.budget, settings.http_timeout, allowances=settings.allowances)
    plan = draw(random.Random(f"{seed}:faults"), seconds, settings.replicas, settings.http_timeout)
    cluster = Cluster(settings)
    try:
        await cluster.start()
        shared = Shared(
            cluster.ports, f"{cluster.sandbox_url}/samples/photo.jpg", cluster.pictures, make_pictures(cluster.pictures)
        )
        history.started = time.time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(Injector(cluster, history.faults).run, plan, history.started)
            await run_clients(shared, seed, CLIENTS_PER_PRINCIPAL, history.started + seconds)
        history.ops = shared.ops
        await restore(cluster)
        await wind_down(cluster, history, shared.picture_bytes)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(cluster.stop)
        history.leaks += leftover_processes(cluster)
        history.ended = time.time()
    return history


def settings_for(run_dir: Path, minutes: float, budget: int | None, allowances: bool) -> Settings:
    """The budget runs out mid-run, and with allowances each principal meets its own limits first."""
    chosen = budget if budget is not None else budget_for(minutes, allowances)
    return Settings(run_dir, budget=chosen, allowances=allowances_toml(minutes, chosen) if allowances else None)
