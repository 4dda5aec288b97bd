"""``catalogstore ls``, ``show`` and ``cp``: artifacts as the catalog lists them, and copies."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.filesize import decimal as human_size
from rich.table import Table
from rich.text import Text

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts
from catalogstore.cli.app import app
from catalogstore.cli.output import console, listing, print_json, print_listing, shown, when
from catalogstore.errors import QueryError
from catalogstore.names import validate_file_name, validate_name
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
        "--limit", min=1, help="At most N artifacts.")] = None,
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
        artifacts = list_artifacts(namespace, where=conditions, all_namespaces=all_namespaces,
                                   filter=filter, limit=limit)
    except QueryError as exc:
        raise QueryError(f"invalid --filter: {exc.summary}") from None
    rows = listing(artifacts)
    if as_json:
        print_json(rows)
        return
    scope = "any namespace" if all_namespaces else \
        f"namespace {catalogstore.current_namespace(namespace)!r}"
    matching = " matching " + ", ".join([f"{k}={v}" for k, v in conditions.items()]
                                        + ([filter] if filter else [])) \
        if conditions or filter else ""
    print_listing(rows, f"no artifacts in {scope}{matching}")


def _split_ref(ref: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` (or ``NAME`` in the current namespace) as (namespace, name)."""
    namespace, _, name = ref.rpartition("/")
    return namespace, name


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(
        metavar="NAMESPACE/NAME", help="The artifact (a bare NAME is in the current "
        "namespace).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show an artifact: identity, timestamps, metadata, and files with size and checksum."""
    namespace, name = _split_ref(ref)
    artifact = get_artifact(name, namespace)
    record = artifact.record
    files = get_workspace().catalog.list_files(record.id)
    info: dict[str, Any] = {
        "namespace": record.namespace, "name": record.name,
        "uri": artifact.uri,
        "created_at": when(record.created_at), "updated_at": when(record.updated_at),
        "metadata": record.metadata,
        "files": [{"name": f.name, "size": f.size, "checksum": f.checksum,
                   "updated_at": when(f.updated_at)} for f in files],
    }
    if as_json:
        print_json(info)
        return
    out = console()
    head = Table.grid(padding=(0, 2))
    for key in ("namespace", "name", "uri", "created_at", "updated_at"):
        head.add_row(key.replace("_at", ""), Text(info[key]))
    out.print(head)
    meta = Table("key", "value", title="metadata", title_justify="left")
    for key, value in sorted(record.metadata.items()):
        meta.add_row(Text(key), Text(shown(value)))
    out.print(meta if record.metadata else "metadata: none")
    table = Table("file", "size", "checksum", title="files", title_justify="left")
    table.columns[1].justify = "right"
    for f in files:
        table.add_row(f.name, human_size(f.size), f.checksum)
    out.print(table if files else "files: none")


def _parse_remote(ref: str) -> tuple[str, str, str | None] | None:
    """``cs://NAMESPACE/NAME[/FILE]`` as (namespace, name, file), or ``None`` if local."""
    if not ref.startswith(SCHEME):
        return None
    parts = ref[len(SCHEME):].split("/")
    if len(parts) not in (2, 3):
        raise typer.BadParameter(f"{ref!r} is not {SCHEME}NAMESPACE/NAME or "
                                 f"{SCHEME}NAMESPACE/NAME/FILE")
    namespace = validate_name(parts[0], "namespace")
    name = validate_name(parts[1])
    return namespace, name, validate_file_name(parts[2]) if len(parts) == 3 else None


@app.command("cp")
def cp(
    src: Annotated[str, typer.Argument(
        metavar="SRC", help="Local path or cs:// reference to copy from.")],
    dst: Annotated[str, typer.Argument(
        metavar="DST", help="Local path or cs:// reference to copy to.")],
) -> None:
    """Copy local files into an artifact, or an artifact's files out to local paths.

    One side is a local path, the other an artifact reference: cs://NAMESPACE/NAME
    (the whole artifact) or cs://NAMESPACE/NAME/FILE (one of its files).

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
