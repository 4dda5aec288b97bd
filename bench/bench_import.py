"""Import time of catalogstore in a fresh interpreter, and what the import loads.

Each run is a new interpreter (``python -c``) that times the import statement with
``time.perf_counter`` and reports which heavy modules ended up in ``sys.modules``.
The bare interpreter start (``python -c pass``) is measured in the same run for
scale, and, when a Flowdapt virtual environment exists
(``~/.cache/catalogstore/flowdapt-venv`` or
``flowdapt-0.1.52`` beside it, as the tests build it), Flowdapt's ``import
flowdapt.compute.object_store`` is timed the same way as the comparison.

Bar (issue 2): ``import catalogstore`` and the seed's modules take under 300 ms
and load neither ray, dask, numpy nor pandas.

    .venv/bin/python bench/bench_import.py [--quick] [--repeat N]
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    CACHE_DIR,
    REPO_DIR,
    Timing,
    exit_status,
    flowdapt_python,
    make_parser,
    note,
    print_header,
    print_table,
    report_bar,
    scratch_dir,
)

HEAVY = ("ray", "dask", "numpy", "pandas")
# Loaded on first use, not on import (see catalogstore/__init__.py).
LAZY = ("sqlalchemy", "fsspec", "s3fs", "pydantic", "pydantic_settings", "alembic")
SEED_MODULES = ("catalogstore.object_store", "catalogstore.cluster_memory")

_PROBE = """
import json, sys, time
start = time.perf_counter()
{imports}
elapsed = time.perf_counter() - start
roots = {{name.split(".")[0] for name in sys.modules}}
print(json.dumps({{"seconds": elapsed, "roots": sorted(roots)}}))
"""
_FIRST_USE = """import catalogstore
from catalogstore.artifacts import list_artifacts
catalogstore.configure(catalog_url="sqlite:///{tmp}/catalog.db", storage_url="{tmp}/storage")
list_artifacts()"""


def probe(python: Path | str, statement: str) -> tuple[float, float, set[str]]:
    """(import seconds, whole process seconds, top-level modules loaded) of one fresh run."""
    code = _PROBE.format(imports=statement)
    start = time.perf_counter()
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                         check=False, cwd=REPO_DIR.parent)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{statement!r} failed: {out.stderr.strip()}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], wall, set(result["roots"])


def time_imports(label: str, python: Path | str, statement: str, runs: int,
                 ) -> tuple[Timing, Timing, set[str]]:
    """Import and process timings over ``runs`` fresh interpreters (after 2 warm-ups)."""
    imports, walls, loaded = [], [], set()
    for i in range(runs + 2):
        seconds, wall, roots = probe(python, statement)
        loaded |= roots
        if i >= 2:
            imports.append(seconds)
            walls.append(wall)
    return (Timing(f"{label}: import", imports), Timing(f"{label}: whole process", walls),
            loaded)


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__).parse_args(argv)
    runs = args.repeat or (10 if args.quick else 20)
    print_header("import: a fresh interpreter")
    python = sys.executable
    modules = ["catalogstore", "catalogstore.artifacts"]
    for name in SEED_MODULES:
        if importlib.util.find_spec(name) is None:
            note(f"{name} does not exist yet: not measured")
        else:
            modules.append(name)
    statement = f"import {', '.join(modules)}"

    _, bare_wall, _ = time_imports("python -c pass", python, "pass", runs)
    ours, ours_wall, loaded = time_imports(statement, python, statement, runs)
    rows = [bare_wall, ours, ours_wall]
    with scratch_dir(args.dir) as tmp:
        first_use = time_imports("first use", python, _FIRST_USE.format(tmp=tmp), runs)[0]
    first_use.label = "import + configure + first list_artifacts() (not a bar)"
    rows.append(first_use)
    flowdapt = flowdapt_python()
    if flowdapt is not None:
        theirs, theirs_wall, their_loaded = time_imports(
            "import flowdapt.compute.object_store", flowdapt,
            "import flowdapt.compute.object_store", runs)
        rows += [theirs, theirs_wall]
    print_table(f"{runs} fresh interpreters each", rows)

    heavy = sorted(set(HEAVY) & loaded)
    lazy = sorted(set(LAZY) & loaded)
    print(f"   loaded by `{statement}`: heavy {heavy or 'none'}, "
          f"lazy-on-purpose {lazy or 'none'}")
    print(f"   interpreter start alone: {bare_wall.median * 1e3:.1f} ms; the import adds "
          f"{(ours_wall.median - bare_wall.median) * 1e3:.1f} ms to a process; the first "
          f"call then loads SQLAlchemy, pydantic and fsspec")
    if flowdapt is None:
        note("Flowdapt's import not measured (no Flowdapt virtual environment in "
             f"{CACHE_DIR})")
    else:
        print(f"   Flowdapt's object store loads "
              f"{sorted(set(HEAVY + LAZY) & their_loaded) or 'none of those'}; catalogstore "
              f"imports in {ours.median / theirs.median:.2f}x its time")
    report_bar("import-time", ours.median * 1e3, 300,
               f"median to `{statement}` (p90 {ours.p90 * 1e3:.0f} ms)",
               at_most=True, unit="ms")
    report_bar("import-heavy", len(heavy), 0,
               f"of {', '.join(HEAVY)} loaded by the import", at_most=True, unit="modules")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
