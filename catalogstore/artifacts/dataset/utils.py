"""Helpers of the dataset handlers (Flowdapt's ``artifacts.dataset.utils``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

__all__ = ["split_dataframe"]


def _get_current_executor() -> str | None:
    """The executor this code runs in (``"ray"``, ``"dask"``), ``None`` outside one."""
    from catalogstore.cluster_memory import detect_runtime

    return detect_runtime()


def split_dataframe(dataframe: pandas.DataFrame, n: int) -> list[pandas.DataFrame]:
    """``dataframe`` cut into ``n`` consecutive parts whose lengths differ by at most one
    (the first parts take the remainder).

    Raises
    ------
    ZeroDivisionError
        for ``n <= 0`` (as Flowdapt raises).
    """
    if n <= 0:
        raise ZeroDivisionError(f"cannot split a dataframe into {n} parts")
    size, extra = divmod(len(dataframe), n)
    bounds = [i * size + min(i, extra) for i in range(n + 1)]
    return [dataframe.iloc[bounds[i]:bounds[i + 1]] for i in range(n)]
