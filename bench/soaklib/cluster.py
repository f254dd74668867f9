"""The processes a soak runs: a throwaway PostgreSQL, the standalone sandbox as cutout.pro, and the
replicas. Every process started here is stopped by `stop()`, also after a failure or Ctrl-C (children
run in their own session, so Ctrl-C reaches only the soak, which then stops them in order)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from bench._common import CUTOUT_MCP, free_port, wait_for_port
from tests.pgserver import PgServer, find_bindir

TOKENS = {
    "alice": "alice-soak-token-0123456789abcdef",
    "bob": "bob-soak-token-0123456789abcdef01",
    "carol": "carol-soak-token-0123456789abcdef",
}
STOP_SECONDS = 15.0
START_TRIES = 60


@dataclass
class Settings:
    """What the cluster is started with; everything else the soak derives from the seed."""

    run_dir: Path
    replicas: int = 3
    budget: int = 600
    http_timeout: float = 3.0
    job_seconds: float = 4.0
    shutdown_grace: float = 3.0
    allowances: str | None = None
    """The `CUTOUT_ALLOWANCES_FILE` text (bench/soaklib/policy.py), or None to run without allowances."""

    @property
    def allowances_file(self) -> Path:
        return self.run_dir / "allowances.toml"


@dataclass
class Cluster:
    settings: Settings
    pg: PgServer | None = None
    database_url: str = ""
    sandbox: subprocess.Popen[bytes] | None = None
    sandbox_url: str = ""
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    started_pids: list[int] = field(default_factory=list)

    @property
    def output_dir(self) -> Path:
        return self.settings.run_dir / "output"

    @property
    def pictures(self) -> Path:
        return self.settings.run_dir / "pictures"

    async def start(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (install the postgresql package)")
        self.pg = await anyio.to_thread.run_sync(PgServer, bindir)
        self.database_url = await anyio.to_thread.run_sync(self.pg.new_database)
        for folder in (self.output_dir, self.pictures, self.settings.run_dir / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
        if self.settings.allowances is not None:
            self.settings.allowances_file.write_text(self.settings.allowances)
        port = free_port()
        args = ["sandbox", "--port", str(port), "--job-seconds", str(self.settings.job_seconds)]
        args += ["--queue-seconds", "0.5", "--queue-depth", "1", "--video-format", "gif"]
        self.sandbox = self._spawn(args, "sandbox", {})
        self.sandbox_url = f"http://127.0.0.1:{port}"
        await wait_for_port(port, self.sandbox)
        self.ports = [free_port() for _ in range(self.settings.replicas)]
        self.processes = [None] * self.settings.replicas
        for index in range(self.settings.replicas):
            self.start_replica(index)
        for index in range(self.settings.replicas):
            await self.wait_replica(index)

    def _spawn(self, args: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.settings.run_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            process = subprocess.Popen(
                [CUTOUT_MCP, *args],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        self.started_pids.append(process.pid)
        return process

    def replica_env(self) -> dict[str, str]:
        s = self.settings
        env = {
            "CUTOUT_API_KEY": "sandbox-key",
            "CUTOUT_BASE_URL": self.sandbox_url,
            "CUTOUT_SANDBOX": "1",
            "CUTOUT_DATABASE_URL": self.database_url,
            "CUTOUT_MCP_TOKEN": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
            "CUTOUT_CREDIT_BUDGET": str(s.budget),
            "CUTOUT_HTTP_TIMEOUT": str(s.http_timeout),
            "CUTOUT_TASK_LEASE_SECONDS": "2",
            "CUTOUT_SHUTDOWN_GRACE": str(s.shutdown_grace),
            "CUTOUT_OUTPUT_DIR": str(self.output_dir),
            "CUTOUT_INPUT_DIRS": str(self.pictures),
            "CUTOUT_PREVIEW": "off",
            "CUTOUT_LOG_LEVEL": "WARNING",
            "CUTOUT_STATE_DIR": str(s.run_dir / "state"),
        }
        if s.allowances is not None:
            env["CUTOUT_ALLOWANCES_FILE"] = str(s.allowances_file)
        return env

    def start_replica(self, index: int) -> None:
        args = ["--transport", "streamable-http", "--port", str(self.ports[index])]
        self.processes[index] = self._spawn(args, f"replica{index}", self.replica_env())

    async def wait_replica(self, index: int) -> None:
        process = self.processes[index]
        assert process is not None
        await wait_for_port(self.ports[index], process)

    async def bring_up(self, index: int) -> None:
        """Start a replica again as a supervisor would: one that exits at start-up (PostgreSQL is down, say,
        which a replica refuses to start without) is started again a second later, up to START_TRIES times."""
        for attempt in range(START_TRIES):
            self.start_replica(index)
            try:
                await self.wait_replica(index)
                return
            except RuntimeError:
                self.processes[index] = None
                if attempt == START_TRIES - 1:
                    raise
                await anyio.sleep(1.0)

    def alive(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p is not None and p.poll() is None]

    async def stop_replica(self, index: int, sig: signal.Signals) -> int | None:
        """Signal one replica and reap it; its exit code (None if it had to be killed after STOP_SECONDS)."""
        process = self.processes[index]
        if process is None:
            return None
        self.processes[index] = None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return await anyio.to_thread.run_sync(process.wait, STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            await anyio.to_thread.run_sync(process.wait)
            return None

    async def sandbox_fault(self, fault: dict[str, object]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            (await http.post(f"{self.sandbox_url}/__sandbox__/faults", json=fault)).raise_for_status()

    async def sandbox_stats(self) -> dict[str, object]:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{self.sandbox_url}/__sandbox__/stats")
            response.raise_for_status()
            stats: dict[str, object] = response.json()
            return stats

    async def clear_sandbox_faults(self) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            await http.delete(f"{self.sandbox_url}/__sandbox__/faults")

    def stop(self) -> None:
        """Stop everything, whatever state it is in; never raises for one part failing."""
        for process in [*self.processes, self.sandbox]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.processes, self.sandbox]:
            if process is None:
                continue
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = [None] * len(self.processes)
        self.sandbox = None
        if self.pg is not None:
            pg, self.pg = self.pg, None
            try:
                pg.stop()
            except Exception as exc:
                print(f"soak: stopping PostgreSQL failed: {exc}")


def remove_run_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
