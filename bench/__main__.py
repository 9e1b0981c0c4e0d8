"""`python -m bench`: run the benchmark sections, print the tables, save the results
(docs/performance.md, "Measuring"). A section that fails is recorded with its error and the
others still run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    cleanup,
    latency,
    report,
    s3requests,
    s3throughput,
    seaweedfs,
    servers,
    slowclients,
    throughput,
)
from bench.stats import KIB, MIB

DESCRIPTION = "Run the benchmark sections, print the tables, save the results."
SECTIONS = ("throughput", "latency", "s3", "slow_clients", "cleanup")


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--only", default=",".join(SECTIONS), help=", ".join(SECTIONS))
    parser.add_argument("--runs", type=int, help="throughput rounds (default 5, S3 3; quick 1)")
    parser.add_argument(
        "--server-pythonpath",
        help="run the service's code from this directory first (another checkout's src/)",
    )
    parser.add_argument(
        "--s3-database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the metadata database of the service in the S3 throughput section",
    )
    parser.add_argument("--results-dir", type=Path, default=report.RESULTS_DIR)
    parser.add_argument("--no-save", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    if unknown := set(args.only.split(",")) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


async def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    if name == "throughput":
        starts = [
            servers.sink("sink"),
            servers.sink("sink_fsync", fsync=True),
            servers.sink("sink_durable", durable=True),
            servers.service("service"),
        ]
        if (reason := servers.postgres_unavailable()) is None:
            starts.append(servers.service("service_postgres", postgres=True))
        else:
            log(f"  service_postgres skipped: {reason}")
        with contextlib.ExitStack() as stack:
            targets = [stack.enter_context(start) for start in starts]
            return await throughput.measure(targets, quick, args.runs or (1 if quick else 5), log)
    if name == "latency":
        return await latency.measure(200 if quick else 1000, log)
    if name == "s3":
        # SeaweedFS, started once: the requests per MiB (through the counting proxy), then the
        # throughput of the ceiling, the tus path and the direct path (no proxy)
        runs = args.runs or (1 if quick else 3)
        with servers.workdir("seaweedfs") as root, seaweedfs.start(root) as s3:
            section = await s3requests.measure(s3, log)
            postgres = args.s3_database == "postgres"
            section["throughput"] = await s3throughput.measure(s3, quick, runs, log, postgres)
        return section
    if name == "slow_clients":
        return await slowclients.measure(*((50, 256 * KIB) if quick else (200, MIB)), log)
    return await asyncio.to_thread(cleanup.measure, 1_000 if quick else 10_000, log)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": report.machine(),
        "source": report.source(args.server_pythonpath),
        "server_pythonpath": args.server_pythonpath,
        "sections": {},
        "section_seconds": {},
        "load_average": {},  # 1-minute load before and after: high means something else ran
    }
    for name in [section for section in SECTIONS if section in args.only.split(",")]:
        log(f"== {name}")
        section_started, load_before = time.monotonic(), os.getloadavg()[0]
        try:
            section = await measure(name, args)
        except Exception as error:  # one broken section must not lose the others
            traceback.print_exc()
            text = f"{type(error).__name__}: {error}"
            section = {"error": text if len(text) < 900 else f"{text[:200]} ... {text[-600:]}"}
        results["sections"][name] = section
        results["section_seconds"][name] = round(time.monotonic() - section_started, 1)
        results["load_average"][name] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    results["duration_s"] = time.monotonic() - started
    results["checks"] = report.checks(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.server_pythonpath:
        args.server_pythonpath = str(Path(args.server_pythonpath).resolve())
        servers.SERVER_PYTHONPATH[:] = [args.server_pythonpath]
    results = asyncio.run(run(args))
    log("\n" + report.table(results))
    if not args.no_save:
        saved = [report.save(results, args.results_dir)]
        single = results["sections"].get("throughput", {}).get("single_5mib", {})
        if not args.quick and "ratio_vs_sink" in single:  # a full run that measured throughput
            saved.append(args.results_dir / report.HISTORY_FILE.name)
            report.append_history(results, saved[-1])
        log(f"\nSaved {', '.join(str(path) for path in saved)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
