"""Configuration precedence and `pgmig init`, against real files and environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from pgmig.config.settings import load_settings
from pgmig.errors import ConfigError
from pgmig.services.init import InitOptions, init_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PGMIG_DATABASE_URL", "PGMIG_MODELS", "PGMIG_MIGRATIONS_DIR", "PGMIG_SCHEMA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_pyproject(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text('[project]\nname = "app"\n\n[tool.pgmig]\n' + body)


def test_defaults_without_pyproject(project: Path) -> None:
    settings = load_settings()
    assert settings.database_url is None
    assert settings.models == []
    assert settings.migrations_dir == "migrations"
    assert settings.schema_name == "public"
    assert settings.project_root == project.resolve()


def test_pyproject_beats_default(project: Path) -> None:
    write_pyproject(project, 'schema = "app"\nmodels = ["app.models"]\nmigrations_dir = "db/revisions"\n')
    settings = load_settings()
    assert settings.schema_name == "app"
    assert settings.models == ["app.models"]
    assert settings.migrations_path == project.resolve() / "db" / "revisions"


def test_env_beats_pyproject(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pyproject(project, 'schema = "app"\nmodels = ["app.models"]\n')
    monkeypatch.setenv("PGMIG_SCHEMA", "from_env")
    monkeypatch.setenv("PGMIG_MODELS", "a.models, b/models.py")
    settings = load_settings()
    assert settings.schema_name == "from_env"
    assert settings.models == ["a.models", "b/models.py"]


def test_flag_beats_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pyproject(project, 'database_url = "postgresql://toml@h/db"\n')
    monkeypatch.setenv("PGMIG_DATABASE_URL", "postgresql://env@h/db")
    assert load_settings().database_url == "postgresql://env@h/db"
    settings = load_settings({"database_url": "postgresql://flag@h/db", "models": None, "schema": None})
    assert settings.database_url == "postgresql://flag@h/db"


def test_nearest_pyproject_from_a_subfolder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pyproject(project, 'migrations_dir = "revs"\n')
    sub = project / "src" / "app"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    settings = load_settings()
    assert settings.project_root == project.resolve()
    assert settings.migrations_path == project.resolve() / "revs"
    assert settings.embedded_data_dir == project.resolve() / ".pgmig"


def test_unknown_pyproject_key_is_a_config_error(project: Path) -> None:
    write_pyproject(project, 'databse_url = "postgresql://x@h/db"\n')
    with pytest.raises(ConfigError, match="unknown setting 'databse_url'") as info:
        load_settings()
    assert info.value.exit_code == 2


def test_invalid_value_is_a_config_error(project: Path) -> None:
    write_pyproject(project, "models = 3\n")
    with pytest.raises(ConfigError, match="'models'"):
        load_settings()
    write_pyproject(project, 'schema = "  "\n')
    with pytest.raises(ConfigError, match="'schema'"):
        load_settings()


def test_unrelated_pgmig_env_vars_are_ignored(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PGMIG_TEST_DATABASE_URL belongs to the test kit, not to the settings.
    monkeypatch.setenv("PGMIG_TEST_DATABASE_URL", "postgresql://x@h/db")
    assert load_settings().database_url is None


def test_malformed_pyproject(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.pgmig\nschema = 1")
    with pytest.raises(ConfigError, match="pyproject.toml"):
        load_settings()


def test_init_writes_table_and_folder(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    (project / ".gitignore").write_text("*.pyc\n")
    done = init_project(InitOptions(project, models=["app/models.py"]))
    assert any("wrote [tool.pgmig]" in line for line in done)
    data = tomllib.loads((project / "pyproject.toml").read_text())
    assert data["project"]["name"] == "app"
    assert data["tool"]["pgmig"]["migrations_dir"] == "migrations"
    assert data["tool"]["pgmig"]["models"] == ["app/models.py"]
    assert (project / "migrations").is_dir()
    assert ".pgmig/" in (project / ".gitignore").read_text().splitlines()
    assert load_settings().models == ["app/models.py"]


def test_init_never_clobbers(project: Path) -> None:
    write_pyproject(project, 'migrations_dir = "db/revs"\nschema = "app"\n')
    before = (project / "pyproject.toml").read_text()
    done = init_project(InitOptions(project))
    assert (project / "pyproject.toml").read_text() == before
    assert any("kept the existing [tool.pgmig]" in line for line in done)
    assert (project / "db" / "revs").is_dir()
    init_project(InitOptions(project))  # twice is harmless
    assert (project / "pyproject.toml").read_text() == before


def test_init_without_pyproject_creates_one(project: Path) -> None:
    init_project(InitOptions(project))
    data = tomllib.loads((project / "pyproject.toml").read_text())
    assert data["tool"]["pgmig"]["schema"] == "public"
