"""The Starlette application: each page's ``/api/...`` route answers the dictionary of
:mod:`catalogstore.web.api`, and its HTML route renders the same dictionary with
a Jinja2 template (autoescaped: names, metadata and filters are text, never markup).

Read-only, and guarded by a token (as Jupyter's): a request carries it as
``?token=``, as ``Authorization: Bearer``, or as the cookie the first request with
``?token=`` sets. Bad input answers 400 (404 when something is missing) with the
package's message (a filter's with its caret), as JSON under ``/api`` and as a
page elsewhere; never a traceback.
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from catalogstore.errors import (
    CatalogStoreError,
    InvalidMetadataError,
    InvalidNameError,
    NotFoundError,
    QueryError,
)
from catalogstore.names import validate_file_name
from catalogstore.txn.runs import unrecorded
from catalogstore.web import api
from catalogstore.web.graph import layout
from catalogstore.web.preview import IMAGE_BYTES, image_type, preview

log = logging.getLogger(__name__)

TOKEN_COOKIE = "catalogstore_token"
CHUNK = 1024 * 1024
"""Bytes per piece of a streamed download."""
_HEADERS = {
    # No script at all on any page; images and the style sheet from this server only.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TEMPLATES = Path(__file__).parent / "templates"
T = TypeVar("T")


def _looked_at(build: Callable[[], T]) -> T:
    """``build()`` with the versions it reads recorded as no run's inputs: the browser
    only looks, and would otherwise show itself in every lineage it was asked for."""
    with unrecorded():
        return build()


def _order_field(key: str) -> str:
    """``meta.KEY`` as the ordering parses it (quoted unless a plain identifier)."""
    if key.isidentifier() and key.isascii():
        return f"meta.{key}"
    return 'meta."' + key.replace('"', '""') + '"'


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(
        default=True, default_for_string=True), trim_blocks=True, lstrip_blocks=True)

    def url(path: str, **params: Any) -> str:
        pairs = [(k, v) for k, value in params.items()
                 for v in (value if isinstance(value, (list, tuple)) else [value])
                 if v not in (None, "")]
        return path + ("?" + urlencode(pairs) if pairs else "")

    def artifact_path(namespace: str, ref: str) -> str:
        """The page of ``namespace/ref`` (``ref``: NAME, NAME:vN or NAME@ALIAS, its
        ``:`` and ``@`` left as they are, as a path may hold them)."""
        return f"/artifacts/{quote(namespace, safe='')}/{quote(ref, safe=':@')}"

    def node_path(node: dict[str, Any]) -> str:
        """Where a lineage node leads: a kept version's page, the artifact's for a
        version that is gone, the object store's keys for a generation in memory."""
        if node["version"] is None:
            return url("/objects", ns=node["namespace"])
        if node["state"] == "removed":
            return artifact_path(node["namespace"], node["name"])
        return artifact_path(node["namespace"], f"{node['name']}:v{node['version']}")

    env.globals.update(url=url, quote=lambda s: quote(s, safe=""), shown=api.shown,
                       artifact_path=artifact_path, node_path=node_path, layout=layout,
                       metadata_rows=api.metadata_rows, order_field=_order_field,
                       orderable=api.ORDERABLE)
    env.filters["size"] = _human_size
    return env


def _human_size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _status(exc: CatalogStoreError) -> int:
    if isinstance(exc, (QueryError, InvalidNameError, InvalidMetadataError)):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    return 500


def _error(exc: CatalogStoreError) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc).split("\n")[0]}
    if isinstance(exc, QueryError):
        # The filter with a caret under the problem (QueryError's str() after its first line).
        caret = "\n".join(str(exc).split("\n")[1:]) or None
        error.update(reason=exc.reason, text=exc.text, position=exc.position, caret=caret)
    return error


class _Pages:
    """The routes, with the template environment and the token."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.env = _environment()

    def html(self, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=code)

    async def answer(self, request: Request, build: Callable[[], dict[str, Any]],
                     template: str | None, **context: Any) -> Response:
        """``build()`` run off the event loop, as JSON (``template`` None) or a page."""
        try:
            data = await run_in_threadpool(_looked_at, build)
        except CatalogStoreError as exc:
            status = _status(exc)
            if status == 500:
                log.warning("%s %s: %s", request.method, request.url.path, exc)
            if template is None:
                return JSONResponse({"error": _error(exc)}, status_code=status)
            return self.html("error.html", status, error=_error(exc), status=status,
                             request=request, **context)
        if template is None:
            return JSONResponse(data)
        return self.html(template, data=data, request=request, **context)

    # -- namespaces ------------------------------------------------------------

    async def api_namespaces(self, request: Request) -> Response:
        return await self.answer(request, api.namespaces, None)

    async def namespaces(self, request: Request) -> Response:
        return await self.answer(request, api.namespaces, "namespaces.html")

    # -- object store ----------------------------------------------------------

    def _objects(self, request: Request) -> Callable[[], dict[str, Any]]:
        q = request.query_params
        return lambda: api.objects(q.get("ns", ""), after=q.get("after", ""),
                                   limit=q.get("limit"))

    async def api_objects(self, request: Request) -> Response:
        return await self.answer(request, self._objects(request), None)

    async def objects(self, request: Request) -> Response:
        return await self.answer(request, self._objects(request), "objects.html")

    # -- search ----------------------------------------------------------------

    def _search(self, request: Request) -> Callable[[], dict[str, Any]]:
        q = request.query_params
        # "add": the key picked from the page's keys, or typed (a key on later pages).
        columns = [*q.getlist("col"), *q.getlist("add")]
        return lambda: api.search(q.get("q", ""), namespace=q.get("ns", ""),
                                  order=q.get("order", ""), after=q.get("after", ""),
                                  limit=q.get("limit"), columns=columns)

    async def api_search(self, request: Request) -> Response:
        return await self.answer(request, self._search(request), None)

    async def search(self, request: Request) -> Response:
        q = request.query_params
        form = {"q": q.get("q", ""), "ns": q.get("ns", ""), "order": q.get("order", ""),
                "limit": q.get("limit", ""), "col": q.getlist("col")}
        return await self.answer(request, self._search(request), "search.html", form=form)

    # -- artifacts -------------------------------------------------------------

    def _artifact(self, request: Request) -> Callable[[], dict[str, Any]]:
        p = request.path_params
        return lambda: api.artifact(p["namespace"], p["name"])

    async def api_artifact(self, request: Request) -> Response:
        return await self.answer(request, self._artifact(request), None)

    async def artifact(self, request: Request) -> Response:
        return await self.answer(request, self._artifact(request), "artifact.html")

    # -- versions --------------------------------------------------------------

    def _versions(self, request: Request) -> Callable[[], dict[str, Any]]:
        p, q = request.path_params, request.query_params
        return lambda: api.versions(p["namespace"], p["name"], after=q.get("after", ""),
                                    limit=q.get("limit"))

    async def api_versions(self, request: Request) -> Response:
        return await self.answer(request, self._versions(request), None)

    async def versions(self, request: Request) -> Response:
        return await self.answer(request, self._versions(request), "versions.html")

    def _diff(self, request: Request) -> Callable[[], dict[str, Any]]:
        p, q = request.path_params, request.query_params
        return lambda: api.diff(p["namespace"], p["name"], q.get("from", ""), q.get("to", ""))

    async def api_diff(self, request: Request) -> Response:
        return await self.answer(request, self._diff(request), None)

    async def diff(self, request: Request) -> Response:
        return await self.answer(request, self._diff(request), "diff.html")

    # -- lineage ---------------------------------------------------------------

    def _lineage(self, request: Request) -> Callable[[], dict[str, Any]]:
        p, q = request.path_params, request.query_params
        return lambda: api.lineage(p["namespace"], p["name"], upstream=q.get("upstream", ""),
                                   downstream=q.get("downstream", ""), depth=q.get("depth", ""))

    async def api_lineage(self, request: Request) -> Response:
        return await self.answer(request, self._lineage(request), None)

    async def lineage(self, request: Request) -> Response:
        return await self.answer(request, self._lineage(request), "lineage.html")

    def _run(self, request: Request) -> Callable[[], dict[str, Any]]:
        run_id = request.path_params["run_id"]
        return lambda: api.run(run_id)

    async def api_run(self, request: Request) -> Response:
        return await self.answer(request, self._run(request), None)

    async def run_page(self, request: Request) -> Response:
        return await self.answer(request, self._run(request), "run.html")

    # -- files -----------------------------------------------------------------

    def _preview(self, request: Request) -> Callable[[], dict[str, Any]]:
        p = request.path_params
        return lambda: preview(p["namespace"], p["name"], p["file"])

    async def api_preview(self, request: Request) -> Response:
        return await self.answer(request, self._preview(request), None)

    async def file_page(self, request: Request) -> Response:
        return await self.answer(request, self._preview(request), "file.html")

    async def content(self, request: Request) -> Response:
        """The file's bytes, streamed from the storage: an attachment, or with
        ``?inline=1`` a raster image up to :data:`IMAGE_BYTES` shown in the page."""
        p = request.path_params
        inline = request.query_params.get("inline") == "1"

        def open_file() -> tuple[Any, str, int]:
            found = api.open_artifact(p["namespace"], p["name"])
            handle = found.get_file(validate_file_name(p["file"]))
            size = handle.info.size
            stream = handle.open("rb")
            if not inline:
                return stream, mimetypes.guess_type(p["file"])[0] or \
                    "application/octet-stream", size
            kind = image_type(stream.read(16)) if size <= IMAGE_BYTES else None
            if kind is None:
                stream.close()
                raise InvalidNameError(f"file {p['file']!r} is not an image shown inline "
                                       f"(PNG, JPEG, GIF or WebP up to {IMAGE_BYTES} bytes)")
            stream.seek(0)
            return stream, kind, size

        try:
            stream, kind, _ = await run_in_threadpool(_looked_at, open_file)
        except CatalogStoreError as exc:
            return JSONResponse({"error": _error(exc)}, status_code=_status(exc))

        def pieces() -> Iterator[bytes]:
            with stream:
                while piece := stream.read(CHUNK):
                    yield piece

        name = p["file"]
        disposition = "inline" if inline else "attachment"
        # File names are ASCII without quotes (validate_file_name); filename* too for clients
        # that prefer it.
        headers = {"Content-Disposition":
                   f'{disposition}; filename="{name}"; filename*=UTF-8\'\'{quote(name)}'}
        return StreamingResponse(pieces(), media_type=kind, headers=headers)

    # -- health ----------------------------------------------------------------

    def _health(self, request: Request) -> Callable[[], dict[str, Any]]:
        verify = request.query_params.get("verify", "")
        if verify not in ("", "fast"):
            def refuse() -> dict[str, Any]:
                raise QueryError(f"verify={verify[:20]!r}: only verify=fast is offered here")
            return refuse
        return lambda: api.health(verify=verify == "fast")

    async def api_health(self, request: Request) -> Response:
        return await self.answer(request, self._health(request), None)

    async def health(self, request: Request) -> Response:
        return await self.answer(request, self._health(request), "health.html")

    async def style(self, request: Request) -> Response:
        return Response((_TEMPLATES / "style.css").read_text(), media_type="text/css")


class _Guard(BaseHTTPMiddleware):
    """The token check, and the security headers of every answer."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint
                       ) -> Response:
        given = request.query_params.get("token")
        bearer = request.headers.get("authorization", "")
        # Cookies are shared by every port of a host: one name per port, so that two
        # servers on one machine do not overwrite each other's.
        cookie = f"{TOKEN_COOKIE}_{request.url.port}"
        candidates = [given, request.cookies.get(cookie),
                      bearer[7:] if bearer.lower().startswith("bearer ") else None]
        if self.token is not None and not any(
                c is not None and hmac.compare_digest(c.encode(), self.token.encode())
                for c in candidates):
            message = "missing or wrong token: open the URL `catalogstore ui` printed"
            if request.url.path.startswith("/api/"):
                response: Response = JSONResponse(
                    {"error": {"type": "Unauthorized", "message": message}}, status_code=401)
            else:
                response = HTMLResponse(f"<!doctype html><title>401</title><p>{message}</p>",
                                        status_code=401)
        else:
            start = time.perf_counter()
            response = await call_next(request)
            # What the server spent (bench/bench_web.py reads it), as browsers show it.
            response.headers["Server-Timing"] = \
                f"app;dur={(time.perf_counter() - start) * 1000:.2f}"
            if given is not None and self.token is not None:
                response.set_cookie(cookie, self.token, httponly=True,
                                    samesite="strict")
        response.headers.update(_HEADERS)
        return response


def create_app(token: str | None) -> Starlette:
    """The browser's application; ``token`` None serves without one (tests, benchmarks).

    The catalog and storage are the configured ones (``CATALOGSTORE_*`` variables or
    :func:`catalogstore.configure`).
    """
    pages = _Pages(token)
    # {name}: the artifact's name, or one version of it (NAME:v3, NAME@prod).
    file_path = "/{namespace}/{name}/files/{file}"
    artifact_path = "/artifacts/{namespace}/{name}"
    routes = [
        Route("/", pages.namespaces),
        Route("/search", pages.search),
        Route(artifact_path, pages.artifact),
        Route(artifact_path + "/versions", pages.versions),
        Route(artifact_path + "/diff", pages.diff),
        Route(artifact_path + "/lineage", pages.lineage),
        Route("/runs/{run_id}", pages.run_page),
        Route("/artifacts" + file_path, pages.file_page),
        Route("/objects", pages.objects),
        Route("/health", pages.health),
        Route("/style.css", pages.style),
        Route("/api/namespaces", pages.api_namespaces),
        Route("/api/search", pages.api_search),
        Route("/api" + artifact_path, pages.api_artifact),
        Route("/api" + artifact_path + "/versions", pages.api_versions),
        Route("/api" + artifact_path + "/diff", pages.api_diff),
        Route("/api" + artifact_path + "/lineage", pages.api_lineage),
        Route("/api/runs/{run_id}", pages.api_run),
        Route("/api/artifacts" + file_path + "/preview", pages.api_preview),
        Route("/api/artifacts" + file_path + "/content", pages.content),
        Route("/api/objects", pages.api_objects),
        Route("/api/health", pages.api_health),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token)])
