"""``catalogstore ls``, ``show``, ``cp`` and ``rm``: artifacts as the catalog lists them,
copies, and deletes. ``show`` and ``cp`` also reach an artifact's earlier versions
(``NAME:v3``, ``NAME@prod``: :mod:`catalogstore.artifacts.versions`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.filesize import decimal as human_size
from rich.table import Table
from rich.text import Text

import catalogstore
from catalogstore.artifacts import Artifact, get_artifact, list_artifacts_page
from catalogstore.artifacts.versions import ArtifactVersion
from catalogstore.artifacts.versions import split_ref as split_version
from catalogstore.cli.app import app
from catalogstore.cli.output import (
    VersionRef,
    console,
    listing,
    more_to_list,
    print_json,
    print_listing,
    shown,
    split_ref,
    when,
)
from catalogstore.errors import QueryError, ReadOnlyArtifactError
from catalogstore.names import LATEST, validate_file_name, validate_name
from catalogstore.object_store import delete as delete_object
from catalogstore.object_store import is_object_artifact
from catalogstore.txn.workspace import get_workspace

SCHEME = "cs://"
"""Prefix of artifact references in ``cp``: ``cs://NAMESPACE/NAME[/FILE]``."""


# What `ls --objects` adds to the filter (issue 13). The metadata names an object store's
# artifact, which is all a listing needs; whether one may be decoded is get()'s concern.
_OBJECT_FILTERS = {"show": "", "hide": "NOT meta.value_type = 'object'",
                   "only": "meta.value_type = 'object'"}


def _parse_where(pairs: list[str] | None) -> dict[str, str]:
    where = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--where")
        where[key] = value
    return where


@app.command("ls")
def ls(
    namespace: Annotated[str, typer.Argument(
        metavar="NAMESPACE",
        help="Namespace to list (default: CATALOGSTORE_NAMESPACE or 'default').")] = "",
    where: Annotated[list[str] | None, typer.Option(
        "--where", "-w", metavar="KEY=VALUE",
        help="Keep artifacts whose metadata has KEY equal to VALUE (repeatable).")] = None,
    all_namespaces: Annotated[bool, typer.Option(
        "--all-namespaces", "-A", help="List every namespace.")] = False,
    filter: Annotated[str | None, typer.Option(
        "--filter", "-f", metavar="FILTER",
        help="Keep artifacts matching FILTER, in the language of `catalogstore query`.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="At most N artifacts; when more exist, a last line says so "
        "and gives the --after CURSOR of the next page.")] = None,
    after: Annotated[str | None, typer.Option(
        "--after", metavar="CURSOR", help="Continue after the page that printed CURSOR "
        "(with the same NAMESPACE and filters).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    objects: Annotated[str, typer.Option(
        "--objects", metavar="show|hide|only",
        help="The object store's artifacts (value_type=object): listed with the others "
             "(show, the default), left out (hide), or listed alone (only).")] = "show",
) -> None:
    """List artifacts with their file count, total size and metadata (reads the catalog only)."""
    if namespace and all_namespaces:
        raise typer.BadParameter("give a NAMESPACE or --all-namespaces, not both")
    if objects not in _OBJECT_FILTERS:
        raise typer.BadParameter("use show, hide or only", param_hint="--objects")
    conditions = _parse_where(where)
    shown = _OBJECT_FILTERS[objects]
    if shown:
        filter = f"({filter}) AND {shown}" if filter else shown
    try:
        page = list_artifacts_page(namespace, where=conditions, all_namespaces=all_namespaces,
                                   filter=filter, limit=limit, after=after)
    except QueryError as exc:
        raise QueryError(f"invalid --filter: {exc.summary}") from None
    rows = listing(list(page))
    if as_json:
        print_json(rows)
        more_to_list(page.next, err=True)  # stdout stays one JSON list
        return
    scope = "any namespace" if all_namespaces else \
        f"namespace {catalogstore.current_namespace(namespace)!r}"
    matching = " matching " + ", ".join([f"{k}={v}" for k, v in conditions.items()]
                                        + ([filter] if filter else [])) \
        if conditions or filter else ""
    print_listing(rows, f"no artifacts in {scope}{matching}")
    more_to_list(page.next)


@app.command("show")
def show(
    ref: VersionRef,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show an artifact, or one of its versions: identity, version and aliases,
    timestamps, metadata, and files with size and checksum.

    For a version, updated is when it was committed, and metadata and files are as they
    were then.
    """
    namespace, name = split_ref(ref)
    info = _shown(get_artifact(name, namespace))
    if as_json:
        print_json(info)
        return
    out = console()
    head = Table.grid(padding=(0, 2))
    version = f"{info['version']}" + (" (current)" if info["current"] else "") + \
        (", pinned" if info["pinned"] else "")
    for key, value in (("namespace", info["namespace"]), ("name", info["name"]),
                       ("version", version), ("aliases", ", ".join(info["aliases"]) or "none"),
                       ("uri", info["uri"]), ("created", info["created_at"]),
                       ("updated", info["updated_at"])):
        head.add_row(key, Text(value))
    out.print(head)
    meta = Table("key", "value", title="metadata", title_justify="left")
    for key, value in sorted(info["metadata"].items()):
        meta.add_row(Text(key), Text(shown(value)))
    out.print(meta if info["metadata"] else "metadata: none")
    table = Table("file", "size", "checksum", title="files", title_justify="left")
    table.columns[1].justify = "right"
    for f in info["files"]:
        table.add_row(f["name"], human_size(f["size"]), f["checksum"])
    out.print(table if info["files"] else "files: none")


def _shown(artifact: Artifact) -> dict[str, Any]:
    """What ``show`` prints of an artifact's current version, or of an earlier one."""
    record = artifact.record
    if isinstance(artifact, ArtifactVersion):
        version = artifact.info
        files, metadata, updated = list(version.files.values()), version.metadata, \
            version.created_at
    else:
        latest = get_artifact(record.name, record.namespace, alias=LATEST)
        assert isinstance(latest, ArtifactVersion)
        version = latest.info
        files, metadata, updated = get_workspace().catalog.list_files(record.id), \
            record.metadata, record.updated_at
    return {
        "namespace": record.namespace, "name": record.name, "version": version.version,
        "current": version.current, "aliases": list(version.aliases),
        "pinned": version.pinned, "uri": artifact.uri,
        "created_at": when(record.created_at), "updated_at": when(updated),
        "metadata": metadata,
        "files": [{"name": f.name, "size": f.size, "checksum": f.checksum,
                   "updated_at": when(f.updated_at)} for f in files],
    }


def _parse_remote(ref: str) -> tuple[str, str, str | None] | None:
    """``cs://NAMESPACE/NAME[/FILE]`` as (namespace, name, file), or ``None`` if local;
    NAME may name a version (``NAME:v3``, ``NAME@prod``)."""
    if not ref.startswith(SCHEME):
        return None
    parts = ref[len(SCHEME):].split("/")
    if len(parts) not in (2, 3):
        raise typer.BadParameter(f"{ref!r} is not {SCHEME}NAMESPACE/NAME or "
                                 f"{SCHEME}NAMESPACE/NAME/FILE")
    namespace = validate_name(parts[0], "namespace")
    validate_name(split_version(parts[1])[0])
    return namespace, parts[1], validate_file_name(parts[2]) if len(parts) == 3 else None


@app.command("cp")
def cp(
    src: Annotated[str, typer.Argument(
        metavar="SRC", help="Local path or cs:// reference to copy from.")],
    dst: Annotated[str, typer.Argument(
        metavar="DST", help="Local path or cs:// reference to copy to.")],
) -> None:
    """Copy local files into an artifact, or an artifact's files out to local paths.

    One side is a local path, the other an artifact reference: cs://NAMESPACE/NAME
    (the whole artifact) or cs://NAMESPACE/NAME/FILE (one of its files). To copy out of
    an earlier version, name it after NAME: cs://NAMESPACE/NAME:v3/FILE or
    cs://NAMESPACE/NAME@prod (versions are never written).

    Local to artifact: a file is stored under its own name (or FILE); a folder's
    files (no sub-folders) are stored in one transaction, all or none. The artifact
    is created when missing. Artifact to local: cs://NAMESPACE/NAME copies every file
    into the folder DST (created when missing); cs://NAMESPACE/NAME/FILE copies one
    file to DST, or into DST when it is a folder. Files stream in chunks and are
    checked against their checksums; a progress bar shows on a terminal.
    """
    source, target = _parse_remote(src), _parse_remote(dst)
    if target is not None and source is None:
        _upload(src, *target)
    elif source is not None and target is None:
        _download(*source, dst)
    else:
        raise typer.BadParameter(f"one of SRC and DST must be a local path and the other a "
                                 f"{SCHEME}NAMESPACE/NAME[/FILE] reference")


def _upload(src: str, namespace: str, name: str, file_name: str | None) -> None:
    if split_version(name)[0] != name:
        raise ReadOnlyArtifactError(f"{SCHEME}{namespace}/{name} is a version: versions "
                                    f"never change (copy into {SCHEME}{namespace}/"
                                    f"{split_version(name)[0]})")
    # One transaction with the creation: a refused upload leaves no empty artifact behind.
    with catalogstore.transaction():
        files = get_artifact(name, namespace, create=True).upload(src, file_name)
    total = sum(f.size for f in files)
    typer.echo(f"copied {len(files)} file(s), {human_size(total)}, to "
               f"{SCHEME}{namespace}/{name}")


def _download(namespace: str, name: str, file_name: str | None, dst: str) -> None:
    artifact = get_artifact(name, namespace)
    if file_name is None:
        paths = artifact.download(dst)
    else:
        paths = [artifact.get_file(file_name).download(dst)]
    total = sum(p.stat().st_size for p in paths)
    typer.echo(f"copied {len(paths)} file(s), {human_size(total)}, to {dst}")


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, yes: bool) -> None:
    """Go on with ``--yes``; else ask on a terminal (no: "aborted", exit 1) and refuse
    without one (exit 2), rather than wait for an answer nobody can type."""
    if yes:
        return
    if not stdin_is_terminal():
        raise typer.BadParameter(f"{question}: refused without --yes (no terminal to ask on)")
    typer.confirm(f"{question}?", abort=True)


@app.command("rm")
def rm(
    ref: Annotated[str, typer.Argument(
        metavar="NAMESPACE/NAME", help="The artifact (a bare NAME is in the current "
        "namespace).")],
    files: Annotated[list[str] | None, typer.Option(
        "--file", "-f", metavar="FILE",
        help="Remove only this file of the artifact (repeatable; all in one commit).")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")
    ] = False,
) -> None:
    """Delete an artifact with its files and metadata, or some of its files.

    An object store's value (value_type=object) is deleted by the object store's rules:
    its artifact goes with the key's record in one commit (a copy of the value in cluster
    memory, if any, stays the key's value: `memory clear` removes it). Its files are not
    removed one by one.
    """
    namespace, name = split_ref(ref)
    artifact = get_artifact(name, namespace)
    record = artifact.record
    full = f"{record.namespace}/{record.name}"
    is_object = is_object_artifact(artifact)
    if files:
        if is_object:
            raise typer.BadParameter(f"{full} is an object store's value: its files go only "
                                   "with the whole key (rm without --file)")
        for file_name in files:  # each checked before the question
            artifact.get_file(validate_file_name(file_name))
        confirm(f"delete {len(files)} file(s) of {full}", yes)
        with catalogstore.transaction():
            artifact = get_artifact(name, namespace)
            for file_name in files:
                artifact.delete_file(file_name)
        typer.echo(f"deleted {', '.join(files)} from {full}")
        return
    count = len(artifact)
    kind = "object" if is_object else "artifact"
    confirm(f"delete {kind} {full} with its {count} file(s)", yes)
    if is_object:
        delete_object(record.name, namespace=record.namespace, strategy="artifact")
    else:
        artifact.delete()
    typer.echo(f"deleted {kind} {full}")
