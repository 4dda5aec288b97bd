"""``catalogstore versions``, ``alias``, ``pin`` and ``unpin``: an artifact's versions
and the names and pins that keep them (issue 15).

A version is named as the API names it: ``NAMESPACE/NAME:v3`` or
``NAMESPACE/NAME@prod`` (``show``, ``cp`` and these commands take both).
"""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.filesize import decimal as human_size
from rich.table import Column, Table

from catalogstore.artifacts import Artifact, get_artifact
from catalogstore.artifacts.versions import split_ref as split_version
from catalogstore.cli.app import app
from catalogstore.cli.output import VersionRef, console, print_json, split_ref, when
from catalogstore.errors import InvalidNameError, VersionNotFoundError

_VERSION = re.compile(r"v?([0-9]{1,9})")


def _named(ref: str) -> tuple[str, str, int | None, str | None]:
    """``NAMESPACE/NAME[:vN|@ALIAS]`` as (namespace, name, version, alias)."""
    namespace, rest = split_ref(ref)
    return namespace, *split_version(rest)


@app.command("versions")
def versions(
    ref: Annotated[str, typer.Argument(
        metavar="NAMESPACE/NAME", help="The artifact (a bare NAME is in the current "
        "namespace).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List every kept version of an artifact, oldest first: number, creation time, files,
    bytes, aliases (latest on the current one) and whether it is pinned."""
    namespace, name, number, alias = _named(ref)
    if (number, alias) != (None, None):
        raise InvalidNameError(f"{ref!r}: versions lists every version of NAMESPACE/NAME: "
                               "give no :vN or @ALIAS")
    kept = get_artifact(name, namespace).versions()
    if as_json:
        print_json([{"version": v.version, "created_at": when(v.created_at),
                     "files": len(v.files), "size": v.size, "aliases": list(v.aliases),
                     "pinned": v.pinned, "current": v.current, "metadata": v.metadata}
                    for v in kept])
        return
    table = Table(Column("version", no_wrap=True), Column("created (UTC)", no_wrap=True),
                  Column("files", justify="right"), Column("size", justify="right"),
                  Column("aliases"), Column("pinned"))
    for v in kept:
        table.add_row(f"v{v.version}", when(v.created_at)[:19].replace("T", " "),
                      str(len(v.files)), human_size(v.size), ", ".join(v.aliases),
                      "yes" if v.pinned else "")
    console().print(table)


def _version_number(text: str) -> int:
    """``3`` or ``v3`` as 3."""
    found = _VERSION.fullmatch(text)
    if found is None or int(found[1]) < 1:
        raise InvalidNameError(f"invalid version {text!r}: a number from 1, as 3 or v3")
    return int(found[1])


@app.command("alias")
def alias(
    ref: Annotated[str, typer.Argument(
        metavar="NAMESPACE/NAME@ALIAS", help="The artifact and the alias (not latest, which "
        "always names the current version).")],
    version: Annotated[str | None, typer.Argument(
        metavar="VERSION", help="The version it names: 3 or v3 (default: the current "
        "one).", show_default=False)] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the alias.")] = False,
) -> None:
    """Point an alias at a version of an artifact, moving it if it names another (in one
    update: readers see the old version or the new one), or remove it. Retention never
    removes an aliased version. `catalogstore versions` lists the aliases."""
    namespace, name, number, alias = _named(ref)
    if alias is None or number is not None:
        raise InvalidNameError(f"{ref!r}: give NAMESPACE/NAME@ALIAS")
    artifact = get_artifact(name, namespace)
    full = f"{artifact.namespace}/{artifact.name}@{alias}"
    if remove:
        if version is not None:
            raise typer.BadParameter("give a VERSION or --remove, not both")
        if not artifact.remove_alias(alias):
            raise VersionNotFoundError(f"{artifact.namespace}/{artifact.name} has no alias "
                                       f"{alias!r}")
        typer.echo(f"removed {full}")
        return
    chosen = artifact.set_alias(alias, None if version is None else _version_number(version))
    typer.echo(f"{full} -> v{chosen}")


def _pin(ref: str, pinned: bool) -> None:
    namespace, name = split_ref(ref)
    artifact: Artifact = get_artifact(name, namespace)  # the current one, or a version
    number = artifact.version
    if pinned:
        artifact.pin(number)
    else:
        artifact.unpin(number)
    typer.echo(f"{'pinned' if pinned else 'unpinned'} {artifact.namespace}/{artifact.name}"
               f":v{number}")


@app.command("pin")
def pin(ref: VersionRef) -> None:
    """Keep a version whatever the retention policy says (`catalogstore gc` never removes
    a pinned version)."""
    _pin(ref, True)


@app.command("unpin")
def unpin(ref: VersionRef) -> None:
    """Let retention remove a version again (unless it is current or aliased)."""
    _pin(ref, False)
