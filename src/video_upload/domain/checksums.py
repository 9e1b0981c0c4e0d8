"""Checksums for chunk verification (tus checksum extension): algorithms and a running digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

# The tus names of the algorithms we verify, mapped to hashlib's; all are cheap in C.
ALGORITHMS = {"sha1": "sha1", "md5": "md5", "sha256": "sha256", "sha512": "sha512"}


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class ExpectedChecksum:
    algorithm: str
    digest: bytes

    def new_hasher(self) -> Hasher:
        return hashlib.new(ALGORITHMS[self.algorithm])
