"""Contract suites that backends run: subclass one, provide the fixtures it names, and
pytest collects every test of the contract for the backend (as zarr's ``StoreTests``
and fsspec's ``tests/abstract`` do). None imports NumPy or pandas unless a test needs it.

- :mod:`~catalogstore.testing.memory`: a cluster memory backend (``memory``,
  ``memory_kwargs``, ``remote``).
- :mod:`~catalogstore.testing.storage`: the storage gateway on a filesystem (``store``).
- :mod:`~catalogstore.testing.catalog`: the catalog on a database (``catalog_url``).
- :mod:`~catalogstore.testing.serializers`: a serializer (``serializer``, ``values``).
"""
