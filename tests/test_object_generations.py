"""The object store keeps what it is given, and trusts only what it wrote (issues 12, 13).

Each scenario runs its steps as separate processes, as a workflow's stages do:

- provenance: a hand-written artifact folder holding a malicious pickle and a forged
  ``.artifact.json``, imported by ``catalogstore reindex``, is refused by ``get`` in a
  fresh process and its code never runs (a marker file it would create never
  appears); the same for an object this store put whose bytes were replaced in the
  storage and reindexed; an object written by another tool is read once adopted;
- durable by default: ``put`` in one command, ``get`` in the next returns the value;
  a value whose cluster memory session ended is reported gone, naming the session,
  and one held by another session that is still alive is not (its session is named);
- the newest value wins: A puts 0.5 as an artifact, B puts 0.7, C reads 0.7 (or, when
  B's memory session ended, is told the value is gone), never 0.5;
- objects and user artifacts do not collide (``put``, ``exists``, ``get``, ``delete``,
  ``ls --objects``).

The scenarios of separate commands run on SQLite and PostgreSQL. The many-writers case
(8 processes, 4 keys, a ledger) is in ``test_object_concurrency.py``.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from stacks import stack_param

import catalogstore
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.errors import NotAnObjectError, ObjectNotFoundError, UntrustedObjectError
from catalogstore.object_store import adopt, delete, exists, flush, get, put

TIMEOUT = 120
STACKS = [stack_param("sqlite-local"), stack_param("postgres-local")]
"""The scenarios of separate commands run on both catalogs (issue 13's bar)."""


class Exploit:
    """Unpickling this creates ``marker``: proof that the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def run(code: str, *, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, configured like this test (the environment)."""
    environment = {**os.environ, **(env or {})}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "catalogstore", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def write_folder(root: Path, name: str, data: bytes, meta: dict[str, str]) -> None:
    """An artifact folder as someone with write access to the storage lays one out."""
    folder = root / "artifacts" / "default" / name
    folder.mkdir(parents=True)
    (folder / "object").write_bytes(data)
    (folder / ".artifact.json").write_text(json.dumps(meta))


GET_CODE = """
    import sys
    from catalogstore.object_store import get
    try:
        print(repr(get({key!r})))
    except Exception as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
"""


# -- issue 12: provenance ------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_forged_object_folder_is_never_unpickled(stack, tmp_path):
    marker = tmp_path / "exploited"
    forged = {"value_type": "object", "serializer": "pickle", "serializer_version": "1",
              "python_type": "builtins.dict",
              "signature": "hmac-sha256:" + "0" * 64}
    write_folder(Path(stack.storage_url), "evil", pickle.dumps(Exploit(marker)), forged)
    assert cli("reindex").returncode == 0
    done = run(GET_CODE.format(key="evil"), check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("UntrustedObjectError")
    assert "catalogstore adopt default/evil" in done.stdout
    assert "serializer='pickle'" in done.stdout
    # Reindexing again, exists, and ls change nothing; the pickle never ran.
    assert cli("reindex").returncode == 0
    assert run(GET_CODE.format(key="evil"), check=False).returncode == 3
    assert exists("evil")  # an object, of another tool: listed as one, not decoded
    with pytest.raises(UntrustedObjectError):
        get("evil")
    assert not marker.exists()


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_put_object_replaced_in_storage_is_refused(stack, tmp_path):
    marker = tmp_path / "exploited"
    put("victim", {"safe": True}, artifact_only=True)
    flush()  # its files, written after the commit (issue 19)
    folder = Path(stack.storage_url) / "artifacts" / "default" / "victim"
    (folder / "object").write_bytes(pickle.dumps(Exploit(marker)))
    meta = json.loads((folder / ".artifact.json").read_text())
    meta["python_type"] = "builtins.list"  # whatever the forger likes
    (folder / ".artifact.json").write_text(json.dumps(meta))
    assert cli("reindex").returncode == 0  # the catalog's checksum now matches the bytes
    done = run(GET_CODE.format(key="victim"), check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("UntrustedObjectError") and "changed in the storage" \
        in done.stdout
    assert not marker.exists()
    put("victim", {"safe": "again"}, artifact_only=True)  # a new put is trusted again
    assert run(GET_CODE.format(key="victim")).stdout.strip() == "{'safe': 'again'}"


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_flowdapt_object_is_read_once_adopted(stack):
    # Flowdapt's layout: an `object` file (cloudpickle) and value_type=object, no serializer.
    write_folder(Path(stack.storage_url), "model", pickle.dumps({"weights": [1, 2]}),
                 {"value_type": "object"})
    assert cli("reindex").returncode == 0
    done = run(GET_CODE.format(key="model"), check=False)
    assert done.returncode == 3 and "serializer='cloudpickle'" in done.stdout
    # Deliberately, naming the serializer, as before:
    assert get("model", serializer="cloudpickle") == {"weights": [1, 2]}
    adopted = cli("adopt", "default/model")
    assert adopted.returncode == 0, adopted.stderr
    assert run(GET_CODE.format(key="model")).stdout.strip() == "{'weights': [1, 2]}"
    # Flowdapt still reads the file as a plain pickle.
    folder = Path(stack.storage_url) / "artifacts" / "default" / "model"
    assert pickle.loads((folder / "object").read_bytes()) == {"weights": [1, 2]}
    # Bytes changed after the adoption are refused again.
    (folder / "object").write_bytes(pickle.dumps("swapped"))
    assert cli("reindex").returncode == 0
    assert run(GET_CODE.format(key="model"), check=False).returncode == 3
    with pytest.raises(UntrustedObjectError, match="changed in the storage"):
        get("model")


def test_adopt_errors(local_stack):
    with pytest.raises(ObjectNotFoundError, match="no artifact"):
        adopt("missing")
    new_artifact("plain").new_file("data.csv", content=b"a,b\n")
    with pytest.raises(NotAnObjectError, match="user artifact"):
        adopt("plain")
    done = cli("adopt", "default/missing")
    assert done.returncode != 0 and "no artifact 'missing'" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


# -- issue 13: durable, newest wins --------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_two_commands_put_then_get(stack):
    run("""
        import numpy as np
        from catalogstore.object_store import put
        put("features", np.arange(5.0), namespace="churn")
    """)
    done = run("""
        from catalogstore.object_store import get
        print(get("features", namespace="churn").tolist())
    """)
    assert done.stdout.strip() == "[0.0, 1.0, 2.0, 3.0, 4.0]"


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_value_gone_with_its_session_is_reported_gone(stack):
    run("""
        from catalogstore.cluster_memory._local import LocalMemory
        from catalogstore.object_store import get, put
        with LocalMemory.new_session("stage-one"):
            put("scratch", 1)
            assert get("scratch") == 1
    """)
    done = run(GET_CODE.format(key="scratch"), check=False)
    assert done.returncode == 3
    assert done.stdout.startswith("ObjectNotFoundError")
    assert "local cluster memory session 'stage-one'" in done.stdout
    assert get("scratch", default="gone") == "gone"


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_value_in_another_live_session_is_not_reported_gone(stack):
    with LocalMemory.new_session() as session:  # alive until the block ends
        run('from catalogstore.object_store import put; put("held", 123)')
        outside = run('import os; os.environ.pop("CATALOGSTORE_MEMORY_SESSION")\n'
                      + textwrap.dedent(GET_CODE.format(key="held")), check=False)
        inside = run(GET_CODE.format(key="held"))
    assert outside.returncode == 3 and outside.stdout.startswith("ObjectNotFoundError")
    assert f"session {session!r}, and this process uses" in outside.stdout
    assert "gone" not in outside.stdout
    assert inside.stdout.strip() == "123"


@pytest.mark.parametrize("stack", STACKS, indirect=True)
@pytest.mark.parametrize("b_session", [False, True], ids=["plain", "memory-session"])
def test_newest_value_wins(stack, b_session):
    run('from catalogstore.object_store import put; put("threshold", 0.5, '
        'artifact_only=True)')
    b = """
        from catalogstore.cluster_memory._local import LocalMemory
        from catalogstore.object_store import get, put
        import contextlib
        with LocalMemory.new_session() if {session} else contextlib.nullcontext():
            put("threshold", 0.7)
            assert get("threshold") == 0.7
    """
    run(b.format(session=b_session))
    done = run(GET_CODE.format(key="threshold"), check=False)
    if b_session:  # B's memory is gone: so is its value, and 0.5 stays buried
        assert done.returncode == 3 and done.stdout.startswith("ObjectNotFoundError")
        assert get("threshold", default=None) is None
        assert not exists("threshold")
    else:
        assert done.stdout.strip() == "0.7"
    assert get("threshold", default=None) != 0.5


# -- issue 13: objects and user artifacts -------------------------------------------


def test_objects_and_user_artifacts_do_not_collide(local_stack):
    # Outside any executor's memory session (a Dask client another test left running
    # would take the put into its memory, beside the artifact: no collision either).
    catalogstore.configure(memory_backend="local")
    report = new_artifact("report")
    report.new_file("params.json", content='{"lr": 0.1}')
    report["owner"] = "alice"
    with pytest.raises(NotAnObjectError, match="overwrite=True"):
        put("report", 42)
    assert get_artifact("report")["owner"] == "alice"
    assert get_artifact("report").has_file("params.json")
    assert not exists("report")
    assert get("report", default="none") == "none"
    with pytest.raises(ObjectNotFoundError, match="user artifact"):
        get("report")
    with pytest.raises(NotAnObjectError, match="get_artifact"):
        delete("report")
    assert get_artifact("report").has_file("params.json")
    put("report", 42, overwrite=True)  # explicitly
    assert get("report") == 42 and exists("report")
    assert not get_artifact("report").has_file("params.json")
    delete("report")
    assert not exists("report")
    delete("report")  # missing: a no-op


def test_a_put_to_cluster_memory_does_not_shadow_a_user_artifact(local_stack):
    # A memory that outlives the process (a session, as under an executor): the put
    # would go there, beside the artifact, and get would return it instead.
    catalogstore.configure(memory_backend="local")
    new_artifact("report")["owner"] = "alice"
    with LocalMemory.new_session():
        for strategy in ("fallback", "cluster_memory"):
            with pytest.raises(NotAnObjectError, match="overwrite=True"):
                put("report", 42, strategy=strategy)
        assert get("report", default="none") == "none"
        assert get_artifact("report")["owner"] == "alice"
        put("report", 42, strategy="cluster_memory", overwrite=True)  # the artifact path
        assert get("report") == 42
        assert "owner" not in get_artifact("report").metadata


def test_ls_shows_objects_apart(local_stack):
    new_artifact("dataset").new_file("rows.csv", content=b"a\n")
    put("model", {"w": 1}, artifact_only=True)

    def names(*args: str) -> list[str]:
        done = cli("ls", "--json", *args)
        assert done.returncode == 0, done.stderr
        return sorted(row["name"] for row in json.loads(done.stdout))

    assert names() == ["dataset", "model"]
    assert names("--objects", "hide") == ["dataset"]
    assert names("--objects", "only") == ["model"]
    assert names("--objects", "hide", "--filter", "name LIKE 'd%'") == ["dataset"]
    bad = cli("ls", "--objects", "sometimes")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
