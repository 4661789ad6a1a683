"""The command line's everyday ergonomics (issue 21, "Command line"): completion, -V, global options
given after the command, `plugins` reading [tool.pgmig], relative targets, `down base` asking first,
one notation for arguments, .gitignore, the end of input at a prompt, an empty database URL."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import typer
from typer.core import TyperGroup

from pgmig.cli.app import app
from tests.helpers import pgmig_cli
from tests.sample_project import V1, Project


def test_short_version_flag() -> None:
    result = pgmig_cli("-V")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pgmig 0.1.0"


def test_shell_completion_is_offered() -> None:
    listed = pgmig_cli("--help", env={"COLUMNS": "200"}).stdout
    assert "--install-completion" in listed and "--show-completion" in listed
    script = pgmig_cli("--show-completion", "bash")
    assert script.returncode == 0, script.stderr
    # The bash function that asks pgmig itself for the words to complete.
    assert "_pgmig_completion" in script.stdout and "complete -o default -F _pgmig_completion pgmig" in script.stdout


@pytest.mark.parametrize(
    "args, first_words",
    [
        (("--show-completion", "zsh"), "#compdef pgmig"),
        (("--show-completion=fish",), "complete --command pgmig"),
        (("--debug", "--show-completion", "pwsh"), "Import-Module PSReadLine"),
    ],
)
def test_show_completion_for_the_shell_named(args: Tuple[str, ...], first_words: str) -> None:
    """The shell named after the flag, not the one detected (Typer's flag takes no value: bash here)."""
    script = pgmig_cli(*args)
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith(first_words), script.stdout
    assert "complete -o default -F" not in script.stdout


def test_install_completion_for_the_shell_named(tmp_path: Path) -> None:
    result = pgmig_cli("--install-completion", "zsh", env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "zsh completion installed in" in result.stdout, result.stdout
    assert "compinit" in (tmp_path / ".zshrc").read_text()
    unknown = pgmig_cli("--show-completion", "tcsh")
    assert unknown.returncode == 1 and "Shell tcsh not supported" in unknown.stderr, unknown.stderr
    assert unknown.stdout == ""


@pytest.mark.parametrize(
    "args, command, option",
    [
        (("init", "--models", "app.models"), "init", "--models"),
        (("diff", "--database-url=postgresql://localhost/x"), "diff", "--database-url"),
        (("status", "--debug"), "status", "--debug"),
        (("server", "status", "--schema", "app"), "server status", "--schema"),
        # up and down read `-N` as their TARGET; a global option is still one.
        (("up", "--models", "models.py"), "up", "--models"),
        (("up", "--models"), "up", "--models"),
        (("down", "--debug"), "down", "--debug"),
        (("down", "-2", "--database-url", "postgresql://localhost/x"), "down", "--database-url"),
    ],
)
def test_global_option_after_the_command_names_its_place(
    args: Tuple[str, ...], command: str, option: str, tmp_path: Path
) -> None:
    result = pgmig_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{option} is a global option: give it before the command (pgmig {option} ... {command} ...)" in (
        result.stderr
    ), result.stderr
    assert not (tmp_path / "pyproject.toml").exists()


@pytest.mark.parametrize(
    "args, option",
    [
        (("init", "--modles", "x"), "--modles"),
        # Not a TARGET of up or down: only `-N` (digits) is.
        (("up", "--sqll"), "--sqll"),
        (("up", "-x"), "-x"),
        (("down", "-2x"), "-2"),
        (("down", "--yes", "-1", "--force"), "--force"),
    ],
)
def test_unknown_option_keeps_clicks_words(tmp_path: Path, args: Tuple[str, ...], option: str) -> None:
    result = pgmig_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"No such option: {option}" in result.stderr and "global option" not in result.stderr, result.stderr
    assert "not a known revision" not in result.stderr
    # Refused while parsing: no database was asked (nor the embedded server started).
    assert not (tmp_path / ".pgmig").exists()


def test_plugins_lists_the_models_of_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.pgmig]\nmodels = ["app.models"]\n')
    result = pgmig_cli("plugins", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert re.search(r"app\.models\s*│\s*app\.models\s*│\s*\[tool\.pgmig\] models", result.stdout), result.stdout
    assert "none: pass --models" not in result.stdout
    flagged = pgmig_cli("--models", "other.models", "plugins", cwd=tmp_path, env={"COLUMNS": "200"})
    assert re.search(r"other\.models\s*│\s*other\.models\s*│\s*--models", flagged.stdout), flagged.stdout
    assert "app.models" not in flagged.stdout


def command_paths(group: TyperGroup, prefix: Tuple[str, ...] = ()) -> List[Tuple[str, ...]]:
    """Every command of `group` as the words that name it (`("fleet", "up")`), groups included."""
    paths: List[Tuple[str, ...]] = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if isinstance(command, TyperGroup):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def test_arguments_share_one_notation() -> None:
    """Every command's help (server's and fleet's subcommands too) names its arguments and its options'
    values one way, in capitals, as its usage line does (TARGET, REV, -m MESSAGE): never Typer's
    `TARGET <str>`, `REV <list[str]>` or `--canary <int range>`."""
    paths = command_paths(typer.main.get_command(app))  # type: ignore[arg-type]
    assert ("fleet", "up") in paths and ("server", "stop") in paths and ("merge",) in paths
    for path in paths:
        text = pgmig_cli(*path, "--help", env={"COLUMNS": "200"}).stdout
        usage = text.splitlines()[0]
        arguments = re.sub(r"^Usage: pgmig [\w ]+ \[OPTIONS\]( COMMAND \[ARGS\]\.\.\.)?", "", usage)
        assert arguments == arguments.upper(), f"pgmig {' '.join(path)}: {usage}"
        assert not re.search(r"<[\w\[\], ]+>", text), f"pgmig {' '.join(path)} --help:\n{text}"
        section = re.search(r"^Arguments:\n((?:  .*\n)+)", text + "\n", re.MULTILINE)
        for line in section.group(1).splitlines() if section else []:
            name = line.split()[0]
            assert line.startswith("   ") or name == name.upper(), f"pgmig {' '.join(path)}: {line}"
    assert pgmig_cli("down", "--help").stdout.startswith("Usage: pgmig down [OPTIONS] [TARGET]")
    assert pgmig_cli("merge", "--help").stdout.startswith("Usage: pgmig merge [OPTIONS] [REV]...")
    assert re.search(r"^  REV  Heads to join", pgmig_cli("merge", "--help").stdout, re.MULTILINE)


# -- relative targets and `down base` ----------------------------------------------------------


def without_terminal(project: Project, *args: str) -> "subprocess.CompletedProcess[str]":
    """pgmig run with its input a closed pipe (never the terminal pytest may have been started at)."""
    env = {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url}
    return pgmig_cli(*args, cwd=project.root, env=env, input="")


def three_revisions(project: Project) -> List[str]:
    """Three revisions in a line (the first creates the tables, two blanks), none applied: their ids."""
    project.models(V1)
    paths = [project.generate("initial")]
    paths += [project.generate(message, "--empty") for message in ("second", "third")]
    return ["_".join(path.stem.split("_")[:3]) for path in paths]


def test_relative_targets_up_and_down(project: Project) -> None:
    ids = three_revisions(project)
    project.cli("up", "+1")
    assert set(project.applied()) == set(ids[:1])
    project.cli("up", "+2")
    assert set(project.applied()) == set(ids)
    project.cli("down", "-2")
    assert set(project.applied()) == set(ids[:1])
    project.cli("up", "+1")
    project.cli("down", "-1")
    assert set(project.applied()) == set(ids[:1])
    # -N as far back as base is `down base`: it needs the same consent.
    refused = without_terminal(project, "down", "-1")
    assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stderr
    assert set(project.applied()) == set(ids[:1])
    project.cli("down", "-1", "--yes")
    assert project.applied() == []
    # --sql shows the SQL of the same range.
    project.cli("up")
    sql = project.cli("down", "-2", "--sql").stdout
    assert "pgmig_revisions" in sql and set(project.applied()) == set(ids)


@pytest.mark.parametrize(
    "args, words",
    [
        (("up", "-1"), "up takes +N (forward); pgmig down -1 goes the other way"),
        (("down", "+1"), "down takes -N (back); pgmig up +1 goes the other way"),
        (("up", "+3"), "only 2 revisions are pending"),
        (("down", "-2"), "only 1 revision is applied"),
        (("up", "+0"), "give a number of revisions of at least 1"),
    ],
)
def test_relative_targets_out_of_range(project: Project, args: Tuple[str, ...], words: str) -> None:
    ids = three_revisions(project)
    project.cli("up", ids[0])
    result = without_terminal(project, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert set(project.applied()) == set(ids[:1])


def test_relative_target_where_the_history_branches(project: Project) -> None:
    ids = three_revisions(project)
    # A second branch from the first revision: +2 from it would need a branch to be chosen.
    third = next(path for path in project.files() if path.name.startswith(ids[2]))
    text = third.read_text().replace(ids[1], ids[0])
    third.write_text(text)
    project.cli("up", ids[0])
    result = without_terminal(project, "up", "+2")
    assert result.returncode == 2 and "branches or merges" in result.stderr, result.stderr
    assert set(project.applied()) == set(ids[:1])


def test_down_base_needs_yes_without_a_terminal(project: Project) -> None:
    ids = three_revisions(project)
    project.cli("up")
    refused = without_terminal(project, "down", "base")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "confirm with --yes" in refused.stderr
    assert set(project.applied()) == set(ids)
    # --sql runs nothing: no consent needed.
    assert "DROP TABLE" in project.cli("down", "base", "--sql").stdout
    project.cli("down", "base", "--yes")
    assert project.applied() == []
    # Nothing applied: nothing to consent to.
    at_base = without_terminal(project, "down", "base")
    assert at_base.returncode == 0 and "Nothing to roll back." in at_base.stdout, at_base.stderr


def at_terminal(args: List[str], cwd: Path, env: Dict[str, str], answers: bytes) -> Tuple[int, str]:
    """Run pgmig with a pseudo-terminal as stdin, stdout and stderr, typing `answers` once it asks
    (b"\\x04" is Ctrl-D, the end of input): its exit code and everything it printed."""
    primary, secondary = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    full_env.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "pgmig", *args],
        cwd=cwd,
        env=full_env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        close_fds=True,
    )
    os.close(secondary)
    output = b""
    typed = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if not typed and b"[y/N]" in output:
                os.write(primary, answers)
                typed = True
            if process.poll() is not None and not ready:
                break
        code = process.wait(timeout=10)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
    return code, output.decode("utf-8", "replace")


@pytest.mark.parametrize("answer, code, applied", [(b"\x04", 0, 3), (b"n\n", 0, 3), (b"y\n", 0, 0)])
def test_down_base_asks_at_a_terminal(project: Project, answer: bytes, code: int, applied: int) -> None:
    three_revisions(project)
    project.cli("up")
    env = {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url}
    exit_code, printed = at_terminal(["down", "base"], project.root, env, answer)
    assert "Roll back every applied revision (pgmig down base)? [y/N]" in printed, printed
    assert exit_code == code, printed
    assert "Abort" not in printed and "Traceback" not in printed, printed
    assert ("Nothing rolled back." in printed) == (applied == 3), printed
    assert len(project.applied()) == applied


def test_declining_server_stop_delete_deletes_nothing(tmp_path: Path) -> None:
    """`server stop --delete` answered no (or the end of input) says so and exits 0, as `down base`
    does: the server keeps running with its data."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    started = pgmig_cli("server", "start", cwd=tmp_path, timeout=180)
    assert started.returncode == 0, started.stderr
    try:
        for answer in (b"n\n", b"\x04"):
            code, printed = at_terminal(["server", "stop", "--delete"], tmp_path, {}, answer)
            assert "(every database in it)? [y/N]" in printed, printed
            assert code == 0 and "Nothing deleted." in printed, printed
            assert "Abort" not in printed and "stopped" not in printed, printed
            status = pgmig_cli("server", "status", cwd=tmp_path).stdout
            assert "embedded server: running" in status, status
    finally:
        deleted = pgmig_cli("server", "stop", "--delete", "--yes", cwd=tmp_path)
    assert "deleted" in deleted.stdout, deleted.stdout + deleted.stderr


def test_end_of_input_at_write_it_anyway_is_a_no(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    project.cli("up")
    project.models(V1.replace("    name: str = Field(max_length=80)\n", ""))
    env = {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url}
    before = project.files()
    exit_code, printed = at_terminal(["generate", "-m", "drop name"], project.root, env, b"\x04")
    assert "Write it anyway? [y/N]" in printed, printed
    assert "unexpected" not in printed and "Abort" not in printed and "Traceback" not in printed, printed
    assert exit_code == 2, printed
    assert "--allow-destructive" in printed, printed
    assert project.files() == before


# -- init and the configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "existing, expected",
    [
        (None, ".pgmig/\n"),
        ("*.pyc\n", "*.pyc\n.pgmig/\n"),
        ("*.pyc", "*.pyc\n.pgmig/\n"),
        ("/.pgmig\n", "/.pgmig\n"),
    ],
)
def test_init_keeps_the_server_data_out_of_git(tmp_path: Path, existing: Optional[str], expected: str) -> None:
    if existing is not None:
        (tmp_path / ".gitignore").write_text(existing)
    result = pgmig_cli("--models", "app.models", "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".gitignore").read_text() == expected
    assert ("gitignore" in result.stdout) == (existing != expected)
    again = pgmig_cli("init", cwd=tmp_path)
    assert again.returncode == 0 and (tmp_path / ".gitignore").read_text() == expected


@pytest.mark.parametrize("variable", ["PGMIG_DATABASE_URL", "PGMIG_DEV_URL"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_url_is_a_configuration_error(tmp_path: Path, variable: str, value: str) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    result = pgmig_cli("status", cwd=tmp_path, env={variable: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"(from the environment variable {variable}): is empty" in result.stderr, result.stderr
    assert "embedded" not in result.stdout
    assert not (tmp_path / ".pgmig").exists()
