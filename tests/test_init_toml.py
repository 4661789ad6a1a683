"""`pgmig init` edits pyproject.toml as TOML (tomlkit), never as text: an existing [tool.pgmig] is found
however it is spelt, values are escaped, the rest of the file stays as it was, and what is written parses
and reads back the values given."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from pgmig.config.settings import load_settings
from pgmig.errors import ConfigError
from pgmig.services.init import InitOptions, init_project
from tests.helpers import pgmig_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Every way TOML lets a file say [tool.pgmig] (the issue's four and the rest of the grammar).
EXISTING = {
    "comment after the header": '[project]\nname = "p"\n\n[tool.pgmig]  # comment\nmodels = ["app.py"]\n',
    "spaces in the header": '[ tool.pgmig ]\nmodels = ["app.py"]\n',
    "quoted key": '[tool."pgmig"]\nmodels = ["app.py"]\n',
    "literal quoted key": "[ tool . 'pgmig' ]\nmodels = ['app.py']\n",
    "dotted keys under [tool]": '[tool]\npgmig.models = ["app.py"]\n',
    "dotted keys at the root": 'tool.pgmig.models = ["app.py"]\n\n[project]\nname = "p"\n',
    "inline table": 'tool = { pgmig = { models = ["app.py"] } }\n',
    "inline under [tool]": '[tool]\npgmig = { models = ["app.py"] }\n',
    "header only": "[tool.pgmig]\n",
}


@pytest.mark.parametrize("text", list(EXISTING.values()), ids=list(EXISTING))
def test_an_existing_table_in_any_spelling_is_kept_byte_for_byte(tmp_path: Path, text: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_bytes(text.encode())
    done = init_project(InitOptions(tmp_path, migrations_dir="other", schema="s"))
    assert done[0].startswith("kept the existing [tool.pgmig]")
    assert pyproject.read_bytes() == text.encode()
    assert (tmp_path / "migrations").is_dir() and not (tmp_path / "other").exists()


# Layouts of the rest of the file that the new table must fit into without moving anything.
LAYOUTS = {
    "plain": '[project]\nname = "p"\n',
    "no final newline": '[project]\nname = "p"',
    "comments and tool tables": '# top\n[project]\nname = "p"  # the name\n\n[tool.ruff]\nline-length = 99\n',
    "tool tables out of order": '[tool.ruff]\nx = 1\n\n[project]\nname = "p"\n\n[tool.black]\ny = 2\n',
    "[tool] with dotted keys": '[tool]\nblack.line-length = 99\n\n[project]\nname = "p"\n',
    "root dotted keys": 'tool.ruff.x = 1\n\n[project]\nname = "p"\n',
    "inline tool": "tool = { ruff = { x = 1 } }\n",
    "crlf": '[project]\r\nname = "p"\r\n\r\n[tool.ruff]\r\nx = 1\r\n',
    "only a comment": "# nothing yet\n",
    "empty": "",
}
# Values that break a TOML string pasted as text.
HOSTILE: Dict[str, Any] = {
    "migrations_dir": "db\\migrations",
    "schema": 'my"schema',
    "models": ["app\\models.py", 'it\'s "quoted".py', "ünïcode\tand\x1bcontrol.py", "two\nlines.py"],
}


@pytest.mark.parametrize("text", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_a_new_table_keeps_the_rest_and_reads_back_hostile_values(tmp_path: Path, text: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_bytes(text.encode())
    init_project(InitOptions(tmp_path, **HOSTILE))
    written = pyproject.read_bytes().decode()
    parsed = tomllib.loads(written)
    assert parsed["tool"].pop("pgmig") == HOSTILE
    if not parsed["tool"]:
        del parsed["tool"]
    assert parsed == tomllib.loads(text)  # nothing else changed meaning
    # ... nor form: the user's lines are all there, in order, comments and line endings included.
    old_lines = text.splitlines(keepends=True)
    if old_lines and not old_lines[-1].endswith("\n"):
        old_lines[-1] += "\r\n" if "\r\n" in text else "\n"
    if "tool = {" not in text and text:
        assert written.startswith("".join(old_lines[:1]))
        remaining = iter(written.splitlines(keepends=True))
        assert all(any(line == new for new in remaining) for line in old_lines)
    if "\r\n" in text:
        assert "\n" not in written.replace("\r\n", "")
    settings = load_settings(cwd=tmp_path)
    assert settings.migrations_dir == HOSTILE["migrations_dir"]
    assert settings.models == HOSTILE["models"]
    assert settings.schema_name == HOSTILE["schema"]
    assert (tmp_path / "db\\migrations").is_dir()
    # A second init finds the table it wrote and changes nothing.
    init_project(InitOptions(tmp_path))
    assert pyproject.read_bytes().decode() == written


def test_without_a_pyproject_one_is_created(tmp_path: Path) -> None:
    init_project(InitOptions(tmp_path, **HOSTILE))
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["pgmig"] == HOSTILE


@pytest.mark.parametrize(
    "text,problem",
    [
        ('[project\nname = "p"\n', "is not valid TOML"),
        ("[tool.pgmig]\nx = 1\n[tool.pgmig]\ny = 2\n", "is not valid TOML"),
        ("tool = 1\n", "tool is not a table"),
        ("[tool]\npgmig = 1\n", "tool.pgmig is not a table"),
    ],
)
def test_an_invalid_pyproject_is_a_config_error_and_left_alone(tmp_path: Path, text: str, problem: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        init_project(InitOptions(tmp_path))
    assert pyproject.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_mode_and_symlink_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text('[project]\nname = "p"\n')
    real.chmod(0o640)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").symlink_to(real)
    init_project(InitOptions(project))
    assert (project / "pyproject.toml").is_symlink()
    assert "pgmig" in tomllib.loads(real.read_text())["tool"]
    assert real.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_init_through_the_cli_with_hostile_values(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[ tool.ruff ]  # lint\nline-length = 99\n")
    args = ["--migrations-dir", "db\\migrations", "--schema", 'my"schema', "--models", 'a"b\\c.py', "init"]
    result = pgmig_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert parsed["tool"]["pgmig"] == {
        "migrations_dir": "db\\migrations",
        "schema": 'my"schema',
        "models": ['a"b\\c.py'],
    }
    assert parsed["tool"]["ruff"] == {"line-length": 99}
    again = pgmig_cli("init", cwd=tmp_path)
    assert again.returncode == 0 and "kept the existing [tool.pgmig]" in again.stdout


@pytest.mark.parametrize("content", [b'[project\nname = "p"\n', b'[project]\nname = "caf\xe9"\n'])
def test_invalid_pyproject_through_the_cli_is_exit_2(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "pyproject.toml").write_bytes(content)
    result = pgmig_cli("init", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "pyproject.toml" in result.stderr
    assert (tmp_path / "pyproject.toml").read_bytes() == content
    assert not (tmp_path / "migrations").exists()
    assert os.listdir(tmp_path) == ["pyproject.toml"]
