"""HEAD and creation latency, one request at a time over one kept-alive connection.

The raw sink, then a fresh service on SQLite and on PostgreSQL (when it answers), each answer
`requests` HEADs of one upload and `requests` tus creations after a short warm-up. The sink's
figures are the floor set by the client, the loopback and uvicorn. The requests go through
`bench.rawhttp` (prepared bytes over a blocking socket), so the time is the server's and the
loopback's, not a client library's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from bench import pg
from bench.client import TUS_PATH, tus_metadata
from bench.rawhttp import RawConnection, RawResponse
from bench.servers import Server, service, sink
from bench.stats import latency_summary

WARMUP = 50


def _timed(call: Callable[[], RawResponse], expected: int, count: int) -> list[float]:
    samples = []
    for index in range(WARMUP + count):
        started = time.perf_counter()
        response = call()
        if index >= WARMUP:
            samples.append(time.perf_counter() - started)
        if response.status != expected:
            raise RuntimeError(f"expected {expected}, got {response.status}: {response.body!r}")
    return samples


def _time_requests(
    base_url: str, headers: dict[str, str], metadata: str, url: str, count: int
) -> dict[str, Any]:
    with RawConnection(base_url) as connection:
        head = connection.prepare("HEAD", url, headers)
        # one prepared request serves every creation: each makes a new upload of the session
        creation = {"Upload-Length": "1024", "Upload-Metadata": metadata, "Content-Length": "0"}
        create = connection.prepare("POST", TUS_PATH, {**headers, **creation})
        heads = _timed(lambda: connection.send(head, head=True), 200, count)
        creates = _timed(lambda: connection.send(create), 201, count)
    return {"head": latency_summary(heads), "create": latency_summary(creates)}


async def measure_server(server: Server, count: int) -> dict[str, Any]:
    async with server.client(connections=1) as client:
        user = await server.user(client)
        url = await user.create(1024)
    metadata = tus_metadata(session_id=user.session_id, filename="latency.mp4")
    return await asyncio.to_thread(
        _time_requests, server.base_url, user.headers, metadata, url, count
    )


async def measure(count: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {"requests": count}
    for name in ("sink", "sqlite", "postgres"):
        reason = pg.unavailable() if name == "postgres" else None
        if reason:
            results[name] = {"skipped": reason}
            log(f"  {name:<9} skipped: {reason}")
            continue
        with contextlib.ExitStack() as stack:
            if name == "sink":
                server = stack.enter_context(sink())
            else:
                server = stack.enter_context(
                    service(f"service_{name}", postgres=name == "postgres")
                )
            entry = results[name] = await measure_server(server, count)
        head, create = entry["head"], entry["create"]
        log(
            f"  {name:<9} HEAD p50 {head['p50_ms']:.2f} ms p99 {head['p99_ms']:.2f} ms | "
            f"create p50 {create['p50_ms']:.2f} ms p99 {create['p99_ms']:.2f} ms"
        )
    return results
