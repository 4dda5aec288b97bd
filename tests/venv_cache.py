"""Virtual environments that tests build once and keep across runs, outside the repo.

A venv is built in a temporary folder beside its final place and renamed there
only once every package is installed, with a marker file written last, so a
build that is killed half way leaves no venv that looks usable; the next run
removes the leftover and builds again. A lock file serialises concurrent runs.
Code in these venvs is run with ``python -m ...`` or ``python -c ...``: the
interpreter finds its venv from where it is, so the rename does not break it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MARKER = ".catalogstore-venv-complete"
_PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]


class VenvBuildError(RuntimeError):
    """A cached venv could not be built (no network, unknown package, ...)."""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/catalogstore``, by default ``~/.cache/catalogstore``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "catalogstore"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment for a child interpreter: no catalogstore settings, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CATALOGSTORE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def run(cmd: Sequence[str | os.PathLike[str]], *, what: str, timeout: float = 900,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise :class:`VenvBuildError` with the end of its output if it fails."""
    kwargs.setdefault("env", clean_environ())
    try:
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise VenvBuildError(f"{what}: timed out after {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise VenvBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done


@contextlib.contextmanager
def venv_lock(venv: Path) -> Iterator[None]:
    """Exclusive use of the cached venv ``venv`` across processes."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base_python() -> str:
    """The interpreter the test venv was made from (``python3`` as a fallback)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or "python3"


def ensure_venv(venv: Path, requirements: Sequence[str]) -> Path:
    """Build ``venv`` with ``requirements`` unless it is complete; the caller holds its lock.

    Returns the venv's interpreter.
    """
    if (venv / MARKER).is_file():
        return venv_python(venv)
    # Whatever is here without a marker is what a killed build left.
    if venv.exists():
        shutil.rmtree(venv)
    for leftover in venv.parent.glob(f".{venv.name}.building-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{venv.name}.building-", dir=venv.parent))
    try:
        run([base_python(), "-m", "venv", tmp], what=f"creating the venv {venv}")
        run([venv_python(tmp), *_PIP, "install", *requirements],
            what=f"pip install {' '.join(requirements)} into {venv}")
        tmp.chmod(0o755)  # mkdtemp made it private; a venv is not
        (tmp / MARKER).write_text(json.dumps({"requirements": list(requirements)}))
        tmp.rename(venv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return venv_python(venv)


def cached_venv(name: str, requirements: Sequence[str]) -> Path:
    """The interpreter of ``cache_root()/name``, built with ``requirements`` the first time."""
    venv = cache_root() / name
    with venv_lock(venv):
        return ensure_venv(venv, requirements)


def pip_install(python: Path, *args: str) -> None:
    """``pip install ARGS`` with the interpreter ``python``."""
    run([python, *_PIP, "install", *args], what=f"pip install {' '.join(args)}")
