"""CPU per PATCH with no network: the service's ASGI app and the raw sink, called directly.

Over the network every PATCH also pays for the client, loopback TCP and uvicorn, the same for the
service and the sink, and the machine's noise with them. Called in-process, with the body handed
over as prepared ASGI messages, what is left is what the application itself does per PATCH, so a
change to the PATCH path can be judged in a minute, by CPU time rather than by MB/s:

    uv run --group bench python -m bench.inprocess                  # 1 MiB PATCHes
    uv run --group bench python -m bench.inprocess --chunk-mib 5 --sections

Rounds alternate between the service (SQLite, local store, `create_app` as `serve` builds it),
the raw sink and the sink flushed like the local store (`bench.sink.Sink`, plain and
`durable`), one fresh upload per round; the medians are reported.
Each round's files are deleted afterwards, so the next round writes into recycled page-cache
pages: on this benchmark's VM, writing into memory the guest had not touched before cost up to
four times as much per byte and made single runs bimodal.

`--sections` adds where the service's time goes: the store's write (which includes receiving the
body), its system calls, and each SQLite statement, by timing wrappers (about 1 µs per wrapped
call; they are installed only for that option). Nothing here is a test or a target: it explains
the throughput section's numbers; it does not replace them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

from bench.client import mint_token, tus_metadata
from bench.sink import Sink
from bench.stats import MIB

TUS_PATH = "/api/v1/videos/tus"
SPENT: defaultdict[str, float] = defaultdict(float)  # seconds per section, with --sections
SECTIONS = (
    STORE := "store write (receiving the body included)",
    PWRITE := "of which pwrite",
    SQLITE := "SQLite statements (2 per PATCH)",
)


async def _patch(
    app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]], messages: list[bytes]
) -> None:
    """One PATCH through `app`, its body delivered as `messages`; fails unless answered 204."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    remaining = iter(enumerate(messages, start=1))
    statuses: list[int] = []

    async def receive() -> Message:
        index, body = next(remaining)
        return {"type": "http.request", "body": body, "more_body": index < len(messages)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [204]:
        raise RuntimeError(f"PATCH {path} answered {statuses}")


async def _create(app: ASGIApp, headers: dict[str, str], length: int, session: str) -> str:
    """A new upload of `length` bytes: its path."""
    metadata = tus_metadata(session_id=session, filename="take.mp4")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.post(
            TUS_PATH,
            headers={**headers, "Upload-Length": str(length), "Upload-Metadata": metadata},
        )
        if response.status_code != 201:
            raise RuntimeError(f"creation answered {response.status_code}: {response.text}")
        return httpx.URL(response.headers["Location"]).path


async def _open_session(app: ASGIApp, headers: dict[str, str]) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.post("/api/v1/sessions", json={"name": "bench"}, headers=headers)
        response.raise_for_status()
        return str(response.json()["id"])


async def _round(
    app: ASGIApp,
    headers: dict[str, str],
    session: str,
    chunk: bytes,
    message_size: int,
    patches: int,
) -> float:
    """CPU seconds per PATCH over `patches` PATCHes of one new upload."""
    path = await _create(app, headers, len(chunk) * patches, session)
    messages = [chunk[start : start + message_size] for start in range(0, len(chunk), message_size)]
    base = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    base += [
        (b"content-type", b"application/offset+octet-stream"),
        (b"content-length", str(len(chunk)).encode()),
    ]
    started = time.process_time()
    for index in range(patches):
        offset = [(b"upload-offset", str(index * len(chunk)).encode())]
        await _patch(app, path, base + offset, messages)
        await asyncio.sleep(0)  # what follows a response (writeback) runs inside the round
    return (time.process_time() - started) / patches


def _time_sync(owner: Any, name: str, label: str) -> None:
    function = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - started

    setattr(owner, name, timed)


def _time_async(owner: Any, name: str, label: str) -> None:
    function: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - started

    setattr(owner, name, timed)


def _install_section_timers() -> None:
    from video_upload.db.sqlite_inline import InlineSQLite
    from video_upload.storage.local import LocalStore

    _time_async(LocalStore, "write", STORE)
    _time_sync(os, "pwrite", PWRITE)  # only the local store calls it
    _time_sync(InlineSQLite, "run", SQLITE)


async def measure(args: argparse.Namespace) -> None:
    from video_upload.app import create_app
    from video_upload.config import Settings
    from video_upload.db.engine import migrate

    if args.sections:
        _install_section_timers()
    base = Path(tempfile.mkdtemp(prefix="bench-inprocess-", dir=args.dir))
    secret = secrets.token_hex(32)
    settings = Settings(
        data_dir=base,
        local_storage_path=base / "uploads",
        jwt_secret=secret,
        database_url=f"sqlite+aiosqlite:///{base / 'video-upload.db'}",
        video_probe=False,
        max_video_size_mb=args.chunk_mib * args.patches + 1,
    )
    await asyncio.to_thread(migrate, settings.resolved_database_url)
    service = create_app(settings)
    targets: list[tuple[str, ASGIApp]] = [
        ("service", service),
        ("sink", Sink(base / "sink")),
        ("sink_durable", Sink(base / "durable", durable=True)),
    ]
    headers = {"Authorization": f"Bearer {mint_token(secret, 'bench')}", "Tus-Resumable": "1.0.0"}
    chunk = os.urandom(args.chunk_mib * MIB)
    message_size = args.message_kib * 1024
    results: dict[str, list[float]] = {name: [] for name, _ in targets}
    try:
        async with service.router.lifespan_context(service):
            session = await _open_session(service, headers)
            for round_number in range(args.rounds + 1):  # the first round warms up
                for name, app in targets:
                    SPENT.clear()
                    cpu = await _round(app, headers, session, chunk, message_size, args.patches)
                    if round_number > 0:
                        results[name].append(cpu)
                    if name == "service" and round_number > 0 and SPENT:
                        sections = ", ".join(
                            f"{label} {1e3 * spent / args.patches:.3f}"
                            for label in SECTIONS
                            if (spent := SPENT.get(label)) is not None
                        )
                        print(f"  round {round_number} service sections, ms per PATCH: {sections}")
                    _remove_files(settings.local_storage_path, base / "sink", base / "durable")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _report(args, results)


def _remove_files(*folders: Path) -> None:
    for folder in folders:
        for entry in folder.iterdir() if folder.is_dir() else []:
            if entry.is_file():
                entry.unlink()


def _report(args: argparse.Namespace, results: dict[str, list[float]]) -> None:
    service, sink, durable = (
        statistics.median(results[name]) for name in ("service", "sink", "sink_durable")
    )
    print(
        f"{args.chunk_mib} MiB PATCHes in {args.message_kib} KiB messages, "
        f"{args.patches} PATCHes x {args.rounds} rounds, median CPU ms per PATCH:"
    )
    print(f"  service   {1e3 * service:.3f}   (rounds: {_ms(results['service'])})")
    print(f"  raw sink  {1e3 * sink:.3f}   (rounds: {_ms(results['sink'])})")
    print(
        f"  sink flushed at the end  {1e3 * durable:.3f}   (rounds: {_ms(results['sink_durable'])})"
    )
    print(f"  service minus sink flushed at the end: {1e3 * (service - durable):.3f} ms per PATCH")


def _ms(values: list[float]) -> str:
    return " ".join(f"{1e3 * value:.3f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk-mib", type=int, default=1, help="PATCH size (default 1 MiB)")
    parser.add_argument("--message-kib", type=int, default=64, help="ASGI body message size")
    parser.add_argument("--patches", type=int, default=200, help="PATCHes per round")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds per target")
    parser.add_argument("--dir", default=None, help="where the files go (default: system temp)")
    parser.add_argument("--sections", action="store_true", help="time the service's sections")
    args = parser.parse_args()
    import uvloop

    uvloop.run(measure(args))


if __name__ == "__main__":
    main()
