"""Checksums of stored bytes: the one place that computes them.

A checksum (``xxh128:<hex>`` in the catalog) tells whether the bytes in storage
are the bytes that were committed. It is no defence against someone who can
write the storage *and* the catalog (that person recomputes it): signing
(:mod:`catalogstore.signing`) answers that threat.
"""

from __future__ import annotations

import hashlib
from typing import Any

from catalogstore.errors import CorruptArtifactError

CHECKSUM_ALGORITHM = "xxh128"
"""XXH3-128: detects corruption at ~10 GB/s, so hashing never slows a stream down
(SHA-256 runs at ~1.7 GB/s here, slower than writing to disk). Tampering is a
different threat, answered by signing (not by this checksum)."""


def new_hasher(algorithm: str = CHECKSUM_ALGORITHM) -> Any:
    """A hash object for a checksum's algorithm (``xxh128``, or any of :mod:`hashlib`)."""
    if algorithm == "xxh128":
        import xxhash

        return xxhash.xxh3_128()
    return hashlib.new(algorithm)


def checksum_bytes(data: bytes) -> str:
    """The checksum catalogstore records for ``data`` (``<algorithm>:<hex>``)."""
    hasher = new_hasher()
    hasher.update(data)
    return f"{CHECKSUM_ALGORITHM}:{hasher.hexdigest()}"


def hasher_for(checksum: str) -> Any:
    """A hash object of the algorithm of the recorded ``checksum`` (``<algorithm>:<hex>``),
    to feed bytes as they are read and give to :func:`hash_matches`."""
    return new_hasher(checksum.partition(":")[0])


def hash_matches(hasher: Any, checksum: str) -> bool:
    """Whether the bytes fed to ``hasher`` (from :func:`hasher_for`) have ``checksum``."""
    return bool(hasher.hexdigest() == checksum.partition(":")[2])


def checksum_matches(data: Any, checksum: str) -> bool:
    """Whether ``data`` (bytes, or any buffer) has the recorded ``checksum``
    (``<algorithm>:<hex>``)."""
    hasher = hasher_for(checksum)
    hasher.update(data)
    return hash_matches(hasher, checksum)


def verify_checksum(data: bytes, checksum: str, where: str) -> None:
    """Raise :class:`CorruptArtifactError` unless ``data`` has the recorded ``checksum``."""
    if not checksum_matches(data, checksum):
        raise checksum_mismatch(where, checksum)


def checksum_mismatch(where: str, checksum: str) -> CorruptArtifactError:
    return CorruptArtifactError(
        f"{where} does not match the checksum the catalog recorded for it ({checksum}); "
        "the storage changed behind the catalog: check it with `catalogstore verify`")
