"""``catalogstore demo``: the seed's examples, run as workflow stages.

- :mod:`~catalogstore.demo.stages`: the artifact examples, verbatim.
- :mod:`~catalogstore.demo.workflow`: the object store workflow on an executor.
"""
