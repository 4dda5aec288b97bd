"""``catalogstore retention``: show or set the retention policies that ``gc`` applies."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from catalogstore.artifacts import (
    get_retention,
    reset_retention,
    retention_policies,
    set_retention,
)
from catalogstore.catalog.retention import EVERY_NAMESPACE, RetentionPolicy
from catalogstore.cli.app import app

_NO_LIMIT = "none"


def _limit(option: str, value: str | None, number: type) -> Any:
    """An option's value: ``...`` when not given, ``None`` for ``none``, else a number."""
    if value is None:
        return ...
    if value.strip().lower() == _NO_LIMIT:
        return None
    try:
        return number(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number nor {_NO_LIMIT!r}",
                                 param_hint=option) from None


def _shown(value: float | None) -> str:
    return _NO_LIMIT if value is None else f"{value:g}"


def _line(namespace: str, policy: RetentionPolicy) -> str:
    source = ("its own" if policy.namespace == namespace else
              f"set for {EVERY_NAMESPACE!r}" if policy.namespace == EVERY_NAMESPACE else
              "the built-in default")
    return (f"{namespace:<12} keep_last={_shown(policy.keep_last):<5} "
            f"keep_days={_shown(policy.keep_days):<5} ({source})")


@app.command("retention")
def retention(
    namespace: Annotated[str, typer.Argument(
        metavar="[NAMESPACE]", help=f"The namespace ('{EVERY_NAMESPACE}': every namespace "
        "without a policy of its own); without it, every policy set is listed.")] = "",
    keep_last: Annotated[str | None, typer.Option(
        "--keep-last", metavar="N", help="Keep the last N versions of each artifact (the "
        f"current one counted; '{_NO_LIMIT}': no such limit).")] = None,
    keep_days: Annotated[str | None, typer.Option(
        "--keep-days", metavar="DAYS", help="Keep the versions younger than DAYS "
        f"('{_NO_LIMIT}': no such limit).")] = None,
    reset: Annotated[bool, typer.Option(
        "--reset", help="Remove the namespace's own policy (it gets the default).")] = False,
) -> None:
    """Show or set which versions `catalogstore gc` may remove.

    A version goes when it is both beyond the last --keep-last versions of its artifact
    and older than --keep-days; the current, aliased and pinned versions always stay.
    A namespace without a policy has the one set for '*', else keep_last=10,
    keep_days=30. An option left out keeps its value of the policy in force.
    """
    changes = keep_last is not None or keep_days is not None
    if (changes or reset) and not namespace:
        raise typer.BadParameter(f"name the namespace ('{EVERY_NAMESPACE}' for every one)",
                                 param_hint="NAMESPACE")
    if changes and reset:
        raise typer.BadParameter("--reset takes no --keep-last nor --keep-days",
                                 param_hint="--reset")
    if reset:
        typer.echo(_line(namespace, reset_retention(namespace)))
    elif changes:
        typer.echo(_line(namespace, set_retention(
            namespace, keep_last=_limit("--keep-last", keep_last, int),
            keep_days=_limit("--keep-days", keep_days, float))))
    elif namespace:
        typer.echo(_line(namespace, get_retention(namespace)))
    else:
        policies = retention_policies()
        if EVERY_NAMESPACE not in policies:
            typer.echo(_line(EVERY_NAMESPACE, get_retention(EVERY_NAMESPACE)))
        for name, policy in policies.items():
            typer.echo(_line(name, policy))
