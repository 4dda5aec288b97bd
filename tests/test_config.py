"""Configuration: variables, configure(), validation, the namespace block, inheritance."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.errors import ConfigurationError, InvalidNameError
from catalogstore.settings import get_settings


def test_zero_configuration_uses_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = get_settings()
    assert settings.catalog_url == f"sqlite:///{tmp_path}/.catalogstore/catalog.db"
    assert settings.storage_url == f"{tmp_path}/.catalogstore/storage"
    assert settings.namespace == "default"
    new_artifact("first").new_file("f", content="x")
    assert (tmp_path / ".catalogstore" / "catalog.db").is_file()
    assert (tmp_path / ".catalogstore/storage/artifacts/default/first/f").read_text() == "x"


def test_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("CATALOGSTORE_CATALOG_URL", f"sqlite:///{tmp_path}/c.db")
    monkeypatch.setenv("CATALOGSTORE_STORAGE_URL", f"file://{tmp_path}/store")
    monkeypatch.setenv("CATALOGSTORE_STORAGE_OPTIONS", '{"auto_mkdir": true}')
    monkeypatch.setenv("CATALOGSTORE_NAMESPACE", "team")
    settings = get_settings()
    assert settings.storage_url == f"{tmp_path}/store"
    assert settings.storage_options == {"auto_mkdir": True}
    assert new_artifact("x").namespace == "team"
    assert (tmp_path / "store/artifacts/team/x/.artifact.json").is_file()


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CATALOGSTORE_CATALOG_URL", "not a url", "CATALOGSTORE_CATALOG_URL"),
    ("CATALOGSTORE_CATALOG_URL", "mysql://u@h/db", "not supported"),
    ("CATALOGSTORE_STORAGE_OPTIONS", "{not json", "CATALOGSTORE_STORAGE_OPTIONS: not valid JSON"),
    ("CATALOGSTORE_STORAGE_OPTIONS", "[1, 2]", "must be a JSON object"),
    ("CATALOGSTORE_NAMESPACE", "../etc", "CATALOGSTORE_NAMESPACE"),
    ("CATALOGSTORE_STORAGE_URL", "  ", "CATALOGSTORE_STORAGE_URL"),
])
def test_bad_settings_name_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[")):
        get_settings()


def test_configure_validates_and_exports(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown setting"):
        catalogstore.configure(catalog="x")
    with pytest.raises(ConfigurationError, match="CATALOGSTORE_CATALOG_URL"):
        catalogstore.configure(catalog_url="nope://")
    settings = catalogstore.configure(catalog_url=f"sqlite:///{tmp_path}/c.db",
                                      storage_url=str(tmp_path / "s"), namespace="ns1")
    assert os.environ["CATALOGSTORE_CATALOG_URL"] == settings.catalog_url
    assert os.environ["CATALOGSTORE_NAMESPACE"] == "ns1"
    assert json.loads(os.environ["CATALOGSTORE_STORAGE_OPTIONS"]) == {}


def test_secrets_are_redacted_in_repr():
    settings = catalogstore.configure(
        catalog_url="postgresql://user:hunter2@db.example/cat",
        storage_url="s3://bucket/root",
        storage_options={"key": "AKIAPLANTED", "secret": "planted-secret", "anon": False},
    )
    shown = repr(settings) + str(settings)
    assert "hunter2" not in shown and "planted-secret" not in shown and "AKIAPLANTED" not in shown
    assert "anon" in shown


def test_namespace_block(local_stack):
    new_artifact("a")
    with catalogstore.namespace("blocky"):
        assert catalogstore.current_namespace() == "blocky"
        new_artifact("a")["k"] = "v"
        with catalogstore.namespace("inner"):
            assert new_artifact("b").namespace == "inner"
        assert [a.name for a in list_artifacts()] == ["a"]
        assert get_artifact("a").metadata == {"k": "v"}
        assert get_artifact("a", namespace="default").metadata == {}
    assert catalogstore.current_namespace() == "default"
    with pytest.raises(InvalidNameError):
        catalogstore.namespace("a/b").__enter__()


def _worker_reads(name: str) -> tuple[str, str]:
    artifact = get_artifact(name)
    return artifact.namespace, artifact.get_file("f").read()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_worker_processes_inherit_configuration(local_stack, method):
    catalogstore.configure(namespace="workers")
    new_artifact(f"shared-{method}").new_file("f", content=f"from driver ({method})")
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        result = pool.submit(_worker_reads, f"shared-{method}").result(timeout=120)
    assert result == ("workers", f"from driver ({method})")


def test_subprocess_inherits_configuration(local_stack):
    catalogstore.configure(namespace="sub")
    code = ("from catalogstore.artifacts import new_artifact; "
            "new_artifact('from-child').new_file('f', content='child')")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert get_artifact("from-child").get_file("f").read() == "child"
