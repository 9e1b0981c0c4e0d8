"""S3 requests and bytes per uploaded MiB, by PATCH size, counted on the wire.

The service (SQLite, `STORAGE_BACKEND=s3`, 5 MiB parts) talks to SeaweedFS (`bench.seaweedfs`)
through `bench.s3proxy`, which files every request under its S3 operation. The counts are read
between PATCHes, so each PATCH's S3 traffic is known; the last PATCH also finishes the upload
(last part, CompleteMultipartUpload, staging clean-up) and is counted apart from the others.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench import seaweedfs
from bench.s3proxy import CountingProxy, Counts
from bench.servers import Server, service
from bench.stats import MIB
from bench.throughput import make_payload

PART_SIZE = 5 * MIB
SIZE = 35 * MIB  # a multiple of 1, 5 and 7 MiB
CHUNKS = (1 * MIB, 5 * MIB, 7 * MIB)


async def one_upload(server: Server, proxy: CountingProxy, size: int, chunk: int) -> dict[str, Any]:
    payload = make_payload(size)
    async with server.client() as client:
        user = await server.user(client)
        before = proxy.counts.snapshot()
        url = await user.create(size)
        creation = proxy.counts.snapshot().since(before)
        per_patch: list[Counts] = []
        offset = 0
        while offset < size:
            mark = proxy.counts.snapshot()
            offset = await user.patch(url, offset, payload[offset : offset + chunk])
            per_patch.append(proxy.counts.snapshot().since(mark))
        total = proxy.counts.snapshot().since(before)
        await user.delete(url)
    middle = per_patch[:-1] or per_patch
    mib = size / MIB
    sent = total.body_bytes["UploadPart"] + total.body_bytes["PutObject"]
    return {
        "chunk_mib": chunk / MIB,
        "size_mib": mib,
        "patches": len(per_patch),
        "requests_per_mib": total.total_requests / mib,
        "requests_creation": creation.total_requests,
        "requests_per_patch_mean": sum(c.total_requests for c in middle) / len(middle),
        "requests_per_patch_max": max(c.total_requests for c in middle),
        "requests_last_patch": per_patch[-1].total_requests,
        "upload_part_per_patch_mean": sum(c.requests["UploadPart"] for c in middle) / len(middle),
        "upload_amplification": sent / size,
        "bytes_received_per_mib": total.downstream_bytes / mib,
        "requests": dict(total.requests.most_common()),
    }


async def measure(s3: seaweedfs.SeaweedFS, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every PATCH size in turn, through a counting proxy in front of `s3`."""
    results: dict[str, Any] = {"part_size_mib": PART_SIZE / MIB, "by_chunk": {}}
    with ExitStack() as stack:
        proxy = stack.enter_context(CountingProxy(s3.ports["s3"]))
        env = seaweedfs.service_env(proxy.url, f"bench-{secrets.token_hex(4)}", PART_SIZE)
        server = stack.enter_context(service("service_s3_counted", extra_env=env))
        for chunk in CHUNKS:
            entry = await one_upload(server, proxy, SIZE, chunk)
            results["by_chunk"][f"{chunk // MIB}mib"] = entry
            log(
                f"  {chunk // MIB} MiB PATCHes: {entry['requests_per_mib']:.2f} requests/MiB, "
                f"{entry['requests_per_patch_mean']:.2f} per PATCH (max "
                f"{entry['requests_per_patch_max']}), {entry['upload_amplification']:.2f}x bytes"
            )
    return results
