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

`--sections` adds where the service's time goes: authentication, taking the lease and
committing the offset (each with its statement), the check for bytes lost in a machine crash,
the store's write (which includes receiving the body) and its system calls, the SQLite statements
and the conversion of their values, the whole PATCH handler, and the writeback started after the
response, by timing wrappers (about 1 µs per wrapped call; they are installed only for that
option). `--chunk-kib 4` makes the body negligible, so what is left is the service's fixed cost
per PATCH.

`--postgres` adds the service on PostgreSQL (a throwaway database at 127.0.0.1:5432) as another
alternating target. Only this process's CPU is counted, not the PostgreSQL backend's.

`--what-if NAME` adds a variant of the service as a fourth target, to weigh a redesign before
making it. Variants change the running service in ways that drop a guarantee, so they exist only
here, never as a setting:

- `select-take`: the lease is not taken (a plain SELECT reads the row) and the commit is not
  fenced: what the lease would cost if it were an operating-system lock instead of a row (which
  would do for SQLite, whose writers all share one machine);
- `no-held-check`: a PATCH does not check the store for bytes lost in a machine crash before
  writing (the write would have to find out instead).

Nothing here is a test or a target: it explains the throughput section's numbers; it does not
replace them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from starlette.types import ASGIApp

from bench import pg
from bench.asgi_calls import (
    body_messages,
    create_upload,
    open_session,
    send_patches,
    service_settings,
)
from bench.client import mint_token
from bench.sink import Sink
from bench.stats import MIB

SPENT: defaultdict[str, float] = defaultdict(float)  # seconds per section, with --sections
SECTIONS = (
    HANDLER := "PATCH handler (what follows, but the writeback)",
    AUTH := "authentication",
    TAKE := "lease taken (its statement included)",
    HELD := "check for bytes lost in a crash",
    STORE := "store write (receiving the body included)",
    PWRITE := "of which pwrite",
    COMMIT := "offset committed (its statement included)",
    SQLITE := "SQLite statements (2 per PATCH)",
    VALUES := "their values converted",
    WRITEBACK := "writeback started (after the response)",
)
WHAT_IF = ("select-take", "no-held-check")


async def _round(
    app: ASGIApp,
    headers: dict[str, str],
    session: str,
    chunk: bytes,
    message_size: int,
    patches: int,
    suspend: bool = False,
) -> float:
    """CPU seconds per PATCH over `patches` PATCHes of one new upload."""
    path = await create_upload(app, headers, len(chunk) * patches, session)
    messages = body_messages(chunk, message_size)
    started = time.process_time()
    await send_patches(app, path, headers, messages, patches, suspend)
    return (time.process_time() - started) / patches


def _time_sync(owner: Any, name: str, label: str) -> None:
    function = _get(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - started

    _set(owner, name, timed)


def _get(owner: Any, name: str) -> Any:
    return owner[name] if isinstance(owner, dict) else getattr(owner, name)


def _set(owner: Any, name: str, value: Any) -> None:
    if isinstance(owner, dict):
        owner[name] = value
    else:
        setattr(owner, name, value)


def _time_async(owner: Any, name: str, label: str) -> None:
    function: Callable[..., Awaitable[Any]] = _get(owner, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - started

    _set(owner, name, timed)


def _install_section_timers() -> None:
    from video_upload.auth import Authenticator
    from video_upload.db.direct import DirectStatement
    from video_upload.db.sqlite_inline import InlineSQLite
    from video_upload.storage import writeback
    from video_upload.storage.local import LocalStore
    from video_upload.tus import fast_path
    from video_upload.uploads.leases import WriterLeases
    from video_upload.uploads.recovery import CrashRecovery
    from video_upload.uploads.service import UploadService

    _time_async(fast_path.HANDLERS, "PATCH", HANDLER)
    _time_sync(Authenticator, "user_from_header", AUTH)
    _time_async(WriterLeases, "_take", TAKE)
    _time_async(CrashRecovery, "rewind_to_held", HELD)
    _time_async(LocalStore, "write", STORE)
    _time_sync(os, "pwrite", PWRITE)  # only the local store calls it
    _time_async(UploadService, "_commit_write", COMMIT)
    _time_sync(InlineSQLite, "run", SQLITE)
    _time_sync(DirectStatement, "parameters", VALUES)
    _time_sync(DirectStatement, "row", VALUES)
    _time_sync(writeback, "start_writeback", WRITEBACK)


def _apply_what_if(app: Any, name: str) -> None:
    """Change the running service `app` as the variant `name` says (see the module's doc)."""
    from sqlalchemy import update
    from sqlalchemy.sql import visitors

    from video_upload.db import chunks as statements

    service = app.state.services.uploads
    if name == "no-held-check":

        async def as_read(video: Any) -> Any:
            return video

        service.recovery.rewind_to_held = as_read
        return
    chunks = service.chunks
    videos = statements._videos

    def fences(criterion: Any) -> bool:
        parts = visitors.iterate(criterion)
        return any(getattr(part, "key", None) == "lease_owner" for part in parts)

    # the service's own commit statement, less its fencing on the lease owner
    kept = [c for c in statements._ADVANCE._where_criteria if not fences(c)]
    unfenced = (
        update(videos).where(*kept).values(**statements._PROGRESS).returning(videos.c.upload_id)
    )
    prepared = chunks._executor.prepare(unfenced, [videos.c.upload_id])
    chunks._advance_keeping = chunks._advance_releasing = prepared

    async def read_instead(upload_id: str, owner: str, now: Any, until: Any) -> Any:
        return await chunks.read(upload_id)

    chunks.take_lease = read_instead


async def measure(args: argparse.Namespace) -> None:
    from video_upload.app import create_app
    from video_upload.db.engine import migrate

    if args.sections:
        _install_section_timers()
    base = Path(tempfile.mkdtemp(prefix="bench-inprocess-", dir=args.dir))
    secret = secrets.token_hex(32)
    chunk = os.urandom(args.chunk_kib * 1024 if args.chunk_kib else args.chunk_mib * MIB)
    max_mb = len(chunk) * args.patches // MIB + 1
    services = {"service": service_settings(base, secret, max_mb)}
    if args.what_if:
        services[f"what-if {args.what_if}"] = service_settings(base / "what-if", secret, max_mb)
    databases = contextlib.ExitStack()  # closed last, in the `finally` below
    if args.postgres:
        url = databases.enter_context(pg.throwaway_database())
        services["service_postgres"] = service_settings(base / "pg", secret, max_mb, url)
    try:
        apps = {name: create_app(settings) for name, settings in services.items()}
        for settings in services.values():
            await asyncio.to_thread(migrate, settings.resolved_database_url)
    except BaseException:
        databases.close()
        raise
    targets: list[tuple[str, ASGIApp]] = [
        *apps.items(),
        ("sink", Sink(base / "sink")),
        ("sink_durable", Sink(base / "durable", durable=True)),
    ]
    headers = {"Authorization": f"Bearer {mint_token(secret, 'bench')}", "Tus-Resumable": "1.0.0"}
    message_size = args.message_kib * 1024
    results: dict[str, list[float]] = {name: [] for name, _ in targets}
    folders = [s.local_storage_path for s in services.values()] + [base / "sink", base / "durable"]
    try:
        async with contextlib.AsyncExitStack() as running:
            sessions: dict[str, str] = {}
            for name, service in apps.items():
                await running.enter_async_context(service.router.lifespan_context(service))
                sessions[name] = await open_session(service, headers)
            if args.what_if:
                _apply_what_if(apps[f"what-if {args.what_if}"], args.what_if)
            for round_number in range(args.rounds + 1):  # the first round warms up
                for name, app in targets:
                    SPENT.clear()
                    session = sessions.get(name, "")
                    cpu = await _round(
                        app, headers, session, chunk, message_size, args.patches, args.suspend
                    )
                    if round_number > 0:
                        results[name].append(cpu)
                    if name in apps and round_number > 0 and SPENT:
                        _print_sections(name, round_number, args.patches)
                    remove_files(*folders)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        databases.close()
    _report(args, len(chunk), results)


def _print_sections(name: str, round_number: int, patches: int) -> None:
    print(f"  round {round_number} {name} sections, ms per PATCH:")
    for label in SECTIONS:
        if (spent := SPENT.get(label)) is not None:
            print(f"    {label:<48} {1e3 * spent / patches:7.3f}")


def remove_files(*folders: Path) -> None:
    for folder in folders:
        for entry in folder.iterdir() if folder.is_dir() else []:
            if entry.is_file():
                entry.unlink()


def _report(args: argparse.Namespace, chunk_size: int, results: dict[str, list[float]]) -> None:
    size = f"{chunk_size // 1024} KiB" if chunk_size < MIB else f"{chunk_size // MIB} MiB"
    print(
        f"{size} PATCHes in {args.message_kib} KiB messages, "
        f"{args.patches} PATCHes x {args.rounds} rounds, median CPU ms per PATCH:"
    )
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, values in results.items():
        label = {"sink": "raw sink", "sink_durable": "sink flushed at the end"}.get(name, name)
        print(f"  {label:<28} {1e3 * medians[name]:.3f}   (rounds: {_ms(values)})")
    service, durable = medians["service"], medians["sink_durable"]
    print(f"  service minus sink flushed at the end: {1e3 * (service - durable):.3f} ms per PATCH")
    if args.what_if:
        variant = medians[f"what-if {args.what_if}"]
        difference = 1e3 * (variant - service)
        print(f"  what-if {args.what_if} minus service: {difference:.3f} ms per PATCH")


def _ms(values: list[float]) -> str:
    return " ".join(f"{1e3 * value:.3f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk-mib", type=int, default=1, help="PATCH size (default 1 MiB)")
    parser.add_argument("--chunk-kib", type=int, default=0, help="PATCH size in KiB instead")
    parser.add_argument("--message-kib", type=int, default=64, help="ASGI body message size")
    parser.add_argument("--patches", type=int, default=200, help="PATCHes per round")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds per target")
    parser.add_argument("--dir", default=None, help="where the files go (default: system temp)")
    parser.add_argument("--sections", action="store_true", help="time the service's sections")
    parser.add_argument(
        "--suspend",
        action="store_true",
        help="deliver each body message on a later loop turn, as a socket does",
    )
    parser.add_argument("--what-if", choices=WHAT_IF, help="add a variant of the service")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="add the service on PostgreSQL (a throwaway database at 127.0.0.1:5432)",
    )
    args = parser.parse_args()
    import uvloop

    uvloop.run(measure(args))


if __name__ == "__main__":
    main()
