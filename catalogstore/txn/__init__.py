"""The unit of work: one transaction implementation for one artifact or many.

The only layer that knows both the catalog (:mod:`catalogstore.catalog`) and
the storage (:mod:`catalogstore.storage`): it stages new content, commits the
catalog rows with a journal entry (the commit point), applies the storage
changes afterwards and rolls forward what a crash left. The protocol is
written down once, in :mod:`catalogstore.txn.workspace`.

- :mod:`~catalogstore.txn.workspace`: opens the unit of work (stage, lock, commit,
  discard, recover) and holds the protocol's description.
- :mod:`~catalogstore.txn.changeset`: what one transaction changes in one artifact.
- :mod:`~catalogstore.txn.batch`: ``catalogstore.transaction()``, many artifacts at once.
- :mod:`~catalogstore.txn.staging`: the staging area's layout (staged names and their shape).
- :mod:`~catalogstore.txn.commit`: the catalog half: changesets to rows, the commit point.
- :mod:`~catalogstore.txn.journal`: the storage half of a commit as the journal keeps it,
  checked on reading.
- :mod:`~catalogstore.txn.apply`: the storage half applied, and rolled forward after a crash.
"""
