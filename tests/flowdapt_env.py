"""The real Flowdapt, installed in a venv of its own (never a dependency of catalogstore).

The venv is built once (about 70 s and 1.1 GB) at
``$XDG_CACHE_HOME/catalogstore/flowdapt-<version>`` and reused by later runs.
Flowdapt code runs in that venv's interpreter: a script receives its inputs as
JSON on stdin and hands back its answer with ``reply(...)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from venv_cache import MARKER, VenvBuildError, cache_root, cached_venv, clean_environ

FLOWDAPT_VERSION = "0.1.52"
_VENV = f"flowdapt-{FLOWDAPT_VERSION}"
_REQUIREMENTS = [f"flowdapt=={FLOWDAPT_VERSION}"]
_RESULT = "@@flowdapt-result@@"
_PRELUDE = f"""
import json, sys
from flowdapt.compute.artifacts.interface import Artifact
args = json.load(sys.stdin)
def reply(value):
    print({_RESULT!r} + json.dumps(value), flush=True)
"""


def flowdapt_interpreter() -> Path:
    """The interpreter of the Flowdapt venv; fails the test (never skips) if it cannot be built."""
    try:
        return cached_venv(_VENV, _REQUIREMENTS)
    except VenvBuildError as exc:
        # A failure, not a skip: a missing Flowdapt must not pass for compatibility.
        raise pytest.fail.Exception(
            f"cannot install flowdapt {FLOWDAPT_VERSION} in its own venv (the Flowdapt "
            f"compatibility tests need PyPI): {exc}", pytrace=False) from None


def build_in_background() -> None:
    """Start building the Flowdapt venv in a process of its own, unless it is built: the
    tests that need it wait for its lock, held by the build (a failed build is tried
    again, and reported, by the first of them)."""
    if (cache_root() / _VENV / MARKER).is_file():
        return
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from venv_cache import cached_venv; cached_venv({_VENV!r}, {_REQUIREMENTS!r})")
    subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, env=clean_environ())


def run_flowdapt(python: Path, script: str, cwd: Path, **args: Any) -> Any:
    """Run ``script`` with Flowdapt's ``Artifact`` imported and ``args`` given; its reply."""
    done = subprocess.run([str(python), "-c", _PRELUDE + script], input=json.dumps(args),
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=clean_environ(), check=False)
    assert done.returncode == 0, f"flowdapt script failed:\n{done.stdout}\n{done.stderr}"
    replies = [line[len(_RESULT):] for line in done.stdout.splitlines()
               if line.startswith(_RESULT)]
    assert replies, f"flowdapt script gave no reply:\n{done.stdout}\n{done.stderr}"
    return json.loads(replies[-1])
