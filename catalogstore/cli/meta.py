"""``catalogstore meta set`` and ``meta unset``: change an artifact's metadata."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

import catalogstore
from catalogstore.artifacts import Artifact, get_artifact
from catalogstore.cli.app import group
from catalogstore.cli.output import shown, split_ref
from catalogstore.errors import InvalidMetadataError
from catalogstore.object_store import is_object_artifact

meta_app = group("meta", "An artifact's metadata: set and remove keys.")

_Ref = Annotated[str, typer.Argument(
    metavar="NAMESPACE/NAME", help="The artifact (a bare NAME is in the current namespace).")]


def _user_artifact(ref: str) -> Artifact:
    """The artifact ``ref`` names; an object store's value is refused: its metadata
    (value_type, serializer, digest) is the store's, not the user's."""
    namespace, name = split_ref(ref)
    artifact = get_artifact(name, namespace)
    if is_object_artifact(artifact):
        raise InvalidMetadataError(
            f"{ref} is an object store's value: its metadata is the store's (put the "
            "value again instead)")
    return artifact


def _parse_pair(pair: str, as_json: bool) -> tuple[str, Any]:
    key, sep, text = pair.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{pair!r} is not KEY=VALUE")
    if not as_json:
        return key, text
    try:
        return key, json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"the value of {key!r} is not JSON ({exc}); with --json, "
                                 "a string is quoted: KEY='\"text\"'") from None


@meta_app.command("set")
def meta_set(
    ref: _Ref,
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help="Keys to set.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Parse each VALUE as JSON (42, 0.9, true, null, [1,2], {...}, "
        "\"text\"); by default every VALUE is a string.")] = False,
) -> None:
    """Set metadata keys of an artifact, all in one commit.

    Values are strings unless --json: `meta set team/model epochs=10` stores the string
    "10", `meta set --json team/model epochs=10` the number 10 (metadata keeps JSON types).
    """
    values = dict(_parse_pair(pair, as_json) for pair in pairs)
    artifact = _user_artifact(ref)
    artifact.update_meta(values)
    typer.echo(f"{ref}: set " + ", ".join(f"{k}={shown(v)}" for k, v in values.items()))


@meta_app.command("unset")
def meta_unset(
    ref: _Ref,
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Keys to remove.")],
) -> None:
    """Remove metadata keys of an artifact, all in one commit; a key it lacks is an error
    and removes nothing."""
    with catalogstore.transaction():
        artifact = _user_artifact(ref)
        for key in keys:
            artifact.del_meta(key)
    typer.echo(f"{ref}: removed " + ", ".join(keys))
