"""``catalogstore demo``: the seed's workflow on the embedded defaults."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.filesize import decimal as human_size
from rich.table import Table

from catalogstore.artifacts import list_artifacts
from catalogstore.cli.app import app
from catalogstore.cli.output import console, listing, print_listing
from catalogstore.settings import get_settings, redact_url


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
    from catalogstore.demo.stages import run_artifact_stages
    from catalogstore.demo.workflow import run_workflow

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
    console().print(table)
    run_artifact_stages(typer.echo)
    typer.echo("the catalog now holds:")
    print_listing(listing(list_artifacts(all_namespaces=True)), "no artifacts")


DEMO_KEY = "my_dataframe"


def _stored(size: int | None, where: str) -> str:
    return "-" if size is None else f"{human_size(size)} ({where})"
