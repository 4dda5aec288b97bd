"""``catalogstore ui``: serve the read-only web browser (:mod:`catalogstore.web`)."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from catalogstore.cli.app import app
from catalogstore.errors import BackendUnavailableError

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command("ui")
def ui(
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on (loopback unless --allow-remote).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port to listen on.")] = 8765,
    open_browser: Annotated[bool, typer.Option(
        "--open", help="Open the browser on the printed URL.")] = False,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a --host other than loopback: anyone who can reach "
        "it and has the token reads the whole catalog and storage.")] = False,
    token: Annotated[str | None, typer.Option(
        "--token", metavar="TOKEN", envvar="CATALOGSTORE_UI_TOKEN",
        help="The token the pages ask for (default: a random one, printed).")] = None,
) -> None:
    """Browse the catalog in a web browser (read-only): namespaces, search, artifacts
    with file previews and downloads, health.

    Needs the ui extra: pip install 'catalogstore[ui]'.
    """
    try:
        import uvicorn

        from catalogstore.web.app import create_app
    except ImportError as exc:
        raise BackendUnavailableError(
            f"catalogstore ui needs {exc.name}: pip install 'catalogstore[ui]'") from None
    if host not in _LOOPBACK and not allow_remote:
        raise typer.BadParameter(f"{host!r} is not a loopback address: the browser has no "
                                 "user accounts, only a token; add --allow-remote to serve "
                                 "it there anyway", param_hint="--host")
    if host not in _LOOPBACK:
        typer.echo(f"warning: serving on {host}: whoever reaches it with the token reads "
                   "the whole catalog and storage", err=True)
    token = token or secrets.token_urlsafe(24)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/?token={token}"
    typer.echo(f"catalogstore ui: open {url}")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(create_app(token), host=host, port=port, log_level="warning",
                server_header=False)
