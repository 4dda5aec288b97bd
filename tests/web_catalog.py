"""The catalog the web browser's tests look at (tests/test_web*.py), and its server."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TOKEN = "test-token-1234"
RUNS = 30
"""Artifacts run-01 .. run-30 in team-a (accuracy 0.01 .. 0.30, run-07 0.93)."""
SEVEN_VERSIONS = 9
"""run-07's versions: 1 made with the others, one more per file added after, and the
last a metadata change (``stage``); ``prod`` names version 1."""
XSS = "<script>window.__xss = 1</script>"
BIG_TEXT = 1_000_000


@dataclass
class Served:
    base: str
    catalog_url: str
    storage_url: str

    def get(self, path: str, *, token: str | None = TOKEN) -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: status, headers and body (errors too)."""
        request = urllib.request.Request(self.base + path)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, status: int = 200) -> Any:
        code, headers, body = self.get(path)
        assert code == status, body[:500]
        assert headers["content-type"] == "application/json"
        return json.loads(body)


def _png() -> bytes:
    """A small real PNG (4x3, red), written without any imaging library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(3))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def fill(root: Path) -> tuple[str, str]:
    """Configure a catalog under ``root`` and fill it; returns its URLs."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import catalogstore
    from catalogstore.artifacts import new_artifact

    catalog_url, storage_url = f"sqlite:///{root / 'catalog.db'}", str(root / "storage")
    catalogstore.configure(catalog_url=catalog_url, storage_url=storage_url)
    with catalogstore.transaction():
        for i in range(1, RUNS + 1):
            run = new_artifact(f"run-{i:02d}", "team-a")
            run.update_meta({"accuracy": 0.93 if i == 7 else i / 100,
                             "model": "xgb" if i % 2 else "lgbm", "epochs": i})
            run.new_file("notes.txt", content=f"run {i}\nsecond line\n")
    seven = catalogstore.artifacts.get_artifact("run-07", "team-a")
    seven.new_file("params.json", content=json.dumps({"lr": 0.1, "layers": [64, 32]}))
    table = pa.table({"step": list(range(100)), "loss": [1 / (s + 1) for s in range(100)],
                      "tag": [f"t{s}" for s in range(100)]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    seven.new_file("metrics.parquet", content=sink.getvalue())
    arrow = io.BytesIO()
    with pa.ipc.new_file(arrow, table.schema) as writer:
        writer.write_table(table)
    seven.new_file("metrics.arrow", content=arrow.getvalue())
    npy = io.BytesIO()
    np.save(npy, np.arange(12, dtype="<f8").reshape(3, 4))
    seven.new_file("weights.npy", content=npy.getvalue())
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    seven.new_file("objects.npy", content=pickled.getvalue())
    seven.new_file("plot.png", content=_png())
    seven.new_file("big.log", content=("0123456789" * 9 + "abcdefghi\n") * (BIG_TEXT // 100))
    seven.update_meta({"stage": "tuned"})
    seven.set_alias("prod", version=1)
    evil = new_artifact("evil", "team-b")
    evil.update_meta({XSS: XSS, "nested": XSS})
    evil.new_file("a b+c=d@e,f.txt", content=XSS)
    return catalog_url, storage_url


@contextlib.contextmanager
def serve_new(root: Path, fill: Callable[[], None]) -> Iterator[Served]:
    """A new catalog and storage under ``root``, configured, filled by ``fill()`` and
    served on a free loopback port during the block."""
    import catalogstore
    from catalogstore.txn.workspace import close_workspaces
    from catalogstore.web.serve import serving

    catalog_url, storage_url = f"sqlite:///{root / 'catalog.db'}", str(root / "storage")
    catalogstore.configure(catalog_url=catalog_url, storage_url=storage_url)
    fill()
    with serving(TOKEN) as base:
        yield Served(base, catalog_url, storage_url)
    close_workspaces()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The filled catalog served on a free loopback port for the whole module."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from catalogstore.txn.workspace import close_workspaces
    from catalogstore.web.serve import serving

    catalog_url, storage_url = fill(tmp_path_factory.mktemp("web"))
    with serving(TOKEN) as base:
        yield Served(base, catalog_url, storage_url)
    close_workspaces()


@pytest.fixture(autouse=True)
def _configured(request: pytest.FixtureRequest, _clean_configuration: None) -> None:
    """The served catalog stays configured in each test (conftest resets it)."""
    if "served" in request.fixturenames:
        import catalogstore

        served = request.getfixturevalue("served")
        catalogstore.configure(catalog_url=served.catalog_url, storage_url=served.storage_url)
