"""``catalogstore get``, ``put`` and ``adopt``: the object store's keys from a shell, and
trusting an object artifact this store did not write (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from catalogstore.cli.app import app
from catalogstore.cli.output import split_ref
from catalogstore.context import current_namespace
from catalogstore.errors import NotAnObjectError, SerializationError
from catalogstore.object_store import adopt as adopt_object
from catalogstore.object_store import get as get_object
from catalogstore.object_store import put as put_object

_Ref = Annotated[str, typer.Argument(
    metavar="NAMESPACE/KEY", help="The object (a bare KEY is in the current namespace).")]


@app.command("adopt")
def adopt(
    ref: _Ref,
    serializer: Annotated[str | None, typer.Option(
        "--serializer", "-s", metavar="NAME",
        help="Serializer that reads it (default: the one its metadata names, else "
             "cloudpickle, Flowdapt's).")] = None,
) -> None:
    """Record in the catalog that an object written by another tool (Flowdapt, or found by
    `reindex`) may be decoded by get() as it is now; its bytes changing later in the
    storage revokes that."""
    namespace, key = split_ref(ref)
    adopt_object(key, namespace=namespace, serializer=serializer)
    typer.echo(f"adopted {ref}: get({key!r}) now decodes it")


def value_bytes(ref: str, value: Any) -> bytes:
    """What ``get`` writes for a value: bytes as they are, a str in UTF-8, a JSON value
    (numbers, booleans, null, lists and dicts of them) as one line of JSON; anything else
    has no byte form a shell could use, and is refused."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    try:
        return (json.dumps(value, ensure_ascii=False, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError):
        raise SerializationError(
            f"{ref} holds a {type(value).__module__}.{type(value).__qualname__}, which has "
            "no byte form to write: read it in Python (catalogstore.object_store.get)"
        ) from None


@app.command("get")
def get(
    ref: _Ref,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write the value to FILE (replaced) instead of stdout.")] = None,
    version: Annotated[int | None, typer.Option(
        "--version", min=1, metavar="N", help="An earlier value: version N of the key's "
        "artifact (`catalogstore versions NAMESPACE/KEY` lists them).")] = None,
) -> None:
    """Write the value of an object store key: bytes raw, a str as UTF-8, a JSON-able value
    (number, bool, None, list, dict) as one line of JSON; other values are refused.

    The value is read as get() reads it in Python, by the same trust rules (an object
    this store did not write needs `catalogstore adopt` first).
    """
    namespace, key = split_ref(ref)
    data = value_bytes(ref, get_object(key, namespace=namespace, version=version))
    if output is None:
        stream = typer.get_binary_stream("stdout")
        stream.write(data)
        stream.flush()
    else:
        output.write_bytes(data)
        typer.echo(f"wrote {len(data)} bytes of {ref} to {output}", err=True)


@app.command("put")
def put(
    ref: _Ref,
    source: Annotated[str, typer.Argument(
        metavar="FILE", help="The file whose bytes become the value; - reads stdin.")],
    artifact_only: Annotated[bool, typer.Option(
        "--artifact-only", help="Store it as an artifact only (default: the configured "
        "strategy, CATALOGSTORE_OBJECT_STORE_STRATEGY).")] = False,
) -> None:
    """Store a file's bytes (or stdin's) as the value of an object store key, replacing
    its value; get() in Python returns them as bytes. A user's artifact of that name is
    never replaced."""
    namespace, key = split_ref(ref)
    stdin = source == "-"
    data = typer.get_binary_stream("stdin").read() if stdin else Path(source).read_bytes()
    try:
        put_object(key, data, namespace=namespace, artifact_only=artifact_only)
    except NotAnObjectError:  # the API's message offers overwrite=True, which the CLI has not
        raise NotAnObjectError(
            f"artifact {current_namespace(namespace)}/{key} is a user artifact, "
            "not an object of the object store: catalogstore put never replaces it; "
            "choose another key") from None
    typer.echo(f"stored {len(data)} bytes as {ref}")
