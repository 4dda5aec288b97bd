"""Signed pickles: with a signing key set, nothing unsigned or tampered is ever unpickled.

The attacker of these tests can write the storage *and* the catalog: they replace
an object's bytes and recompute the checksum the catalog holds (which the
checksum alone cannot catch), copy a signed object under another key, or sign
with a key of their own. Each time ``get`` refuses with ``SignatureError`` and
the payload, which would create a file when unpickled, never runs. Formats that
run no code when decoded (npy) are not signed and read as before, and with no
key set everything behaves as without signing. Signing changes only metadata:
the ``object`` file stays the plain pickle Flowdapt reads.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import catalogstore
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.catalog.engine import make_engine
from catalogstore.errors import (
    ConfigurationError,
    CorruptArtifactError,
    SignatureError,
    UntrustedObjectError,
)
from catalogstore.object_store import adopt, flush, get, put
from catalogstore.signing import SIGNATURE_KEY
from catalogstore.storage.checksum import checksum_bytes

KEY = "test-signing-key-0123456789abcdef"
OTHER_KEY = "attacker-key-0123456789abcdef-xyz"


class Exploit:
    """Unpickling it creates ``marker``: proof that the bytes were (not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _replace_bytes(stack: Any, key: str, payload: bytes) -> None:
    """What an attacker with write access to storage and catalog does to an object (once
    its files are written: a small value's follow its commit, issue 19)."""
    flush()
    file = get_artifact(key).get_file("object")
    fs = stack.filesystem()
    fs.pipe_file(file.path, payload)
    engine = make_engine(stack.catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE artifact_files SET checksum = :c, size = :s WHERE name = 'object' AND "
            "artifact_id = (SELECT id FROM artifacts WHERE name = :n)"),
            {"c": checksum_bytes(payload), "s": len(payload), "n": key})
    engine.dispose()


def test_signed_objects_round_trip_with_unchanged_bytes(stack):
    catalogstore.configure(signing_key=KEY)
    value = {"weights": [1.5, 2.5], "name": "model"}
    put("model", value, artifact_only=True)
    put("square", lambda x: x * x, artifact_only=True)  # cloudpickle
    assert get("model", artifact_only=True) == value
    assert get("model", artifact_only=True, serializer="cloudpickle") == value
    assert get("square", artifact_only=True)(7) == 49
    artifact = get_artifact("model")
    data = artifact.get_file("object").read()
    assert pickle.loads(data) == value  # still a plain pickle: Flowdapt reads it
    assert artifact[SIGNATURE_KEY].startswith("hmac-sha256:")
    assert get_artifact("square")["serializer"] == "cloudpickle"
    assert get_artifact("square")[SIGNATURE_KEY].startswith("hmac-sha256:")


def test_tampered_pickle_with_recomputed_checksum_is_refused(stack, tmp_path):
    catalogstore.configure(signing_key=KEY)
    marker = tmp_path / "exploited"
    put("victim", {"safe": True}, artifact_only=True)
    _replace_bytes(stack, "victim", pickle.dumps(Exploit(marker)))
    # The checksum matches the new bytes: only the signature tells.
    assert get_artifact("victim").get_file("object").read(verify=True)
    with pytest.raises(SignatureError, match="does not match its signature"):
        get("victim", artifact_only=True)
    with pytest.raises(CorruptArtifactError):  # the broader class catches it too
        get("victim", artifact_only=True, serializer="cloudpickle")
    assert not marker.exists()


def test_signature_binds_the_key_and_the_signer(stack, tmp_path):
    catalogstore.configure(signing_key=KEY)
    marker = tmp_path / "exploited"
    put("harmless", [1, 2, 3], artifact_only=True)
    put("target", "original", artifact_only=True)
    # A signed object copied under another key, signature and all.
    harmless = get_artifact("harmless")
    _replace_bytes(stack, "target", harmless.get_file("object").read())
    get_artifact("target")[SIGNATURE_KEY] = harmless[SIGNATURE_KEY]
    with pytest.raises(SignatureError):
        get("target", artifact_only=True)
    # Metadata edited in the storage names another serializer: the catalog's record of
    # the put decides which one reads it (issue 12), so the edit changes nothing.
    put("target", "original", artifact_only=True)
    get_artifact("target")["serializer"] = "cloudpickle"
    assert get("target", artifact_only=True) == "original"
    # Bytes of the attacker's choosing, signed with the attacker's key.
    payload = pickle.dumps(Exploit(marker))
    forged = hmac.new(OTHER_KEY.encode(), payload, hashlib.sha256).hexdigest()
    _replace_bytes(stack, "target", payload)
    get_artifact("target")[SIGNATURE_KEY] = f"hmac-sha256:{forged}"
    with pytest.raises(SignatureError):
        get("target", artifact_only=True)
    get_artifact("target")[SIGNATURE_KEY] = "hmac-sha256:\u00e9\u00e9"  # not even hex
    with pytest.raises(SignatureError):
        get("target", artifact_only=True)
    assert not marker.exists()
    assert get("harmless", artifact_only=True) == [1, 2, 3]


def test_unsigned_pickles_are_refused_when_a_key_is_set(stack, tmp_path):
    marker = tmp_path / "exploited"
    put("old", {"written": "before the key"}, artifact_only=True)  # no key: unsigned
    assert SIGNATURE_KEY not in get_artifact("old").metadata
    foreign = new_artifact("foreign")  # as Flowdapt (or an attacker) lays one out
    foreign.new_file("object", content=pickle.dumps(Exploit(marker)))
    foreign.update_meta({"value_type": "object", "serializer": "pickle"})
    catalogstore.configure(signing_key=KEY)
    for key in ("old", "foreign"):
        for serializer in (None, "pickle", "cloudpickle"):
            if key == "foreign" and serializer is None:  # never put by this store
                with pytest.raises(UntrustedObjectError, match="not written by this store"):
                    get(key, artifact_only=True)
                continue
            with pytest.raises(SignatureError, match="unsigned"):
                get(key, artifact_only=True, serializer=serializer)
    assert not marker.exists()
    put("old", {"written": "with the key"}, artifact_only=True)  # put again: signed
    assert get("old", artifact_only=True) == {"written": "with the key"}
    # Key rotation is not supported: another key refuses what the first one signed.
    catalogstore.configure(signing_key=OTHER_KEY)
    with pytest.raises(SignatureError, match="another key"):
        get("old", artifact_only=True)


def test_formats_that_run_no_code_are_not_signed(stack):
    catalogstore.configure(signing_key=KEY)
    array = np.arange(12.0).reshape(3, 4)
    put("array", array, artifact_only=True)
    artifact = get_artifact("array")
    assert artifact["serializer"] == "npy" and SIGNATURE_KEY not in artifact.metadata
    np.testing.assert_array_equal(get("array", artifact_only=True), array)
    put("doc", {"a": 1}, artifact_only=True, serializer="json")
    assert SIGNATURE_KEY not in get_artifact("doc").metadata
    # Replacing a signed pickle by an array drops its signature, and back.
    put("swap", {"pickled": True}, artifact_only=True)
    assert SIGNATURE_KEY in get_artifact("swap").metadata
    put("swap", array, artifact_only=True)
    assert SIGNATURE_KEY not in get_artifact("swap").metadata
    put("swap", {"pickled": True}, artifact_only=True)
    assert get("swap", artifact_only=True) == {"pickled": True}


def test_without_a_key_nothing_changes(stack):
    put("plain", {"a": 1}, artifact_only=True)
    assert get("plain", artifact_only=True) == {"a": 1}
    assert SIGNATURE_KEY not in get_artifact("plain").metadata
    catalogstore.configure(signing_key=KEY)
    put("signed", {"a": 2}, artifact_only=True)
    catalogstore.configure(signing_key=None)  # verification is off again
    assert get("signed", artifact_only=True) == {"a": 2}


def test_workers_inherit_the_key(local_stack):
    catalogstore.configure(signing_key=KEY)
    put("shared", {"from": "driver"}, artifact_only=True)
    code = ("from catalogstore.object_store import get, put; "
            "print(get('shared', artifact_only=True)); put('back', 42, artifact_only=True)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "{'from': 'driver'}" in done.stdout
    assert get("back", artifact_only=True) == 42  # signed by the worker with the same key


@pytest.mark.parametrize("bad", ["short", "", 12345])
def test_signing_key_is_checked_without_being_shown(bad, monkeypatch):
    if bad == "":
        catalogstore.configure(signing_key=bad)  # empty means unset, as for the variable
        assert catalogstore.get_settings().signing_key is None
        return
    with pytest.raises(ConfigurationError, match="CATALOGSTORE_SIGNING_KEY") as caught:
        catalogstore.configure(signing_key=bad)
    assert str(bad) not in str(caught.value)


def test_adopting_with_a_key_signs_the_object_as_it_is(stack, tmp_path):
    # An object another tool wrote, adopted while a key is set: adopt signs the bytes
    # as they are, so get reads them; bytes replaced afterwards are refused again.
    foreign = new_artifact("flowdapt-model")
    foreign.new_file("object", content=pickle.dumps({"weights": [1, 2]}))
    foreign.update_meta({"value_type": "object", "serializer": "pickle"})
    catalogstore.configure(signing_key=KEY)
    with pytest.raises(UntrustedObjectError):
        get("flowdapt-model", artifact_only=True)
    adopt("flowdapt-model", serializer="pickle")
    assert SIGNATURE_KEY in get_artifact("flowdapt-model").metadata
    assert get("flowdapt-model", artifact_only=True) == {"weights": [1, 2]}
    marker = tmp_path / "exploited"
    _replace_bytes(stack, "flowdapt-model", pickle.dumps(Exploit(marker)))
    with pytest.raises((SignatureError, UntrustedObjectError)):
        get("flowdapt-model", artifact_only=True)
    assert not marker.exists()
