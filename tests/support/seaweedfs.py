"""SeaweedFS (`weed server -s3`) as a real S3 service for the tests, on loopback ports.

The benchmark's launcher (`bench/seaweedfs.py` says how it starts and stops the server), with
the test credentials of `tests.support.s3server` and small volumes (64 MB: volumes are per
bucket, and the tests make many buckets).
"""

from __future__ import annotations

from pathlib import Path

from bench.seaweedfs import SeaweedFS, SeaweedFSError, start, weed_binary
from tests.support.s3server import ACCESS_KEY, SECRET_KEY

__all__ = ["SeaweedFS", "SeaweedFSError", "start_seaweedfs", "weed_binary"]


def start_seaweedfs(workdir: Path | None = None) -> SeaweedFS:
    """Start SeaweedFS on free loopback ports; returns the server (call `stop()`)."""
    return start(workdir, access_key=ACCESS_KEY, secret_key=SECRET_KEY, volume_size_limit_mb=64)
