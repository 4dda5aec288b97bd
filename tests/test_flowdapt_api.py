"""Flowdapt's public API under ``catalogstore.`` (issue 14, point 1).

The signatures are compared with the real Flowdapt's, read by ``inspect`` in its own
venv (``flowdapt_env``): every parameter of every public function, method and
class of ``flowdapt.compute.artifacts`` (with ``dataset`` and ``misc``),
``object_store``, ``cluster_memory`` and the Dask collections module exists here
with the same kind and position; the differences allowed are exactly those of the
README's compatibility table. The behaviours Flowdapt's own tests do not cover
(they are in ``tests/flowdapt_suite/``) are checked after that.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
from flowdapt_env import flowdapt_interpreter, run_flowdapt

import catalogstore
from catalogstore.artifacts import Artifact, ArtifactFile, check_if_artifact_exists, new_artifact
from catalogstore.errors import ArtifactExistsError, SerializationError, SignatureError

# Flowdapt module -> catalogstore module.
MODULES = {
    "flowdapt.compute.artifacts": "catalogstore.artifacts",
    "flowdapt.compute.artifacts.misc": "catalogstore.artifacts.misc",
    "flowdapt.compute.artifacts.dataset": "catalogstore.artifacts.dataset",
    "flowdapt.compute.artifacts.dataset.arrays": "catalogstore.artifacts.dataset.arrays",
    "flowdapt.compute.artifacts.dataset.dataframes": "catalogstore.artifacts.dataset.dataframes",
    "flowdapt.compute.artifacts.dataset.handler": "catalogstore.artifacts.dataset.handler",
    "flowdapt.compute.artifacts.dataset.utils": "catalogstore.artifacts.dataset.utils",
    "flowdapt.compute.object_store": "catalogstore.object_store",
    "flowdapt.compute.cluster_memory": "catalogstore.cluster_memory",
    "flowdapt.compute.executor.dask.collections":
        "catalogstore.artifacts.dataset.dask_collections",
}
# Names a Flowdapt module imports from elsewhere and are not its own API.
IMPORTED = {"Any", "Callable", "Type", "Enum", "Iterator", "AbstractFileSystem", "filesystem",
            "contextmanager", "get_configuration", "get_logger", "get_run_context", "numpy",
            "pandas", "CloudPickleSerializer", "JSONSerializer", "ORJSONSerializer",
            "Serializer", "get_full_path_type", "import_from_string", "annotations", "os", "re",
            "compute", "delayed", "worker_client", "logger", "DaskArray", "DaskDataFrame",
            "NumpyArray", "PandasDataFrame", "concatenate_arrays", "from_numpy_array",
            "from_delayed_array", "from_delayed_dataframe", "from_pandas_dataframe", "ABC",
            "abstractmethod"}
# (qualified name, parameter): why it differs. Exactly these differences are allowed.
DIFFERENCES = {
    ("Artifact.__init__", "*"): "handles are made by the classmethods; the constructor "
                                "takes the workspace and the catalog row",
    ("ArtifactFile.__init__", "*"): "ArtifactFile(artifact, name), the seed's order",
    ("Artifact.get_file", "filename"): "named name, as the seed names it",
    ("Artifact.new_file", "filename"): "named name, as the seed names it",
    ("Artifact.delete_file", "filename"): "named name, as the seed names it",
    ("Artifact.has_file", "filename"): "named name, as the seed names it",
}

DUMP = """
import importlib, inspect
out = {}
for flow in args["modules"]:
    module = importlib.import_module(flow)
    exported = set(getattr(module, "__all__", ()))
    for name in [n for n in vars(module) if not n.startswith("_")]:
        obj = getattr(module, name)
        if name in args["imported"] or inspect.ismodule(obj):
            continue
        # Its own names, and those it re-exports on purpose; not what it imports for use.
        if name not in exported and getattr(obj, "__module__", None) != flow:
            continue
        members = [(name, obj)]
        if inspect.isclass(obj):
            members += [(f"{name}.{m}", v) for m, v in vars(obj).items()
                        if not m.startswith("_") or m == "__init__"]
        for qual, member in members:
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if isinstance(member, property):
                out[f"{flow}:{qual}"] = "property"
                continue
            if not callable(member) or inspect.isclass(member) and qual != name:
                continue
            try:
                sig = inspect.signature(member)
            except (TypeError, ValueError):
                continue
            out[f"{flow}:{qual}"] = [[p.name, p.kind.name] for p in sig.parameters.values()
                                     if p.name not in ("self", "cls")]
reply(out)
"""


def _ours(module: str, qual: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
    return obj


def _differences(flowdapt: dict[str, Any]) -> dict[tuple[str, str], str]:
    """What differs from Flowdapt's signatures: (qualified name, parameter) -> how."""
    found: dict[tuple[str, str], str] = {}
    for where, params in flowdapt.items():
        flow_module, qual = where.split(":")
        try:
            obj = _ours(MODULES[flow_module], qual)
        except AttributeError:
            found[(qual, "*")] = f"missing in {MODULES[flow_module]}"
            continue
        if params == "property":
            if not isinstance(obj, property):
                found[(qual, "*")] = "not a property"
            continue
        if isinstance(obj, (classmethod, staticmethod)):
            obj = obj.__func__
        if inspect.isclass(obj):
            continue
        ours = [p for p in inspect.signature(obj).parameters.values()
                if p.name not in ("self", "cls")]
        names = [p.name for p in ours]
        if qual.endswith("__init__") and names != [name for name, _ in params]:
            found[(qual, "*")] = f"{names} for {params}"
            continue
        for position, (name, kind) in enumerate(params):
            if kind == "VAR_KEYWORD":
                if not any(p.kind.name == kind for p in ours):
                    found[(qual, name)] = "no **kwargs"
                continue
            match = [p for p in ours if p.name == name]
            if not match:
                found[(qual, name)] = "missing"
            elif match[0].kind.name != kind:
                found[(qual, name)] = f"{match[0].kind.name}, not {kind}"
            elif kind == "POSITIONAL_OR_KEYWORD" and names.index(name) != position:
                found[(qual, name)] = f"at {names.index(name)}, not {position}"
    return found


@pytest.mark.flowdapt
def test_every_public_name_has_flowdapt_signature(tmp_path: Path) -> None:
    flowdapt = run_flowdapt(flowdapt_interpreter(), DUMP, tmp_path, modules=list(MODULES),
                            imported=sorted(IMPORTED))
    assert len(flowdapt) > 60, sorted(flowdapt)  # the modules were read
    found = _differences(flowdapt)
    assert set(found) == set(DIFFERENCES), {k: found.get(k, "no difference")
                                            for k in set(found) ^ set(DIFFERENCES)}


# -- behaviours -----------------------------------------------------------------------


def test_artifact_file_new(local_stack: Any) -> None:
    artifact = new_artifact("a")
    file = ArtifactFile.new(artifact, "f.txt", "x")
    assert file.read() == "x" and file.artifact == artifact
    with pytest.raises(FileExistsError):
        ArtifactFile.new(artifact, "f.txt")
    assert ArtifactFile.new(artifact, "empty").read() == b""


def test_exists_follows_other_handles(local_stack: Any) -> None:
    artifact = new_artifact("a")
    other = Artifact.get_artifact("a")
    other.delete()
    assert artifact.exists is False and artifact.is_empty is True and not artifact
    assert check_if_artifact_exists("a") is False
    with catalogstore.transaction():
        fresh = new_artifact("b")
        assert fresh.exists is True  # created by the open transaction
    assert check_if_artifact_exists("b")


def test_open_reads_text_by_default(local_stack: Any) -> None:
    file = new_artifact("a").new_file("f", "héllo")
    with file.open() as stream:
        assert stream.read() == "héllo"


def test_per_call_roots_get_their_own_catalog(local_stack: Any, tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    artifact = Artifact.new_artifact("a", protocol="file", base_path=str(root))
    artifact.new_file("f", b"1")
    assert (root / ".catalogstore" / "catalog.db").is_file()
    assert (root / "artifacts" / "default" / "a" / "f").read_bytes() == b"1"
    assert not Artifact.does_exist("a")  # not in the configured catalog
    # The same folder named again, relative or not, is the same store.
    assert Artifact.get_artifact("a", protocol="file", base_path=str(root)) == artifact
    # The configured storage named explicitly is the configured store.
    configured = Artifact.new_artifact("c", protocol="file", base_path=local_stack.storage_url)
    assert Artifact.does_exist("c") and configured.settings == catalogstore.get_settings()
    memory = Artifact.new_artifact("m", protocol="memory", base_path="per-call")
    assert memory.uri == "memory://per-call/artifacts/default/m"
    memory.delete()


def test_a_handle_travels_to_another_process(local_stack: Any, tmp_path: Path) -> None:
    artifact = Artifact.new_artifact("a", protocol="file", base_path=str(tmp_path / "r"))
    file = artifact.file_handle("part")
    again = pickle.loads(pickle.dumps(file))
    assert again.artifact == Artifact.get_artifact("a", protocol="file",
                                                   base_path=str(tmp_path / "r"))


def test_cluster_memory_functions_and_clear(local_stack: Any) -> None:
    from catalogstore.cluster_memory import (
        check_for_key_in_cluster_memory,
        delete_from_cluster_memory,
        get_cluster_memory_backend,
        get_from_cluster_memory,
        put_in_cluster_memory,
    )

    put_in_cluster_memory("k", 1, backend="local")
    put_in_cluster_memory("k", 2, namespace="other", backend="local")
    assert get_from_cluster_memory("k", backend="local") == 1
    assert check_for_key_in_cluster_memory("k", namespace="other", backend="local")
    assert delete_from_cluster_memory("k", backend="local") is True
    with pytest.raises(KeyError):
        get_from_cluster_memory("k", backend="local")
    memory = get_cluster_memory_backend("local", namespace="bound")
    memory.put("x", 3)
    memory.clear()  # every namespace, as Flowdapt's
    assert not check_for_key_in_cluster_memory("k", namespace="other", backend="local")
    assert memory.namespaces() == []
    with pytest.raises(TypeError):
        get_cluster_memory_backend("local", unknown=1)


def test_save_and_load_hooks(local_stack: Any, tmp_path: Path) -> None:
    from catalogstore.artifacts.misc import json_from_artifact, json_to_artifact
    from catalogstore.object_store import default_load_hook, default_save_hook, get, put

    put("j", {"a": [1]}, strategy="artifact", save_artifact_hook=json_to_artifact("v"))
    assert Artifact.get_artifact("j").list_files()[0].name == "v.json"
    assert get("j", strategy="artifact", load_artifact_hook=json_from_artifact("v")) == {"a": [1]}
    # The default hooks are the store's own layout: get() needs no hook.
    put("o", {1, 2}, strategy="artifact", save_artifact_hook=default_save_hook())
    assert get("o") == {1, 2}
    assert get("o", load_artifact_hook=default_load_hook(), strategy="artifact") == {1, 2}
    # Another storage for the artifact tier, and executor= as the backend's name.
    elsewhere = {"protocol": "file", "base_path": str(tmp_path / "other")}
    put("p", [3], executor="local", strategy="artifact", artifact_params=elsewhere)
    assert get("p", artifact_params=elsewhere, strategy="artifact") == [3]
    assert not Artifact.does_exist("p")
    with pytest.raises(KeyError):
        get("p", strategy="artifact")


def test_default_load_hook_trusts_a_flowdapt_object_only_when_told(local_stack: Any,
                                                                   caplog: Any) -> None:
    import cloudpickle

    from catalogstore.object_store import default_load_hook

    artifact = new_artifact("flowdapt-object")  # as Flowdapt's default save hook writes it
    artifact["value_type"] = "object"
    artifact.new_file("object", cloudpickle.dumps({"x": 1}))
    with pytest.raises(SerializationError, match="serializer"):
        default_load_hook()(artifact)
    assert default_load_hook("cloudpickle")(artifact) == {"x": 1}
    with caplog.at_level(logging.WARNING):
        artifact["value_type"] = "json"
        assert default_load_hook("cloudpickle")(artifact) == {"x": 1}
    assert "default save hook" in caplog.text


def test_pickle_hooks_sign_with_a_key(local_stack: Any) -> None:
    from catalogstore.artifacts.misc import pickle_from_artifact, pickle_to_artifact

    catalogstore.configure(signing_key="k" * 32)
    artifact = new_artifact("p")
    pickle_to_artifact()(artifact, [1, 2])
    assert pickle_from_artifact()(artifact) == [1, 2]
    artifact.new_file("file.pkl", pickle.dumps("tampered"))
    with pytest.raises(SignatureError):
        pickle_from_artifact()(artifact)


def test_duplicate_artifact_is_file_exists(local_stack: Any) -> None:
    Artifact.new_artifact("a")
    with pytest.raises(ArtifactExistsError):
        Artifact.new_artifact("a")


def test_the_configured_storage_named_by_its_parts_is_the_configured_store(tmp_path: Path) -> None:
    from catalogstore.artifacts import _get_values_from_context
    from catalogstore.artifacts.roots import storage_settings

    for url in ("memory:///cfg-root", "memory://cfg-root", str(tmp_path / "s")):
        settings = catalogstore.configure(storage_url=url,
                                          catalog_url=f"sqlite:///{tmp_path / 'c.db'}")
        _, protocol, base_path, params = _get_values_from_context()
        assert storage_settings(protocol, base_path, params) is settings
        assert new_artifact(f"a{len(url)}").settings is settings


@pytest.mark.s3
def test_a_per_call_s3_root_gets_a_catalog_in_the_user_cache(
        local_stack: Any, s3_server: dict[str, Any], s3_bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    where = {"protocol": "s3", "base_path": f"{s3_bucket}/flowdapt", **s3_server}
    artifact = Artifact.new_artifact("a", **where)
    artifact.new_file("f", b"on s3")
    assert artifact.uri == f"s3://{s3_bucket}/flowdapt/artifacts/default/a"
    assert [a.name for a in Artifact.list_artifacts(**where)] == ["a"]
    assert not Artifact.does_exist("a")  # the configured store is another one
    catalogs = list((tmp_path / "cache" / "catalogstore" / "catalogs").glob("*.db"))
    assert len(catalogs) == 1
    assert Artifact.get_artifact("a", **where).get_file("f").read() == b"on s3"
