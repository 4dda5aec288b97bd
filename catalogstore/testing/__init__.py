"""Contract suites that backends run: subclass one, provide the fixtures, and pytest
collects every test of the contract for the backend.

- :mod:`~catalogstore.testing.memory`: a cluster memory backend.
"""
