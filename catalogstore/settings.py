"""Configuration: ``CATALOGSTORE_*`` variables and :func:`configure`.

Settings are read from the environment so that worker processes started by a
driver (multiprocessing, Ray, Dask) find the same catalog and storage without
arguments; :func:`configure` therefore writes what it is given back to the
environment. Below the public API, settings are passed explicitly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, unquote

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from catalogstore.bounded_json import check_values, text_problem
from catalogstore.errors import ConfigurationError, InvalidDocumentError
from catalogstore.names import validate_name

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

ENV_PREFIX = "CATALOGSTORE_"
DEFAULT_HOME = ".catalogstore"
DEFAULT_CATALOG_FILE = "catalog.db"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
MIN_SIGNING_KEY_BYTES = 16
"""Shorter keys could be guessed from a signature, which ``.artifact.json`` shows to anyone."""
# Keys of storage options whose values are credentials and are never shown.
_SECRET_KEY = re.compile(r"secret|token|password|passwd|credential|key", re.IGNORECASE)


def _default_catalog_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_HOME / DEFAULT_CATALOG_FILE}"


def _default_storage_url() -> str:
    return str(Path.cwd() / DEFAULT_HOME / "storage")


class Settings(BaseSettings):
    """Where the catalog and the storage are, and the default namespace.

    Each field is read from ``CATALOGSTORE_<FIELD>``; relative local paths are
    made absolute when the settings are created, so a worker with another working
    directory still finds the same files.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    @functools.cached_property
    def identity(self) -> bytes:
        """A digest of every field: tells configurations apart (a cache key) without
        keeping their secrets in clear."""
        return hashlib.blake2b(self.model_dump_json().encode(), digest_size=16).digest()

    catalog_url: str = Field(default_factory=_default_catalog_url)
    """SQLAlchemy URL of the catalog database (SQLite or PostgreSQL)."""
    storage_url: str = Field(default_factory=_default_storage_url)
    """fsspec URL or local path of the storage root."""
    storage_options: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    """Keyword arguments of the fsspec filesystem (JSON object in the environment)."""
    namespace: str = "default"
    """Namespace used when a call names none."""
    memory_backend: str = "auto"
    """Cluster memory backend: ``auto`` (from where the code runs), ``local``, ``ray``, ``dask``."""
    memory_max_object_bytes: Annotated[int | None, NoDecode] = Field(default=None, gt=0)
    """Largest object a cluster memory backend takes (``None``: the backend's own limit)."""
    object_store_strategy: Literal["fallback", "artifact", "cluster_memory"] = "fallback"
    """Where the object store puts values when a call does not say (see ``Strategy``)."""
    lineage: bool = True
    """Record runs and what each reads and makes (issue 16); ``CATALOGSTORE_LINEAGE=off``
    turns it off (every call then writes what it wrote before lineage existed)."""
    signing_key: SecretStr | None = None
    """Key of the HMAC-SHA256 signatures of pickled objects (see :mod:`catalogstore.signing`).

    When set, the object store signs every object it pickles and refuses to unpickle
    one that is unsigned or whose signature does not match. Never shown.
    """

    @field_validator("catalog_url", "storage_url", mode="before")
    @classmethod
    def _check_text(cls, value: Any) -> Any:
        # Neither a driver nor a filesystem takes a NUL or a lone surrogate (issue 12);
        # the message does not quote the value: it may hold a password.
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise ValueError(f"holds {problem[0]} at character {problem[1]}")
        return value

    @field_validator("catalog_url")
    @classmethod
    def _check_catalog_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy database URL such as sqlite:///path/catalog.db "
                             "or postgresql+psycopg://user@host/db") from None
        if url.get_backend_name() not in SUPPORTED_DIALECTS:
            raise ValueError(f"database {url.get_backend_name()!r} is not supported; "
                             f"use one of {', '.join(SUPPORTED_DIALECTS)}")
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            db = Path(url.database).expanduser()
            if not db.is_absolute():
                url = url.set(database=str(Path.cwd() / db))
            return url.render_as_string(hide_password=False)
        return value

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if "://" not in value:
            return str(Path(value).expanduser().absolute())
        if value.startswith("file://"):
            return str(Path(value[len("file://"):]).expanduser().absolute())
        return value.rstrip("/")

    @field_validator("storage_options", mode="before")
    @classmethod
    def _parse_storage_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object such as {\"endpoint_url\": \"http://...\"}")
        try:  # what the environment and the filesystems cannot carry (issue 12)
            check_values(value)
        except InvalidDocumentError as exc:  # the value is not quoted: it may be a secret
            raise ValueError(str(exc)) from None
        return value

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        validate_name(value, "namespace")
        return value

    @field_validator("memory_max_object_bytes", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("signing_key", mode="before")
    @classmethod
    def _check_signing_key(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw):
            return None
        if not isinstance(raw, str) or len(raw.encode()) < MIN_SIGNING_KEY_BYTES:
            # The message must not quote the value: it is a secret, even a bad one.
            raise ValueError(f"must be a string of at least {MIN_SIGNING_KEY_BYTES} bytes "
                             "(e.g. the output of `python -c 'import secrets; "
                             "print(secrets.token_hex(32))'`)")
        return value

    @field_validator("memory_backend")
    @classmethod
    def _check_memory_backend(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError("must be 'auto' or the name of a backend such as local, ray, dask")
        return value

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        # Credentials must never reach logs or tracebacks (DESIGN: secrets).
        yield "catalog_url", redact_url(self.catalog_url)
        yield "storage_url", redact_url(self.storage_url)
        yield "storage_options", redact_options(self.storage_options)
        yield "namespace", self.namespace
        yield "memory_backend", self.memory_backend
        yield "memory_max_object_bytes", self.memory_max_object_bytes
        yield "object_store_strategy", self.object_store_strategy
        yield "lineage", self.lineage
        yield "signing_key", None if self.signing_key is None else "***"

    def to_environ(self) -> dict[str, str]:
        """The ``CATALOGSTORE_*`` variables that reproduce these settings in a child process."""
        return {
            f"{ENV_PREFIX}CATALOG_URL": self.catalog_url,
            f"{ENV_PREFIX}STORAGE_URL": self.storage_url,
            f"{ENV_PREFIX}STORAGE_OPTIONS": json.dumps(self.storage_options),
            f"{ENV_PREFIX}NAMESPACE": self.namespace,
            f"{ENV_PREFIX}MEMORY_BACKEND": self.memory_backend,
            f"{ENV_PREFIX}MEMORY_MAX_OBJECT_BYTES": "" if self.memory_max_object_bytes is None
            else str(self.memory_max_object_bytes),
            f"{ENV_PREFIX}OBJECT_STORE_STRATEGY": self.object_store_strategy,
            f"{ENV_PREFIX}LINEAGE": "on" if self.lineage else "off",
            # Workers must verify (and sign) with the same key; the environment of a
            # process is only readable by its user.
            f"{ENV_PREFIX}SIGNING_KEY": "" if self.signing_key is None
            else self.signing_key.get_secret_value(),
        }


_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>:.,;)]")
"""A URL in a message, without the punctuation that follows it (``...@host/db: refused``)."""
_HIDDEN = "***"


def redact_url(url: str | URL) -> str:
    """``url`` as shown to anyone: its password and the values of credential-like query
    parameters (``password``, ``sslpassword``, ``token``, ``aws_secret_access_key``, ...)
    replaced by ``***``.

    The one redaction every log line, exception, repr and CLI line goes through
    (issue 12). Built on SQLAlchemy's URL parser, which takes what the drivers take:
    a password holding ``/`` or ``:`` is hidden whole, and so is ``?password=...``.
    A plain path, or a URL with nothing secret, is returned as written.
    """
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    text: str | None = None
    if not isinstance(url, URL):
        text = url
        if "://" not in text:
            return text
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            # Not a URL SQLAlchemy reads: hide what may be a password before an "@".
            return re.sub(r"(://[^/?#@]*?:)[^@]*@", rf"\1{_HIDDEN}@", text)
    secret = {k for k in url.query if _SECRET_KEY.search(k)}
    if url.password is None and not secret:  # as written: nothing to hide
        return text if text is not None else url.render_as_string(hide_password=False)
    hidden = url.set(query={k: _HIDDEN if k in secret else v for k, v in url.query.items()})
    return hidden.render_as_string(hide_password=True).replace("%2A%2A%2A", _HIDDEN)


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url` (a driver's or a
    filesystem's message may quote the URL it was given), and the secrets this process
    was configured with (:func:`hide_in_logs`) hidden wherever they are: a password that
    holds a space or a quote ends the URL as a message shows it."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)
    return _hide_known(text)


def url_secrets(url: str) -> list[str]:
    """The secrets :func:`redact_url` hides in ``url``, as written and as decoded (a driver
    may log either), for :func:`hide_in_logs`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in url:
        return []
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        match = re.search(r"://[^/?#@]*?:([^@]*)@", url)
        return [match.group(1), unquote(match.group(1))] if match else []
    found = [parsed.password] if isinstance(parsed.password, str) else []
    for key, value in parsed.query.items():
        if _SECRET_KEY.search(key):
            found += [value] if isinstance(value, str) else list(value)
    return [form for value in found for form in (value, quote(value, safe=""), unquote(value))]


def redact_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the values of credential-like keys replaced by ``***``."""
    return {
        k: "***" if _SECRET_KEY.search(k) and not isinstance(v, (bool, int, float)) else
        redact_options(v) if isinstance(v, dict) else v
        for k, v in options.items()
    }


def credential_values(options: dict[str, Any]) -> list[str]:
    """The values :func:`redact_options` hides, wherever they are nested."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, dict):
            found += credential_values(value)
        elif isinstance(value, str) and _SECRET_KEY.search(str(key)):
            found.append(value)
    return found


def _field_env_name(loc: tuple[Any, ...]) -> str:
    return f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else "settings"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` taking precedence.

    Raises
    ------
    ConfigurationError
        naming the first setting that is malformed.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = _field_env_name(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigurationError(f"{name}: {msg}") from None
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    hide_in_logs(*_secrets_of(settings))
    return settings


# -- secrets in logs -------------------------------------------------------------------

MIN_HIDDEN_LENGTH = 4
"""Shorter values are not hidden in logs: they would blank out ordinary words."""
_hidden: frozenset[str] = frozenset()
_hidden_lock = threading.Lock()
_base_factory: Callable[..., logging.LogRecord] | None = None


def hide_in_logs(*values: str | None) -> None:
    """Show ``values`` as ``***`` in every log record made in this process from now on.

    catalogstore's own messages never contain credentials; this covers the
    libraries below it, such as botocore, whose DEBUG log prints request headers
    that hold the access key. It installs a log record factory (once), so it
    works whatever handlers the application has.
    """
    global _hidden, _base_factory
    new = {v for v in values if isinstance(v, str) and len(v) >= MIN_HIDDEN_LENGTH}
    if new <= _hidden:
        return
    with _hidden_lock:
        _hidden = frozenset(_hidden | new)
        if _base_factory is None:
            _base_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_hiding_factory)


def _hiding_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    assert _base_factory is not None
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is for its handler to report
        return record
    hidden_message = _hide_known(message)
    if hidden_message is not message:
        record.msg, record.args = hidden_message, None
    return record


def _hide_known(message: str) -> str:
    """``message`` with the secrets of :func:`hide_in_logs` as ``***`` (the same object
    when it holds none)."""
    hidden = _hidden
    if any(secret in message for secret in hidden):
        # Longest first, so that a secret containing another is replaced whole.
        for secret in sorted(hidden, key=len, reverse=True):
            message = message.replace(secret, _HIDDEN)
    return message


def _secrets_of(settings: Settings) -> list[str | None]:
    """The credentials in ``settings``: URL passwords, credential-like options, the key."""
    found: list[str | None] = [*url_secrets(settings.catalog_url),
                               *url_secrets(settings.storage_url)]
    if settings.signing_key is not None:
        found.append(settings.signing_key.get_secret_value())
    return [*found, *credential_values(settings.storage_options)]


_configured: Settings | None = None
_env_cache: tuple[tuple[str, ...], Settings] | None = None


def configure(**values: Any) -> Settings:
    """Set the configuration of this process and of the processes it starts.

    Accepts the fields of :class:`Settings` (``catalog_url``, ``storage_url``,
    ``storage_options``, ``namespace``, ``signing_key``, ...); fields not given
    keep their current value. The result is exported as ``CATALOGSTORE_*``
    variables, which worker processes inherit.
    """
    global _configured
    current = get_settings().model_dump()
    unknown = set(values) - set(current)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(current))}"
        )
    settings = load_settings(**{**current, **values})
    os.environ.update(settings.to_environ())
    _configured = settings
    return settings


def reset_configuration() -> None:
    """Forget :func:`configure` and read the environment again on next use."""
    global _configured, _env_cache
    _configured = None
    _env_cache = None


def get_settings() -> Settings:
    """The settings in force: those of :func:`configure`, else the environment's."""
    global _env_cache
    if _configured is not None:
        return _configured
    key = (os.getcwd(), *(os.environ.get(f"{ENV_PREFIX}{f.upper()}", "\0")
                          for f in Settings.model_fields))
    if _env_cache is None or _env_cache[0] != key:
        _env_cache = (key, load_settings())
    return _env_cache[1]
