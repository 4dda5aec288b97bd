"""The web browser (``catalogstore ui``) at a million artifacts: server-side time of its pages.

The data set is the search benchmark's (``bench_query.py``: 1,000,000 artifacts,
100,000 with ``--quick``, in 20 namespaces, 5 metadata keys each, bulk-loaded into
a SQLite catalog); 20 of them get three files each through the API, for the
artifact page, and one more gets 200 versions through the API (each commit a metadata
change, every tenth a changed file too), for the versions pages. The browser is
served by uvicorn on loopback in this process, and each page is fetched over HTTP;
the time is the server's, from the ``Server-Timing`` header every answer carries
(the middleware's clock around the route: query, template, response), with the
client's time beside it.

Bars (median of 20, each round with other values):

- the search page (a filter on two keys, two metadata columns, a page of 50): < 100 ms
- an artifact page (metadata, files with sizes and checksums): < 100 ms
- the artifact page of the artifact with 200 versions (its files, and its newest 50
  versions with files, bytes and aliases): < 100 ms
- the page of one of its earlier versions (that version's metadata and files, and
  the newest versions): < 100 ms

And, not bars: the search page with no filter and its next page (keyset cursor), the
JSON answers of both, the namespaces page (counts and sizes: SQL aggregates over
every artifact), the next page of the 200 versions (keyset cursor), the changes
between two of them, the versions as JSON.

    .venv/bin/python bench/bench_web.py [--quick] [--repeat N]
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from _common import (
    Timing,
    exit_status,
    fmt_time,
    make_parser,
    print_header,
    report_bar,
    temp_store,
)
from bench_query import MODELS, NAMESPACES, load_sqlite

WITH_FILES = 20
VERSIONS = 200


def _fetch(base: str, path: str) -> tuple[float, float]:
    """(server seconds, client seconds) of one GET, which must answer 200."""
    started = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=60) as answer:
        answer.read()
        timing = answer.headers["Server-Timing"]
    client = time.perf_counter() - started
    match = re.fullmatch(r"app;dur=([0-9.]+)", timing or "")
    if match is None:
        raise SystemExit(f"{path}: no Server-Timing header")
    return float(match.group(1)) / 1e3, client


def _run(base: str, cases: dict[str, Callable[[int], str]], repeat: int
         ) -> dict[str, tuple[Timing, Timing]]:
    server: dict[str, list[float]] = {name: [] for name in cases}
    client: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for round_no in range(2 + repeat):  # two warm-up rounds
        for name in names if round_no % 2 == 0 else reversed(names):
            s, c = _fetch(base, cases[name](round_no))
            if round_no >= 2:
                server[name].append(s)
                client[name].append(c)
    return {n: (Timing(n, server[n]), Timing(n, client[n])) for n in names}


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__).parse_args(argv)
    count = 100_000 if args.quick else 1_000_000
    repeat = args.repeat or 20
    print_header(f"bench_web: the web browser's pages at {count:,} artifacts (SQLite)")
    from catalogstore.artifacts import get_artifact
    from catalogstore.web.serve import serving

    with temp_store(args.dir) as store:
        started = time.perf_counter()
        load_sqlite(store.workspace.catalog.engine, count)
        print(f"   loaded {count:,} artifacts in {time.perf_counter() - started:.1f} s")
        step = count // WITH_FILES
        with_files = [1 + k * step for k in range(WITH_FILES)]
        for i in with_files:
            artifact = get_artifact(f"run-{i:07d}", f"team-{i % NAMESPACES:02d}")
            with artifact.transaction():
                artifact.new_file("model.bin", content=bytes(4096))
                artifact.new_file("notes.txt", content="trained\n" * 100)
                artifact.new_file("params.json", content='{"lr": 0.1}')
        versioned_ns, versioned = _versioned(count, with_files)
        with serving() as base:
            first = urllib.request.urlopen(base + "/api/search?limit=50").read()
            cursor = json.loads(first)["next"]

            def search(r: int) -> str:
                return "/search?" + urllib.parse.urlencode(
                    {"q": f"meta.model = 'm{r % MODELS}' AND meta.accuracy > 0.9",
                     "col": ["accuracy", "model"], "limit": "50"}, doseq=True)

            def artifact_page(r: int) -> str:
                i = with_files[r % WITH_FILES]
                return f"/artifacts/team-{i % NAMESPACES:02d}/run-{i:07d}"

            home = f"/artifacts/{versioned_ns}/{versioned.name}"
            first_kept = versioned.versions()[0].version

            def old_version(r: int) -> str:
                return f"{home}:v{first_kept + r % (VERSIONS - 1)}"

            cases: dict[str, Callable[[int], str]] = {
                "search page: filter, 2 columns": search,
                "artifact page": artifact_page,
                f"artifact page, {VERSIONS} versions": lambda r: home,
                "an earlier version's page": old_version,
                "versions page: next page (cursor)":
                    lambda r: f"{home}/versions?after={first_kept + 100 + r % 50}",
                "changes between two versions":
                    lambda r: f"{home}/diff?from={first_kept + r % 100}"
                              f"&to={first_kept + 100 + r % 99}",
                "versions JSON": lambda r: f"/api{home}/versions?limit={50 + r % 2}",
                "search page: no filter": lambda r: f"/search?limit={50 + r % 2}",
                "search page: next page (cursor)": lambda r: "/search?" + urllib.parse.urlencode(
                    {"after": cursor, "limit": "50"}),
                "search JSON: filter": lambda r: "/api" + search(r),
                "artifact JSON": lambda r: "/api" + artifact_page(r),
                "namespaces page (aggregates)": lambda r: "/",
            }
            timings = _run(base, cases, repeat)
    print(f"\n-- server-side time (Server-Timing), median of {repeat}; client time beside it")
    width = max(map(len, timings))
    print(f"   {'page':<{width}}  {'median':>10}  {'p90':>10}  {'client':>10}")
    for name, (server, client) in timings.items():
        print(f"   {name:<{width}}  {fmt_time(server.median):>10}  {fmt_time(server.p90):>10}"
              f"  {fmt_time(client.median):>10}")
    report_bar("web-search-page", timings["search page: filter, 2 columns"][0].median * 1e3,
               100, f"median server time, search page, {count:,} artifacts", at_most=True,
               unit="ms")
    report_bar("web-artifact-page", timings["artifact page"][0].median * 1e3, 100,
               f"median server time, artifact page, {count:,} artifacts", at_most=True,
               unit="ms")
    report_bar("web-versions-artifact-page",
               timings[f"artifact page, {VERSIONS} versions"][0].median * 1e3, 100,
               f"median server time, artifact page with {VERSIONS} versions", at_most=True,
               unit="ms")
    report_bar("web-version-page", timings["an earlier version's page"][0].median * 1e3, 100,
               f"median server time, an earlier version's page of {VERSIONS}", at_most=True,
               unit="ms")
    return exit_status()


def _versioned(count: int, with_files: list[int]) -> tuple[str, Any]:
    """An artifact of the loaded ones (not one of ``with_files``) given :data:`VERSIONS`
    versions through the API: each commit changes metadata, every tenth a file too."""
    from catalogstore.artifacts import get_artifact

    i = with_files[0] + 1
    namespace = f"team-{i % NAMESPACES:02d}"
    artifact = get_artifact(f"run-{i:07d}", namespace)
    started = time.perf_counter()
    for step in range(VERSIONS):
        with artifact.transaction():
            artifact["step"] = step
            if step % 10 == 0:
                artifact.new_file("notes.txt", content=f"step {step}\n" * 100)
                artifact.new_file("model.bin", content=bytes([step % 256]) * 4096)
    print(f"   made {VERSIONS} versions of {namespace}/{artifact.name} in "
          f"{time.perf_counter() - started:.1f} s")
    return namespace, artifact


if __name__ == "__main__":
    sys.exit(main())
