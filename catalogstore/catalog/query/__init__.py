"""Searching the catalog: the filter language and its compilation to SQL.

- :mod:`~catalogstore.catalog.query.language`: parse a filter, ordering and cursor.
- :mod:`~catalogstore.catalog.query.planner`: choose the index a search starts from.
- :mod:`~catalogstore.catalog.query.compile`: turn them into one SQL statement.
"""
