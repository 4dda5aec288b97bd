"""The storage gateway: the only code that opens, lists, stats, renames or removes a path
of the storage (local disk, or any fsspec filesystem such as S3).

- :mod:`~catalogstore.storage.filestore`: :class:`FileStore`, rooted at the storage URL.
- :mod:`~catalogstore.storage.tree`: what the storage tree holds, read for maintenance.
- :mod:`~catalogstore.storage.checksum`: the one place that computes checksums.

Nothing is imported here, so that ``import catalogstore`` stays cheap (fsspec
loads on first use).
"""
