"""The storage gateway contract (:mod:`catalogstore.testing.storage`) on a local folder,
on S3 through the moto server and on fsspec's in-memory filesystem."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from catalogstore.storage.filestore import FileStore
from catalogstore.testing.storage import FileStoreContract


class TestLocalFolder(FileStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FileStore:
        return FileStore(str(tmp_path / "storage"))


@pytest.mark.s3
class TestS3(FileStoreContract):
    @pytest.fixture
    def store(self, s3_server: dict[str, Any], s3_bucket: str) -> FileStore:
        return FileStore(f"s3://{s3_bucket}/root", s3_server)


class TestMemory(FileStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[FileStore]:
        root = f"/cs-{uuid.uuid4().hex}"  # the memory filesystem is one per process
        yield FileStore(f"memory://{root}")
        memory = fsspec.filesystem("memory")
        if memory.exists(root):
            memory.rm(root, recursive=True)
