"""S3 requests and bytes per uploaded MiB, by PATCH size, measured on the wire.

moto's S3 server runs as a subprocess; the service (local SQLite, `STORAGE_BACKEND=s3`) talks to
it through `bench.s3proxy`, which counts every request by S3 operation. The counters are read
between PATCHes, so each PATCH's S3 traffic is known; the last PATCH also finishes the upload
(last part, CompleteMultipartUpload, staging clean-up) and is reported apart.
"""

from __future__ import annotations

import importlib
import secrets
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.procs import free_port, spawn, wait_ready
from bench.s3proxy import Counts, ProxyThread
from bench.stats import MIB
from bench.targets import service
from bench.throughput import make_payload

PART_SIZE = 5 * MIB


def unavailable() -> str | None:
    """Why the S3 section cannot run, or None."""
    try:
        module = importlib.import_module("video_upload.storage.s3")
    except Exception as error:  # an in-progress module may fail in any way
        return f"video_upload.storage.s3 is not importable: {type(error).__name__}: {error}"
    if not hasattr(module, "S3Store"):
        return "video_upload.storage.s3 has no S3Store"
    try:
        importlib.import_module("moto.server")
    except ImportError as error:
        return f"moto[server] is not installed: {error}"
    return None


def _counts_dict(counts: Counts) -> dict[str, Any]:
    return {
        "requests": dict(counts.requests.most_common()),
        "wire": dict(counts.wire.most_common()),
        "body_bytes": dict(counts.body_bytes.most_common()),
        "upstream_bytes": counts.upstream_bytes,
        "downstream_bytes": counts.downstream_bytes,
    }


async def _one_upload(target: Any, proxy: ProxyThread, size: int, chunk: int) -> dict[str, Any]:
    payload = make_payload(size)
    async with target.client() as client:
        user = await target.user(client)
        before = proxy.counts.snapshot()
        url = await user.create(size)
        after_create = proxy.counts.snapshot()
        per_patch: list[Counts] = []
        offset = 0
        started = time.perf_counter()
        while offset < size:
            mark = proxy.counts.snapshot()
            offset = await user.patch(url, offset, payload[offset : offset + chunk])
            per_patch.append(proxy.counts.snapshot().since(mark))
        elapsed = time.perf_counter() - started
        total = proxy.counts.snapshot().since(before)
        await user.delete(url)
    middle = per_patch[:-1] or per_patch
    mib = size / MIB
    sent = total.body_bytes["UploadPart"] + total.body_bytes["PutObject"]
    aligned = chunk % PART_SIZE == 0
    return {
        "chunk_mib": chunk / MIB,
        "size_mib": mib,
        "patches": len(per_patch),
        "seconds": elapsed,
        "requests_total": total.total_requests,
        "requests_per_mib": total.total_requests / mib,
        "requests_creation": after_create.since(before).total_requests,
        "requests_per_patch_mean": sum(c.total_requests for c in middle) / len(middle),
        "requests_per_patch_max": max(c.total_requests for c in middle),
        "requests_last_patch": per_patch[-1].total_requests,
        "upload_part_per_patch_mean": sum(c.requests["UploadPart"] for c in middle) / len(middle),
        "part_aligned_chunks": aligned,
        "body_bytes_sent_per_mib": sent / mib,
        "upload_amplification": sent / size,
        "bytes_received_per_mib": total.downstream_bytes / mib,
        "totals": _counts_dict(total),
        "per_patch_requests": [c.total_requests for c in per_patch],
    }


async def measure(quick: bool, workdir: Path, log: Any = print) -> dict[str, Any]:
    reason = unavailable()
    if reason:
        return {"skipped": reason}
    size = 35 * MIB  # a multiple of 1, 5 and 7 MiB
    chunks = [1 * MIB, 5 * MIB, 7 * MIB]
    results: dict[str, Any] = {"part_size_mib": PART_SIZE / MIB, "by_chunk": {}}
    with ExitStack() as stack:
        port = free_port()
        moto = spawn(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=workdir,
            env={},
        )
        stack.callback(moto.stop)
        wait_ready(moto, f"http://127.0.0.1:{port}/")
        proxy = stack.enter_context(ProxyThread(port))
        env = {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": proxy.url,
            "S3_BUCKET_NAME": f"bench-{secrets.token_hex(4)}",
            "S3_PART_SIZE": str(PART_SIZE),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
        target = stack.enter_context(service("service_s3", extra_env=env))
        for chunk in chunks:
            entry = await _one_upload(target, proxy, size, chunk)
            results["by_chunk"][f"{chunk // MIB}mib"] = entry
            log(
                f"  S3, {chunk // MIB} MiB PATCHes: {entry['requests_per_mib']:.2f} requests/MiB, "
                f"{entry['requests_per_patch_mean']:.2f} per PATCH (max "
                f"{entry['requests_per_patch_max']}), {entry['upload_amplification']:.2f}x bytes"
            )
    return results
