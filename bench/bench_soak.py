"""Soak: 4 processes mixing object store, metadata, file and query calls on one catalog.

Issue 6. For ``--duration`` seconds (60; 10 with ``--quick``) each of 4 worker
processes (spawn) runs a weighted random mix of operations on one catalog and
one storage folder, on two stacks in turn: a SQLite catalog with local storage
(a scratch folder), and PostgreSQL (a fresh schema on 127.0.0.1:5432, database
``test``, dropped at the end) with local storage.

The operations (weights in ``WEIGHTS``):

- object store, ``artifact_only=True`` so every call goes through the catalog:
  ``put`` of a small dict (pickle, or the JSON serializer), a 256 KiB NumPy array
  (npy) or 384 KiB of bytes (pickle), so one key changes file and serializer from
  one put to the next; ``get`` of the worker's own keys and of other workers'
  keys (racing their puts and deletes); ``exists``; ``delete``;
- object store keys that all workers share (issue 13): ``put`` (in turn as an
  artifact and in the default strategy) and ``delete`` of the same 4 keys by every
  worker, and ``get`` of them, which must return a value some worker put there, or
  nothing; each worker logs its writes with their start and end (one clock for the
  machine), and after the run each key must hold the value of a write that no other
  write followed (the last writer wins), else it is a lost update;
- metadata on two artifacts that all workers share: ``set_meta``,
  ``update_meta`` of several keys in one commit, ``del_meta``; each worker writes
  only its own keys (``w{N}_k{J}``), all of them on the same artifacts at once,
  so a writer that rewrote the whole metadata would lose the others' keys;
- files of an artifact of the worker's own: a file (text or bytes) and a
  metadata key naming its generation written in one ``transaction()``, or both
  removed; reads with ``verify=True``;
- searches: ``query_artifacts`` by name pattern and metadata over the worker's
  own objects, ``list_artifacts`` with ``where=`` and with ``filter=`` over the
  shared artifacts.

Keys are partitioned by worker, so each worker knows what its own reads must
return: a read that disagrees with what it last wrote is a *wrong answer*. It
keeps a ledger of the last value it wrote to each of its keys (or that the key is
deleted). Reads of other workers' keys must return a value that worker could
have written, or nothing.

After all workers have ended the parent checks every ledger entry against the
store (object values and ``exists``, the shared artifacts' metadata as a whole,
the files and metadata of each worker's artifact, no artifact nobody wrote): a
mismatch is a *lost update*. Then it runs ``maintenance.verify`` (the Python API
of ``catalogstore verify``, checksums included) with a grace period of 0: no
writer is alive, so a staged file left behind counts as a difference too.

``--without-shared-keys`` leaves the shared object keys out of the mix: run with
and without it (same seed, same code) to see what they cost in operations per
second (issue 13: at most 10 % fewer).

Printed per stack: operations per second in total and per operation (count,
ops/s, p50 and p99 latency of the catalogstore call), errors, lost updates,
what verify found. Bars, per stack: 0 errors (exceptions raised in a worker,
plus wrong answers), 0 lost updates, 0 differences found by verify.

    .venv/bin/python bench/bench_soak.py [--quick] [--duration S] [--processes N]
        [--only sqlite|postgres] [--seed N] [--dir DIR] [--without-shared-keys]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import statistics
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from _common import (
    KIB,
    exit_status,
    fmt_time,
    make_parser,
    note,
    print_header,
    report_bar,
    temp_store,
)

PROCESSES = 4
NS = "soak"  # the object store's keys
NS_SHARED = "soak-shared"  # artifacts whose metadata every worker writes
NS_FILES = "soak-files"  # one artifact per worker, its files
NS_OBJECTS_SHARED = "soak-objects"  # object store keys every worker puts and deletes
SHARED_OBJECTS = 4
SHARED = ("shared-0", "shared-1")
OBJECT_KEYS = 6  # per worker
META_KEYS = 4  # per worker, on each shared artifact
FILES = ("f0", "f1", "f2")
ARRAY_LEN = 32 * KIB  # float64: 256 KiB
BYTES_LEN = 384 * KIB
SAMPLES = 5  # lost updates and differences shown

WEIGHTS = {
    "put dict": 14, "put array": 4, "put bytes": 3, "get own": 12, "get other": 8,
    "exists": 8, "delete": 5, "set_meta": 12, "update_meta": 6, "del_meta": 2,
    "file write": 6, "file remove": 2, "file read": 4, "query": 6, "list": 4,
    "put shared": 5, "delete shared": 2, "get shared": 4,
}
SHARED_OPS = ("put shared", "delete shared", "get shared")
WRITES = ("put dict", "put array", "put bytes", "delete", "set_meta", "update_meta", "del_meta",
          "file write", "file remove", "put shared", "delete shared")
UNKNOWN = "?"  # a ledger entry whose write raised: its outcome is not known


# -- the values, a function of (owner, key, kind, generation) -------------------------


def object_key(worker: int, index: int) -> str:
    return f"w{worker}-obj-{index}"


def shared_object_key(index: int) -> str:
    return f"shared-obj-{index}"


def shared_object_value(worker: int, index: int, seq: int) -> Any:
    """What ``worker`` puts under the shared key ``index`` at generation ``seq``."""
    return object_value(worker, 100 + index, "dict", seq)


def object_value(worker: int, index: int, kind: str, seq: int) -> Any:
    """What ``worker`` puts under its key ``index`` at generation ``seq``."""
    if kind in ("dict", "json"):
        return {"owner": worker, "key": index, "seq": seq, "pad": "x" * 200}
    if kind == "array":
        import numpy as np

        arr = np.arange(ARRAY_LEN, dtype=np.float64)
        arr[:3] = (worker, index, seq)
        return arr
    header = f"{worker}:{index}:{seq}:".encode()
    return header + bytes(range(256)) * (BYTES_LEN // 256 - 1) + b"\0" * (256 - len(header))


def same_value(got: Any, expected: Any) -> bool:
    import numpy as np

    if isinstance(expected, np.ndarray):
        return isinstance(got, np.ndarray) and got.dtype == expected.dtype \
            and np.array_equal(got, expected)
    return type(got) is type(expected) and got == expected


def plausible(got: Any, worker: int, index: int) -> bool:
    """Whether ``got`` is a value the owner of the key could have put (any generation)."""
    import numpy as np

    try:
        if isinstance(got, dict):
            return same_value(got, object_value(worker, index, "dict", int(got["seq"])))
        if isinstance(got, np.ndarray):
            return same_value(got, object_value(worker, index, "array", int(got[2])))
        if isinstance(got, bytes):
            return same_value(got, object_value(worker, index, "bytes",
                                                int(got.split(b":", 3)[2])))
    except (KeyError, IndexError, ValueError, TypeError):
        return False
    return False


def file_content(worker: int, name: str, seq: int) -> str | bytes:
    """Text on even generations (read back as ``str``), bytes on odd ones."""
    line = f"worker {worker} file {name} generation {seq}\n"
    return line * 50 if seq % 2 == 0 else line.encode() * 400


def describe(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        return f"array{tuple(int(x) for x in value[:3])}"
    if isinstance(value, bytes):
        return f"bytes {value[:20]!r}..."
    return repr(value)[:80]


# -- the worker ---------------------------------------------------------------------

_start: Any = None  # a Barrier of all workers, given to each when its process starts


def _init_worker(start: Any) -> None:
    global _start
    _start = start


@dataclass
class Ledger:
    """What a worker last wrote to each of its keys; ``None``: deleted or never written."""

    objects: dict[str, tuple[str, int] | str | None] = field(default_factory=dict)
    shared: dict[tuple[str, str], str | None] = field(default_factory=dict)
    files: dict[str, int | str | None] = field(default_factory=dict)
    own_meta: dict[str, str | None] = field(default_factory=dict)
    shared_objects: list[tuple[int, int | None, float, float]] = field(default_factory=list)
    """Writes of the shared keys that returned: (index, seq or None for a delete, start,
    end), ``time.monotonic`` (one clock for every process of the machine)."""


@dataclass
class WorkerReport:
    worker: int
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, list[Any]] = field(default_factory=dict)
    """Each kind of error or wrong answer (operation, exception, where): [count, first message]."""
    ledger: Ledger = field(default_factory=Ledger)


class Worker:
    """One process's share of the soak: its keys, its ledger, its random mix."""

    def __init__(self, worker: int, processes: int, seed: int) -> None:
        self.w = worker
        self.processes = processes
        self.rng = random.Random(seed * 1000 + worker)
        self.seq = 0
        self.report = WorkerReport(worker)
        ledger = self.report.ledger
        ledger.objects = {object_key(worker, i): None for i in range(OBJECT_KEYS)}
        ledger.shared = {(a, f"w{worker}_k{j}"): None for a in SHARED for j in range(META_KEYS)}
        ledger.files = dict.fromkeys(FILES)
        ledger.own_meta = {f"file_{name}": None for name in FILES}
        self.files_name = f"w{worker}-files"
        self.ops: dict[str, Callable[[str], None]] = {
            "put dict": self.put, "put array": self.put, "put bytes": self.put,
            "get own": self.get_own, "get other": self.get_other, "exists": self.exists,
            "delete": self.delete, "set_meta": self.set_meta, "update_meta": self.update_meta,
            "del_meta": self.del_meta, "file write": self.file_write,
            "file remove": self.file_remove, "file read": self.file_read,
            "query": self.query, "list": self.listing,
            "put shared": self.put_shared, "delete shared": self.delete_shared,
            "get shared": self.get_shared,
        }

    # -- bookkeeping ----------------------------------------------------------------

    @contextlib.contextmanager
    def timed(self, op: str) -> Iterator[None]:
        """Times the catalogstore call of ``op`` (the checks after it are not timed)."""
        started = time.perf_counter()
        yield
        self.report.latencies[op].append(time.perf_counter() - started)

    def wrong(self, op: str, text: str) -> None:
        self.report.wrong[op] += 1
        self.kind(f"{op}: wrong answer", f"worker {self.w}: {text}")

    def kind(self, kind: str, text: str) -> None:
        entry = self.report.kinds.setdefault(kind, [0, text])
        entry[0] += 1

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def run(self, deadline: float, shared_keys: bool = True) -> None:
        mix = {op: w for op, w in WEIGHTS.items() if shared_keys or op not in SHARED_OPS}
        ops, weights = list(mix), list(mix.values())
        while time.perf_counter() < deadline:
            op = self.rng.choices(ops, weights)[0]
            try:
                self.ops[op](op)
            except Exception as exc:
                self.report.errors[op] += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self.kind(f"{op}: {type(exc).__module__}.{type(exc).__name__} at "
                          f"{os.path.basename(where.filename)}:{where.lineno} in {where.name}",
                          f"worker {self.w}: {str(exc)[:300]}")

    def pick(self, keys: Any) -> Any:
        return self.rng.choice(list(keys))

    # -- the object store -------------------------------------------------------------

    def put(self, op: str) -> None:
        from catalogstore import object_store

        kind = op.removeprefix("put ")
        if kind == "dict" and self.rng.random() < 0.3:
            kind = "json"
        index = self.rng.randrange(OBJECT_KEYS)
        key, seq = object_key(self.w, index), self.next_seq()
        value = object_value(self.w, index, kind, seq)
        self.report.ledger.objects[key] = UNKNOWN
        with self.timed(op):
            object_store.put(key, value, namespace=NS, artifact_only=True,
                             serializer="json" if kind == "json" else None)
        self.report.ledger.objects[key] = (kind, seq)

    def expected_object(self, key: str) -> Any:
        entry = self.report.ledger.objects[key]
        if entry is None:
            return None
        kind, seq = entry  # type: ignore[misc]
        return object_value(self.w, int(key.rsplit("-", 1)[1]), kind, seq)

    def get_own(self, op: str) -> None:
        from catalogstore import object_store

        key = self.pick(k for k, v in self.report.ledger.objects.items() if v != UNKNOWN)
        with self.timed(op):
            got = object_store.get(key, namespace=NS, artifact_only=True, default=None)
        expected = self.expected_object(key)
        if expected is None:
            if got is not None:
                self.wrong(op, f"{key} was deleted, got {describe(got)}")
        elif not same_value(got, expected):
            self.wrong(op, f"{key}: expected {describe(expected)}, got {describe(got)}")

    def get_other(self, op: str) -> None:
        from catalogstore import object_store

        if self.processes < 2:
            return self.get_own("get own")
        owner = self.pick(w for w in range(self.processes) if w != self.w)
        index = self.rng.randrange(OBJECT_KEYS)
        key = object_key(owner, index)
        with self.timed(op):
            got = object_store.get(key, namespace=NS, artifact_only=True, default=None)
        if got is not None and not plausible(got, owner, index):
            self.wrong(op, f"{key}: {describe(got)} is no value its owner wrote")
        return None

    def exists(self, op: str) -> None:
        from catalogstore import object_store

        own = self.rng.random() < 0.5 or self.processes < 2
        if own:
            key = self.pick(k for k, v in self.report.ledger.objects.items() if v != UNKNOWN)
        else:
            key = object_key(self.pick(w for w in range(self.processes) if w != self.w),
                             self.rng.randrange(OBJECT_KEYS))
        with self.timed(op):
            found = object_store.exists(key, namespace=NS, artifact_only=True)
        if own and found != (self.report.ledger.objects[key] is not None):
            self.wrong(op, f"exists({key}) is {found}, the ledger says "
                           f"{self.report.ledger.objects[key]}")

    def delete(self, op: str) -> None:
        from catalogstore import object_store

        # Mostly keys that exist; now and then one that does not (a no-op).
        objects = self.report.ledger.objects
        present = [k for k, v in objects.items() if v is not None]
        key = self.pick(present) if present and self.rng.random() < 0.9 \
            else self.pick(objects)
        objects[key] = UNKNOWN
        with self.timed(op):
            object_store.delete(key, namespace=NS, artifact_only=True)
        objects[key] = None

    # -- object store keys every worker writes ----------------------------------------------

    def put_shared(self, op: str) -> None:
        from catalogstore import object_store

        index, seq = self.rng.randrange(SHARED_OBJECTS), self.next_seq()
        value = shared_object_value(self.w, index, seq)
        start = time.monotonic()
        with self.timed(op):
            object_store.put(shared_object_key(index), value, namespace=NS_OBJECTS_SHARED,
                             artifact_only=self.rng.random() < 0.5)
        self.report.ledger.shared_objects.append((index, seq, start, time.monotonic()))

    def delete_shared(self, op: str) -> None:
        from catalogstore import object_store

        index = self.rng.randrange(SHARED_OBJECTS)
        start = time.monotonic()
        with self.timed(op):
            object_store.delete(shared_object_key(index), namespace=NS_OBJECTS_SHARED)
        self.report.ledger.shared_objects.append((index, None, start, time.monotonic()))

    def get_shared(self, op: str) -> None:
        from catalogstore import object_store

        index = self.rng.randrange(SHARED_OBJECTS)
        with self.timed(op):
            got = object_store.get(shared_object_key(index), namespace=NS_OBJECTS_SHARED,
                                   default=None)
        if got is not None and not (isinstance(got, dict)
                                    and plausible(got, got.get("owner", -1), 100 + index)):
            self.wrong(op, f"{shared_object_key(index)}: {describe(got)} is no value a "
                           "worker put there")

    # -- metadata of the shared artifacts -------------------------------------------------

    def set_meta(self, op: str) -> None:
        from catalogstore.artifacts import get_artifact

        name, key = self.pick(self.report.ledger.shared)
        value = str(self.next_seq())
        self.report.ledger.shared[(name, key)] = UNKNOWN
        with self.timed(op):
            get_artifact(name, NS_SHARED).set_meta(key, value)
        self.report.ledger.shared[(name, key)] = value

    def update_meta(self, op: str) -> None:
        from catalogstore.artifacts import get_artifact

        name = self.pick(SHARED)
        keys = self.rng.sample([f"w{self.w}_k{j}" for j in range(META_KEYS)],
                               self.rng.randint(2, META_KEYS))
        seq = self.next_seq()
        values = {key: str(seq) for key in keys}
        for key in keys:
            self.report.ledger.shared[(name, key)] = UNKNOWN
        with self.timed(op):
            get_artifact(name, NS_SHARED).update_meta(values)
        for key in keys:
            self.report.ledger.shared[(name, key)] = values[key]

    def del_meta(self, op: str) -> None:
        from catalogstore.artifacts import get_artifact

        present = [k for k, v in self.report.ledger.shared.items() if v not in (None, UNKNOWN)]
        if not present:
            return self.set_meta("set_meta")
        name, key = self.pick(present)
        self.report.ledger.shared[(name, key)] = UNKNOWN
        with self.timed(op):
            get_artifact(name, NS_SHARED).del_meta(key)  # MetadataKeyError if it was lost
        self.report.ledger.shared[(name, key)] = None
        return None

    # -- files of the worker's own artifact ---------------------------------------------

    def file_write(self, op: str) -> None:
        from catalogstore.artifacts import get_artifact

        name, seq = self.pick(FILES), self.next_seq()
        ledger = self.report.ledger
        ledger.files[name] = ledger.own_meta[f"file_{name}"] = UNKNOWN
        with self.timed(op):
            artifact = get_artifact(self.files_name, NS_FILES)
            with artifact.transaction():
                artifact.new_file(name, content=file_content(self.w, name, seq))
                artifact.set_meta(f"file_{name}", str(seq))
        ledger.files[name], ledger.own_meta[f"file_{name}"] = seq, str(seq)

    def file_remove(self, op: str) -> None:
        from catalogstore.artifacts import get_artifact

        ledger = self.report.ledger
        present = [n for n, v in ledger.files.items() if v not in (None, UNKNOWN)]
        if not present:
            return self.file_write("file write")
        name = self.pick(present)
        ledger.files[name] = ledger.own_meta[f"file_{name}"] = UNKNOWN
        with self.timed(op):
            artifact = get_artifact(self.files_name, NS_FILES)
            with artifact.transaction():
                artifact.delete_file(name)
                artifact.del_meta(f"file_{name}")
        ledger.files[name] = ledger.own_meta[f"file_{name}"] = None
        return None

    def file_read(self, op: str) -> None:
        from catalogstore.artifacts import get_artifact

        ledger = self.report.ledger
        name = self.pick(n for n, v in ledger.files.items() if v != UNKNOWN)
        with self.timed(op):
            artifact = get_artifact(self.files_name, NS_FILES)
            got = artifact.get_file(name).read(verify=True) if artifact.has_file(name) else None
            meta = artifact.metadata
        seq = ledger.files[name]
        expected = None if seq is None else file_content(self.w, name, seq)  # type: ignore[arg-type]
        if got != expected:
            self.wrong(op, f"{self.files_name}/{name}: expected generation {seq}, got "
                           f"{str(got)[:60]!r}")
        if meta.get(f"file_{name}") != ledger.own_meta[f"file_{name}"]:
            self.wrong(op, f"{self.files_name} file_{name} = {meta.get(f'file_{name}')!r}, "
                           f"the ledger says {ledger.own_meta[f'file_{name}']!r}")

    # -- searches ---------------------------------------------------------------------------

    def query(self, op: str) -> None:
        from catalogstore.artifacts import query_artifacts

        objects = self.report.ledger.objects
        if self.rng.random() < 0.5:
            text = f"name LIKE 'w{self.w}-obj-%'"
            expected = {k for k, v in objects.items() if v is not None}
        else:
            text = f"name LIKE 'w{self.w}-obj-%' AND meta.serializer = 'npy'"
            expected = {k for k, v in objects.items() if v is not None and v[0] == "array"}
        with self.timed(op):
            found = {a.name for a in query_artifacts(text, namespaces=NS)}
        unknown = {k for k, v in objects.items() if v == UNKNOWN}
        if found - unknown != expected - unknown:
            self.wrong(op, f"{text}: found {sorted(found)}, expected {sorted(expected)}")

    def listing(self, op: str) -> None:
        from catalogstore.artifacts import list_artifacts

        key = f"w{self.w}_k{self.rng.randrange(META_KEYS)}"
        values = [v for (_, k), v in self.report.ledger.shared.items()
                  if k == key and v not in (None, UNKNOWN)]
        if not values or any(v == UNKNOWN for (_, k), v in self.report.ledger.shared.items()
                             if k == key):
            return None
        value = self.pick(values)
        expected = {a for a in SHARED if self.report.ledger.shared[(a, key)] == value}
        with self.timed(op):
            if self.rng.random() < 0.5:
                found = list_artifacts(NS_SHARED, where={key: value})
            else:  # numeric: the values are generation numbers
                found = list_artifacts(NS_SHARED, filter=f"meta.{key} = {value}")
        if {a.name for a in found} != expected:
            self.wrong(op, f"{key} = {value}: found {sorted(a.name for a in found)}, "
                           f"expected {sorted(expected)}")
        return None


def soak_worker(worker: int, processes: int, env: dict[str, str], seconds: float,
                seed: int, shared_keys: bool) -> WorkerReport:
    """Run in a spawned process: set up, wait for the others, soak until the deadline."""
    from catalogstore.artifacts import get_artifact
    from catalogstore.settings import reset_configuration
    from catalogstore.txn.workspace import close_workspaces

    for key in [k for k in os.environ if k.startswith("CATALOGSTORE_")]:
        del os.environ[key]
    os.environ.update(env)
    reset_configuration()
    soak = Worker(worker, processes, seed)
    try:
        get_artifact(soak.files_name, NS_FILES, create=True)
        import numpy  # noqa: F401  (imported before the clock starts)

        _start.wait(timeout=300)
        started = time.perf_counter()
        soak.run(started + seconds, shared_keys)
        soak.report.seconds = time.perf_counter() - started
    finally:
        close_workspaces()
    soak.report.latencies = dict(soak.report.latencies)
    return soak.report


# -- the parent: run, check the ledgers, verify --------------------------------------------


@dataclass
class Outcome:
    label: str
    processes: int
    reports: list[WorkerReport]
    crashed: list[str]
    checked: int = 0
    unknown: int = 0
    lost: list[str] = field(default_factory=list)
    verify: Any = None


def run_workers(processes: int, seconds: float, seed: int,
                shared_keys: bool) -> tuple[list[WorkerReport], list[str]]:
    from catalogstore.settings import get_settings

    env = get_settings().to_environ()
    ctx = multiprocessing.get_context("spawn")
    reports, crashed = [], []
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker,
                             initargs=(ctx.Barrier(processes),)) as pool:
        futures = [pool.submit(soak_worker, w, processes, env, seconds, seed, shared_keys)
                   for w in range(processes)]
        for w, future in enumerate(futures):
            try:
                reports.append(future.result(timeout=seconds + 600))
            except Exception as exc:  # the worker died or failed to set up
                crashed.append(f"worker {w}: {type(exc).__name__}: {str(exc)[:300]}")
    return reports, crashed


def check_ledgers(outcome: Outcome) -> None:
    """Compare every ledger entry with the store; a mismatch is a lost update."""
    from catalogstore import object_store
    from catalogstore.artifacts import get_artifact, list_artifacts

    def lost(text: str) -> None:
        outcome.lost.append(text)

    def count(entry: Any) -> bool:
        if entry == UNKNOWN:
            outcome.unknown += 1
            return False
        outcome.checked += 1
        return True

    present_objects: set[str] = set()
    shared_expected: dict[str, dict[str, str]] = {a: {} for a in SHARED}
    shared_unknown: dict[str, set[str]] = {a: set() for a in SHARED}
    for report in outcome.reports:
        w, ledger = report.worker, report.ledger
        for key, entry in ledger.objects.items():
            if not count(entry):
                present_objects.add(key)  # either way
                continue
            index = int(key.rsplit("-", 1)[1])
            expected = None if entry is None else object_value(w, index, *entry)  # type: ignore[misc]
            got = object_store.get(key, namespace=NS, artifact_only=True, default=None)
            found = object_store.exists(key, namespace=NS, artifact_only=True)
            if expected is None and (got is not None or found):
                lost(f"{NS}/{key}: deleted by worker {w}, still holds {describe(got)}")
            elif expected is not None and not (found and same_value(got, expected)):
                lost(f"{NS}/{key}: worker {w} last put {describe(expected)}, the store "
                     f"holds {describe(got)}")
            if expected is not None:
                present_objects.add(key)
        for (name, key), value in ledger.shared.items():
            if count(value):
                if value is not None:
                    shared_expected[name][key] = value
            else:
                shared_unknown[name].add(key)
        artifact = get_artifact(f"w{w}-files", NS_FILES)
        for name, seq in ledger.files.items():
            if not count(seq):
                continue
            got = artifact.get_file(name).read(verify=True) if artifact.has_file(name) else None
            expected = None if seq is None else file_content(w, name, seq)  # type: ignore[arg-type]
            if got != expected:
                lost(f"{NS_FILES}/w{w}-files/{name}: worker {w} last wrote generation {seq}, "
                     f"the store holds {str(got)[:60]!r}")
        meta = artifact.metadata
        for key, value in ledger.own_meta.items():
            if count(value) and meta.get(key) != value:
                lost(f"{NS_FILES}/w{w}-files meta {key}: worker {w} last wrote {value!r}, "
                     f"the store holds {meta.get(key)!r}")
    for name in SHARED:
        meta = get_artifact(name, NS_SHARED).metadata
        for key in sorted(meta.keys() | shared_expected[name].keys()):
            if key not in shared_unknown[name] and meta.get(key) != shared_expected[name].get(key):
                lost(f"{NS_SHARED}/{name} meta {key}: expected "
                     f"{shared_expected[name].get(key)!r}, the store holds {meta.get(key)!r}")
    check_shared_objects(outcome)
    extra = {a.name for a in list_artifacts(NS)} - present_objects
    outcome.lost += [f"{NS}/{name}: an object no ledger expects" for name in sorted(extra)]


def check_shared_objects(outcome: Outcome) -> None:
    """Each shared key holds the value of a last write: one that no write began after."""
    from catalogstore import object_store

    writes: dict[int, list[tuple[int, int | None, float, float]]] = defaultdict(list)
    for report in outcome.reports:
        for index, seq, start, end in report.ledger.shared_objects:
            writes[index].append((report.worker, seq, start, end))
    for index in range(SHARED_OBJECTS):
        key = shared_object_key(index)
        got = object_store.get(key, namespace=NS_OBJECTS_SHARED, default=None)
        last = [(w, seq) for w, seq, _, end in writes[index]
                if not any(start > end for _, _, start, _ in writes[index])]
        allowed = [None if seq is None else shared_object_value(w, index, seq)
                   for w, seq in last] or [None]
        outcome.checked += 1
        if not any(same_value(got, value) if value is not None else got is None
                   for value in allowed):
            outcome.lost.append(f"{NS_OBJECTS_SHARED}/{key}: holds {describe(got)}, the last "
                                f"writes were {[describe(v) for v in allowed][:4]}")


def soak_stack(label: str, processes: int, seconds: float, seed: int,
               shared_keys: bool) -> Outcome:
    """Run the soak on the configured stack, then check the ledgers and verify."""
    from catalogstore.artifacts import new_artifact
    from catalogstore.maintenance import verify
    from catalogstore.settings import get_settings

    for name in SHARED:
        new_artifact(name, NS_SHARED)
    mix = "" if shared_keys else ", without the shared object keys"
    print(f"   {label}: {processes} processes x {seconds:g} s{mix} ...", flush=True)
    reports, crashed = run_workers(processes, seconds, seed, shared_keys)
    outcome = Outcome(label, processes, reports, crashed)
    check_ledgers(outcome)
    # No writer is alive any more: a staged file left behind is an orphan (grace 0).
    outcome.verify = verify(settings=get_settings(), grace=0)
    return outcome


# -- the report ------------------------------------------------------------------------------


def percentile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def print_outcome(outcome: Outcome, seconds: float) -> tuple[int, int, int]:
    """The table and the findings of one stack; returns errors, lost updates, differences."""
    reports = outcome.reports
    elapsed = max((r.seconds for r in reports), default=seconds) or seconds
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    for r in reports:
        for op, samples in r.latencies.items():
            latencies[op] += samples
        errors.update(r.errors)
        wrong.update(r.wrong)
    total = sum(len(s) for s in latencies.values())
    print(f"\n-- {outcome.label}: {len(reports)} processes x {elapsed:.1f} s: {total:,} "
          f"operations, {total / elapsed:,.1f} ops/s")
    print(f"   {'operation':<12} {'count':>7} {'ops/s':>8} {'p50':>10} {'p99':>10} "
          f"{'errors':>7} {'wrong':>6}")
    for op in WEIGHTS:
        samples = latencies.get(op, [])
        if not samples and not errors[op]:
            continue
        p50 = fmt_time(statistics.median(samples)) if samples else "-"
        p99 = fmt_time(percentile(samples, 99)) if samples else "-"
        print(f"   {op:<12} {len(samples):>7,} {len(samples) / elapsed:>8.1f} {p50:>10} "
              f"{p99:>10} {errors[op]:>7} {wrong[op]:>6}")
    print(f"   {'total':<12} {total:>7,} {total / elapsed:>8.1f} {'':>10} {'':>10} "
          f"{sum(errors.values()):>7} {sum(wrong.values()):>6}")
    n_errors = sum(errors.values()) + sum(wrong.values()) + len(outcome.crashed)
    print(f"   errors: {n_errors} ({sum(errors.values())} exceptions, {sum(wrong.values())} "
          f"wrong answers, {len(outcome.crashed)} workers crashed)")
    kinds: dict[str, list[Any]] = {}
    for r in reports:
        for kind, (n, text) in r.kinds.items():
            kinds.setdefault(kind, [0, text])[0] += n
    for text in outcome.crashed:
        print(f"     {text}")
    for kind, (n, text) in sorted(kinds.items(), key=lambda item: -item[1][0]):
        print(f"     {n} x {kind}\n         e.g. {text}")
    writes = sum(len(latencies.get(op, [])) for op in WRITES)
    print(f"   lost updates: {len(outcome.lost)} ({outcome.checked} ledger entries checked: the "
          f"last of {writes:,} writes to each key; {outcome.unknown} skipped: their write raised)")
    for text in outcome.lost[:SAMPLES]:
        print(f"     {text}")
    v = outcome.verify
    state = "clean" if v.ok and not v.differences else f"{len(v.differences)} differences"
    print(f"   verify: {state} ({len(v.namespaces)} namespaces, {v.artifacts} artifacts, "
          f"{v.files} files, {v.bytes_hashed / KIB:,.0f} KiB hashed, {v.staged_in_use} staged "
          f"files in use, {v.seconds:.2f} s)")
    for d in v.differences[:SAMPLES]:
        print(f"     {d.kind} {d.where}: {d.detail}")
    return n_errors, len(outcome.lost), len(v.differences)


def report_bars(name: str, outcome: Outcome | None, seconds: float) -> None:
    if outcome is None:
        report_bar(f"soak-{name}", 1, 0, "stack not available: the soak did not run",
                   at_most=True, unit="runs missing")
        return
    errors, lost, differences = print_outcome(outcome, seconds)
    total = sum(len(s) for r in outcome.reports for s in r.latencies.values())
    report_bar(f"soak-errors-{name}", errors, 0,
               f"(exceptions, wrong answers) in {outcome.processes} processes, "
               f"{total:,} operations", at_most=True, unit="errors")
    report_bar(f"soak-lost-updates-{name}", lost, 0,
               f"of {outcome.checked} ledger entries", at_most=True, unit="lost updates")
    report_bar(f"soak-verify-{name}", differences, 0,
               "found by verify after the soak (checksums, grace 0)", at_most=True,
               unit="differences")


# -- the stacks -------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_stack(parent: str | None) -> Iterator[None]:
    with temp_store(parent):
        yield


@contextlib.contextmanager
def postgres_stack(parent: str | None) -> Iterator[None]:
    from bench_query import postgres_store  # a fresh schema, dropped at the end

    with postgres_store(parent):
        yield


def run_stack(name: str, label: str, stack: Callable[[str | None], Any], args: Any,
              seconds: float) -> None:
    with contextlib.ExitStack() as stack_cm:
        try:
            stack_cm.enter_context(stack(args.dir))
        except Exception as exc:  # the server is not there: reported as a failed bar
            if isinstance(exc, ImportError) or type(exc).__module__.startswith(
                    ("sqlalchemy", "psycopg")):
                note(f"{label} not available: {str(exc).splitlines()[0]}")
                report_bars(name, None, seconds)
                return
            raise
        outcome = soak_stack(label, args.processes, seconds, args.seed,
                             not args.without_shared_keys)
    report_bars(name, outcome, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, ["sqlite", "postgres"])
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds each worker runs (default 60; 10 with --quick)")
    parser.add_argument("--processes", type=int, default=PROCESSES,
                        help=f"worker processes (default {PROCESSES})")
    parser.add_argument("--seed", type=int, default=6, help="seed of the operation mix")
    parser.add_argument("--without-shared-keys", action="store_true",
                        help="leave the object keys all workers share out of the mix")
    args = parser.parse_args(argv)
    seconds = args.duration or (10.0 if args.quick else 60.0)
    print_header("soak: processes mixing put/get/delete, metadata, files and queries")
    if args.only in (None, "sqlite"):
        run_stack("sqlite", "SQLite + local storage", sqlite_stack, args, seconds)
    if args.only in (None, "postgres"):
        run_stack("postgres", "PostgreSQL + local storage", postgres_stack, args, seconds)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
