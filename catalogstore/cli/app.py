"""The ``catalogstore`` Typer application and how it ends: one ``error: ...`` line.

Configuration comes from the ``CATALOGSTORE_*`` variables (see
:mod:`catalogstore.settings`); with none set, everything lives in an embedded
store under ``./.catalogstore/``. Every failure ends as one ``error: ...`` line
on stderr with exit code 1 (2 for a usage error), never a traceback. The
command groups register themselves on :data:`app` (see :mod:`catalogstore.cli`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption
from typer.exceptions import TyperException

import catalogstore
from catalogstore.errors import CatalogStoreError
from catalogstore.settings import redact_text


class _OneLineErrors(TyperGroup):
    """Ends every failure as one ``error: ...`` line on stderr and an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **kwargs: Any) -> Any:
        # Always exits with the code, as click's standalone mode would, but formats
        # the failures itself.
        try:
            with _quiet_retries():
                code = super().main(args, prog_name, complete_var, standalone_mode=False,
                                   windows_expand_args=windows_expand_args, **kwargs)
        except TyperException as exc:  # usage errors, with their exit code 2
            code = _fail(exc.format_message(), exc.exit_code)
        except typer.Abort:
            code = _fail("aborted", 1)
        except (CatalogStoreError, OSError) as exc:
            code = _fail(str(exc), 1)
        sys.exit(code if isinstance(code, int) else 0)


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """Keep the warnings of retries off stderr: the error line, if it comes to one,
    says how many attempts were made ("(4 attempts)")."""
    retries = logging.getLogger("catalogstore.retry")
    propagate = retries.propagate
    retries.propagate = False
    retries.addHandler(handler := logging.NullHandler())
    try:
        yield
    finally:
        retries.removeHandler(handler)
        retries.propagate = propagate


def _fail(message: str, code: int) -> int:
    # The last line of defence: no credential in a URL, no character the terminal's
    # encoding cannot show (a lone surrogate quoted from the input) breaks it.
    line = redact_text(" ".join(message.split()))
    typer.echo(f"error: {line.encode('utf-8', 'backslashreplace').decode()}", err=True)
    return code


def _flag_type(option: TyperOption, ctx: Any) -> str | None:
    # A flag takes no value: typer's rich help would show it as "<bool>" (as if --json
    # wanted one), where its plain help shows nothing. The same rule for both.
    return None if option.is_flag or option.count else _option_type(option, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign,assignment]


app = typer.Typer(
    cls=_OneLineErrors, invoke_without_command=True, add_completion=False,
    rich_markup_mode="markdown",
    # Rich tracebacks would print local variables, credentials among them.
    pretty_exceptions_enable=False,
    help="Artifacts (files plus metadata) on any fsspec storage, indexed by a SQL catalog. "
         "Configured by the CATALOGSTORE_CATALOG_URL, CATALOGSTORE_STORAGE_URL, "
         "CATALOGSTORE_STORAGE_OPTIONS and CATALOGSTORE_NAMESPACE variables; by default "
         "everything lives under ./.catalogstore/.",
)

def group(name: str, help: str) -> typer.Typer:
    """A command group ``catalogstore NAME ...`` whose bare call prints its help."""
    sub = typer.Typer(invoke_without_command=True, help=help)
    sub.callback()(_help_without_command)
    app.add_typer(sub, name=name)
    return sub


def _help_without_command(ctx: typer.Context) -> None:
    # Help on stdout and exit 0, where typer's no_args_is_help would make it an error.
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"catalogstore {catalogstore.__version__}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context, version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    _help_without_command(ctx)
