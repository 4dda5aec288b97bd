"""Many processes writing one catalog and one artifact lose no update."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.errors import ArtifactExistsError

PROCESSES = 8
KEYS = 20


def _configure(env: dict[str, str]) -> None:
    """Point a pooled worker at the calling test's stack (settings follow the environment)."""
    os.environ.update(env)


def _set_keys(env: dict[str, str], worker: int) -> None:
    _configure(env)
    artifact = get_artifact("shared")
    for i in range(KEYS):
        artifact[f"w{worker}-k{i}"] = str(i)


def _create(env: dict[str, str], worker: int) -> str:
    _configure(env)
    try:
        new_artifact("race")["winner"] = str(worker)
    except ArtifactExistsError as exc:
        return f"exists: {exc}"
    return "created"


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    """Worker processes started once for the module (starting 8 interpreters is slow)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=ctx) as executor:
        yield executor


def _run_all(pool: ProcessPoolExecutor, fn, env: dict[str, str]) -> list:  # type: ignore[no-untyped-def]
    return list(pool.map(fn, [env] * PROCESSES, range(PROCESSES), timeout=300))


def test_concurrent_metadata_writers_lose_nothing(stack, pool):
    new_artifact("shared")
    _run_all(pool, _set_keys, stack.environ())
    expected = {f"w{w}-k{i}": str(i) for w in range(PROCESSES) for i in range(KEYS)}
    artifact = get_artifact("shared")
    assert artifact.metadata == expected
    fs = stack.filesystem()
    fs.invalidate_cache()
    assert json.loads(fs.cat_file(f"{artifact.path}/.artifact.json")) == expected


def test_racing_creators_one_wins(stack, pool):
    results = _run_all(pool, _create, stack.environ())
    assert results.count("created") == 1
    assert all("already exists" in r for r in results if r != "created")
    assert len(get_artifact("race").metadata) == 1
