"""The web catalog browser (``catalogstore ui``, issue 17): read-only pages of the
configured catalog and storage.

Every page is a JSON API first (:mod:`~catalogstore.web.api`, served under
``/api/...``) and its HTML a server-rendered view of the same dictionary
(:mod:`~catalogstore.web.app`, Jinja2 templates with autoescaping). Everything
answers from the catalog with keyset pages, so a catalog of a million artifacts
is never loaded whole; file previews (:mod:`~catalogstore.web.preview`) read a
bounded number of bytes and never unpickle.

An optional extra (``pip install catalogstore[ui]``: Starlette, uvicorn, Jinja2);
nothing here is imported by ``import catalogstore``.
"""
