"""`--models` naming a module that only imports the model modules (the "all_models.py" registry)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator

import pytest

from pgmig.config.registries import load_models
from pgmig.errors import ModelsError
from tests.helpers import pgmig_cli


@pytest.fixture
def fresh_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The modules a test's project imports are forgotten after it (their names repeat across tests)."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)
    sys.path[:] = path


def write(root: Path, files: Dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def project(tmp_path: Path, style: str) -> "tuple[Path, str, Dict[str, str]]":
    """A project whose tables live in two modules and whose all_models.py only imports them.

    Returns the root, a unique package name and the table names (SQLModel's
    MetaData is the process's: names must not repeat across tests).
    """
    pkg = f"app_{uuid.uuid4().hex[:8]}"
    names = {"user": f"user_{pkg}", "order": f"order_{pkg}"}
    if style == "sqlmodel":
        files = {
            f"{pkg}/__init__.py": "",
            f"{pkg}/users.py": (
                "from typing import Optional\nfrom sqlmodel import Field, SQLModel\n\n\n"
                f"class User(SQLModel, table=True):\n    __tablename__ = {names['user']!r}\n"
                "    id: Optional[int] = Field(default=None, primary_key=True)\n"
            ),
            f"{pkg}/orders.py": (
                "from typing import Optional\nfrom sqlmodel import Field, SQLModel\n\n\n"
                f"class Order(SQLModel, table=True):\n    __tablename__ = {names['order']!r}\n"
                "    id: Optional[int] = Field(default=None, primary_key=True)\n"
            ),
        }
    else:
        files = {
            f"{pkg}/__init__.py": "",
            f"{pkg}/base.py": "from sqlalchemy.orm import DeclarativeBase\n\n\nclass Base(DeclarativeBase):\n    pass\n",
            f"{pkg}/users.py": (
                "import sqlalchemy as sa\nfrom sqlalchemy.orm import Mapped, mapped_column\n"
                f"from {pkg}.base import Base\n\n\n"
                f"class User(Base):\n    __tablename__ = {names['user']!r}\n"
                "    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)\n"
            ),
            f"{pkg}/orders.py": (
                "import sqlalchemy as sa\nfrom sqlalchemy.orm import Mapped, mapped_column\n"
                f"from {pkg}.base import Base\n\n\n"
                f"class Order(Base):\n    __tablename__ = {names['order']!r}\n"
                "    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)\n"
            ),
        }
    write(tmp_path, files)
    return tmp_path, pkg, names


IMPORT_STYLES = {
    "from_package": "from {pkg} import users, orders  # noqa: F401\n",
    "dotted_import": "import {pkg}.users  # noqa: F401\nimport {pkg}.orders  # noqa: F401\n",
    "star_import": "from {pkg}.users import *  # noqa: F401,F403\nfrom {pkg}.orders import *  # noqa: F401,F403\n",
}


@pytest.mark.parametrize("style", ["sqlmodel", "declarative"])
@pytest.mark.parametrize("imports", sorted(IMPORT_STYLES))
def test_a_module_that_only_imports_the_models_is_a_registry(
    tmp_path: Path, fresh_modules: None, style: str, imports: str
) -> None:
    root, pkg, names = project(tmp_path, style)
    write(root, {f"{pkg}/all_models.py": IMPORT_STYLES[imports].format(pkg=pkg)})
    loaded = load_models([f"{pkg}/all_models.py"], root)
    assert {t.name for t in loaded.tables} >= set(names.values())
    if style == "declarative":
        assert sorted(t.name for t in loaded.tables) == sorted(names.values())


@pytest.mark.parametrize("style", ["sqlmodel", "declarative"])
@pytest.mark.parametrize("where", ["in_the_folder", "at_the_root"])
def test_model_folders_without_init_py(tmp_path: Path, fresh_modules: None, style: str, where: str) -> None:
    """A folder without `__init__.py` is a namespace package (no `__file__`): `import app.users` still
    reaches the models, from an all_models.py in that folder or beside it."""
    root, pkg, names = project(tmp_path, style)
    (root / pkg / "__init__.py").unlink()
    module = f"{pkg}/all_models.py" if where == "in_the_folder" else "all_models.py"
    write(root, {module: IMPORT_STYLES["dotted_import"].format(pkg=pkg)})
    loaded = load_models([module], root)
    assert {t.name for t in loaded.tables} >= set(names.values())


def test_sqlmodel_imports_in_a_loop_find_sqlmodel_metadata(tmp_path: Path, fresh_modules: None) -> None:
    root, pkg, names = project(tmp_path, "sqlmodel")
    write(
        root,
        {
            f"{pkg}/all_models.py": (
                "import importlib\n\nimport sqlmodel  # noqa: F401\n\n"
                f"for name in ('users', 'orders'):\n    importlib.import_module('{pkg}.' + name)\n"
            )
        },
    )
    loaded = load_models([f"{pkg}/all_models.py"], root)
    assert {t.name for t in loaded.tables} >= set(names.values())


def test_imports_that_bind_nothing_name_the_attribute_to_give(tmp_path: Path, fresh_modules: None) -> None:
    root, pkg, _ = project(tmp_path, "declarative")
    write(
        root,
        {
            f"{pkg}/all_models.py": (
                f"import importlib\n\nfor name in ('users', 'orders'):\n    importlib.import_module('{pkg}.' + name)\n"
            )
        },
    )
    with pytest.raises(ModelsError, match="neither do the modules it imports") as raised:
        load_models([f"{pkg}/all_models.py"], root)
    assert raised.value.hint is not None and raised.value.hint.option == "models"
    assert f"{pkg}/all_models.py:Base" in raised.value.hint.values  # as the user named the module


def test_library_modules_an_all_models_file_imports_are_not_searched(tmp_path: Path, fresh_modules: None) -> None:
    """sqlalchemy, imported by the module, holds MetaData of its own tests' kind nowhere we should look."""
    write(tmp_path, {"all_models.py": "import sqlalchemy  # noqa: F401\nimport json  # noqa: F401\n"})
    with pytest.raises(ModelsError, match="defines no tables or MetaData"):
        load_models(["all_models.py"], tmp_path)


def test_cli_diff_with_an_all_models_registry(tmp_path: Path, database_url: str) -> None:
    root, pkg, names = project(tmp_path, "declarative")
    write(root, {f"{pkg}/all_models.py": IMPORT_STYLES["from_package"].format(pkg=pkg)})
    result = pgmig_cli(
        "--models", f"{pkg}/all_models.py", "diff", "--sql", cwd=root, env={"PGMIG_DATABASE_URL": database_url}
    )
    assert result.returncode == 0, result.stderr
    for name in names.values():
        assert f'CREATE TABLE "public"."{name}"' in result.stdout
