"""Signatures of pickled objects: whether the object store may unpickle what it reads.

Checksums (:mod:`catalogstore.storage.checksum`) detect corruption, not
tampering: whoever can write the storage and the catalog recomputes them. Against a
writer of the storage alone, the catalog's record of each put (the SHA-256 of the
pickled bytes, :mod:`catalogstore.object_store`) is enough, and always on.
Signatures answer the stronger threat for the one format where it matters most:
unpickling runs code chosen by whoever wrote the bytes. With a signing key
configured (``CATALOGSTORE_SIGNING_KEY``, see
:attr:`catalogstore.settings.Settings.signing_key`), the object store records
for every object it writes with a serializer that executes code (pickle,
cloudpickle) an HMAC-SHA256 in the artifact's metadata, as
``signature=hmac-sha256:<hex>``, and ``get`` checks it before a single byte is
unpickled, refusing an unsigned object or one whose signature does not match
with :class:`~catalogstore.errors.SignatureError`. Other formats (npy, Parquet,
JSON) decode without running code and are not signed.

What is signed: a fixed prefix, the namespace, the object's key and the name
of the serializer that wrote it, then the file's bytes. So a signed object can
be neither changed, nor moved under another key, nor recorded as written by
another serializer (reading it with another one, ``get(..., serializer=...)``,
is the reader's choice and still checks the signature). The file's
bytes stay a plain pickle (Flowdapt reads the ``object`` file as one); only the
metadata gains a key.

Not covered: key rotation (objects signed with another key are refused; read
them with that key configured and put them again), objects written by other
tools such as Flowdapt (unsigned, so refused while a key is set), and cluster
memory (objects there live in per-user ``0700`` folders for one session and
never meet untrusted writers).
"""

from __future__ import annotations

import hashlib
import hmac
import io
from typing import IO, TYPE_CHECKING, Any, Protocol

from catalogstore.errors import SignatureError

if TYPE_CHECKING:
    from pydantic import SecretStr

SIGNATURE_KEY = "signature"
"""Metadata key of an object's signature."""
SIGNATURE_ALGORITHM = "hmac-sha256"
_DOMAIN = b"catalogstore object signature v1\0"


# -- signatures -----------------------------------------------------------------


def new_signer(key: SecretStr, namespace: str, name: str, serializer: str) -> hmac.HMAC:
    """The HMAC of the object ``namespace/name`` as ``serializer`` writes it; feed it the bytes."""
    mac = hmac.new(key.get_secret_value().encode(), _DOMAIN, hashlib.sha256)
    for part in (namespace, name, serializer):
        mac.update(part.encode() + b"\0")
    return mac


def signature_of(mac: hmac.HMAC) -> str:
    """The metadata value recording ``mac`` (``hmac-sha256:<hex>``)."""
    return f"{SIGNATURE_ALGORITHM}:{mac.hexdigest()}"


def digest_of(data: bytes | None = None) -> Any:
    """A SHA-256 hash (fed ``data``): what the catalog records of pickled bytes."""
    return hashlib.sha256(data if data is not None else b"")


def digest_text(hasher: Any) -> str:
    """The catalog's form of a digest: ``sha256:<hex>``."""
    return f"sha256:{hasher.hexdigest()}"


def verify_signature(key: SecretStr, namespace: str, name: str, serializer: str,
                     data: bytes, recorded: str | None) -> None:
    """Raise :class:`SignatureError` unless ``recorded`` signs ``data`` under ``key``.

    Call it before ``data`` is decoded: a refused object is never unpickled.
    """
    where = f"object {namespace}/{name}"
    if recorded is None:
        raise SignatureError(
            f"{where} is unsigned and a signing key is set, so it is not unpickled; put it "
            "again with the key set (or read it without CATALOGSTORE_SIGNING_KEY if you "
            "trust its bytes)")
    mac = new_signer(key, namespace, name, serializer)
    mac.update(data)
    # As bytes: compare_digest refuses str with non-ASCII, which metadata may hold.
    if not hmac.compare_digest(recorded.encode(), signature_of(mac).encode()):
        raise SignatureError(
            f"{where} does not match its signature: its bytes or metadata were changed, or "
            "it was signed with another key; it is not unpickled (put it again to replace "
            "it, or check the storage with `catalogstore verify`)")


class Hasher(Protocol):
    """What :class:`SigningWriter` feeds: an HMAC or a ``hashlib`` hash."""

    def update(self, data: Any, /) -> None: ...


class SigningWriter(io.BufferedIOBase):
    """A binary stream that feeds what is written through it to hashes (an HMAC, the
    object store's digest), then passes it on."""

    def __init__(self, stream: IO[bytes], *hashes: Hasher) -> None:
        super().__init__()
        self._stream = stream
        self._hashes = hashes

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")  # pickle hands over buffers of any item format
        for hasher in self._hashes:
            hasher.update(view)
        self._stream.write(view)
        return view.nbytes

    def flush(self) -> None:
        self._stream.flush()
