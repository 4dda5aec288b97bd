"""``import catalogstore`` stays light (issue 2): checked in a fresh interpreter.

No heavy library (ray, dask, numpy, pandas) is loaded by the import, and neither
are the libraries catalogstore loads lazily on first use (SQLAlchemy, fsspec,
pydantic), so stage functions start fast in fresh workers. The seed's other
modules (object store, cluster memory) join ``ENTRY_MODULES`` when they are
built. No timing here: that is ``bench/bench_import.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = {"ray", "dask", "numpy", "pandas"}
LAZY = {"sqlalchemy", "fsspec", "s3fs", "pydantic", "pydantic_settings", "alembic"}
ENTRY_MODULES = ["catalogstore", "catalogstore.artifacts", "catalogstore.cli"]


def loaded_after(statement: str, cwd: str) -> set[str]:
    """Top-level names in ``sys.modules`` of a fresh interpreter after ``statement``."""
    code = (f"{statement}\nimport json, sys\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=cwd, check=False)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_package_and_artifacts_import_light(tmp_path) -> None:
    loaded = loaded_after("import catalogstore, catalogstore.artifacts", str(tmp_path))
    assert loaded & HEAVY == set()
    assert loaded & LAZY == set(), "the import should defer these to the first call"


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_each_seed_module_imports_without_heavy_libraries(module: str, tmp_path) -> None:
    assert loaded_after(f"import {module}", str(tmp_path)) & HEAVY == set()
