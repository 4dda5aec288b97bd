"""Fixtures: the stacks (a catalog and a storage) the tests run on, with real services.

- catalog ``sqlite``: a SQLite file under ``tmp_path``; ``postgres``: the PostgreSQL
  server on 127.0.0.1:5432 (database ``test``), in a schema of its own per test.
- storage ``local``: a folder under ``tmp_path``; ``s3``: S3 through a moto server
  started on loopback once per session, in a bucket of its own per test.

``stack`` runs on ``sqlite-local`` and ``postgres-s3``; a module parametrises it over
the whole matrix with ``stacks.ALL_STACKS``. Each parameter carries the marks of the
servers it needs (``postgres``, ``s3``), so ``-m "not postgres"`` needs no server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from stacks import STACKS


def _needs_flowdapt(item: pytest.Item) -> bool:
    return "flowdapt_python" in getattr(item, "fixturenames", ()) or \
        item.nodeid.startswith("tests/test_flowdapt_api.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Flowdapt venv (built once per machine: ~100 s) is built in the background from
    the start, and the files of the tests that need it run last, so that no worker
    waits for it (``--dist loadfile`` runs a file on one worker, in collection order)."""
    files = {item.path for item in items if _needs_flowdapt(item)}
    if not files:
        return
    from flowdapt_env import build_in_background

    build_in_background()
    items[:] = [i for i in items if i.path not in files] + [i for i in items if i.path in files]


PG_ADMIN_URL = os.environ.get(
    "CATALOGSTORE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Stack:
    """A configured catalog + storage pair, as a test sees it."""

    name: str
    catalog_url: str
    storage_url: str
    storage_options: dict[str, Any]

    def environ(self) -> dict[str, str]:
        import json

        return {
            "CATALOGSTORE_CATALOG_URL": self.catalog_url,
            "CATALOGSTORE_STORAGE_URL": self.storage_url,
            "CATALOGSTORE_STORAGE_OPTIONS": json.dumps(self.storage_options),
        }

    def filesystem(self) -> Any:
        """The raw fsspec filesystem of the storage, to look behind the API."""
        import fsspec

        fs, _ = fsspec.core.url_to_fs(self.storage_url, **self.storage_options)
        return fs

    @property
    def root(self) -> str:
        import fsspec

        return fsspec.core.url_to_fs(self.storage_url, **self.storage_options)[1]


@pytest.fixture(autouse=True)
def _clean_configuration(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts unconfigured, and leaves no workspace or variable behind."""
    from catalogstore import settings

    for key in list(os.environ):
        if key.startswith("CATALOGSTORE_"):
            monkeypatch.delenv(key)
    settings.reset_configuration()
    yield
    _close_process()
    for key in list(os.environ):  # configure() exports its settings for child processes
        if key.startswith("CATALOGSTORE_"):
            del os.environ[key]
    settings.reset_configuration()


def _close_process() -> None:
    """What this process's exit does: end its runs, write its queued files, close its
    workspaces (before a test's catalog or storage is removed)."""
    from catalogstore.txn.runs import end_process_runs
    from catalogstore.txn.workspace import close_workspaces

    end_process_runs()
    close_workspaces()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 (a real HTTP S3 API), for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {
        "endpoint_url": f"http://{host}:{port}",
        "key": "testing-access-key",
        "secret": "testing-secret-key",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    yield options
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: dict[str, Any]) -> str:
    """A fresh bucket; returns its name."""
    import boto3

    name = f"cs-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=s3_server["endpoint_url"], region_name="us-east-1",
        aws_access_key_id=s3_server["key"], aws_secret_access_key=s3_server["secret"],
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A catalog URL on the PostgreSQL server, in a schema that only this test uses."""
    from sqlalchemy import create_engine, text

    schema = f"cs_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    _close_process()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def migrated_pg_url(pg_url: str) -> str:
    """:func:`pg_url`, with the catalog's schema made (as ``catalogstore db upgrade`` does)."""
    from catalogstore.catalog.engine import make_engine
    from catalogstore.catalog.migrate import upgrade

    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    return pg_url


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, tmp_path: Any) -> Stack:
    """A configured, empty catalog and storage on each stack in turn."""
    import catalogstore

    catalog, storage = request.param.split("-")
    if catalog == "sqlite":
        catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        catalog_url = request.getfixturevalue("migrated_pg_url")
    if storage == "local":
        storage_url, options = str(tmp_path / "storage"), {}
    else:
        options = request.getfixturevalue("s3_server")
        storage_url = f"s3://{request.getfixturevalue('s3_bucket')}/root"
    result = Stack(request.param, catalog_url, storage_url, options)
    catalogstore.configure(catalog_url=result.catalog_url, storage_url=result.storage_url,
                           storage_options=result.storage_options)
    return result


@pytest.fixture
def local_stack(tmp_path: Any) -> Stack:
    """The embedded stack only (SQLite file + local folder), configured."""
    import catalogstore

    result = Stack("sqlite-local", f"sqlite:///{tmp_path / 'catalog.db'}",
                   str(tmp_path / "storage"), {})
    catalogstore.configure(catalog_url=result.catalog_url, storage_url=result.storage_url)
    return result
