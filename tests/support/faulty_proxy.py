"""An HTTP proxy that fails a fraction of requests, to put in front of the S3 server in tests.

Half of the injected faults answer 503 without forwarding (S3 never saw the call); the other
half forward the call and then answer 503 anyway (S3 did the work, the client cannot know),
the harder case for idempotency.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

import aiohttp
from aiohttp import web

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultyProxy:
    def __init__(self, upstream: str, failure_rate: float, seed: int = 1) -> None:
        self.upstream = upstream.rstrip("/")
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FaultyProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the faulty proxy did not start within 10 s")
        return self

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()
        finally:
            # A loop left to the garbage collector warns in whichever later test collects it.
            self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        roll = self.random.random()
        if roll < self.failure_rate / 2:
            self.counts["failed before forwarding"] += 1
            return web.Response(status=503, text="<Error><Code>SlowDown</Code></Error>")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = request.host  # signed by the client (SigV4): forwarded unchanged
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            self.counts["forwarded"] += 1
            if roll < self.failure_rate:
                self.counts["failed after forwarding"] += 1
                return web.Response(status=503, text="<Error><Code>InternalError</Code></Error>")
            response_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS
            }
            return web.Response(status=upstream.status, body=payload, headers=response_headers)

    def stop(self) -> None:
        async def close() -> None:
            if self._session is not None:
                await self._session.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
