"""``catalogstore reindex``, ``verify`` and ``gc``: reconcile the catalog with the storage.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.filesize import decimal as human_size

from catalogstore import maintenance
from catalogstore.cli.app import app
from catalogstore.cli.output import print_json

_LISTED = 20
"""Artifact names shown per outcome of a reindex (``--json`` has them all)."""

_AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON object.")]
_Grace = Annotated[float, typer.Option(
    "--grace", min=0, metavar="SECONDS",
    help="Staged files younger than this may belong to a writer that has not committed "
         "yet: they are left alone.")]


def _names(label: str, names: list[str]) -> None:
    for name in names[:_LISTED]:
        typer.echo(f"{label:<9}{name}")
    if len(names) > _LISTED:
        typer.echo(f"{label:<9}... and {len(names) - _LISTED} more (--json lists them all)")


@app.command("reindex")
def reindex(
    namespace: Annotated[str, typer.Argument(
        metavar="NAMESPACE", help="Only this namespace (default: every namespace in "
        "storage or in the catalog).")] = "",
    as_json: _AsJson = False,
) -> None:
    """Build or update the catalog from the storage tree and its .artifact.json files.

    For a tree written by Flowdapt or restored from a backup: every folder
    artifacts/NAMESPACE/NAME/ becomes an artifact with its files (size and
    checksum) and metadata, every JSON value with its type; catalog entries whose
    folder or file is gone are removed. Storage is only read. A .artifact.json that
    is not a JSON object or breaks the parser's limits is reported, its artifact
    indexed with its files; bad names and sub-folders are reported and skipped.
    Running it again on an unchanged tree changes nothing. Exits 0 once the tree is
    read, broken entries or not (they are counted on the last line); 1 when it
    cannot run.
    """
    report = maintenance.reindex(namespace or None)
    if as_json:
        print_json(report.to_dict())
        return
    for label, names in (("added", report.added), ("changed", report.changed),
                         ("removed", report.removed)):
        _names(label, names)
    for broken in report.broken:
        typer.echo(f"broken   {broken.path}: {broken.reason}")
    for skipped in report.skipped:
        typer.echo(f"skipped  {skipped.path}: {skipped.reason}")
    hashed = f"{report.files_hashed} file(s) hashed, {human_size(report.bytes_hashed)}"
    typer.echo(f"reindexed {len(report.namespaces)} namespace(s) in {report.seconds:.2f} s: "
               f"{len(report.added)} added, {len(report.changed)} changed, "
               f"{len(report.removed)} removed, {report.unchanged} unchanged, "
               f"{len(report.broken)} broken, {len(report.skipped)} skipped ({hashed})")


@app.command("verify")
def verify(
    namespace: Annotated[str, typer.Argument(
        metavar="NAMESPACE", help="Only this namespace (default: every namespace).")] = "",
    fast: Annotated[bool, typer.Option(
        "--fast", help="Compare sizes only, without reading the files.")] = False,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Roll committed changes forward, rewrite .artifact.json from the "
        "catalog and remove orphaned staged files (committed data is never touched).")
    ] = False,
    grace: _Grace = maintenance.DEFAULT_GRACE,
    as_json: _AsJson = False,
) -> None:
    """Check that the catalog and the storage agree; exit 1 when they do not (after
    --repair: when a difference is left).

    Lists each difference on a line: artifacts or files missing on either side,
    sizes or checksums that differ, a .artifact.json that is missing or differs
    from the catalog's metadata, committed changes not applied yet (a writer killed
    after its commit) and orphaned staged files (a writer killed before). With
    --repair, what the write protocol can fix is fixed; extra files and files whose
    content differs are reported, never deleted.
    """
    report = maintenance.verify(namespace or None, repair, fast=fast, grace=grace)
    if as_json:
        print_json(report.to_dict())
    else:
        for d in report.differences:
            done = " (repaired)" if d.repaired else ""
            typer.echo(f"{d.kind:<19} {d.where or '-'}: {d.detail}{done}")
        _summary(report, repair)
    if not report.ok:
        raise typer.Exit(1)


def _summary(report: maintenance.VerifyReport, repair: bool) -> None:
    checked = (f"{report.artifacts} artifact(s), {report.files} file(s) in "
               f"{len(report.namespaces)} namespace(s) checked "
               f"({'sizes only' if report.fast else 'checksums'}) in {report.seconds:.2f} s")
    if report.staged_in_use:
        checked += (f"; {report.staged_in_use} staged file(s) younger than the grace period "
                    "left alone")
    if not report.differences:
        typer.echo(f"catalog and storage agree: {checked}")
        return
    repaired = sum(d.repaired for d in report.differences)
    typer.echo(f"{len(report.differences)} difference(s), {repaired} repaired: {checked}")
    kinds = {d.kind for d in report.differences if not d.repaired}
    if kinds & {"extra-file", "size", "checksum", "missing-file", "unexpected",
                "missing-version-file"}:
        typer.echo("note: files are reported, never deleted or overwritten: verify does not "
                   "touch committed data")
    if "extra-artifact" in kinds or "missing-artifact" in kinds:
        typer.echo("note: `catalogstore reindex` makes the catalog match the storage tree")
    if not repair and kinds & {"journal", "orphan-staged", "metadata-missing",
                               "metadata-unreadable", "metadata-differs",
                               "metadata-document"}:
        typer.echo("note: `catalogstore verify --repair` rolls the journal forward, rewrites "
                   ".artifact.json (and the metadata document) from the catalog's rows and "
                   "removes orphaned staged files")


@app.command("gc")
def gc(
    grace: _Grace = maintenance.DEFAULT_GRACE,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Change nothing: show what would be removed.")] = False,
) -> None:
    """Finish what crashed writers left, and apply the retention policies.

    Rolls committed changes forward; removes staged files that no commit references
    and that are older than --grace, and object artifacts that a newer value in
    cluster memory made stale. Then removes the versions that each namespace's
    retention policy lets go (`catalogstore retention`; never the current, an aliased
    or a pinned version) and frees the kept bytes no remaining version needs, per
    namespace. Other committed data is never touched.
    """
    report = maintenance.gc(grace, dry_run=dry_run)
    removed, freed = ("to remove", "to free") if dry_run else ("removed", "freed")
    if dry_run:
        typer.echo("dry run: nothing was changed; this is what gc would do")
    typer.echo(f"journal: {report.journal_entries} committed change(s) "
               f"{'to roll' if dry_run else 'rolled'} forward")
    typer.echo(f"objects: {len(report.stale_objects)} stale artifact(s) of older "
               f"generations {removed}")
    for left in report.left:
        typer.echo(f"left     {left.path}: {left.reason}")
    for namespace, why in report.refused_policies.items():
        typer.echo(f"policy   {namespace}: {why}")
    typer.echo(f"staging: {len(report.removed)} orphaned file(s) {removed}, "
               f"{human_size(report.bytes_removed)}; {report.staged_in_use} younger than "
               f"{grace:g} s left alone")
    rows = list(report.retention.items())
    if report.deleted_artifacts.files:
        rows.append(("(deleted artifacts)", report.deleted_artifacts))
    for namespace, reclaimed in rows:
        typer.echo(f"versions: {namespace}: {reclaimed.versions} version(s) {removed}, "
                   f"{reclaimed.files} kept file(s) {freed}, {human_size(reclaimed.bytes)}")
    typer.echo(f"versions: {report.versions_removed} version(s) {removed} and "
               f"{human_size(report.bytes_freed)} {freed} in total")
