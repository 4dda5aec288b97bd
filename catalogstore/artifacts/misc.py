"""Save and load hooks for JSON and pickled values (Flowdapt's ``artifacts.misc``).

Each function returns a hook for :func:`catalogstore.object_store.put`
(``save_artifact_hook=``) or :func:`~catalogstore.object_store.get`
(``load_artifact_hook=``), or to call on an artifact directly::

    json_to_artifact("params")(artifact, {"lr": 0.1})
    json_from_artifact("params")(artifact)   # {'lr': 0.1}

The files and the ``value_type`` marker are Flowdapt's (``{name}.json`` with
``value_type=json``, ``{name}.pkl`` with ``value_type=pickle``), so either tool
reads what the other wrote. Calling :func:`pickle_from_artifact` is the caller's
statement that the artifact's bytes are trusted; with a signing key configured
(:mod:`catalogstore.signing`) a pickle is written signed and an unsigned or
altered one is refused before it is unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from catalogstore.errors import ArtifactTypeError, SignatureError

if TYPE_CHECKING:
    from catalogstore.artifacts.artifact import Artifact

__all__ = ["json_from_artifact", "json_to_artifact", "pickle_from_artifact",
           "pickle_to_artifact"]

_PICKLER = "cloudpickle"


def _check_type(artifact: Artifact, expected: str) -> None:
    found = artifact.get_meta("value_type")
    if found != expected:
        raise ArtifactTypeError(
            f"artifact {artifact.namespace}/{artifact.name} holds value_type {found!r}, "
            f"not {expected!r}: load it with the hook that matches how it was saved")


def json_to_artifact(name: str = "file") -> Callable[[Artifact, Any], None]:
    """A hook that saves a JSON value as ``{name}.json`` (``value_type=json``)."""
    def save(artifact: Artifact, value: Any) -> None:
        with artifact.transaction():
            artifact["value_type"] = "json"
            artifact.new_file(f"{name}.json", json.dumps(value).encode())
    return save


def json_from_artifact(name: str = "file") -> Callable[[Artifact], Any]:
    """A hook that loads the JSON value of ``{name}.json``.

    Raises
    ------
    ArtifactTypeError
        (an ``AssertionError``, as Flowdapt raises) when ``value_type`` is not ``json``.
    """
    def load(artifact: Artifact) -> Any:
        _check_type(artifact, "json")
        return json.loads(artifact.get_file(f"{name}.json").read(mode="rb"))
    return load


def pickle_to_artifact(name: str = "file") -> Callable[[Artifact, Any], None]:
    """A hook that saves a value with cloudpickle as ``{name}.pkl`` (``value_type=pickle``),
    signed when a signing key is configured."""
    def save(artifact: Artifact, value: Any) -> None:
        import cloudpickle

        data = cloudpickle.dumps(value)
        file_name = f"{name}.pkl"
        with artifact.transaction():
            artifact["value_type"] = "pickle"
            signature = _signature(artifact, file_name, data)
            if signature is not None:
                artifact[_signature_key(file_name)] = signature
            artifact.new_file(file_name, data)
    return save


def pickle_from_artifact(name: str = "file") -> Callable[[Artifact], Any]:
    """A hook that loads the cloudpickled value of ``{name}.pkl``.

    Raises
    ------
    ArtifactTypeError
        (an ``AssertionError``) when ``value_type`` is not ``pickle``.
    SignatureError
        when a signing key is set and the file is unsigned or does not match its
        signature; nothing was unpickled.
    """
    def load(artifact: Artifact) -> Any:
        import cloudpickle

        _check_type(artifact, "pickle")
        file_name = f"{name}.pkl"
        data = artifact.get_file(file_name).read(mode="rb", verify=True)
        assert isinstance(data, bytes)
        expected = _signature(artifact, file_name, data)
        if expected is not None and artifact.get_meta(_signature_key(file_name)) != expected:
            raise SignatureError(
                f"{artifact.namespace}/{artifact.name}/{file_name} is unsigned or does not "
                "match its signature and a signing key is set: it is not unpickled")
        return cloudpickle.loads(data)
    return load


def _signature_key(file_name: str) -> str:
    from catalogstore.signing import SIGNATURE_KEY

    return f"{SIGNATURE_KEY}:{file_name}"


def _signature(artifact: Artifact, file_name: str, data: bytes) -> str | None:
    """The signature ``data`` should carry, or ``None`` without a signing key."""
    from catalogstore.signing import new_signer, signature_of

    key = artifact.settings.signing_key
    if key is None:
        return None
    mac = new_signer(key, artifact.namespace, f"{artifact.name}/{file_name}", _PICKLER)
    mac.update(data)
    return signature_of(mac)
