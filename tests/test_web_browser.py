"""The web browser in a real browser (issue 17): headless Chromium (Debian's
``chromium`` and ``chromium-driver``, which ``.ci/run`` installs) driven by Selenium
through namespace -> search -> artifact -> file preview -> download, an artifact ->
an earlier version -> its file -> its changes, namespace -> search -> artifact -> file
preview -> version -> lineage -> a run -> back, a bad filter, sorting, paging, a
metadata column, the health page and escaping.

With ``WEB_SCREENSHOTS=1`` the pages' screenshots are written to docs/ui/
(the README shows them); otherwise to the test's temporary folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("web_catalog")

from web_catalog import RUNS, SEVEN_VERSIONS, TOKEN, XSS, Served, serve_new  # noqa: E402

pytest_plugins = ["web_catalog"]  # the served catalog
pytestmark = pytest.mark.browser

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "ui"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[Any]:
    """One headless Chromium for the module."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.fail("needs Debian's chromium and chromium-driver (.ci/run installs them; "
                    "-m 'not browser' leaves these tests out)")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("WEB_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        return DOCS
    return tmp_path


def _by(browser: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, css)


def _all(browser: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, css))


def _column(browser: Any, table: str, index: int) -> list[str]:
    return [row.text for row in _all(browser, f"{table} tr td:nth-child({index})")]


def _metadata(browser: Any) -> dict[str, str]:
    """The metadata table of an artifact page: key -> value as shown."""
    return _metadata_of(browser, "#metadata")


def _metadata_of(browser: Any, table: str) -> dict[str, str]:
    """A key/value/type table: key -> value as shown."""
    cells = [r.find_elements("css selector", "td") for r in _all(browser, f"{table} tr")[1:]]
    return {key.text: value.text for key, value, *_ in cells}


def _follow(browser: Any, element: Any, *keys: str) -> None:
    """Click ``element`` (or type ``keys`` into it) and wait for the next page to load."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    if keys:
        element.send_keys(*keys)
    else:
        element.click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(element))
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return document.readyState") == "complete")


def _shot(browser: Any, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    assert browser.save_screenshot(str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_namespace_search_artifact_preview_download(served: Served, browser: Any,
                                                    downloads: Path, shots: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select

    browser.get(f"{served.base}/?token={TOKEN}")  # sets the cookie for what follows
    rows = {r.text.split()[0]: r.text for r in _all(browser, "#namespaces tr")[1:-1]}
    assert list(rows) == ["team-a", "team-b"] and f"team-a {RUNS} " in rows["team-a"]
    _shot(browser, shots, "namespaces")

    _follow(browser, _by(browser, "a.namespace"))  # team-a
    assert "ns=team-a" in browser.current_url
    assert _column(browser, "#results", 2)[:3] == ["run-01", "run-02", "run-03"]
    assert len(_column(browser, "#results", 2)) == RUNS

    _follow(browser, _by(browser, "#q"), "meta.accuracy > 0.2 AND meta.model = 'xgb'", Keys.ENTER)
    assert _column(browser, "#results", 2) == ["run-07", "run-21", "run-23", "run-25",
                                               "run-27", "run-29"]
    Select(_by(browser, "#add")).select_by_visible_text("accuracy")
    _follow(browser, _by(browser, "#add-button"))
    assert [th.text for th in _all(browser, "#results th")][-1] == "accuracy"
    _follow(browser, _by(browser, 'a.sort[data-field="meta.accuracy"]'))  # descending first
    assert _column(browser, "#results", 2)[:2] == ["run-07", "run-29"]
    assert _column(browser, "#results", 7)[:2] == ["0.93", "0.29"]
    _shot(browser, shots, "search")

    _follow(browser, _by(browser, "a.artifact"))  # run-07
    assert _by(browser, "#artifact-name").text == "run-07"
    meta = _metadata(browser)
    assert meta["accuracy"] == "0.93" and meta["model"] == "xgb"
    files = _column(browser, "#files", 1)
    assert "metrics.parquet" in files and "notes.txt" in files
    _shot(browser, shots, "artifact")

    [link] = [a for a in _all(browser, "a.preview") if a.text == "metrics.parquet"]
    _follow(browser, link)
    assert _by(browser, "#preview").get_attribute("data-kind") == "table"
    assert _column(browser, "#schema", 1) == ["step", "loss", "tag"]
    assert _column(browser, "#rows", 3)[:2] == ["t0", "t1"]
    _shot(browser, shots, "preview")

    _follow(browser, _by(browser, "#back"))
    [link] = [a for a in _all(browser, "a.preview") if a.text == "notes.txt"]
    _follow(browser, link)
    assert _by(browser, "#lines").text.splitlines() == ["run 7", "second line"]
    _by(browser, "#download").click()
    target = downloads / "notes.txt"
    deadline = time.monotonic() + 20
    # Chromium may show the file before its bytes: wait for them, then compare.
    while not (target.exists() and target.stat().st_size == 18
               and not list(downloads.glob("*.crdownload"))):
        assert time.monotonic() < deadline, list(downloads.iterdir())
        time.sleep(0.1)
    assert target.read_text() == "run 7\nsecond line\n"


@pytest.mark.slow
def test_artifact_to_an_earlier_version_its_file_and_its_changes(served: Served, browser: Any,
                                                                 shots: Path) -> None:
    browser.get(f"{served.base}/artifacts/team-a/run-07?token={TOKEN}")
    assert not _all(browser, "#not-current") and _metadata(browser)["stage"] == "tuned"
    versions = _column(browser, "#versions", 1)
    assert versions == [f"v{n}" for n in range(SEVEN_VERSIONS, 0, -1)]
    assert _column(browser, "#versions", 5)[0] == "latest"
    assert _column(browser, "#versions", 5)[-1] == "prod"

    [link] = [a for a in _all(browser, "a.version") if a.text == "v1"]
    _follow(browser, link)
    assert browser.current_url == f"{served.base}/artifacts/team-a/run-07:v1"
    assert f"not the current one (v{SEVEN_VERSIONS})" in _by(browser, "#not-current").text
    assert _by(browser, "#version-name").text == "v1"
    assert _metadata(browser) == {"accuracy": "0.93", "epochs": "7", "model": "xgb"}
    assert _column(browser, "#files", 1) == ["notes.txt"]
    _shot(browser, shots, "version")

    _follow(browser, _by(browser, "a.preview"))  # notes.txt as version 1 holds it
    assert _by(browser, "#back").text == "run-07:v1"
    assert _by(browser, "#lines").text.splitlines() == ["run 7", "second line"]
    _follow(browser, _by(browser, "#back"))
    _follow(browser, _by(browser, "#diff-current"))
    changes = [row.text for row in _all(browser, "#metadata-changes tr")[1:]]
    assert changes == ["added stage tuned"]
    added = _column(browser, "#file-changes", 2)
    assert "big.log" in added and "notes.txt" not in added
    _shot(browser, shots, "diff")

    browser.get(f"{served.base}/artifacts/team-a/run-07@prod")  # an alias: its version
    assert _by(browser, "#version-name").text == "v1"


@pytest.fixture(scope="module")
def lineage_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """tests/test_web_lineage.py's graph, served apart from the catalog above."""
    from test_web_lineage import fill_lineage

    with serve_new(tmp_path_factory.mktemp("lineage"), fill_lineage) as served:
        yield served


@pytest.mark.slow
def test_namespace_search_artifact_preview_version_lineage_run(
        lineage_served: Served, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    from test_web_lineage import HOSTILE

    import catalogstore

    served = lineage_served
    catalogstore.configure(catalog_url=served.catalog_url, storage_url=served.storage_url)
    browser.get(f"{served.base}/?token={TOKEN}")
    _follow(browser, _by(browser, "a.namespace"))  # ml
    assert _column(browser, "#results", 2) == ["model", "raw", "report"]
    _follow(browser, _by(browser, "#q"), "name = 'raw'", Keys.ENTER)
    assert _column(browser, "#results", 2) == ["raw"]
    _follow(browser, _by(browser, "a.artifact"))
    assert _by(browser, "#artifact-name").text == "raw"
    _follow(browser, _by(browser, "a.preview"))  # rows.csv
    assert _by(browser, "#lines").text.splitlines() == ["4,5,6", "7,8,9"]
    _follow(browser, _by(browser, "#back"))
    assert _column(browser, "#versions", 1) == ["v3", "v2"]  # v1: removed by retention
    [link] = [a for a in _all(browser, "a.version") if a.text == "v2"]
    _follow(browser, link)
    assert browser.current_url.endswith("/artifacts/ml/raw:v2")
    assert _by(browser, "#version-name").text == "v2"

    _follow(browser, _by(browser, "#lineage-link"))
    assert browser.current_url.endswith("/artifacts/ml/raw:v2/lineage")
    assert _by(browser, "#lineage-summary").text.startswith(
        "v2: 1 run(s), 1 version(s), 1 edge(s)")
    assert [a.get_attribute("data-status") for a in _all(browser, "a.lineage-run")] == [
        "succeeded"]
    assert _column(browser, "#lineage-runs", 1) == ["refresh"]

    # The model's lineage: a version node leads to its page, a run node to the run's.
    browser.get(f"{served.base}/artifacts/ml/model/lineage")
    assert _by(browser, "#lineage-summary").text.startswith(
        "v1: 3 run(s), 3 version(s), 5 edge(s)")
    assert len(_all(browser, "#lineage-graph line.edge")) == 5
    assert sorted(_column(browser, "#lineage-runs", 1)) == sorted(["prepare", "train",
                                                                    HOSTILE])
    assert set(_column(browser, "#lineage-runs", 2)) == {"succeeded"}
    [removed] = _all(browser, 'a.lineage-version[data-state="removed"]')
    assert "v1 · removed" in removed.text
    assert browser.execute_script("return window.__xss === undefined")
    _shot(browser, shots, "lineage")
    [report] = [a for a in _all(browser, "a.lineage-version") if "ml/report" in a.text]
    _follow(browser, report)
    assert browser.current_url.endswith("/artifacts/ml/report:v1")
    assert _by(browser, "#version-name").text == "v1"
    browser.back()
    [train] = [a for a in _all(browser, "a.lineage-run") if a.text.startswith("train")]
    _follow(browser, train)
    assert _by(browser, "#run-name").text == "train"
    assert _by(browser, "#run-status").text == "succeeded"
    assert _metadata_of(browser, "#params") == {"lr": "0.05", XSS: XSS}
    assert _column(browser, "#inputs", 1) == ["ml/raw:v1"]
    assert _column(browser, "#inputs", 2) == ["removed"]
    assert _column(browser, "#outputs", 1) == ["ml/model:v1"]
    _shot(browser, shots, "run")
    [made] = _all(browser, "#outputs a.node")
    _follow(browser, made)  # back to the model, and from it to its lineage
    assert _by(browser, "#artifact-name").text == "model"
    _follow(browser, _by(browser, "#lineage-link"))
    assert len(_all(browser, "a.lineage-run")) == 3
    # A nested run: up to its parent, whose page lists it among its children, and back.
    [nested] = [a for a in _all(browser, "a.lineage-run") if a.text.startswith("<script>")]
    _follow(browser, nested)
    assert _by(browser, "#run-name").text == HOSTILE
    _follow(browser, _by(browser, "#parent"))
    assert _by(browser, "#run-name").text == "pipeline"
    assert _column(browser, "#children", 1) == [HOSTILE]
    assert _column(browser, "#children", 2) == ["succeeded"]
    _follow(browser, _by(browser, "#children a.child"))
    assert _by(browser, "#run-name").text == HOSTILE
    assert browser.execute_script("return window.__xss === undefined")


@pytest.mark.slow
def test_bad_filter_shows_the_error_with_its_caret(served: Served, browser: Any,
                                                   shots: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{served.base}/search?token={TOKEN}")
    _follow(browser, _by(browser, "#q"), "meta.accuracy > 0.9 AND AND", Keys.ENTER)
    assert "expected a field" in _by(browser, "#error").text
    filter_line, caret_line = _by(browser, "#caret").text.splitlines()[-2:]
    assert filter_line.strip() == "meta.accuracy > 0.9 AND AND"
    assert caret_line.index("^") == filter_line.index("AND AND") + 4
    assert _by(browser, "#q").get_attribute("value") == "meta.accuracy > 0.9 AND AND"
    _shot(browser, shots, "error")


@pytest.mark.slow
def test_paging_image_npy_health_and_escaping(served: Served, browser: Any,
                                              shots: Path) -> None:
    browser.get(f"{served.base}/search?ns=team-a&limit=12&order=-epochs&token={TOKEN}")
    browser.get(f"{served.base}/search?ns=team-a&limit=12&order=name")
    names = _column(browser, "#results", 2)
    while _all(browser, "#next"):
        _follow(browser, _by(browser, "#next"))
        names += _column(browser, "#results", 2)
    assert names == [f"run-{i:02d}" for i in range(1, RUNS + 1)]

    browser.get(f"{served.base}/artifacts/team-a/run-07/files/plot.png")
    image = _by(browser, "#image")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 4
    browser.get(f"{served.base}/artifacts/team-a/run-07/files/weights.npy")
    assert _by(browser, "#npy").text.splitlines()[:2] == ["dtype <f8", "shape (3, 4)"]

    browser.get(f"{served.base}/artifacts/team-b/evil")
    assert XSS in _by(browser, "#metadata").text  # shown as text ...
    assert browser.execute_script("return window.__xss === undefined")  # ... never run

    browser.get(f"{served.base}/health")
    assert "(head)" in _by(browser, "#revision").text
    _follow(browser, _by(browser, "#run-verify"))
    assert _by(browser, "#verify").text.startswith("OK")
    assert _column(browser, "#storage-used", 1) == ["team-a", "team-b"]
    _shot(browser, shots, "health")


def test_docs_screenshots_exist() -> None:
    """The README shows these (written by the tests above with WEB_SCREENSHOTS=1)."""
    for name in ("namespaces", "search", "artifact", "preview", "version", "diff", "error",
                 "health", "lineage", "run"):
        assert (DOCS / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
