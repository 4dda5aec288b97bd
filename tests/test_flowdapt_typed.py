"""Typed metadata against the real Flowdapt (issue 14): both ways, byte for byte.

- Flowdapt writes 1,000 artifacts whose metadata mixes every JSON type (and NaN, which
  it writes as null); ``reindex`` adds all of them, every value with its type, and
  each ``.artifact.json`` is byte for byte what catalogstore would write.
- catalogstore writes typed metadata; Flowdapt reads every value with its type, and
  its rewrite of the file changes no byte; catalogstore's rewrite of a file Flowdapt
  wrote changes no byte either.

Flowdapt runs in a venv of its own (``flowdapt_env``).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from flowdapt_env import flowdapt_interpreter, run_flowdapt

from catalogstore import maintenance
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact, query_artifacts
from catalogstore.record import metadata_to_json

pytestmark = pytest.mark.flowdapt

COUNT = 1000

FLOWDAPT_WRITE = """
common = dict(protocol=args["protocol"], base_path=args["base_path"], **args["params"])
for name, meta in args["artifacts"].items():
    artifact = Artifact.new_artifact(name, args["namespace"], **common)
    artifact.new_file("data.txt", f"payload of {name}")
    for key, value in meta.items():
        artifact.set_meta(key, value)  # Flowdapt rewrites .artifact.json each time
reply(len(args["artifacts"]))
"""

FLOWDAPT_READ_AND_REWRITE = """
common = dict(protocol=args["protocol"], base_path=args["base_path"], **args["params"])
artifact = Artifact.get_artifact(args["name"], namespace=args["namespace"], **common)
meta = artifact.metadata
types = [[k, type(v).__name__] for k, v in meta.items()]
key = next(iter(meta))
artifact.set_meta(key, meta[key])  # the same value: Flowdapt writes the file again
reply({"metadata": meta, "types": types})
"""


@pytest.fixture(scope="session")
def flowdapt_python() -> Path:
    return flowdapt_interpreter()


def flowdapt_args(stack: Any) -> dict[str, Any]:
    protocol = "s3" if stack.storage_url.startswith("s3://") else "file"
    return {"protocol": protocol, "base_path": stack.root, "params": stack.storage_options}


def raw(stack: Any, namespace: str, name: str) -> bytes:
    fs = stack.filesystem()
    fs.invalidate_cache()
    return bytes(fs.cat_file(f"{stack.root.rstrip('/')}/artifacts/{namespace}/{name}/"
                             ".artifact.json"))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 2 else 9)
    if kind == 0:
        return rng.choice(["xgb", "", "ünïcode ✓ \U0001f680", 'q"uote\\', "line\nbreak",
                           "10", "true", "null", "\x1f\x7f"])
    if kind == 1:
        return rng.choice([0, -1, 7, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1])
    if kind == 2:
        return rng.choice([0.5, -0.0, 1e-5, 1.234e-7, 1e16, 1e300, 100.0,
                           rng.random() * 10 ** rng.randrange(-12, 20)])
    if kind in (3, 4):
        return rng.random() < 0.5
    if kind == 5:
        return None
    if kind == 6:
        return float("nan")  # Flowdapt (orjson) writes null
    if kind == 7:
        return rng.uniform(-1, 1)
    if kind == 8:
        return rng.randrange(-1000, 1000)
    if kind in (9, 10):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(4))}


def mixed_metadata(i: int) -> dict[str, Any]:
    rng = random.Random(i)
    meta = {f"key{j}": random_value(rng) for j in rng.sample(range(12), rng.randrange(1, 9))}
    meta["i"] = i
    meta["model"] = "xgb" if i % 20 == 0 else f"m{i % 7}"
    return meta


def flowdapt_view(value: Any) -> Any:
    """What Flowdapt stores for ``value``: NaN as null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list):
        return [flowdapt_view(v) for v in value]
    if isinstance(value, dict):
        return {k: flowdapt_view(v) for k, v in value.items()}
    return value


def deep_types(value: Any) -> Any:
    if isinstance(value, list):
        return [deep_types(v) for v in value]
    if isinstance(value, dict):
        return [(k, deep_types(v)) for k, v in value.items()]
    return type(value).__name__


@pytest.mark.slow
def test_reindex_of_1000_flowdapt_artifacts_keeps_every_type(local_stack, flowdapt_python,
                                                             tmp_path):
    stack = local_stack
    artifacts = {f"run-{i:04d}": mixed_metadata(i) for i in range(COUNT)}
    assert run_flowdapt(flowdapt_python, FLOWDAPT_WRITE, tmp_path, artifacts=artifacts,
                        namespace="fd", **flowdapt_args(stack)) == COUNT

    started = time.perf_counter()
    report = maintenance.reindex()
    took = time.perf_counter() - started
    assert len(report.added) == COUNT
    assert (report.broken, report.skipped, report.changed) == ([], [], [])

    listed = {a.name: a for a in list_artifacts("fd")}
    assert len(listed) == COUNT
    for name, meta in artifacts.items():
        expected = flowdapt_view(meta)
        got = listed[name].metadata
        assert got == expected, name
        assert deep_types(got) == deep_types(expected), name  # 1 stays 1, 1.0 stays 1.0
        assert metadata_to_json(got) == raw(stack, "fd", name), name  # byte for byte
        assert listed[name].get_file("data.txt").read() == f"payload of {name}".encode()
    # Typed queries see the imported types.
    hits = {a.name for a in query_artifacts("meta.model = 'xgb' AND meta.i < 500")}
    assert hits == {f"run-{i:04d}" for i in range(0, 500, 20)}
    nulls = {a.name for a in query_artifacts("meta.key0 = null")}
    assert nulls == {n for n, m in artifacts.items()
                     if "key0" in m and flowdapt_view(m["key0"]) is None}
    assert maintenance.reindex().changes == 0
    assert maintenance.verify().ok
    print(f"\n{COUNT} Flowdapt artifacts reindexed in {took:.2f} s, every type intact")


def test_round_trips_through_flowdapt_change_no_byte(stack, flowdapt_python, tmp_path):
    typed = {"epochs": 10, "lr": 1e-5, "tiny": 1.5e-7, "big": 1e16, "whole": 3.0,
             "final": False, "note": None, "layers": [64, 32, [1.0, None]],
             "cfg": {"opt": "adam", "betas": [0.9, 0.999], "nested": {}}, "text": "é ✓ \"q\"",
             "huge": 2**64 - 1, "nan": float("nan")}
    artifact = new_artifact("ours", "rt")
    artifact.update_meta(typed)
    written = raw(stack, "rt", "ours")
    assert written == metadata_to_json(artifact.metadata)

    # catalogstore -> Flowdapt: every value with its type; Flowdapt's rewrite is identical.
    seen = run_flowdapt(flowdapt_python, FLOWDAPT_READ_AND_REWRITE, tmp_path, name="ours",
                        namespace="rt", **flowdapt_args(stack))
    assert seen["metadata"] == flowdapt_view(typed)
    assert [tuple(t) for t in seen["types"]] == [
        (k, {str: "str", int: "int", float: "float", bool: "bool", type(None): "NoneType",
             list: "list", dict: "dict"}[type(v)]) for k, v in flowdapt_view(typed).items()]
    assert raw(stack, "rt", "ours") == written
    assert maintenance.reindex("rt").changes == 0

    # Flowdapt -> catalogstore: reindexed, then rewritten by catalogstore, byte for byte.
    theirs = {**mixed_metadata(7), **mixed_metadata(11), "model": "xgb"}
    run_flowdapt(flowdapt_python, FLOWDAPT_WRITE, tmp_path, artifacts={"theirs": theirs},
                 namespace="rt", **flowdapt_args(stack))
    original = raw(stack, "rt", "theirs")
    assert maintenance.reindex("rt").added == ["rt/theirs"]
    again = get_artifact("theirs", "rt")
    assert json.loads(original) == again.metadata
    again["model"] = "xgb"  # the same value: catalogstore writes the file again
    assert raw(stack, "rt", "theirs") == original
    assert maintenance.verify("rt").ok
