"""The storage gateway contract (:mod:`catalogstore.testing.storage`) on a local folder,
on S3 through the moto server and on fsspec's in-memory filesystem, with the unit of
work's staging names as scratch paths, as the workspace gives them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from catalogstore.storage.filestore import FileStore
from catalogstore.testing.storage import FileStoreContract
from catalogstore.txn.staging import new_path


class TestLocalFolder(FileStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FileStore:
        return FileStore(str(tmp_path / "storage"), scratch=new_path)


@pytest.mark.s3
class TestS3(FileStoreContract):
    @pytest.fixture
    def store(self, s3_server: dict[str, Any], s3_bucket: str) -> FileStore:
        return FileStore(f"s3://{s3_bucket}/root", s3_server, scratch=new_path)


class TestMemory(FileStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[FileStore]:
        root = f"/cs-{uuid.uuid4().hex}"  # the memory filesystem is one per process
        yield FileStore(f"memory://{root}", scratch=new_path)
        memory = fsspec.filesystem("memory")
        if memory.exists(root):
            memory.rm(root, recursive=True)
