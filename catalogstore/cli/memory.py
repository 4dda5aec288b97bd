"""``catalogstore memory ls`` and ``memory clear``: what cluster memory holds, and freeing it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.filesize import decimal as human_size
from rich.table import Column, Table
from rich.text import Text

import catalogstore
from catalogstore.cli.app import group
from catalogstore.cli.output import console, print_json
from catalogstore.errors import BackendUnavailableError

memory_app = group("memory", "Cluster memory: what it holds, and freeing it.")


def _memory_rows(session: str | None, namespace: str,
                 sizes: dict[str, int]) -> list[dict[str, Any]]:
    return [{"session": session, "namespace": namespace, "key": key, "size": size}
            for key, size in sorted(sizes.items())]


_MemoryNamespace = Annotated[str, typer.Option(
    "--namespace", "-n", help="Namespace (default: the current one).")]
_MemoryBackend = Annotated[str, typer.Option(
    "--backend", "-b", help="local, ray or dask (default: CATALOGSTORE_MEMORY_BACKEND, "
    "else the one detected here); ray joins the running cluster (RAY_ADDRESS or found).")]


def _memory(backend: str, scope: str) -> Any:
    """The cluster memory of ``backend``; for ray, this process first joins the running
    cluster (``ray.init(address="auto")``, or RAY_ADDRESS), as a shell has no driver."""
    from catalogstore.cluster_memory import get_cluster_memory

    if backend == "ray":
        _join_ray()
    return get_cluster_memory(backend, namespace=scope)


def _join_ray() -> None:
    import logging

    try:
        import ray
    except ImportError:
        raise BackendUnavailableError("the ray backend needs Ray: pip install "
                                      "'catalogstore[ray]'") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address="auto", logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BackendUnavailableError(
            "no running Ray cluster to join (ray.init(address='auto')): start one with "
            f"`ray start --head`, or set RAY_ADDRESS ({exc})") from None


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
    and kept for reuse. For ray, the command joins the running cluster itself
    (ray.init(address="auto"), or RAY_ADDRESS).
    """
    from catalogstore.cluster_memory import resolve_backend
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
        memory = _memory(backend, scope)
        local = memory if isinstance(memory, LocalMemory) else None
        rows = _memory_rows(local.session if local else None, scope, memory.sizes())
        if local:
            sessions = [_session_row(local.info())]
    if as_json:
        listing: dict[str, Any] = {"backend": backend, "objects": rows}
        if backend == "local":
            listing["sessions"] = sessions
        print_json(listing)
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
        console().print(table)
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
    from catalogstore.cluster_memory import resolve_backend
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
        gone = sum(not info.alive for info, _ in freed)
        typer.echo(f"{gone} stale session(s) freed" if gone else "no stale sessions")
        return
    backend = resolve_backend(backend or None)
    scope = catalogstore.current_namespace(namespace)
    memory = _memory(backend, scope)
    sizes = memory.sizes()
    memory.clear(namespace=scope)
    where = f"namespace {scope!r} of the {backend} cluster memory"
    if isinstance(memory, LocalMemory):
        pool = memory.release_pool()
        where += f" (session {memory.session}; {human_size(pool)} of free pool released)"
    typer.echo(f"cleared {len(sizes)} object(s), {human_size(sum(sizes.values()))}, "
               f"from {where}")
