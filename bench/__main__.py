"""`python -m bench`: run every benchmark section and report (see the README's Benchmarks section).

    uv run --group bench python -m bench            # full run (about 4 minutes on 2 cores)
    uv run --group bench python -m bench --quick    # reduced sizes and repetitions (smoke test)
    uv run --group bench python -m bench --only throughput,latency

Each section starts and stops its own servers. A section that fails is recorded with its error
and the run goes on; sections whose code under test does not exist yet are reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import chart, cleanup, latency, machine, pg, report, s3bench, slowclients, targets
from bench import throughput as throughput_section
from bench.profiling import profile_uploads
from bench.stats import KIB, MIB

SECTIONS = ("throughput", "profile", "latency", "s3", "slow_clients", "cleanup")


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced run for smoke testing")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections ({', '.join(SECTIONS)})",
    )
    parser.add_argument("--runs", type=int, help="throughput runs per target (default 5, quick 1)")
    parser.add_argument("--no-flamegraphs", action="store_true", help="skip the SVG flame graphs")
    parser.add_argument(
        "--server-pythonpath",
        help="put this directory first on the service's PYTHONPATH (e.g. a scratch copy's src/)",
    )
    parser.add_argument(
        "--variant-pythonpath",
        help="throughput only: also run the service from this directory (a changed copy's src/), "
        "as the target service_variant, in the same rounds as the service",
    )
    parser.add_argument("--results-dir", type=Path, default=report.RESULTS_DIR)
    parser.add_argument("--no-save", action="store_true", help="print only; write no files")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


async def _throughput(args: argparse.Namespace) -> dict[str, Any]:
    runs = args.runs or (1 if args.quick else 5)
    with contextlib.ExitStack() as stack:
        chosen = [
            stack.enter_context(targets.sink("sink")),
            stack.enter_context(targets.sink("sink_fsync", fsync=True)),
            stack.enter_context(targets.sink("sink_durable", durable=True)),
            stack.enter_context(targets.service("service")),
        ]
        if args.variant_pythonpath:
            variant = args.variant_pythonpath
            chosen.append(
                stack.enter_context(targets.service("service_variant", pythonpath=variant))
            )
        reason = pg.unavailable()
        if reason is None:
            chosen.append(
                stack.enter_context(targets.service("service_postgres", database="postgres"))
            )
        else:
            log(f"  service_postgres skipped: {reason}")
        return await throughput_section.measure(chosen, args.quick, runs, log)


async def _profile(args: argparse.Namespace) -> dict[str, Any]:
    size = 32 * MIB if args.quick else 256 * MIB
    flamegraphs = not (args.quick or args.no_flamegraphs)
    out_dir = args.results_dir / "profiles"
    with targets.service("service") as service:
        result = await profile_uploads(
            service,
            size,
            [5 * MIB, 1 * MIB],
            out_dir,
            flamegraphs=flamegraphs,
            repeats=1 if args.quick else 3,
        )
    for key, entry in result.items():
        if isinstance(entry, dict) and "layers" in entry:
            top = ", ".join(
                f"{name} {v['ms_per_patch']:.2f}" for name, v in list(entry["layers"].items())[:4]
            )
            log(f"  {key} PATCHes, sampled ms per PATCH: {top}")
    return result


async def _latency(args: argparse.Namespace) -> dict[str, Any]:
    return await latency.measure(200 if args.quick else 1000, log)


async def _s3(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-moto-") as workdir:
        result = await s3bench.measure(args.quick, Path(workdir), log)
    if "skipped" in result:
        log(f"  skipped: {result['skipped']}")
    return result


async def _slow(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return await slowclients.measure(50, 256 * KIB, log)
    return await slowclients.measure(200, 1 * MIB, log)


async def _cleanup(args: argparse.Namespace) -> dict[str, Any]:
    return await cleanup.measure(1_000 if args.quick else 10_000, log)


RUNNERS: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "throughput": _throughput,
    "profile": _profile,
    "latency": _latency,
    "s3": _s3,
    "slow_clients": _slow,
    "cleanup": _cleanup,
}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine.describe(),
        "source": machine.source(),
        "server_pythonpath": args.server_pythonpath,
        "variant_pythonpath": args.variant_pythonpath,
        "sections": {},
        "section_seconds": {},
        "load_average": {},
    }
    for name in [s for s in SECTIONS if s in args.only.split(",")]:
        log(f"== {name}")
        section_started = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            section = await RUNNERS[name](args)
        except Exception as error:  # one broken section must not lose the others
            traceback.print_exc()
            section = {"error": f"{type(error).__name__}: {error}"[:500]}
        results["sections"][name] = section
        results["section_seconds"][name] = round(time.monotonic() - section_started, 1)
        # 1-minute load average before and after: high values mean something else was running
        results["load_average"][name] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    results["duration_s"] = time.monotonic() - started
    results["checks"] = report.checks(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.server_pythonpath:
        targets.SERVER_PYTHONPATH[:] = [str(Path(args.server_pythonpath).resolve())]
    if args.variant_pythonpath:
        args.variant_pythonpath = str(Path(args.variant_pythonpath).resolve())
    results = asyncio.run(run(args))
    log("")
    log(report.table(results))
    if not args.no_save:
        stamped, latest = report.save(results, args.results_dir)
        png = latest.with_suffix(".png")
        chart.draw(results, png)
        log(f"\nSaved {stamped}, {latest} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
