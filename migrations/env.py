"""alembic environment: the catalog's models, the URL from catalogstore's settings."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

from alembic import context
from sqlalchemy import Column

from catalogstore.catalog.engine import make_engine
from catalogstore.catalog.models import Base
from catalogstore.settings import get_settings

config = context.config


def _for_dialect(dialect: str):  # type: ignore[no-untyped-def]
    """An ``include_object`` hook: indexes declared for another database are not compared."""

    def include_object(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
        # models.only_on marks them; the migrations create them on their database only.
        if type_ == "index" and not reflected:
            return obj.info.get("only_on", dialect) == dialect
        return True

    return include_object


@contextlib.contextmanager
def _expression_indexes_unreflected(dialect: str) -> Iterator[None]:
    """Quiet the warnings about the models' indexes on expressions, on SQLite.

    SQLite cannot reflect an index on expressions (``lower(namespace)``): SQLAlchemy
    leaves it out of a reflection with a warning, and alembic, which then cannot
    compare it, with another. Both are expected for the indexes the models declare
    (the migrations create them; ``tests/test_migrations.py`` checks that they
    exist); a warning about any other index still shows.
    """
    if dialect != "sqlite":
        yield
        return
    names = "|".join(re.escape(str(index.name)) for table in Base.metadata.tables.values()
                     for index in table.indexes
                     if not all(isinstance(e, Column) for e in index.expressions))
    with warnings.catch_warnings():
        if names:
            warnings.filterwarnings("ignore", f".*expression-based index '?({names})'?(;|$)")
        yield


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=_for_dialect(connection.dialect.name),
    )
    with _expression_indexes_unreflected(connection.dialect.name), \
            context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=get_settings().catalog_url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    engine = make_engine(get_settings().catalog_url)
    with engine.connect() as conn:
        run_migrations(conn)
        conn.commit()
    engine.dispose()
