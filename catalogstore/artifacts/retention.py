"""Retention policies: which versions ``catalogstore gc`` may remove, per namespace.

A version expires when it is both beyond the last ``keep_last`` versions of its
artifact (by number; the current one counts) and older than ``keep_days`` days (by
when it was made); ``None`` is no limit of that kind, so a policy with both ``None``
keeps every version. The current version, aliased versions and pinned versions never
expire. A namespace without a policy of its own has the policy set for ``"*"``, or
else the default: ``keep_last=10, keep_days=30``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalogstore.context import current_namespace

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog
    from catalogstore.catalog.retention import RetentionPolicy


def _catalog() -> Catalog:
    # Late: ``import catalogstore.artifacts`` loads no database library.
    from catalogstore.txn.workspace import get_workspace

    return get_workspace().catalog


def get_retention(namespace: str = "") -> RetentionPolicy:
    """The policy in force in ``namespace`` (default: the current namespace; ``"*"``:
    the one for namespaces without their own). Its ``namespace`` says where it comes
    from: the namespace's own row, ``"*"``, or ``None`` for the built-in default. A row
    edited by hand that breaks the rules keeps every version (``gc`` reports it)."""
    from catalogstore.catalog import retention as rows

    wanted = rows.checked_namespace(namespace) if namespace else current_namespace()
    return rows.effective_policy(*rows.retention_policies(_catalog()), wanted)


def set_retention(namespace: str, *, keep_last: Any = ..., keep_days: Any = ...
                  ) -> RetentionPolicy:
    """Set the policy of ``namespace`` (``"*"``: of every namespace without its own).

    Parameters
    ----------
    keep_last
        Keep the last this many versions of each artifact (a whole number from 1, the
        current one counted), or ``None`` for no such limit; omitted: as the policy in
        force now has it.
    keep_days
        Keep the versions younger than this many days (a number from 0), or ``None``
        for no such limit; omitted: as the policy in force now has it.

    Returns
    -------
    RetentionPolicy
        The namespace's policy now.

    Raises
    ------
    ConfigurationError
        (a ``ValueError``) for a value out of range or of another type.
    InvalidNameError
        for a namespace that breaks the naming rules.
    """
    from catalogstore.catalog import retention as rows

    wanted = rows.checked_namespace(namespace)
    now = get_retention(wanted)
    policy = rows.checked_policy(now.keep_last if keep_last is ... else keep_last,
                                 now.keep_days if keep_days is ... else keep_days, wanted)
    rows.set_retention(_catalog(), wanted, policy)
    return policy


def reset_retention(namespace: str) -> RetentionPolicy:
    """Remove the policy of ``namespace`` (``"*"``: the one for every namespace without
    its own); returns the policy in force there now."""
    from catalogstore.catalog import retention as rows

    wanted = rows.checked_namespace(namespace)
    rows.set_retention(_catalog(), wanted, None)
    return get_retention(wanted)


def retention_policies() -> dict[str, RetentionPolicy]:
    """Every policy set, by namespace (``"*"`` included); rows that break the rules
    (edited by hand) are left out: ``gc`` reports them, and applies none."""
    from catalogstore.catalog import retention as rows

    return rows.retention_policies(_catalog())[0]
