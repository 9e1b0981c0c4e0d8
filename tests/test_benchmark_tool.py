"""The benchmark tool (`bench/`, `make bench`): what it counts and how it judges the targets.

The parts that turn measurements into verdicts are tested here, and one reduced run (`--quick`)
proves the command still starts its servers, measures and saves. No speed is asserted: a missed
target is the benchmark's report, not a failed test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bench.latency import RawConnection
from bench.report import checks
from bench.s3requests import operation
from bench.stats import percentile
from bench.throughput import write_durably

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.mark.parametrize(
    ("method", "target", "copy_source", "expected"),
    [
        ("PUT", "/videos/abc?partNumber=3&uploadId=u1", False, "UploadPart"),
        ("PUT", "/videos/abc?partNumber=3&uploadId=u1", True, "UploadPartCopy"),
        ("PUT", "/videos/abc.staged", False, "PutObject"),
        ("PUT", "/videos", False, "CreateBucket"),
        ("POST", "/videos/abc?uploads", False, "CreateMultipartUpload"),
        ("POST", "/videos/abc?uploadId=u1", False, "CompleteMultipartUpload"),
        ("POST", "/videos?delete", False, "DeleteObjects"),
        ("GET", "/videos/abc", False, "GetObject"),
        ("GET", "/videos/abc?uploadId=u1", False, "ListParts"),
        ("GET", "/videos?list-type=2&prefix=x", False, "ListObjectsV2"),
        ("HEAD", "/videos/abc", False, "HeadObject"),
        ("DELETE", "/videos/abc?uploadId=u1", False, "AbortMultipartUpload"),
        ("DELETE", "/videos/abc", False, "DeleteObject"),
    ],
)
def test_s3_proxy_files_each_request_under_its_s3_operation(
    method: str, target: str, copy_source: bool, expected: str
) -> None:
    assert operation(method, target, copy_source) == expected


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.50) == 2


def _throughput_entry(label: str, ratio: float, paired: list[float]) -> dict[str, Any]:
    return {"label": label, "ratio_vs_sink": ratio, "paired_ratios_vs_sink": paired}


def _verdicts(sections: dict[str, Any]) -> dict[str, bool | None]:
    return {check["name"]: check["met"] for check in checks({"sections": sections})}


def test_throughput_targets_are_met_only_at_or_above_their_floors() -> None:
    sections = {
        "throughput": {
            "single_5mib": _throughput_entry("5 MiB", 0.89, [0.82, 0.88, 0.9, 0.91, 1.0]),
            "single_1mib": _throughput_entry("1 MiB", 0.75, [0.7, 0.75, 0.8]),
        }
    }
    verdicts = _verdicts(sections)
    assert verdicts["service / raw sink, 5 MiB"] is False
    assert verdicts["service / raw sink, 1 MiB"] is True
    # the round-by-round line says how many rounds met the floor, so a lucky median shows
    assert "  (round by round: 0.82 to 1.00; 3/5 rounds >= 0.9)" in verdicts
    assert "  (round by round: 0.70 to 0.80; 2/3 rounds >= 0.75)" in verdicts


def test_disk_alone_line_counts_the_rounds_where_even_the_disk_reaches_the_floor() -> None:
    entry = {
        **_throughput_entry("5 MiB", 0.76, [0.72, 0.76, 0.78]),
        "ratio_disk_vs_sink": 0.84,
        "paired_disk_vs_sink": [0.8, 0.84, 0.91],
    }
    found = {c["name"]: c for c in checks({"sections": {"throughput": {"single_5mib": entry}}})}
    line = found["  (disk alone / raw sink: 0.80 to 0.91; 1/3 rounds >= 0.9)"]
    assert line["value"] == 0.84
    assert line["met"] is None  # context for the verdict, not a target of its own


def test_disk_probe_writes_every_byte_of_every_file_in_order(tmp_path: Path) -> None:
    payload = memoryview(os.urandom(10_000))
    seconds = write_durably(tmp_path, payload, files=3, chunk=4096)  # the last piece is short
    assert seconds > 0
    written = sorted(tmp_path.iterdir())
    assert [path.name for path in written] == ["disk-0", "disk-1", "disk-2"]
    assert all(path.read_bytes() == payload for path in written)


def test_memory_target_is_150_megabytes_not_mebibytes() -> None:
    def verdict(rss_mib: float) -> bool | None:
        entry = {"label": "8 x 64 MiB", "targets": {"service": {"rss_peak_mib": rss_mib}}}
        verdicts = _verdicts({"throughput": {"concurrent_8": entry}})
        return verdicts["service peak RSS (MiB), 8 x 64 MiB"]

    assert verdict(143.0) is True
    assert verdict(143.1) is False


def test_s3_part_target_fails_when_an_aligned_patch_sends_anything_besides_its_part() -> None:
    def verdict(parts_per_patch: float, most_requests_in_a_patch: int) -> bool | None:
        by_chunk = {
            "5mib": {
                "upload_part_per_patch_mean": parts_per_patch,
                "requests_per_patch_max": most_requests_in_a_patch,
            }
        }
        return _verdicts({"s3": {"by_chunk": by_chunk}})["S3 UploadParts per aligned 5 MiB PATCH"]

    assert verdict(1.0, 1) is True
    assert verdict(1.0, 2) is False
    assert verdict(1.2, 1) is False


def test_s3_throughput_targets_are_the_tus_path_and_the_direct_path_over_the_ceiling() -> None:
    def entry(label: str, service: float, direct: float | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "label": label,
            "ratio_service_vs_ceiling": service,
            "paired_service_vs_ceiling": [service - 0.1, service, service + 0.1],
        }
        if direct is not None:
            found["ratio_direct_vs_ceiling"] = direct
        return found

    throughput = {
        "single_5mib": entry("5 MiB", 0.86, direct=0.89),
        "single_1mib": entry("1 MiB", 0.59),
        "concurrent_4": entry("4 x", 0.5, direct=1.02),
    }
    verdicts = _verdicts({"s3": {"by_chunk": {}, "throughput": throughput}})
    assert verdicts["S3 tus path / ceiling, 5 MiB"] is True  # >= 0.85
    assert verdicts["S3 tus path / ceiling, 1 MiB"] is False  # < 0.6
    assert verdicts["S3 tus path / ceiling, 4 x"] is None  # no target: context
    assert verdicts["S3 direct path / ceiling, 5 MiB"] is False  # about 1.0 means >= 0.9
    assert verdicts["S3 direct path / ceiling, 4 x"] is True
    assert "  (round by round: 0.76 to 0.96; 2/3 rounds >= 0.85)" in verdicts


@pytest.mark.timeout(600)  # a few servers start in turn; slow on a loaded machine
def test_quick_run_measures_each_section_and_saves_only_the_quick_results(tmp_path: Path) -> None:
    """`python -m bench --quick`, minus the slow clients (the longest section): every server
    starts, every section measures, the counts that are exact come out exact, the report ends
    with the targets, and `latest-quick.json` is written while the history table is left alone."""
    sections = "throughput,latency,s3,cleanup"
    command = [sys.executable, "-m", "bench", "--quick", "--only", sections]
    done = subprocess.run(
        [*command, "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "\nTargets\n" in done.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["latest-quick.json"]
    results = json.loads((tmp_path / "latest-quick.json").read_text())
    measured = results["sections"]
    assert sorted(measured) == sorted(sections.split(","))
    assert not [name for name, section in measured.items() if "error" in section]

    for scenario in measured["throughput"].values():
        assert {"sink", "sink_fsync", "sink_durable", "service"} <= set(scenario["targets"])
        assert scenario["ratio_vs_sink"] > 0
        assert scenario["disk"]["mb_per_s"] > 0
        if IN_CI:  # PostgreSQL is part of the run there, never skipped
            assert "service_postgres" in scenario["targets"]
    assert measured["latency"]["sqlite"]["head"]["count"] == 200
    s3 = measured["s3"]["by_chunk"]
    assert s3["5mib"]["upload_part_per_patch_mean"] == 1
    assert s3["5mib"]["requests_per_patch_max"] == 1
    # S3 throughput against SeaweedFS: every path measured, beside the ceiling
    s3_throughput = measured["s3"]["throughput"]
    assert sorted(s3_throughput["single_5mib"]["targets"]) == ["ceiling", "direct", "service"]
    assert sorted(s3_throughput["single_1mib"]["targets"]) == ["ceiling", "service"]
    for key in ("single_5mib", "single_1mib", "concurrent_4"):
        scenario = s3_throughput[key]
        assert scenario["ratio_service_vs_ceiling"] > 0
        assert all(path["mb_per_s"] > 0 for path in scenario["targets"].values())
        assert scenario["targets"]["service"]["service_cpu_s_per_gib"] > 0
    assert s3_throughput["concurrent_4"]["ratio_direct_vs_ceiling"] > 0
    assert "\nS3 throughput against SeaweedFS" in done.stdout
    assert measured["cleanup"]["cleaned"] == measured["cleanup"]["uploads"] == 1_000
    assert measured["cleanup"]["files_left"] == 0


def test_lean_client_reads_a_body_and_keeps_the_next_response_for_the_next_request() -> None:
    """The latency section's client: a response's body ends where `Content-Length` says, and
    what follows on the kept-alive socket is the next request's answer, whole."""
    answers = (
        b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nLocation: /files/1\r\n\r\nhello"
        b"HTTP/1.1 200 OK\r\nUpload-Offset: 7\r\nContent-Length: 1024\r\n\r\n"
    )
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        peer, _ = listener.accept()
        with peer:
            received.append(peer.recv(65536))
            peer.sendall(answers)  # both answers at once, as a pipelining server may
            received.append(peer.recv(65536))

    server = threading.Thread(target=serve)
    server.start()
    try:
        with RawConnection(f"http://127.0.0.1:{listener.getsockname()[1]}") as connection:
            created = connection.send(connection.prepare("POST", "/files", {"A": "1"}))
            head = connection.send(connection.prepare("HEAD", "/files/1", {}), head=True)
    finally:
        server.join(timeout=10)
        listener.close()
    assert (created.status, created.headers["location"], created.body) == (
        201,
        "/files/1",
        b"hello",
    )
    assert (head.status, head.headers["upload-offset"], head.body) == (200, "7", b"")
    assert received[0].startswith(b"POST /files HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nA: 1\r\n\r\n" in received[0]
    assert received[1].startswith(b"HEAD /files/1 HTTP/1.1\r\n")
