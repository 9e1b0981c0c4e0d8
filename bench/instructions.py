"""Instructions per PATCH, counted by valgrind's callgrind: the service against the sinks,
with none of the machine's noise.

Wall time and CPU time on the shared 2-core VMs move by 10 to 50 % between runs, so a change
worth a few percent of a PATCH cannot be seen in them. callgrind counts the instructions a
process executes, whatever else the machine is doing: two runs of the same code differ by well
under 1 % (the body's random bytes, tokens and clocks differ; 0.4 % for the service's 1 MiB
PATCH). This sends `bench.inprocess`'s PATCHes (the ASGI app called directly, no
network, no uvicorn) to the service, the raw sink and the sink flushed at the end, in one process
under callgrind, and reports the user-space instructions per PATCH of each:

    uv run --group bench python -m bench.instructions                 # 1 MiB PATCHes
    uv run --group bench python -m bench.instructions --chunk-kib 4   # the fixed cost per PATCH

It needs valgrind and a C compiler with valgrind's headers (`valgrind/callgrind.h`), and it is
slow: under callgrind, importing the service alone takes about two minutes. The kernel's work
(the copy inside `pwrite`, the writeback) is not counted, since callgrind sees user space only;
`bench.inprocess` and the throughput section measure time, this measures the code.

How the PATCHes are told apart from everything else: a two-line C library, compiled for the
run, makes callgrind's client request "dump the counters under a label" (a dump also resets
them), and the child process calls it through ctypes just before and just after each target's
counted PATCHes, which follow a round that warms the target up. Each dump is one file,
`<out>.<n>`, whose `desc: Trigger:` line names the label and whose `summary:` line is the count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp

from bench.asgi_calls import (
    body_messages,
    create_upload,
    open_session,
    send_patches,
    service_settings,
)
from bench.client import mint_token
from bench.procs import REPO_ROOT
from bench.sink import Sink
from bench.stats import KIB, MIB

TARGETS = ("service", "sink", "sink_durable")
MARKS_SOURCE = """\
#include <valgrind/callgrind.h>
void dump_counts(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""
COUNTED = "counted "  # the prefix of every dump label this tool makes
PERF_MAP = "perf.map"  # the child's trampoline map, kept beside the dumps (CPython 3.12+)


class InstructionsUnavailable(RuntimeError):
    """valgrind, a C compiler or valgrind's headers are missing."""


def marks_library(directory: Path) -> Path:
    """Compile the client-request library into `directory`; returns the shared object."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise InstructionsUnavailable("no C compiler (cc or gcc) to build the counting marks")
    source, library = directory / "marks.c", directory / "marks.so"
    source.write_text(MARKS_SOURCE)
    built = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise InstructionsUnavailable(f"cannot build the counting marks:\n{built.stderr}")
    return library


def read_dumps(out_file: Path) -> dict[str, int]:
    """Instructions by label, from the dumps callgrind wrote next to `out_file`."""
    return {name: count for name, (count, _) in counted_dumps(out_file).items()}


def counted_dumps(out_file: Path) -> dict[str, tuple[int, Path]]:
    """Each counted target's instructions and dump file, from the dumps next to `out_file`."""
    found: dict[str, tuple[int, Path]] = {}
    for dump in out_file.parent.glob(out_file.name + ".*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.MULTILINE)
        summary = re.search(r"^summary: (\d+)", text, re.MULTILINE)
        if trigger and summary and trigger.group(1).startswith(COUNTED):
            found[trigger.group(1).removeprefix(COUNTED)] = (int(summary.group(1)), dump)
    return found


def count(
    chunk_size: int,
    message_size: int,
    patches: int,
    targets: tuple[str, ...] = TARGETS,
    keep: Path | None = None,
) -> dict[str, float]:
    """Run the child under callgrind; instructions per PATCH by target. With `keep`, the
    dumps are copied there (`callgrind_annotate <file>` shows where a target's count went)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise InstructionsUnavailable("valgrind is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as scratch:
        work = Path(scratch)
        library = marks_library(work)
        out_file = work / "callgrind.out"
        argv = [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={out_file}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            str(library),
            "--chunk-bytes",
            str(chunk_size),
            "--message-bytes",
            str(message_size),
            "--patches",
            str(patches),
            "--targets",
            ",".join(targets),
        ]
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        # the same hashing on every run, so that the same code runs the same instructions
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path}
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = f"{done.stdout}\n{done.stderr}"[-3000:]  # the end: the traceback
            raise RuntimeError(f"the counted process failed:\n{output}")
        counts = read_dumps(out_file)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in work.glob(out_file.name + ".*"):
                shutil.copy2(dump, keep / dump.name)
            if (work / PERF_MAP).exists():
                shutil.copy2(work / PERF_MAP, keep / PERF_MAP)
    missing = set(targets) - counts.keys()
    if missing:
        raise RuntimeError(f"callgrind wrote no count for {sorted(missing)}")
    return {name: counts[name] / patches for name in targets}


async def _child(args: argparse.Namespace) -> None:
    """Inside callgrind: warm each target up, then count its PATCHes (see the docstring)."""
    marks = ctypes.CDLL(args.child)
    dump: Callable[[bytes], None] = marks.dump_counts
    base = Path(tempfile.mkdtemp(prefix="instructions-", dir="."))
    secret = secrets.token_hex(32)
    chunk = os.urandom(args.chunk_bytes)
    messages = body_messages(chunk, args.message_bytes)
    headers = {"Authorization": f"Bearer {mint_token(secret, 'bench')}", "Tus-Resumable": "1.0.0"}
    apps: dict[str, ASGIApp] = {
        "sink": Sink(base / "sink"),
        "sink_durable": Sink(base / "durable", durable=True),
    }
    targets = args.targets.split(",")
    session = ""
    async with contextlib.AsyncExitStack() as running:
        if "service" in targets:
            from video_upload.app import create_app
            from video_upload.db.engine import migrate

            size_mb = 2 * args.chunk_bytes * args.patches // MIB + 1
            settings = service_settings(base, secret, size_mb)
            service = apps["service"] = create_app(settings)
            await asyncio.to_thread(migrate, settings.resolved_database_url)
            await running.enter_async_context(service.router.lifespan_context(service))
            session = await open_session(service, headers)
        for name in targets:
            target = apps[name]
            for counted in (False, True):
                path = await create_upload(target, headers, len(chunk) * args.patches, session)
                if counted:
                    # A dump resets every thread's counters (zeroing resets only the caller's):
                    # what ran before, the migration's thread included, goes to an unused file.
                    dump(b"before " + name.encode())
                await send_patches(target, path, headers, messages, args.patches)
                if counted:
                    dump((COUNTED + name).encode())
    keep_perf_map(Path.cwd() / PERF_MAP)


def keep_perf_map(destination: Path) -> None:
    """Under CPython 3.12's perf trampolines (`PYTHONPERFSUPPORT=1`), copy this process's map
    of trampoline addresses to Python functions to `destination` (see `bench.by_function`)."""
    active = getattr(sys, "is_stack_trampoline_active", None)  # CPython 3.12 and later
    source = Path(f"/tmp/perf-{os.getpid()}.map")
    if callable(active) and active() and source.exists():
        shutil.copyfile(source, destination)


def report(per_patch: dict[str, float], chunk_size: int, message_size: int, patches: int) -> str:
    size = f"{chunk_size // KIB} KiB" if chunk_size < MIB else f"{chunk_size / MIB:g} MiB"
    lines = [
        f"{size} PATCHes in {message_size // KIB} KiB messages, {patches} counted per target: "
        "user-space instructions per PATCH (callgrind)"
    ]
    labels = {"sink": "raw sink", "sink_durable": "sink flushed at the end"}
    for name, value in per_patch.items():
        lines.append(f"  {labels.get(name, name):<26} {value / 1e6:9.3f} million")
    if {"service", "sink_durable"} <= per_patch.keys():
        extra = per_patch["service"] - per_patch["sink_durable"]
        lines.append(f"  service minus sink flushed at the end: {extra / 1e6:.3f} million")
    return "\n".join(lines)


def add_patch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape the counted PATCHes (here and in `bench.by_function`)."""
    parser.add_argument("--chunk-mib", type=int, default=1, help="PATCH size (default 1 MiB)")
    parser.add_argument("--chunk-kib", type=int, default=0, help="PATCH size in KiB instead")
    parser.add_argument("--message-kib", type=int, default=64, help="ASGI body message size")
    parser.add_argument("--patches", type=int, default=20, help="counted PATCHes per target")


def patch_sizes(args: argparse.Namespace) -> tuple[int, int]:
    """The PATCH size and the ASGI message size in bytes, from `add_patch_arguments`' options."""
    chunk_size = args.chunk_kib * KIB if args.chunk_kib else args.chunk_mib * MIB
    return chunk_size, args.message_kib * KIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    add_patch_arguments(parser)
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--keep", type=Path, help="copy callgrind's dumps to this directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the marks library, inside callgrind
    parser.add_argument("--chunk-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--message-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        uvloop.run(_child(args))
        return 0
    targets = tuple(args.targets.split(","))
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)} (known: {', '.join(TARGETS)})")
    chunk_size, message_size = patch_sizes(args)
    try:
        per_patch = count(chunk_size, message_size, args.patches, targets, args.keep)
    except InstructionsUnavailable as error:
        print(f"bench.instructions: {error}", file=sys.stderr)
        return 2
    print(report(per_patch, chunk_size, message_size, args.patches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
