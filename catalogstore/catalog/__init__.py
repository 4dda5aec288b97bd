"""The catalog: the SQL database that indexes namespaces, artifacts, files and metadata.

It knows nothing of the storage. :class:`~catalogstore.catalog.catalog.Catalog`
is its one entry point; :mod:`~catalogstore.catalog.models` holds the tables
(a public interface), :mod:`~catalogstore.catalog.migrate` their alembic
revisions, and :mod:`~catalogstore.catalog.query` the search language.
"""
