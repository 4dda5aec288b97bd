"""The unit of work: one transaction implementation for one artifact or many.

The only layer that knows both the catalog (:mod:`catalogstore.catalog`) and
the storage (:mod:`catalogstore.storage`): it stages new content, commits the
catalog rows with a journal entry (the commit point), applies the storage
changes afterwards and rolls forward what a crash left. The protocol is
written down in :mod:`catalogstore.txn.workspace`.

- :mod:`~catalogstore.txn.changeset`: what one transaction changes in one artifact.
- :mod:`~catalogstore.txn.batch`: ``catalogstore.transaction()``, many artifacts at once.
- :mod:`~catalogstore.txn.journal`: the storage half of a commit, checked on reading.
- :mod:`~catalogstore.txn.workspace`: commit, apply, recover.
"""
