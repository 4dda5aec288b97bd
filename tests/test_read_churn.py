"""Issue 13: reading artifacts while other processes replace, delete and recreate them
gives a value that was written, or a "gone" error (ArtifactNotFoundError,
ArtifactFileNotFoundError) — never a checksum error or a storage error that a
concurrent writer caused. Several real processes on each stack, every value checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from stacks import STACKS

pytestmark = [pytest.mark.parametrize("stack", STACKS, indirect=True), pytest.mark.slow]

SECONDS = 8
KEYS = 3

WORKER = """
import hashlib, json, random, sys, time, traceback
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.errors import AlreadyExistsError, NotFoundError

role, me, seconds, keys = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rng = random.Random(me)
counts = {"ops": 0, "gone": 0, "values": 0, "errors": []}

def value(key, n):
    head = f"{key}|{me}|{n}|" + "x" * rng.randrange(0, 3000)
    return head + "|" + hashlib.sha256(head.encode()).hexdigest()

def check(key, text):
    head, _, digest = text.rpartition("|")
    if not head.startswith(key + "|") or hashlib.sha256(head.encode()).hexdigest() != digest:
        counts["errors"].append(f"{key}: a value never written: {text[:60]!r}")
    else:
        counts["values"] += 1

def write(key, n):
    action = rng.choice(["replace", "replace", "delete", "recreate", "meta"])
    try:
        if action == "replace":
            get_artifact(key, create=True).new_file("v", content=value(key, n))
        elif action == "delete":
            get_artifact(key).delete()
        elif action == "recreate":
            artifact = new_artifact(key)
            with artifact.transaction():
                artifact.new_file("v", content=value(key, n))
                artifact["n"] = n
        else:
            get_artifact(key).set_meta("n", n)
    except (NotFoundError, AlreadyExistsError):  # another writer got there first
        counts["gone"] += 1

def read(key):
    try:
        artifact = get_artifact(key)
        for file in artifact.list_files():
            check(key, file.read(verify=rng.random() < 0.5))
            file.size, file.checksum
        artifact.metadata
        if artifact.has_file("v"):
            with artifact.get_file("v").open("r") as stream:
                check(key, stream.read())
    except NotFoundError:
        counts["gone"] += 1

from catalogstore.txn.workspace import get_workspace
get_workspace().catalog.journal()  # connected and recovered before the clock starts
deadline = time.monotonic() + seconds
n = 0
while time.monotonic() < deadline:
    n += 1
    key = f"k{rng.randrange(keys)}"
    try:
        write(key, n) if role == "writer" else read(key)
    except Exception as exc:
        counts["errors"].append(f"{role} {key}: {type(exc).__name__}: {exc}"[:300])
    counts["ops"] += 1
print(json.dumps(counts))
"""


def test_reads_under_churn_see_values_or_gone(stack):
    env = {**os.environ, **stack.environ()}
    script = textwrap.dedent(WORKER)
    procs = [subprocess.Popen([sys.executable, "-c", script, role, f"{role}-{i}",
                               str(SECONDS), str(KEYS)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i, role in enumerate(["writer", "writer", "reader", "reader", "reader"])]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    errors = [e for r in results for e in r["errors"]]
    reads = [r for r, p in zip(results, procs, strict=True) if "reader" in p.args[3]]
    print(f"\n[{stack.name}] ops {[r['ops'] for r in results]}, values read "
          f"{sum(r['values'] for r in reads)}, gone {sum(r['gone'] for r in reads)}, "
          f"errors {len(errors)}")
    assert errors == [], "\n".join(errors)
    assert sum(r["values"] for r in reads) > 0
    assert sum(r["gone"] for r in reads) > 0
