"""The ``catalogstore`` command line: schema, listing, copying and the demo.

Configuration comes from the ``CATALOGSTORE_*`` variables (see
:mod:`catalogstore.settings`); with none set, everything lives in an embedded
store under ``./.catalogstore/``. Every failure ends as one ``error: ...`` line
on stderr with exit code 1 (2 for a usage error), never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal as human_size
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup
from typer.exceptions import TyperException

import catalogstore
from catalogstore.artifacts import Artifact, get_artifact, list_artifacts
from catalogstore.catalog.engine import make_engine
from catalogstore.catalog.migrate import current_revision, head_revision, upgrade
from catalogstore.errors import CatalogError, CatalogStoreError, QueryError
from catalogstore.names import validate_file_name, validate_name
from catalogstore.settings import get_settings, redact_url
from catalogstore.workspace import get_workspace

SCHEME = "cs://"
"""Prefix of artifact references in ``cp``: ``cs://NAMESPACE/NAME[/FILE]``."""


class _OneLineErrors(TyperGroup):
    """Ends every failure as one ``error: ...`` line on stderr and an exit code."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        # Always exits with the code, as click's standalone mode would, but formats
        # the failures itself.
        try:
            with _quiet_retries():
                code = super().main(*args, standalone_mode=False, **kwargs)
        except TyperException as exc:  # usage errors, with their exit code 2
            code = _fail(exc.format_message(), exc.exit_code)
        except typer.Abort:
            code = _fail("aborted", 1)
        except (CatalogStoreError, OSError) as exc:
            code = _fail(str(exc), 1)
        sys.exit(code if isinstance(code, int) else 0)


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """Keep the warnings of retries off stderr: the error line, if it comes to one,
    says how many attempts were made ("(4 attempts)")."""
    retries = logging.getLogger("catalogstore.retry")
    propagate = retries.propagate
    retries.propagate = False
    retries.addHandler(handler := logging.NullHandler())
    try:
        yield
    finally:
        retries.removeHandler(handler)
        retries.propagate = propagate


def _fail(message: str, code: int) -> int:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return code


app = typer.Typer(
    cls=_OneLineErrors, invoke_without_command=True, add_completion=False,
    rich_markup_mode="markdown",
    # Rich tracebacks would print local variables, credentials among them.
    pretty_exceptions_enable=False,
    help="Artifacts (files plus metadata) on any fsspec storage, indexed by a SQL catalog. "
         "Configured by the CATALOGSTORE_CATALOG_URL, CATALOGSTORE_STORAGE_URL, "
         "CATALOGSTORE_STORAGE_OPTIONS and CATALOGSTORE_NAMESPACE variables; by default "
         "everything lives under ./.catalogstore/.",
)
db_app = typer.Typer(invoke_without_command=True,
                     help="The catalog database's schema (alembic).")
app.add_typer(db_app, name="db")
memory_app = typer.Typer(invoke_without_command=True,
                         help="Cluster memory: what it holds, and freeing it.")
app.add_typer(memory_app, name="memory")


def _help_without_command(ctx: typer.Context) -> None:
    # Help on stdout and exit 0, where typer's no_args_is_help would make it an error.
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"catalogstore {catalogstore.__version__}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context, version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    _help_without_command(ctx)


@db_app.callback()
def _db(ctx: typer.Context) -> None:
    _help_without_command(ctx)


@memory_app.callback()
def _memory(ctx: typer.Context) -> None:
    _help_without_command(ctx)


def _console() -> Console:
    # Created per call so that it writes to the sys.stdout in force (tests swap it).
    # Piped output has no width to fit: give tables room instead of rich's 80 columns.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=120)


def _when(moment: datetime | None) -> str:
    """An ISO timestamp in UTC (SQLite hands back naive datetimes that are UTC)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


# -- db ---------------------------------------------------------------------------


@contextlib.contextmanager
def _database() -> Iterator[tuple[Engine, str]]:
    """An engine on the configured catalog and its URL without password."""
    url = get_settings().catalog_url
    shown = redact_url(url)
    engine = make_engine(url)
    try:
        yield engine, shown
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CatalogError(f"catalog {shown}: {reason}") from exc
    finally:
        engine.dispose()


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return current_revision(conn)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the catalog's schema to this catalogstore's revision."""
    with _database() as (engine, shown):
        before = _revision(engine)
        upgrade(engine)
        after = _revision(engine)
    if before == after:
        typer.echo(f"catalog {shown}: already at revision {after}")
    else:
        typer.echo(f"catalog {shown}: upgraded from {before or 'an empty database'} "
                   f"to revision {after}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the catalog database and the one this code needs."""
    with _database() as (engine, shown):
        current = _revision(engine)
    head = head_revision()
    state = "up to date" if current == head else "behind: run `catalogstore db upgrade`"
    typer.echo(f"catalog:  {shown}")
    typer.echo(f"database: {current or 'no schema'}")
    typer.echo(f"code:     {head} ({state})")


# -- memory ---------------------------------------------------------------------------


def _memory_rows(session: str | None, namespace: str, sizes: dict[str, int]) -> list[dict]:
    return [{"session": session, "namespace": namespace, "key": key, "size": size}
            for key, size in sorted(sizes.items())]


_MemoryNamespace = Annotated[str, typer.Option(
    "--namespace", "-n", help="Namespace (default: the current one).")]
_MemoryBackend = Annotated[str, typer.Option(
    "--backend", "-b", help="local, ray or dask (default: CATALOGSTORE_MEMORY_BACKEND, "
    "else the one detected here).")]


def _session_row(info: Any) -> dict[str, Any]:
    return {"session": info.name, "owner_pid": info.owner_pid, "alive": info.alive,
            "free_pool_bytes": info.free_bytes, "free_pool_files": info.free_files}


@memory_app.command("ls")
def memory_ls(
    namespace: _MemoryNamespace = "",
    backend: _MemoryBackend = "",
    all_sessions: Annotated[bool, typer.Option(
        "--all-sessions", help="Every session of the local backend on this machine "
        "(yours), every namespace.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """List the objects in cluster memory with their sizes.

    The backend is the one a stage would get here (CATALOGSTORE_MEMORY_BACKEND or
    detected). For the local backend this is the session of CATALOGSTORE_MEMORY_SESSION,
    else of this shell's process group; the free pool is memory released by deletes
    and kept for reuse.
    """
    from catalogstore.cluster_memory import get_cluster_memory, resolve_backend
    from catalogstore.cluster_memory._local import LocalMemory

    backend = resolve_backend(backend or None)
    if all_sessions and backend != "local":
        raise typer.BadParameter(f"--all-sessions is for the local backend only, not {backend}")
    scope = catalogstore.current_namespace(namespace)
    sessions = []
    if all_sessions:
        infos = LocalMemory.sessions()
        rows = [row for info in infos for ns, sizes in info.objects.items()
                if not namespace or ns == scope for row in _memory_rows(info.name, ns, sizes)]
        sessions = [_session_row(info) for info in infos]
    else:
        memory = get_cluster_memory(backend, namespace=scope)
        local = memory if isinstance(memory, LocalMemory) else None
        rows = _memory_rows(local.session if local else None, scope, memory.sizes())
        if local:
            sessions = [_session_row(local.info())]
    if as_json:
        listing: dict[str, Any] = {"backend": backend, "objects": rows}
        if backend == "local":
            listing["sessions"] = sessions
        _print_json(listing)
        return
    if not rows:
        where = "any session" if all_sessions else f"namespace {scope!r}" + (
            f" of session {sessions[0]['session']!r}" if sessions else "")
        typer.echo(f"no objects in {where} ({backend} cluster memory)")
    else:
        table = Table(*(Column(c, no_wrap=True) for c in ("session", "namespace", "key")),
                      Column("size", justify="right", no_wrap=True))
        for row in rows:
            table.add_row(Text(row["session"] or "-"), Text(row["namespace"]),
                          Text(row["key"]), human_size(row["size"]))
        _console().print(table)
    for s in sessions:
        state = "" if s["alive"] else ", stale: its owner is gone"
        typer.echo(f"session {s['session']}: free pool: {human_size(s['free_pool_bytes'])} in "
                   f"{s['free_pool_files']} file(s){state}")


@memory_app.command("clear")
def memory_clear(
    namespace: _MemoryNamespace = "",
    backend: _MemoryBackend = "",
    stale: Annotated[bool, typer.Option(
        "--stale", help="Instead: free the local sessions whose owning process is gone "
        "(killed drivers).")] = False,
) -> None:
    """Remove every object of a namespace from cluster memory, or free stale sessions.

    For the local backend, clearing also gives the session's free pool back.
    """
    from catalogstore.cluster_memory import get_cluster_memory, resolve_backend
    from catalogstore.cluster_memory._local import LocalMemory

    if stale:
        if namespace:
            raise typer.BadParameter("give --namespace or --stale, not both")
        freed = LocalMemory.clear_stale()
        for info, size in freed:
            typer.echo(f"freed what killed writers left in live session {info.name}: "
                       f"{human_size(size)}" if info.alive else
                       f"freed session {info.name} (owner pid {info.owner_pid} is gone): "
                       f"{human_size(size)}")
        stale = sum(not info.alive for info, _ in freed)
        typer.echo(f"{stale} stale session(s) freed" if stale else "no stale sessions")
        return
    backend = resolve_backend(backend or None)
    scope = catalogstore.current_namespace(namespace)
    memory = get_cluster_memory(backend, namespace=scope)
    sizes = memory.sizes()
    memory.clear()
    where = f"namespace {scope!r} of the {backend} cluster memory"
    if isinstance(memory, LocalMemory):
        pool = memory.release_pool()
        where += f" (session {memory.session}; {human_size(pool)} of free pool released)"
    typer.echo(f"cleared {len(sizes)} object(s), {human_size(sum(sizes.values()))}, "
               f"from {where}")


# -- ls and show ----------------------------------------------------------------------


def _parse_where(pairs: list[str] | None) -> dict[str, str]:
    where = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--where")
        where[key] = value
    return where


def _listing(artifacts: list[Artifact]) -> list[dict[str, Any]]:
    """One JSON-ready row per artifact, file counts and sizes from one catalog query."""
    records = [a.record for a in artifacts]
    totals = get_workspace().catalog.file_totals([r.id for r in records])
    return [{"namespace": r.namespace, "name": r.name,
             "files": totals.get(r.id, (0, 0))[0], "size": totals.get(r.id, (0, 0))[1],
             "metadata": r.metadata, "created_at": _when(r.created_at),
             "updated_at": _when(r.updated_at)} for r in records]


_META_LINES = 4
"""Metadata pairs shown per artifact in a listing table."""


def _print_listing(rows: list[dict[str, Any]], empty: str) -> None:
    if not rows:
        typer.echo(empty)
        return
    # Identity columns never wrap; metadata shows one KEY=VALUE per line, cut to fit.
    table = Table(Column("namespace", no_wrap=True), Column("name", no_wrap=True),
                  Column("files", justify="right", no_wrap=True),
                  Column("size", justify="right", no_wrap=True),
                  Column("metadata", overflow="ellipsis", min_width=16),
                  Column("updated (UTC)", no_wrap=True))
    for row in rows:
        pairs = [f"{k}={v}" for k, v in sorted(row["metadata"].items())]
        if len(pairs) > _META_LINES:  # `show` has them all
            pairs[_META_LINES - 1:] = [f"... {len(pairs) - _META_LINES + 1} more"]
        meta = "\n".join(pairs)
        table.add_row(row["namespace"], row["name"], str(row["files"]),
                      human_size(row["size"]), Text(meta),
                      row["updated_at"][:16].replace("T", " "))
    _console().print(table)


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
) -> None:
    """List artifacts with their file count, total size and metadata (reads the catalog only)."""
    if namespace and all_namespaces:
        raise typer.BadParameter("give a NAMESPACE or --all-namespaces, not both")
    conditions = _parse_where(where)
    try:
        artifacts = list_artifacts(namespace, where=conditions, all_namespaces=all_namespaces,
                                   filter=filter, limit=limit)
    except QueryError as exc:
        raise QueryError(f"invalid --filter: {exc.summary}") from None
    rows = _listing(artifacts)
    if as_json:
        _print_json(rows)
        return
    scope = "any namespace" if all_namespaces else \
        f"namespace {catalogstore.current_namespace(namespace)!r}"
    matching = " matching " + ", ".join([f"{k}={v}" for k, v in conditions.items()]
                                        + ([filter] if filter else [])) \
        if conditions or filter else ""
    _print_listing(rows, f"no artifacts in {scope}{matching}")


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
    info = {
        "namespace": record.namespace, "name": record.name,
        "uri": artifact.uri,
        "created_at": _when(record.created_at), "updated_at": _when(record.updated_at),
        "metadata": record.metadata,
        "files": [{"name": f.name, "size": f.size, "checksum": f.checksum,
                   "updated_at": _when(f.updated_at)} for f in files],
    }
    if as_json:
        _print_json(info)
        return
    console = _console()
    head = Table.grid(padding=(0, 2))
    for key in ("namespace", "name", "uri", "created_at", "updated_at"):
        head.add_row(key.replace("_at", ""), Text(info[key]))
    console.print(head)
    meta = Table("key", "value", title="metadata", title_justify="left")
    for key, value in sorted(record.metadata.items()):
        meta.add_row(Text(key), Text(value))
    console.print(meta if record.metadata else "metadata: none")
    table = Table("file", "size", "checksum", title="files", title_justify="left")
    table.columns[1].justify = "right"
    for f in files:
        table.add_row(f.name, human_size(f.size), f.checksum)
    console.print(table if files else "files: none")


# -- cp ------------------------------------------------------------------------------


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


# -- demo ------------------------------------------------------------------------------


@app.command("demo")
def demo(
    executor: Annotated[str, typer.Option(
        "--executor", "-e", help="Where the stages run: local (processes), ray or dask.",
    )] = "local",
) -> None:
    """Run the seed's workflow, each stage in its own worker process, then show the catalog.

    Prepare a DataFrame, use it in a second stage, clear it in a third (the
    Object Store example), then the Artifacts stages. Needs no configuration:
    by default everything lives under ./.catalogstore/. It writes in the 'demo'
    namespace and leaves a run record there.
    """
    from catalogstore.demo import run_artifact_stages
    from catalogstore.demo_workflow import run_workflow

    settings = get_settings()
    typer.echo(f"catalog: {redact_url(settings.catalog_url)}")
    typer.echo(f"storage: {redact_url(settings.storage_url)}")
    reports, _ = run_workflow(executor, typer.echo)
    table = Table("stage", "process", "time", "cluster memory", "artifacts",
                  title=f"where {DEMO_KEY!r} was after each stage", title_justify="left")
    for report in reports:
        table.add_row(report["stage"], str(report["pid"]),
                      f"{report['seconds'] * 1000:.1f} ms",
                      _stored(report["memory_bytes"], report["backend"]),
                      _stored(report["artifact_bytes"], "catalog"))
    _console().print(table)
    run_artifact_stages(typer.echo)
    typer.echo("the catalog now holds:")
    _print_listing(_listing(list_artifacts(all_namespaces=True)), "no artifacts")


DEMO_KEY = "my_dataframe"


def _stored(size: int | None, where: str) -> str:
    return "-" if size is None else f"{human_size(size)} ({where})"


def main() -> None:
    """Entry point of the ``catalogstore`` console script."""
    app()


import catalogstore._cli_query  # noqa: E402  (query)
from catalogstore import _cli_maintenance  # noqa: E402, F401  (reindex, verify, gc)
