"""The web browser's object store page (issue 17): the keys the object store holds,
apart from user artifacts, with the tier of each key's current value, from the
``objects`` table a page at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("web_catalog")

from web_catalog import TOKEN, XSS, Served  # noqa: E402

pytest_plugins = ["web_catalog"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A catalog with object store keys and a user artifact, served for the module."""
    pytest.importorskip("starlette")
    import catalogstore
    from catalogstore.artifacts import new_artifact
    from catalogstore.object_store import put
    from catalogstore.txn.workspace import close_workspaces
    from catalogstore.web.serve import serving

    root = tmp_path_factory.mktemp("objects")
    catalog_url, storage_url = f"sqlite:///{root / 'catalog.db'}", str(root / "storage")
    catalogstore.configure(catalog_url=catalog_url, storage_url=storage_url)
    for i in range(7):
        put(f"k{i}", {"i": i}, namespace="ml", artifact_only=True)
    put("threshold", 0.5, namespace="other", artifact_only=True)
    new_artifact("user-model", "ml").new_file("weights", content=b"w")  # not an object
    put("notes", XSS, namespace="ml", artifact_only=True)
    with serving(TOKEN) as base:
        yield Served(base, catalog_url, storage_url)
    close_workspaces()


@pytest.fixture(autouse=True)
def _store_configured(request: pytest.FixtureRequest, _clean_configuration: None) -> None:
    """The served catalog stays configured in each test (conftest resets it)."""
    import catalogstore

    store = request.getfixturevalue("store")
    catalogstore.configure(catalog_url=store.catalog_url, storage_url=store.storage_url)


def test_objects_api_lists_keys_apart_from_user_artifacts(store: Served) -> None:
    data = store.json("/api/objects")
    keys = [(o["namespace"], o["key"]) for o in data["objects"]]
    assert keys == [("ml", f"k{i}") for i in range(7)] + [("ml", "notes"),
                                                           ("other", "threshold")]
    first = data["objects"][0]
    assert first["tier"] == "artifact" and first["origin"] == "put" and first["artifact"]
    assert first["serializer"] and first["size"] > 0 and data["next"] is None


def test_objects_api_pages_and_filters(store: Served) -> None:
    seen, after = [], ""
    while True:
        page = store.json(f"/api/objects?ns=ml&limit=3&after={after}")
        seen += [o["key"] for o in page["objects"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == [f"k{i}" for i in range(7)] + ["notes"]


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "after=nonsense", "after=ml/..%2F",
                                   "ns=..", "ns=%00"])
def test_objects_api_refuses_bad_input(store: Served, query: str) -> None:
    data = store.json(f"/api/objects?{query}", status=400)
    assert "error" in data


def test_objects_page_shows_the_keys_escaped(store: Served) -> None:
    code, headers, body = store.get("/objects?ns=ml")
    assert code == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert 'id="objects"' in page and "k0" in page and "user-model" not in page
    assert 'href="/artifacts/ml/k0"' in page
    assert "<script>" not in page.split("<body", 1)[1]  # the XSS value is never echoed raw
