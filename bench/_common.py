"""Helpers shared by the benchmarks: spawning, statistics, /proc readings and the results table.

Everything here talks to 127.0.0.1 only and every loop is bounded.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
FLOOR_SERVER = str(BENCH_DIR / "floor_server.py")
FLOOR_EDIT_SERVER = str(BENCH_DIR / "floor_edit_server.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    """One figure of the results table."""

    bench: str
    figure: str
    value: str
    floor: str = "-"
    target: str = "-"
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def state_dir() -> str:
    """A fresh folder for the job ledger, so benchmarks never touch the user's own; removed at exit."""
    path = tempfile.mkdtemp(prefix="cutout-bench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


WAITS_ONLY = {"CUTOUT_PREFLIGHT": "off", "CUTOUT_PREVIEW": "off"}
"""For the waits benchmarks: like the floor, no image fetches. Otherwise each of 500 finished videos
is fetched and decoded for its contact sheet, which `bench/contact_sheet.py` measures on its own, and
the in-process sandbox renders 500 videos in the benchmark's own process."""


def server_env(base_url: str, api_key: str, **extra: str) -> dict[str, str]:
    """Environment for a spawned cutout-mcp pointed at a sandbox."""
    return {
        "CUTOUT_API_KEY": api_key,
        "CUTOUT_BASE_URL": base_url,
        "CUTOUT_LOG_LEVEL": "WARNING",
        "CUTOUT_STATE_DIR": state_dir(),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, process: subprocess.Popen[bytes], limit: float = 60) -> None:
    with anyio.fail_after(limit):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.02)
                continue
            await stream.aclose()
            return


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process: its peak resident memory, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(parent: int | None = None) -> list[int]:
    """Live processes whose parent is `parent` (this process by default), from /proc."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| benchmark | figure | value | floor | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {r.bench} | {r.figure} | {r.value} | {r.floor} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def print_rows(rows: Sequence[Row]) -> None:
    print(table(rows), flush=True)
