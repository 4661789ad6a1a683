"""Finding and loading plugins and model registries from entry points, as installed packages declare them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

from pgmig.config.discovery import handler_set, load_handlers
from pgmig.config.entrypoints import OBJECT_TYPES_GROUP, REGISTRIES_GROUP, find
from pgmig.config.registries import load_models
from pgmig.errors import ModelsError, PluginError
from pgmig.schema.handlers.column import ColumnHandler
from pgmig.schema.handlers.table import TableHandler
from tests.helpers import make_distribution

BUILTIN_KINDS = {"table", "column", "enum", "constraint", "index", "sequence", "domain"}

HANDLER_MODULE = """
from pgmig.schema.protocol import ObjectHandler

class ViewHandler(ObjectHandler):
    kind = "{kind}"
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder that looks like site-packages, on sys.path for this test only."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)


def test_builtin_kinds_register_through_entry_points() -> None:
    found = {f.name: f for f in find(OBJECT_TYPES_GROUP)}
    assert BUILTIN_KINDS <= set(found)
    assert {found[k].package for k in BUILTIN_KINDS} == {"pgmig"}
    handlers = load_handlers()
    assert {h.kind for h in handlers.handlers} >= BUILTIN_KINDS
    assert handlers.failures == []


def test_third_party_handler_is_loaded(site: Path) -> None:
    make_distribution(
        site,
        "pgmig-views",
        {OBJECT_TYPES_GROUP: {"view": "pgmig_views_x:ViewHandler"}},
        {"pgmig_views_x.py": HANDLER_MODULE.format(kind="view")},
    )
    handlers = load_handlers()
    loaded = {item.handler.kind: item for item in handlers.loaded}
    assert loaded["view"].provider == "pgmig-views 1.0"
    assert BUILTIN_KINDS <= set(loaded)


def test_broken_plugin_is_reported_and_the_rest_keep_working(site: Path) -> None:
    make_distribution(
        site,
        "pgmig-broken",
        {OBJECT_TYPES_GROUP: {"broken": "pgmig_broken_x:Handler"}},
        {"pgmig_broken_x.py": "import this_module_does_not_exist\n"},
    )
    handlers = load_handlers()
    assert len(handlers.failures) == 1
    assert "pgmig-broken" in handlers.failures[0]
    assert "this_module_does_not_exist" in handlers.failures[0]
    assert BUILTIN_KINDS <= {h.kind for h in handlers.handlers}


def test_duplicate_kind_names_both_packages(site: Path) -> None:
    make_distribution(
        site,
        "pgmig-other-tables",
        {OBJECT_TYPES_GROUP: {"table": "pgmig_other_x:ViewHandler"}},
        {"pgmig_other_x.py": HANDLER_MODULE.format(kind="table")},
    )
    with pytest.raises(PluginError) as info:
        load_handlers()
    message = str(info.value)
    assert "'table'" in message and "pgmig 0.1.0" in message and "pgmig-other-tables 1.0" in message
    assert info.value.exit_code == 2


def test_plain_list_of_handlers() -> None:
    handlers = handler_set([TableHandler, ColumnHandler()])
    assert [h.kind for h in handlers.handlers] == ["table", "column"]
    with pytest.raises(PluginError):
        handler_set([TableHandler, TableHandler])


# -- model registries -------------------------------------------------------------

MODELS_MODULE = """
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("{table}", metadata, sa.Column("id", sa.Integer, primary_key=True))

class Holder:
    metadata = metadata

def build():
    return metadata
"""


@pytest.mark.parametrize("target", ["{mod}", "{mod}:metadata", "{mod}:Holder", "{mod}:build"])
def test_registry_entry_point_forms(site: Path, target: str) -> None:
    make_distribution(
        site,
        "app",
        {REGISTRIES_GROUP: {"app": target.format(mod="app_models_x")}},
        {"app_models_x.py": MODELS_MODULE.format(table="article")},
    )
    assert [r.name for r in find(REGISTRIES_GROUP)] == ["app"]
    loaded = load_models([], site)
    assert [t.name for t in loaded.tables] == ["article"]


def test_registries_merge_and_a_table_defined_twice_names_both(site: Path) -> None:
    make_distribution(
        site, "app-a", {REGISTRIES_GROUP: {"a": "app_a_x"}}, {"app_a_x.py": MODELS_MODULE.format(table="one")}
    )
    make_distribution(
        site, "app-b", {REGISTRIES_GROUP: {"b": "app_b_x"}}, {"app_b_x.py": MODELS_MODULE.format(table="two")}
    )
    assert sorted(t.name for t in load_models([], site).tables) == ["one", "two"]
    make_distribution(
        site, "app-c", {REGISTRIES_GROUP: {"c": "app_c_x"}}, {"app_c_x.py": MODELS_MODULE.format(table="one")}
    )
    with pytest.raises(ModelsError, match=r"public\.one is defined twice: in a and in c"):
        load_models([], site)


def test_registry_that_fails_to_import_names_its_package(site: Path) -> None:
    make_distribution(site, "app-bad", {REGISTRIES_GROUP: {"bad": "app_bad_x"}}, {"app_bad_x.py": "1/0\n"})
    with pytest.raises(ModelsError, match="app-bad.*ZeroDivisionError"):
        load_models([], site)


def test_no_registry_and_no_models(site: Path) -> None:
    if find(REGISTRIES_GROUP):
        pytest.skip("a pgmig.registries entry point is installed in this environment")
    with pytest.raises(ModelsError, match="no models found") as raised:
        load_models([], site)
    # The library names the setting; the CLI words it with its flag.
    from pgmig.cli.context import word_hint

    assert raised.value.hint is not None and raised.value.hint.option == "models"
    assert "--models app/models.py" in raised.value.describe(word_hint)


# -- --models values --------------------------------------------------------------


def test_models_file_path_and_attr(tmp_path: Path, site: Path) -> None:
    app = tmp_path / "proj" / "app"
    app.mkdir(parents=True)
    (app / "models.py").write_text(MODELS_MODULE.format(table="by_file"))
    root = tmp_path / "proj"
    assert [t.name for t in load_models(["app/models.py"], root).tables] == ["by_file"]
    assert [t.name for t in load_models(["app/models.py:Holder"], root).tables] == ["by_file"]


def test_models_file_inside_a_package_keeps_relative_imports(tmp_path: Path, site: Path) -> None:
    pkg = tmp_path / "proj" / "shop_x"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
    (pkg / "models.py").write_text(
        "import sqlalchemy as sa\nfrom .base import metadata\n"
        "orders = sa.Table('orders', metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    loaded = load_models([str(pkg / "models.py")], tmp_path / "proj")
    assert [t.name for t in loaded.tables] == ["orders"]


def test_models_import_path(site: Path) -> None:
    (site / "mods_x.py").write_text(MODELS_MODULE.format(table="imported"))
    assert [t.name for t in load_models(["mods_x"], site).tables] == ["imported"]
    assert [t.name for t in load_models(["mods_x:metadata"], site).tables] == ["imported"]


@pytest.mark.parametrize(
    "spec, content, message",
    [
        ("missing/models.py", None, "does not exist"),
        ("no_such_module_x", None, "no module named 'no_such_module_x'"),
        ("raises_x", "raise RuntimeError('boom in models')\n", "RuntimeError: boom in models"),
        ("empty_x", "import sqlalchemy as sa\nmetadata = sa.MetaData()\n", "define no tables"),
        ("notables_x", "x = 1\n", "defines no tables or MetaData"),
        ("attr_x:nothing", "x = 1\n", "has no attribute 'nothing'"),
        ("syntax_x", "def broken(:\n", "SyntaxError"),
    ],
)
def test_models_errors(site: Path, spec: str, content: str, message: str) -> None:
    if content is not None:
        (site / (spec.split(":")[0] + ".py")).write_text(content)
    with pytest.raises(ModelsError, match=message) as info:
        load_models([spec], site)
    assert info.value.exit_code == 2


def test_tables_of_other_schemas_are_an_error(site: Path) -> None:
    # Tables without a schema belong to the first managed schema; one in a schema that is not
    # managed is an error naming it (reading that schema would drop what the models lack there).
    (site / "schemas_x.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('a', metadata, sa.Column('id', sa.Integer))\n"
        "sa.Table('b', metadata, sa.Column('id', sa.Integer), schema='other')\n"
    )
    with pytest.raises(ModelsError, match=r"table other\.b .* not manage"):
        load_models(["schemas_x"], site)
    assert [t.name for t in load_models(["schemas_x"], site, schema="other").tables] == ["a", "b"]
    assert [t.name for t in load_models(["schemas_x"], site, schemas=["third", "other"]).tables] == ["a", "b"]
