"""The README's plugin guide, run as printed: the plugin module, its registration, its conformance test.

The guide's code blocks are read from README.md (never copied here), so an
API change that breaks the example fails this test instead of rotting the
README. The plugin is installed the way `pip install` would leave it (a
module plus a dist-info carrying the README's entry point) in a folder put on
sys.path and on PYTHONPATH for the CLI.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from pgmig.ops.base import OPERATIONS
from pgmig.testing.conformance import ConformanceSuite
from tests.helpers import ROOT, fetch, make_distribution, pgmig_cli

PLUGIN_SECTION = "### A complete minimal plugin"
CONFORMANCE_SECTION = "### Testing it: the conformance suite"
REGISTRATION = "- **Registration**"


def _block(readme: str, heading: str, language: str) -> str:
    """The first ```language block after `heading` (and before the next heading)."""
    start = readme.index(heading)
    end = readme.find("\n#", start + len(heading))
    found = re.search(rf"^```{language}\n(.*?)^```$", readme[start : end if end != -1 else None], re.S | re.M)
    assert found, f"README.md: no ```{language} block under {heading!r}"
    return found.group(1)


@dataclass(frozen=True)
class ReadmePlugin:
    """The README's plugin, installed: its module, the kind its entry point names, where it lives."""

    module: types.ModuleType
    kind: str
    site: Path
    conformance: str


@pytest.fixture(scope="module")
def readme_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmePlugin]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    entry_points = tomllib.loads(_block(readme, REGISTRATION, "toml"))["project"]["entry-points"]
    ((kind, target),) = entry_points["pgmig.object_types"].items()
    module_name, _, handler = target.partition(":")
    site = tmp_path_factory.mktemp("site")
    make_distribution(
        site,
        module_name.replace("_", "-"),
        {"pgmig.object_types": {kind: target}},
        {f"{module_name}.py": _block(readme, PLUGIN_SECTION, "python")},
    )
    sys.path.insert(0, str(site))
    registered = set(OPERATIONS)
    try:
        module = importlib.import_module(module_name)
        assert getattr(module, handler).kind == kind, "the entry point's name is not its handler's kind"
        yield ReadmePlugin(module, kind, site, _block(readme, CONFORMANCE_SECTION, "python"))
    finally:
        # Leave the process as other tests expect it: no README module, none of its operations.
        sys.path.remove(str(site))
        sys.modules.pop(module_name, None)
        for name in set(OPERATIONS) - registered:
            del OPERATIONS[name]


def _suites(source: str) -> List[type]:
    """The `Test...` ConformanceSuite classes the README's test module defines, as pytest collects them."""
    module = types.ModuleType("readme_conformance_test")
    exec(compile(source, "README.md (conformance test)", "exec"), module.__dict__)  # noqa: S102 - the README's own code
    return [
        value
        for name, value in vars(module).items()
        if name.startswith("Test") and isinstance(value, type) and issubclass(value, ConformanceSuite)
    ]


def test_the_readme_plugin_passes_its_conformance_suite(readme_plugin: ReadmePlugin, pgmig_server: Any) -> None:
    """Every test method of the README's suite, each on a fresh database as its fixtures would give it."""
    suites = _suites(readme_plugin.conformance)
    assert suites, "the README's conformance test defines no Test... ConformanceSuite class"
    for suite in suites:
        assert readme_plugin.kind in suite.kinds
        methods: Dict[str, Callable[..., None]] = {
            name: getattr(suite(), name) for name in dir(suite) if name.startswith("test_")
        }
        assert "test_conformance" in methods
        for method in methods.values():
            url = pgmig_server.create_database()
            try:
                fixtures = {"database_url": url, "pgmig_server": pgmig_server}
                method(**{p: fixtures[p] for p in inspect.signature(method).parameters})
            finally:
                pgmig_server.drop_database(url)


MODELS = """
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from {module} import statistics


class Order(SQLModel, table=True):
    __tablename__ = "order"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int
    status: str


class Event(SQLModel, table=True):
    __table_args__ = {{"schema": "audit"}}
    id: Optional[int] = Field(default=None, primary_key=True)
    actor_id: int = Field(sa_column=sa.Column("Actor Id", sa.Integer, nullable=False))
    kind: str


if {with_statistics}:
    statistics(SQLModel, "st_order_customer_status", "order", ["status", "customer_id"])
    statistics(SQLModel, "st event kind", "event", ["kind", "Actor Id"], kinds=["dependencies"], schema="audit")
"""

STATISTICS = """
SELECT n.nspname AS schema, s.stxname AS name, c.relname AS table, s.stxkind::text[] AS kinds,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = s.stxrelid AND a.attnum = ANY (s.stxkeys) ORDER BY a.attname) AS columns
FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace JOIN pg_class c ON c.oid = s.stxrelid
ORDER BY 1, 2
"""


def test_the_readme_plugin_through_the_cli(readme_plugin: ReadmePlugin, tmp_path: Path, database_url: str) -> None:
    """Installed as the README says: listed by `pgmig plugins`; a revision creates the statistics in
    every managed schema (names and columns that need quoting too), a fresh diff is empty, and
    `down` drops them while the tables stay."""
    module = readme_plugin.module.__name__
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "shop"\n\n[tool.pgmig]\nmodels = ["models.py"]\nschemas = ["public", "audit"]\n'
    )
    path = os.pathsep.join(filter(None, [str(readme_plugin.site), os.environ.get("PYTHONPATH")]))
    env = {"PGMIG_DATABASE_URL": database_url, "PYTHONPATH": path}

    def cli(*args: str) -> str:
        result = pgmig_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def models(with_statistics: bool) -> None:
        source = MODELS.format(module=module, with_statistics=with_statistics)
        (tmp_path / "models.py").write_text(source)

    listed = cli("plugins")
    assert readme_plugin.kind in listed and module.replace("_", "-") in listed, listed
    models(False)
    cli("generate", "-m", "tables")
    cli("up")
    models(True)
    cli("generate", "-m", "statistics")
    revision = next(p for p in (tmp_path / "migrations").glob("*.py") if "statistics" in p.name).read_text()
    assert f"from {module} import CreateStatistics" in revision, revision

    cli("up")
    assert fetch(database_url, STATISTICS) == [
        {"schema": "audit", "name": "st event kind", "table": "event", "kinds": ["f"], "columns": ["Actor Id", "kind"]},
        {
            "schema": "public",
            "name": "st_order_customer_status",
            "table": "order",
            "kinds": ["d", "f", "m"],
            "columns": ["customer_id", "status"],
        },
    ]
    assert "No changes" in cli("diff")

    cli("down")
    assert fetch(database_url, STATISTICS) == []
    assert {
        r["relname"]
        for r in fetch(
            database_url, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname IN ('order', 'event')"
        )
    } == {"order", "event"}
    assert "2 to create" in cli("diff")
