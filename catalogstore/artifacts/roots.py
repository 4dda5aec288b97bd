"""Which storage, and which catalog, a call with Flowdapt's per-call storage reaches.

Flowdapt's artifact calls take ``protocol``, ``base_path`` and ``**params`` (the
fsspec filesystem's options) on every call (issue 14). catalogstore indexes every
storage root in a catalog, so a per-call root is given one, the way the embedded
default pairs ``./.catalogstore/storage`` with ``./.catalogstore/catalog.db``:

- the configured storage (same URL; ``params`` are added to its options): the
  configured catalog, whatever it is (SQLite or PostgreSQL);
- another local folder: a SQLite catalog in the root's private area,
  ``{base_path}/.catalogstore/catalog.db``, found again by every process that
  names the same folder (a Dask or Ray worker, a later run);
- ``memory://``: a SQLite catalog in a temporary folder of this process, which
  lives exactly as long as fsspec's memory filesystem does (one process);
- any other remote root (``s3://...``): a SQLite catalog per root in the user's
  cache folder, ``$XDG_CACHE_HOME/catalogstore/catalogs/<digest of the URL>.db``.

A root written by Flowdapt itself is read through the catalog once
``catalogstore reindex`` has indexed it.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalogstore.errors import ConfigurationError
from catalogstore.settings import DEFAULT_HOME, Settings, get_settings, load_settings

if TYPE_CHECKING:
    from catalogstore.txn.workspace import Workspace

__all__ = ["storage_settings", "storage_workspace"]

_LOCAL = ("", "file", "local")
_cache: dict[tuple[bytes, str, str, str], Settings] = {}
_cache_lock = threading.Lock()
_memory_home: str | None = None


def storage_workspace(protocol: str = "", base_path: str = "",
                      params: Mapping[str, Any] | None = None) -> Workspace:
    """The workspace (catalog and storage) of a per-call storage; see the module."""
    from catalogstore.txn.workspace import get_workspace

    return get_workspace(storage_settings(protocol, base_path, params))


def storage_settings(protocol: str = "", base_path: str = "",
                     params: Mapping[str, Any] | None = None) -> Settings:
    """The settings in force with the storage (and its catalog) of ``protocol`` and
    ``base_path``; the settings themselves when neither is given.

    Raises
    ------
    ConfigurationError
        (a ``ValueError``) for ``protocol="file"`` without a ``base_path`` while the
        configured storage is not local (Flowdapt would use the filesystem's root),
        or for ``params`` that are not JSON.
    """
    settings = get_settings()
    params = dict(params or {})
    if not (protocol or base_path or params):
        return settings
    try:
        frozen = json.dumps(params, sort_keys=True) if params else ""
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"storage parameters must be JSON values: {exc}") from exc
    key = (settings.identity, protocol, base_path, frozen)
    cached = _cache.get(key)
    if cached is None:
        cached = _settings_for(settings, protocol, base_path, params)
        with _cache_lock:
            _cache[key] = cached
    return cached


def _settings_for(settings: Settings, protocol: str, base_path: str,
                  params: dict[str, Any]) -> Settings:
    url = _storage_url(settings, protocol, base_path)
    if _same_storage(url, settings.storage_url):
        if not params:
            return settings
        return load_settings(**{**settings.model_dump(), "storage_options": {
            **settings.storage_options, **params}})
    candidate = load_settings(**{**settings.model_dump(), "storage_url": url,
                                 "storage_options": params})
    catalog = _catalog_url(candidate.storage_url)
    return load_settings(**{**candidate.model_dump(), "catalog_url": catalog})


def _protocol_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else ""


def _storage_url(settings: Settings, protocol: str, base_path: str) -> str:
    if "://" in base_path:  # a whole URL: its own protocol wins
        return base_path
    configured = _protocol_of(settings.storage_url)
    if protocol in _LOCAL:
        if base_path:
            return str(Path(base_path).expanduser().absolute())
        if configured in _LOCAL:
            return settings.storage_url
        raise ConfigurationError(
            "protocol='file' needs a base_path: the configured storage "
            f"({configured}://) is not local and catalogstore does not use the root of "
            "the filesystem as a store")
    if not base_path and protocol == configured:
        return settings.storage_url
    # As given: "memory://test", and "faulty:///tmp/x" rebuilt from its own parts.
    return f"{protocol}://{base_path}"


def _same_storage(url: str, configured: str) -> bool:
    return url.rstrip("/") == configured.rstrip("/")


def _catalog_url(storage_url: str) -> str:
    protocol = _protocol_of(storage_url)
    if protocol in _LOCAL:
        return f"sqlite:///{Path(storage_url) / DEFAULT_HOME / 'catalog.db'}"
    digest = hashlib.blake2b(storage_url.encode(), digest_size=12).hexdigest()
    if protocol == "memory":
        return f"sqlite:///{Path(_process_home()) / f'{digest}.db'}"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "catalogstore" / "catalogs"
    # Ours to make: a missing catalog folder is refused only where a user typed the URL.
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / f'{digest}.db'}"


def _process_home() -> str:
    """A folder of this process for the catalogs of ``memory://`` roots, removed at exit."""
    global _memory_home
    with _cache_lock:
        if _memory_home is None or not os.path.isdir(_memory_home):
            _memory_home = tempfile.mkdtemp(prefix=f"catalogstore-memory-{os.getpid()}-")
            atexit.register(shutil.rmtree, _memory_home, True)
        return _memory_home
