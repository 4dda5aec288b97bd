"""The filter language on versions and aliases (issue 15, item 5), on SQLite and PostgreSQL.

- ``version`` is the current version's number (numbers only);
- ``alias = 'prod'``, ``alias IN (...)``, ``alias LIKE``: the artifact has such an
  alias; ``!=``, ``NOT IN``, ``NOT LIKE``: it has none; ``alias IS NULL``: no alias set;
- ``alias.prod.meta.KEY`` compares the metadata of the version ``prod`` names exactly
  as ``meta.KEY`` compares the current one's ("all artifacts whose ``prod`` alias has
  ``meta.accuracy > 0.9``"): numbers as numbers (strings that read as one too), text
  as text, booleans and null by type, ``CONTAINS`` on lists, ``IS NULL`` for a missing
  key or a missing alias;
- every malformed or hostile filter of the new forms is a ``QueryError`` pointing at
  the problem, never a database or Python error (the malformed ones are in
  ``test_query.py``'s table), and the limits hold on both databases.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import catalogstore
from catalogstore.artifacts import get_artifact, new_artifact, query_artifacts
from catalogstore.catalog.query.compile import compile_search, encode_cursor
from catalogstore.catalog.query.language import MAX_TERMS
from catalogstore.cli import app
from catalogstore.errors import CatalogError, QueryError
from catalogstore.txn.workspace import get_workspace
from tests.stacks import stack_param

# Storage plays no part in a search: both catalogs, on local disk.
on_both = pytest.mark.parametrize(
    "stack", [stack_param("sqlite-local"), stack_param("postgres-local")], indirect=True)
ODD_KEY = 'odd "key"'
INJECTION = "x'; DROP TABLE artifacts; --"
REG_V2 = {"accuracy": "0.93", "note": None, "layers": [64, 32], "final": True,
          ODD_KEY: 1e-7, "small": 1e-7, "large": 1e16, "big": "1e999", "tag": INJECTION,
          "nested": {"b": [1, "é\"\\"], "a": None}, "seven": "007"}
ALL = {"clf", "reg", "old", "bare"}


@pytest.fixture
def data(stack: Any) -> Any:
    """clf: prod at v2 (accuracy 0.85), staging at v3 (0.95, current); reg: prod at v2
    (the typed values of REG_V2), current v3 (accuracy 0.5); old: prod at v1 (no
    metadata), current v2 0.99; bare: no alias, v1 0.97."""
    clf = new_artifact("clf", "team")
    clf.update_meta({"accuracy": 0.85, "model": "xgb"})
    clf["accuracy"] = 0.95
    clf.set_alias("prod", 2)
    clf.set_alias("staging", 3)
    reg = new_artifact("reg", "team")
    reg.update_meta(REG_V2)
    reg.update_meta({"accuracy": 0.5, "layers": [1]})
    reg.set_alias("prod", 2)
    old = new_artifact("old", "team")
    old.set_alias("prod", 1)
    old["accuracy"] = 0.99
    with catalogstore.transaction():  # one version
        new_artifact("bare", "other")["accuracy"] = 0.97
    return stack


def names(filter: str, **options: Any) -> set[str]:
    return {a.name for a in query_artifacts(filter, **options)}


# -- alias.NAME.meta.KEY -----------------------------------------------------------------


@on_both
def test_the_issue_example_reads_the_metadata_of_the_aliased_version(data):
    # "all artifacts whose prod alias has meta.accuracy > 0.9": reg's prod holds the
    # string "0.93", which reads as a number, as meta.KEY's do; the current versions
    # answer meta.accuracy.
    assert names("alias.prod.meta.accuracy > 0.9") == {"reg"}
    assert names("meta.accuracy > 0.9") == {"clf", "old", "bare"}
    assert names("alias.prod.meta.accuracy < 0.9") == {"clf"}
    assert names("alias.staging.meta.accuracy >= 0.95") == {"clf"}
    assert names("alias.prod.meta.accuracy = 0.85") == {"clf"}
    assert names("alias.prod.meta.accuracy IN (0.85, 0.93)") == {"clf", "reg"}
    assert names("alias.prod.meta.accuracy > 0.8 AND meta.accuracy > 0.9") == {"clf"}
    assert names("alias.prod.meta.accuracy > 0.9 OR alias.staging.meta.model = 'xgb'") == \
        {"reg", "clf"}
    assert names("alias.latest.meta.accuracy > 0.9") == names("meta.accuracy > 0.9")


@on_both
def test_aliased_values_compare_as_meta_values_do(data):
    # Text: a string itself, other values the JSON text the commit wrote.
    assert names("alias.prod.meta.accuracy = '0.93'") == {"reg"}
    assert names("alias.prod.meta.accuracy = '0.85'") == {"clf"}  # a number's text
    assert names("alias.prod.meta.accuracy > '0.9'") == {"reg"}  # '0.85' < '0.9' as text
    # As the document spells them (jsonb would print 0.0000001 and 10000000000000000).
    assert names("alias.prod.meta.small = '1e-7' AND alias.prod.meta.large = '1e+16'") == \
        {"reg"}
    assert names("alias.prod.meta.small = 0.0000001 AND alias.prod.meta.large > 9e15") == \
        {"reg"}
    assert names(f"alias.prod.meta.\"{ODD_KEY.replace(chr(34), chr(34) * 2)}\" = 1e-7") == \
        {"reg"}
    assert names("alias.prod.meta.seven = 7 AND alias.prod.meta.seven = '007'") == {"reg"}
    assert names("alias.prod.meta.big = '1e999'") == {"reg"}
    assert names("alias.prod.meta.big > 0 OR alias.prod.meta.big < 0") == set()  # no number
    assert names("alias.prod.meta.layers = '[64,32]'") == {"reg"}
    assert names('alias.prod.meta.nested = \'{"b":[1,"é\\"\\\\"],"a":null}\'') == {"reg"}
    # Booleans and null by type; 'true' as text also matches the boolean's text.
    assert names("alias.prod.meta.final = true") == {"reg"}
    assert names("alias.prod.meta.final = 'true'") == {"reg"}
    assert names("alias.prod.meta.final = false OR alias.prod.meta.final = 1") == set()
    assert names("alias.prod.meta.note = null") == {"reg"}
    assert names("alias.prod.meta.note != null") == set()
    # Lists.
    assert names("alias.prod.meta.layers CONTAINS 64") == {"reg"}
    assert names("meta.layers CONTAINS 64") == set()  # the current one holds [1]
    assert names("alias.prod.meta.layers CONTAINS '64'") == set()
    assert names("alias.prod.meta.layers NOT CONTAINS 7") == {"reg"}
    # LIKE on the text, and values stay data.
    assert names("alias.prod.meta.tag LIKE 'x''; DROP%'") == {"reg"}
    quoted = INJECTION.replace("'", "''")
    assert names(f"alias.prod.meta.tag = '{quoted}'") == {"reg"}
    assert names(f"alias.prod.meta.\"{INJECTION}\" IS NOT NULL") == set()


@on_both
def test_missing_keys_and_missing_aliases_are_null(data):
    assert names("alias.prod.meta.accuracy IS NOT NULL") == {"clf", "reg"}
    # old's prod has no accuracy; bare has no prod: both as a missing key.
    assert names("alias.prod.meta.accuracy IS NULL") == {"old", "bare"}
    assert names("alias.prod.meta.note IS NULL") == {"clf", "reg", "old", "bare"}
    # != holds for those with the key and another value; NOT also for the others.
    assert names("alias.prod.meta.accuracy != 0.85") == {"reg"}
    assert names("NOT alias.prod.meta.accuracy = 0.85") == ALL - {"clf"}
    assert names("alias.nothing.meta.accuracy IS NULL") == ALL
    assert names("alias.prod.meta.missing = 1 OR alias.prod.meta.missing != 1") == set()


@on_both
def test_searches_follow_aliases_as_they_move(data):
    reg = get_artifact("reg", "team")
    reg.set_alias("prod", 3)
    assert names("alias.prod.meta.accuracy > 0.9") == set()
    assert names("alias.prod.meta.accuracy = 0.5") == {"reg"}
    reg.set_alias("prod-2", 2)
    assert names('alias."prod-2".meta.accuracy > 0.9') == {"reg"}
    reg.remove_alias("prod")
    assert names("alias.prod.meta.accuracy = 0.5") == set()
    assert names("alias = 'prod'") == {"clf", "old"}


# -- alias and version ------------------------------------------------------------------------


@on_both
def test_alias_field(data):
    assert names("alias = 'prod'") == {"clf", "reg", "old"}
    assert names("alias IN ('staging', 'other')") == {"clf"}
    assert names("alias LIKE 'stag%'") == {"clf"}
    assert names("alias != 'staging'") == ALL - {"clf"}  # has no staging alias
    assert names("alias NOT IN ('prod', 'staging')") == {"bare"}
    assert names("alias NOT LIKE 'p%'") == {"bare"}
    assert names("alias IS NULL") == {"bare"}
    assert names("alias IS NOT NULL") == {"clf", "reg", "old"}
    assert names("alias = 'prod' AND alias = 'staging'") == {"clf"}
    assert names("alias = 'prod' AND namespace = 'team'", namespaces="other") == set()


@on_both
def test_version_field_and_ordering(data):
    assert names("version = 3") == {"clf", "reg"}
    assert names("version >= 2") == {"clf", "reg", "old"}
    assert names("version IN (1, 2)") == {"old", "bare"}
    assert names("version != 3 AND version < 99") == {"old", "bare"}
    # Ties by id, in the ordering's direction.
    assert [a.name for a in query_artifacts("", order_by="-version")] == \
        ["reg", "clf", "old", "bare"]
    first = query_artifacts("", order_by="version", limit=2)
    rest = query_artifacts("", order_by="version", limit=2, after=first.next)
    assert [a.name for a in [*first, *rest]] == [a.name for a in query_artifacts(
        "", order_by="version")]
    with pytest.raises(QueryError, match="invalid page cursor"):  # text for a number
        query_artifacts("", order_by="version", limit=2,
                        after=encode_cursor("version", ["3", 1]))


@on_both
def test_the_catalog_plans_from_the_alias_index(data):
    """An alias term names its artifact ids, so a search starts from them; a term on
    aliased versions' metadata (no index: each document is read) is checked per
    candidate when another term has an index."""
    engine = get_workspace().catalog.engine
    with engine.connect() as conn:
        for text in ("alias.prod.meta.accuracy > 0.9", "alias = 'prod'"):
            plan = compile_search(text, dialect=engine.dialect.name).plan(conn)
            assert plan.ids is not None and plan.answered, text
        search = compile_search("alias.prod.meta.accuracy > 0.8 AND meta.model = 'xgb'",
                                dialect=engine.dialect.name)
        plan = search.plan(conn)
    assert plan.ids is not None and plan.answered == [search.terms[1]]
    assert names("alias.prod.meta.accuracy > 0.8 AND meta.model = 'xgb'") == {"clf"}


@on_both
def test_a_version_document_edited_by_hand(data):
    """A document that is not JSON: no metadata on SQLite; on PostgreSQL (15 cannot test
    JSON without raising) the search fails as a CatalogError naming the catalog."""
    engine = sa.create_engine(data.catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE artifact_versions SET metadata_json = '{not json' "
                             "WHERE version = 2 AND artifact_id = (SELECT id FROM artifacts "
                             "WHERE name = 'reg')"))
    engine.dispose()
    if data.catalog_url.startswith("sqlite"):
        assert names("alias.prod.meta.accuracy > 0.5") == {"clf"}
        assert names("alias.prod.meta.accuracy IS NULL") == {"reg", "old", "bare"}
    else:
        with pytest.raises(CatalogError, match="could not search artifacts"):
            query_artifacts("alias.prod.meta.accuracy > 0.5")
    assert names("alias = 'prod'") == {"clf", "reg", "old"}  # the rest still answers


# -- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("order_by", ["alias", "-alias", "alias.prod.meta.accuracy",
                                      "alias.prod"])
def test_ordering_by_an_alias_is_refused(order_by):
    with pytest.raises(QueryError):
        compile_search(None, dialect="sqlite", order_by=order_by)


def _alias_chain(n: int, joiner: str) -> str:
    return f" {joiner} ".join(f"alias.prod.meta.k{i} = {i}" for i in range(n))


# name: (filter, the names it matches; None: refused with a QueryError)
LIMITS: dict[str, tuple[str, set[str] | None]] = {
    f"alias-meta-or-{MAX_TERMS}": (_alias_chain(MAX_TERMS, "OR"), {"a"}),
    f"alias-meta-and-{MAX_TERMS}": (_alias_chain(MAX_TERMS, "AND"), set()),
    f"alias-meta-or-{MAX_TERMS + 1}": (_alias_chain(MAX_TERMS + 1, "OR"), None),
    "alias-in-10000": ("alias IN (" + ",".join(f"'a{i}'" for i in range(10_000)) + ")",
                       {"a"}),
    "alias-in-10001": ("alias IN (" + ",".join(f"'a{i}'" for i in range(10_001)) + ")", None),
    "alias-name-128": ("alias.\"" + "p" * 128 + "\".meta.k0 IS NULL", {"a", "b"}),
    "alias-name-129": ("alias.\"" + "p" * 129 + "\".meta.k0 IS NULL", None),
    "alias-value-129": ("alias = '" + "p" * 129 + "'", None),
    "alias-like-4096": ("alias LIKE '" + "%_" * 2048 + "'", set()),
    "alias-key-nul": ("alias.prod.meta.\"k\x00\" = 1", None),
    "alias-name-nul": ("alias.\"pr\x00od\".meta.k = 1", None),
    "alias-name-surrogate": ("alias.\"\ud800\".meta.k = 1", None),
    "alias-value-surrogate": ("alias = '\ud800'", None),
    "alias-key-1e999": ("alias.prod.meta.k0 = 1e999", None),
    "alias-deep-not": ("NOT " * 32 + "alias.prod.meta.k0 = 0", {"a"}),
    "alias-deeper-not": ("NOT " * 33 + "alias.prod.meta.k0 = 0", None),
    "version-beyond-int64": ("version < 99999999999999999999", {"a", "b"}),
    "version-1e300": ("version > -1e300", {"a", "b"}),
}


@on_both
@pytest.mark.timeout(300)
def test_limits_of_the_new_forms_hold_on_both_databases(stack):
    a = new_artifact("a")
    a.update_meta({"k0": 0, "k5": 5})
    a.set_alias("prod")
    a.set_alias("a9999")
    new_artifact("b")
    for name, (text, expected) in LIMITS.items():
        if expected is None:
            with pytest.raises(QueryError) as caught:
                query_artifacts(text)
            assert caught.value.summary.count("\n") == 0, name
        else:
            assert names(text) == expected, name


# -- the command line ------------------------------------------------------------------

runner = CliRunner()


@on_both
def test_cli_query_on_aliases(data):
    result = runner.invoke(app, ["query", "alias.prod.meta.accuracy > 0.9", "--json"])
    assert result.exit_code == 0, result.output
    assert [a["name"] for a in json.loads(result.stdout)["artifacts"]] == ["reg"]
    result = runner.invoke(app, ["ls", "team", "--filter", "alias = 'staging'", "--json"])
    assert [a["name"] for a in json.loads(result.stdout)] == ["clf"]
    result = runner.invoke(app, ["query", "alias.prod.meta = 1"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: invalid query: expected '.' or '[' after meta")
