"""Secrets never shown: planted credentials appear in no log, repr, exception or CLI output.

Planted: a password in the catalog URL (a PostgreSQL server on a closed port, so
every call fails and reports it), an access key and a secret key in the storage
options (an S3 endpoint on a closed port) and the signing key. Everything a user
or an operator could see is captured and searched for them: log records of
every logger at DEBUG (botocore prints request headers there, access key
included, unless catalogstore hides it), exceptions with their whole chain and
traceback, reprs of the settings, workspace and stores, and the stdout and
stderr of the command line.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.catalog.engine import make_engine
from catalogstore.errors import CatalogError, SignatureError
from catalogstore.object_store import flush, get, put
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.storage.filestore import FileStore

PASSWORD = "PLANTED-pw-4a1c"
ACCESS_KEY = "PLANTEDACCESSKEY93"
SECRET_KEY = "PLANTED-secret-key-77f2"
SIGNING_KEY = "PLANTED-signing-key-0e9d41"
PLANTED = (PASSWORD, ACCESS_KEY, SECRET_KEY, SIGNING_KEY)
CLI = [sys.executable, "-m", "catalogstore"]  # wherever the virtual environment lives


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shown(exc: BaseException) -> str:
    """Everything an exception shows: message, repr, and the traceback with its chain."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def _assert_hidden(*texts: str) -> None:
    for text in texts:
        for secret in PLANTED:
            assert secret not in text, f"{secret} shown in: ...{text[:2000]}"


def _storage_options(port: int) -> dict[str, Any]:
    return {"endpoint_url": f"http://127.0.0.1:{port}", "key": ACCESS_KEY,
            "secret": SECRET_KEY, "client_kwargs": {"region_name": "us-east-1"},
            "config_kwargs": {"retries": {"max_attempts": 1}}}


@pytest.mark.slow
def test_catalog_password(closed_port, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = catalogstore.configure(
        catalog_url=f"postgresql://someone:{PASSWORD}@127.0.0.1:{closed_port}/catalog",
        storage_url=str(tmp_path / "storage"), signing_key=SIGNING_KEY)
    shown = [repr(settings), str(settings)]
    for call in (list_artifacts, lambda: new_artifact("x"), lambda: get_artifact("x"),
                 lambda: put("k", 1, artifact_only=True)):
        with pytest.raises(CatalogError, match="could not open") as caught:
            call()
        assert "someone:***@" in str(caught.value)
        shown.append(_shown(caught.value))
    with pytest.raises(Exception) as caught, make_engine(settings.catalog_url).connect():
        pass  # below the API: SQLAlchemy's own error
    shown.append(_shown(caught.value))
    _assert_hidden(*shown, caplog.text, *(r.getMessage() for r in caplog.records))


def test_storage_credentials(closed_port, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = catalogstore.configure(catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                                      storage_url="s3://bucket/root",
                                      storage_options=_storage_options(closed_port))
    from catalogstore.txn.workspace import _workspaces, get_workspace

    shown = [repr(settings), str(settings), repr(get_workspace()),
             repr(FileStore(settings.storage_url, settings.storage_options)),
             repr(list(_workspaces))]  # the cache key of a configuration is a digest
    # Which error an unreachable store raises is the business of the fault tests;
    # here it only must not show a credential.
    # A small value's put commits to the catalog alone: its files, written after, fail.
    for call in (lambda: new_artifact("x"),
                 lambda: (put("k", [1], artifact_only=True), flush())):
        with pytest.raises(Exception) as caught:
            call()
        shown.append(_shown(caught.value))
    # botocore logged the signed request, access key included, but hidden.
    assert "Credential=***/" in caplog.text
    _assert_hidden(*shown, caplog.text, *(r.getMessage() for r in caplog.records))


def test_signing_key(local_stack, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = catalogstore.configure(signing_key=SIGNING_KEY)
    put("model", {"w": 1}, artifact_only=True)
    flush()  # its files, written after the commit (issue 19)
    artifact = get_artifact("model")
    payload = pickle.dumps({"w": 2})
    Path(artifact.get_file("object").path).write_bytes(payload)
    engine = make_engine(local_stack.catalog_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE artifact_files SET checksum = ?, size = ?",
                             (checksum_bytes(payload), len(payload)))
    engine.dispose()
    with pytest.raises(SignatureError) as caught:
        get("model", artifact_only=True)
    shown = [_shown(caught.value), repr(settings), str(settings), settings.model_dump_json(),
             json.dumps(artifact.refresh().metadata)]
    _assert_hidden(*shown, caplog.text, *(r.getMessage() for r in caplog.records))
    # By design the key is in the environment, for worker processes to inherit.
    assert os.environ["CATALOGSTORE_SIGNING_KEY"] == SIGNING_KEY




@pytest.mark.slow
def test_command_line_output(closed_port, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    unreachable_catalog = {
        **base,
        "CATALOGSTORE_CATALOG_URL": f"postgresql://someone:{PASSWORD}@127.0.0.1:"
                                    f"{closed_port}/catalog",
        "CATALOGSTORE_STORAGE_URL": "s3://bucket/root",
        "CATALOGSTORE_STORAGE_OPTIONS": json.dumps(_storage_options(closed_port)),
        "CATALOGSTORE_SIGNING_KEY": SIGNING_KEY,
    }
    unreachable_storage = {**unreachable_catalog,
                           "CATALOGSTORE_CATALOG_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    source = tmp_path / "upload.txt"
    source.write_text("data")
    running = {}
    for name, env, args in [
        ("ls", unreachable_catalog, ["ls"]),
        ("db current", unreachable_catalog, ["db", "current"]),
        ("db upgrade", unreachable_catalog, ["db", "upgrade"]),
        ("verify", unreachable_catalog, ["verify"]),
        ("cp to S3", unreachable_storage, ["cp", str(source), "cs://default/x"]),
        ("verify S3", unreachable_storage, ["verify"]),
    ]:  # all at once: most of their time is spent waiting for retries
        running[name] = subprocess.Popen([*CLI, *args], env=env, cwd=tmp_path, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    outputs = {name: proc.communicate(timeout=120)[0] for name, proc in running.items()}
    assert "someone:***@" in outputs["ls"]  # the database is named, its password is not
    for name, output in outputs.items():
        assert "error: " in output, f"catalogstore {name} did not fail:\n{output}"
        for secret in PLANTED:
            assert secret not in output, f"catalogstore {name} shows {secret}:\n{output}"


# -- URL spellings that SQLAlchemy accepts (issue 12) ------------------------------------

SLASH_PASSWORD = "PLANTED/pw:with/slash-5d2e"
QUERY_PASSWORD = "PLANTED-qs-pw-8c1b"
SPELLED = (SLASH_PASSWORD, QUERY_PASSWORD, "PLANTED", "with/slash-5d2e")


def _spellings(url: str) -> dict[str, str]:
    """``url`` (``postgresql+psycopg://postgres@host:port/db?...``) with a password
    holding ``/`` and ``:``, and with one in the query string (and an sslpassword)."""
    base, _, query = url.partition("?")
    query = f"&{query}" if query else ""
    return {"slash": base.replace("postgres@", f"postgres:{SLASH_PASSWORD}@") + "?" + query[1:],
            "query": f"{base}?password={QUERY_PASSWORD}&sslpassword={QUERY_PASSWORD}{query}"}


def _assert_spelled_hidden(*texts: str) -> None:
    for text in texts:
        for secret in SPELLED:
            assert secret not in text, f"{secret} shown in: ...{text[:2000]}"


@pytest.mark.postgres
@pytest.mark.parametrize("spelling", ["slash", "query"])
def test_password_spellings_on_a_live_catalog(migrated_pg_url, tmp_path, caplog, spelling):
    """The server trusts loopback, so the password is ignored and every command works:
    what they print must not show it."""
    from typer.testing import CliRunner

    from catalogstore.cli import app
    from catalogstore.txn.workspace import get_workspace

    caplog.set_level(logging.DEBUG)
    url = _spellings(migrated_pg_url)[spelling]
    settings = catalogstore.configure(catalog_url=url, storage_url=str(tmp_path / "storage"))
    new_artifact("x").set_meta("k", "v")
    shown = [repr(settings), str(settings), repr(get_workspace()),
             repr(get_workspace().catalog)]
    runner = CliRunner()
    outputs = {}
    for args in (["db", "current"], ["ls"], ["verify"], ["reindex"], ["show", "default/x"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        outputs[" ".join(args)] = result.stdout + result.stderr
    assert "postgres:***@" in outputs["db current"] or "password=***" in outputs["db current"]
    _assert_spelled_hidden(*shown, *outputs.values(), caplog.text,
                           *(r.getMessage() for r in caplog.records))


@pytest.mark.slow
def test_password_spellings_in_error_lines(closed_port, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    running = {}
    for spelling, url in _spellings(
            f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/catalog").items():
        settings = catalogstore.configure(catalog_url=url,
                                          storage_url=str(tmp_path / "storage"))
        shown = [repr(settings), str(settings)]
        with pytest.raises(CatalogError) as caught:
            list_artifacts()
        shown.append(_shown(caught.value))
        _assert_spelled_hidden(*shown, caplog.text, *(r.getMessage() for r in caplog.records))
        env = {**base, "CATALOGSTORE_CATALOG_URL": url,
               "CATALOGSTORE_STORAGE_URL": str(tmp_path / "storage")}
        for args in (["db", "current"], ["db", "upgrade"], ["ls"], ["verify"], ["reindex"]):
            running[(spelling, *args)] = subprocess.Popen(
                [*CLI, *args], env=env, cwd=tmp_path, text=True, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
    outputs = {name: proc.communicate(timeout=120)[0] for name, proc in running.items()}
    for name, output in outputs.items():
        assert output.startswith("error: ") and output.count("\n") == 1, (name, output)
        _assert_spelled_hidden(output)


def test_urls_in_messages_keep_the_punctuation_after_them():
    """The colon, period or comma after a URL in a message is not part of it (it was
    redacted with the URL, shown as ``%3A``)."""
    from catalogstore.settings import redact_text

    assert redact_text("postgresql://u:p%2Fw@h:5432/catalog: failed.") == \
        "postgresql://u:***@h:5432/catalog: failed."
    assert redact_text("(see postgresql://u@h/db?password=abc, then)") == \
        "(see postgresql://u@h/db?password=***, then)"


def test_a_configured_password_with_a_space_is_hidden_in_messages(tmp_path):
    """A password that holds a space or a quote ends the URL as a message shows it: the
    configured secrets are hidden wherever they are."""
    from catalogstore.settings import redact_text

    catalogstore.configure(catalog_url="postgresql+psycopg://u:SEK%20R'T@127.0.0.1:1/c",
                           storage_url=str(tmp_path / "s"))
    line = redact_text("could not connect to postgresql://u:SEK R'T@127.0.0.1:1/c: refused")
    assert "SEK" not in line and "R'T" not in line, line
