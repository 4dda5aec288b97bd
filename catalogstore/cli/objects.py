"""``catalogstore adopt``: trust an object artifact this store did not write (issue 12)."""

from __future__ import annotations

from typing import Annotated

import typer

from catalogstore.cli.app import app
from catalogstore.object_store import adopt as adopt_object


@app.command("adopt")
def adopt(
    ref: Annotated[str, typer.Argument(
        metavar="NAMESPACE/KEY", help="The object (a bare KEY is in the current namespace).")],
    serializer: Annotated[str | None, typer.Option(
        "--serializer", "-s", metavar="NAME",
        help="Serializer that reads it (default: the one its metadata names, else "
             "cloudpickle, Flowdapt's).")] = None,
) -> None:
    """Record in the catalog that an object written by another tool (Flowdapt, or found by
    `reindex`) may be decoded by get() as it is now; its bytes changing later in the
    storage revokes that."""
    namespace, _, key = ref.rpartition("/")
    adopt_object(key, namespace=namespace, serializer=serializer)
    typer.echo(f"adopted {ref}: get({key!r}) now decodes it")
