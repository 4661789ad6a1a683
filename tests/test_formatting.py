"""Revision files and formatters: what pgmig writes passes ruff at its defaults, the checksum covers
meaning (a formatted history is not "edited"), `post_write` runs the project's formatter, and
`pgmig stamp --accept-edits` records files whose meaning changed."""

from __future__ import annotations

import ast
import asyncio
import enum
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable, List, Tuple

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pgmig.db.embedded import has_data
from pgmig.plan.engine import diff_both_ways, model_context
from pgmig.revisions.files import CHECKSUM_PREFIX, Revision, load_chain, meaning_checksum
from pgmig.revisions.runner import Runner
from pgmig.revisions.version_table import VersionTable
from pgmig.revisions.writer import formatted, render_revision, ruff_binary, write_revision
from tests import everything
from tests.helpers import _with_conn, fetch, handlers, pgmig_cli, run_sql
from tests.sample_project import V1, V2, Project, rid

RUFF = ruff_binary()
pytestmark = pytest.mark.skipif(RUFF is None, reason="ruff (a dependency of pgmig) is not installed")


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real ruff, as a user runs it over their migrations."""
    assert RUFF is not None
    return subprocess.run([RUFF, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def assert_ruff_defaults(path: Path, tmp_path: Path) -> None:
    """`path` passes `ruff format --check` and `ruff check` at ruff's defaults (line length 88, default
    rules): run from a folder whose empty ruff.toml is the whole configuration, and `--isolated`."""
    folder = tmp_path / "ruff-defaults"
    folder.mkdir(exist_ok=True)
    (folder / "ruff.toml").write_text("")
    for command in (["format", "--check", "--diff"], ["check"]):
        result = ruff(*command, "--isolated", str(path), cwd=folder)
        assert result.returncode == 0, f"ruff {' '.join(command)}:\n{result.stdout}{result.stderr}"


class Kind(enum.Enum):
    # Long labels: the enum's label list cannot fit one line.
    first_very_long_label_of_an_enumeration = "first_very_long_label_of_an_enumeration"
    second_very_long_label_of_an_enumeration = "second_very_long_label_of_an_enumeration"
    third_label_with_a_quote_in_it = 'third label\'s "quoted" value'


def every_kind() -> sa.MetaData:
    """everything.build() with long names, long expressions, comments with quotes and newlines,
    a domain, a sequence, and a view and functions of the plugins when they are installed."""
    md = everything.build()
    seq = sa.Sequence("a_sequence_with_a_rather_long_name_for_numbers_seq", start=1000, increment=7, metadata=md)
    positive = pg.DOMAIN(
        "strictly_positive_amount", sa.Numeric(12, 2), constraint_name="amount_positive", check="VALUE > 0"
    )
    table = sa.Table(
        "a_table_with_a_fairly_long_name_to_push_lines_past_the_limit",
        md,
        sa.Column("identifier_of_the_row", sa.Integer, primary_key=True),
        sa.Column("kind_of_the_row", sa.Enum(Kind, name="kind_of_the_row_enum"), nullable=False),
        sa.Column("number", sa.BigInteger, seq, server_default=seq.next_value()),
        sa.Column("amount", positive),
        sa.Column(
            "description_with_a_long_column_name",
            sa.String(500),
            nullable=False,
            server_default='it\'s "quoted" and C:\\new',
            comment="a comment with 'quotes', \"double quotes\", a backslash \\ and\na second line",
        ),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owner.id", name="fk_with_a_long_name_to_the_owner_table")),
        sa.CheckConstraint(
            "length(description_with_a_long_column_name) > 3 AND identifier_of_the_row BETWEEN 1 AND 1000000",
            name="a_check_constraint_with_a_long_expression",
        ),
        sa.Index(
            "ix_a_long_expression_index",
            sa.text("lower(description_with_a_long_column_name || ' and ' || identifier_of_the_row::text)"),
            postgresql_where=sa.text("identifier_of_the_row > 10 AND description_with_a_long_column_name <> ''"),
        ),
        comment="a table's comment\nover two lines",
    )
    try:
        from pgmig_views import view
    except ImportError:  # pragma: no cover - the plugins are installed in the test environment
        pass
    else:
        view(
            md,
            "a_view_over_the_long_table_with_a_long_name",
            sa.select(table.c.identifier_of_the_row, table.c.description_with_a_long_column_name).where(
                table.c.identifier_of_the_row > 5
            ),
        )
    try:
        from pgmig_functions import function
    except ImportError:  # pragma: no cover
        pass
    else:
        function(
            md,
            "count_rows_of_the_long_table",
            arguments="minimum_identifier integer DEFAULT 0",
            returns="bigint",
            body="SELECT count(*) FROM a_table_with_a_fairly_long_name_to_push_lines_past_the_limit "
            "WHERE identifier_of_the_row >= minimum_identifier",
            options="STABLE",
            depends_on=["a_table_with_a_fairly_long_name_to_push_lines_past_the_limit"],
        )
    return md


def every_kind_revision(database_url: str) -> str:
    """The initial revision of `every_kind()` as `generate` renders it (before the writer's formatting)."""
    md = every_kind()
    models = model_context(list(md.sorted_tables), [md], "public")

    async def go(conn: object) -> Tuple[object, object]:
        import asyncpg

        return await diff_both_ways(conn, models, handlers(), connect=lambda: asyncpg.connect(database_url))

    up, down = asyncio.run(_with_conn(database_url, go))
    text = render_revision(
        "20260101_000000_abcdef",
        None,
        'every kind, with a "quoted" message',
        up.operations,  # type: ignore[attr-defined]
        down.operations,  # type: ignore[attr-defined]
    )
    kinds = {type(op).__name__ for op in up.operations}  # type: ignore[attr-defined]
    assert {"CreateTable", "AddType", "AddDomain", "AddSequence", "CreateView", "CreateFunction"} <= kinds, kinds
    return text


def test_a_revision_of_every_kind_passes_ruff_at_its_defaults(database_url: str, tmp_path: Path) -> None:
    text = every_kind_revision(database_url)
    assert max(len(line) for line in text.splitlines()) > 88  # what the writer's formatting is for
    path = write_revision(tmp_path / "migrations", "20260101_000000_abcdef_every_kind.py", text)
    assert_ruff_defaults(path, tmp_path)
    written = path.read_bytes()
    # Stable: the same revision gives the same bytes; formatting again changes nothing.
    again = write_revision(tmp_path / "again", path.name, text)
    assert again.read_bytes() == written
    assert formatted(written.decode()) == written.decode()
    # Laid out anew, meaning the same: the revision that was proven is the one written.
    assert meaning_checksum(written) == meaning_checksum(text.encode())
    # And it runs as written: up builds the schema, down takes it all away again.
    runner = Runner(database_url, load_chain(path.parent), VersionTable("public", "pgmig_revisions"))
    assert [r.id for r in asyncio.run(runner.upgrade())] == ["20260101_000000_abcdef"]
    asyncio.run(runner.downgrade("base"))
    assert fetch(database_url, "SELECT relname FROM pg_class WHERE relname LIKE 'a_table_with%'") == []


def test_the_sample_projects_revisions_pass_ruff_at_its_defaults(project: Project, tmp_path: Path) -> None:
    project.models(V1)
    first = project.generate("initial")
    project.models(V2)
    second = project.generate("add views, an index and a foreign key to the posts of the blog")
    for path in (first, second):
        assert_ruff_defaults(path, tmp_path)


def test_the_checksum_covers_meaning_not_layout() -> None:
    source = (
        '"""Docstring."""\n'
        "from pgmig import MigrationRevisionBase, Migrator\n\n\n"
        "class MigrationRevision(MigrationRevisionBase):\n"
        '    up_revision = "r1"\n'
        "    down_revision = None\n\n"
        "    async def up(self, migrator: Migrator) -> None:\n"
        '        await migrator.actor.add_column(table_name="post", column_name="views", type="integer")\n'
    )
    checksum = meaning_checksum(source.encode())
    assert checksum.startswith(CHECKSUM_PREFIX)
    same = (
        source.replace('"""Docstring."""', '"""Another docstring,\n\nover lines."""  # and a comment')
        .replace('"post"', "'post'")
        .replace(
            'add_column(table_name="post", column_name="views", type="integer")',
            "add_column(\n            table_name='post',\n            column_name=(\"views\"),\n"
            "            type='integer',  # a comment\n        )",
        )
        .replace("    async def up", '    """A class docstring."""\n\n    # a comment\n    async def up')
    )
    assert meaning_checksum(same.encode()) == checksum
    # isort / ruff's I rules with force-single-line, or imports moved around: the same names imported.
    single_lines = source.replace(
        "from pgmig import MigrationRevisionBase, Migrator\n",
        "import os\nfrom pgmig import Migrator\nfrom pgmig import MigrationRevisionBase\n",
    )
    with_os = source.replace('"""Docstring."""\n', '"""Docstring."""\nimport os\n')
    assert meaning_checksum(single_lines.encode()) == meaning_checksum(with_os.encode()) != checksum
    for changed in (
        source.replace("MigrationRevisionBase, Migrator", "MigrationRevisionBase, Migrator as M"),
        source.replace('type="integer"', 'type="bigint"'),
        source.replace("down_revision = None", 'down_revision = "r0"'),
        source + '        await migrator.actor.execute("SELECT 1")\n',
        source.replace('"""Docstring."""', '"""Docstring."""\nVALUE = 1'),
    ):
        assert meaning_checksum(changed.encode()) != checksum


def applied_history(project: Project) -> Tuple[Path, Path]:
    """Two revisions generated (V1, V2) and applied to the project's database; their files."""
    project.models(V1)
    first = project.generate("initial")
    project.models(V2)
    second = project.generate("second")
    project.cli("up")
    return first, second


def applied_rows(project: Project) -> List[Tuple[str, str, datetime]]:
    return [
        (row["id"], row["checksum"], row["applied_at"])
        for row in fetch(project.url, "SELECT id, checksum, applied_at FROM pgmig_revisions ORDER BY id")
    ]


def test_a_formatted_history_is_not_edited_and_a_changed_one_is_until_accepted(project: Project) -> None:
    first, second = applied_history(project)
    before = applied_rows(project)
    assert all(checksum.startswith(CHECKSUM_PREFIX) for _, checksum, _ in before)
    migrations = project.root / "migrations"
    # A narrow formatter, another quote style, then comments and docstrings edited: layout, not meaning.
    generated = [path.read_text() for path in (first, second)]
    narrow = ruff(
        "format",
        "--isolated",
        "--line-length",
        "60",
        "--config",
        "format.quote-style='single'",
        str(migrations),
        cwd=project.root,
    )
    assert narrow.returncode == 0, narrow.stderr
    for path, text in zip((first, second), generated):
        assert path.read_text() != text and "'" in path.read_text()
        edited = path.read_text().replace('"""', '"""Reworded. ', 1)
        path.write_text(edited.replace("\n    async def up", "\n    # why this runs\n    async def up"))
    status = project.cli("status")
    assert "edited" not in status.stderr, status.stderr
    assert "edited" not in project.cli("history").stdout
    assert "check passed" in project.cli("check").stdout
    assert applied_rows(project) == before

    # A change of meaning: a data step added to the second revision's up.
    text = second.read_text()
    second.write_text(
        text.replace(
            "    async def up(self, migrator: Migrator) -> None:\n",
            "    async def up(self, migrator: Migrator) -> None:\n        await migrator.actor.execute('SELECT 1')\n",
            1,
        )
    )
    status = project.cli("status")
    assert f"{second.name} was edited after it was applied" in status.stderr
    assert first.name not in status.stderr
    assert "pgmig stamp --accept-edits" in status.stderr
    checked = project.cli("check", ok=False)
    assert checked.returncode == 1
    assert f"{second.name} was edited after it was applied to the configured database" in checked.stdout

    # Accepting: refused without a terminal and --yes, naming the file; with --yes, recorded, times kept.
    refused = project.cli("stamp", "--accept-edits", ok=False)
    assert refused.returncode == 2
    assert second.name in refused.stderr and "--yes" in refused.stderr and first.name not in refused.stderr
    assert applied_rows(project) == before
    accepted = project.cli("stamp", "--accept-edits", "--yes")
    assert f"Accepted {second.name}" in accepted.stdout and first.name not in accepted.stdout
    after = applied_rows(project)
    assert [(rid, at) for rid, _, at in after] == [(rid, at) for rid, _, at in before]
    assert after[0][1] == before[0][1] and after[1][1] != before[1][1]
    assert after[1][1] == load_chain(migrations).revisions[1].checksum
    assert "edited" not in project.cli("status").stderr
    assert "check passed" in project.cli("check").stdout
    assert "nothing to accept" in project.cli("stamp", "--accept-edits", "--yes").stdout


def test_accept_edits_of_one_revision(project: Project) -> None:
    first, second = applied_history(project)
    for path in (first, second):
        path.write_text(path.read_text() + "EDITED = True\n")
    project.cli("stamp", "--accept-edits", "--yes", rid(first))
    status = project.cli("status").stderr
    assert first.name not in status and f"{second.name} was edited" in status
    assert project.cli("stamp", "--yes", ok=False).returncode == 2
    assert "name the revisions to stamp" in project.cli("stamp", ok=False).stderr


def test_accept_edits_asks_with_the_edited_revisions(project: Project) -> None:
    """The library service: `confirm` is shown the edited revisions; a no leaves the rows, a yes records."""
    from pgmig.config.settings import load_settings
    from pgmig.services.project import Project as Configured
    from pgmig.services.run import AcceptOptions, EditsNotAcceptedError, accept_edits

    _, second = applied_history(project)
    second.write_text(second.read_text() + "EDITED = True\n")
    configured = Configured(load_settings({"database_url": project.url}, cwd=project.root))
    shown: List[List[str]] = []

    def answer(yes: bool) -> Callable[[List[Revision]], bool]:
        def confirm(revisions: List[Revision]) -> bool:
            shown.append([revision.path.name for revision in revisions])
            return yes

        return confirm

    before = applied_rows(project)
    with pytest.raises(EditsNotAcceptedError, match=second.name):
        asyncio.run(accept_edits(configured, AcceptOptions(), answer(False)))
    assert applied_rows(project) == before
    accepted = asyncio.run(accept_edits(configured, AcceptOptions(), answer(True)))
    assert [revision.path for revision in accepted] == [second]
    assert shown == [[second.name], [second.name]]
    assert asyncio.run(accept_edits(configured, AcceptOptions(), answer(True))) == []
    assert len(shown) == 2  # nothing edited: nothing to ask


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
def test_accept_edits_at_a_terminal_lists_the_files_and_asks(project: Project) -> None:
    import os
    import pty
    import select

    _, second = applied_history(project)
    second.write_text(second.read_text() + "EDITED = True\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env.update(PGMIG_DATABASE_URL=project.url, COLUMNS="200")
    terminal, other_end = pty.openpty()
    command = [sys.executable, "-m", "pgmig", "stamp", "--accept-edits"]
    process = subprocess.Popen(
        command, cwd=project.root, env=env, stdin=other_end, stderr=other_end, stdout=subprocess.PIPE
    )
    os.close(other_end)
    said = b""
    try:
        while b"Accept the files as they are now?" not in said:
            ready, _, _ = select.select([terminal], [], [], 60)
            assert ready, said.decode()
            said += os.read(terminal, 4096)
        os.write(terminal, b"y\n")
        stdout, _ = process.communicate(timeout=60)
    finally:
        process.kill()
        os.close(terminal)
    asked = said.decode()
    assert second.name in asked and "cannot show the old version" in asked and "git log -p" in asked
    assert process.returncode == 0 and f"Accepted {second.name}" in stdout.decode()
    assert "edited" not in project.cli("status").stderr


def test_rows_of_an_earlier_pgmig_are_accepted_and_renewed(project: Project) -> None:
    """A version table written when the checksum was the hash of the bytes: still not edited, and the
    next `up` gives the rows the checksum over meaning (applied times kept), so formatting is no edit."""
    import hashlib

    first, second = applied_history(project)
    for path in (first, second):
        legacy = hashlib.sha256(path.read_bytes()).hexdigest()
        run_sql(project.url, f"UPDATE pgmig_revisions SET checksum = '{legacy}' WHERE id = '{rid(path)}'")
    before = applied_rows(project)
    assert not any(checksum.startswith(CHECKSUM_PREFIX) for _, checksum, _ in before)
    second.write_text(second.read_text() + "EDITED = True\n")  # this one no longer matches its bytes
    status = project.cli("status").stderr
    assert first.name not in status and f"{second.name} was edited" in status
    assert "Already at head" in project.cli("up").stdout
    after = applied_rows(project)
    assert after[0][1] == load_chain(project.root / "migrations").revisions[0].checksum
    assert after[1][1] == before[1][1]  # an edited file's row is left for a person to accept
    assert [at for _, _, at in after] == [at for _, _, at in before]
    assert ruff("format", "--isolated", "--line-length", "60", str(first), cwd=project.root).returncode == 0
    assert first.name not in project.cli("status").stderr


def test_a_role_without_update_keeps_earlier_rows_and_is_told_what_accepting_needs(project: Project) -> None:
    """Renewing rows is skipped without UPDATE on the version table (they keep matching their bytes);
    accepting an edit needs it, and the error names the GRANT."""
    import hashlib
    from urllib.parse import urlsplit, urlunsplit

    first, second = applied_history(project)
    legacy = hashlib.sha256(first.read_bytes()).hexdigest()
    run_sql(project.url, f"UPDATE pgmig_revisions SET checksum = '{legacy}' WHERE id = '{rid(first)}'")
    parts = urlsplit(project.url)
    role = f"no_update_{parts.path.lstrip('/')}"[:60]
    run_sql(
        project.url,
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'secret'",
        f'GRANT SELECT, INSERT, DELETE ON pgmig_revisions TO "{role}"',
    )
    try:
        project.url = urlunsplit(parts._replace(netloc=f"{role}:secret@{parts.netloc.rsplit('@', 1)[-1]}"))
        before = applied_rows(project)
        assert "Already at head" in project.cli("up").stdout
        assert applied_rows(project) == before
        second.write_text(second.read_text() + "EDITED = True\n")
        refused = project.cli("stamp", "--accept-edits", "--yes", ok=False)
        assert refused.returncode == 3 and "UPDATE on table" in refused.stderr and "GRANT UPDATE" in refused.stderr
        assert applied_rows(project) == before
    finally:
        project.url = urlunsplit(parts)
        run_sql(project.url, f'DROP OWNED BY "{role}" CASCADE', f'DROP ROLE "{role}"')


def configure_post_write(root: Path, command: str, extra: str = "") -> None:
    """The sample project's pyproject.toml with `post_write = command` (a TOML literal string)."""
    (root / "pyproject.toml").write_text(
        f"[project]\nname = \"blog\"\n\n[tool.pgmig]\nmodels = [\"models.py\"]\n{extra}post_write = '''{command}'''\n"
    )


def test_post_write_runs_a_formatter_on_each_written_file(project: Project) -> None:
    style = ["--line-length", "60", "--config", "format.quote-style='single'"]
    configure_post_write(project.root, f"{RUFF} format --isolated {shlex.join(style)} '{{path}}'")
    project.models(V1)
    first = project.generate("initial")
    assert ruff("format", "--check", "--isolated", *style, str(first), cwd=project.root).returncode == 0
    assert ruff("format", "--check", "--isolated", str(first), cwd=project.root).returncode == 1  # not the default
    project.cli("up")
    assert "edited" not in project.cli("status").stderr


def test_post_write_gets_the_path_as_one_word_from_the_project_root(tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "a project"
    root.mkdir()
    project = Project(root, database_url)
    script = "import os, sys; open('hook-args.txt', 'w').write(repr((sys.argv[1:], os.getcwd())))"
    configure_post_write(root, f'{sys.executable} -c "{script}" {{path}} end', extra='migrations_dir = "my $dir"\n')
    project.models(V1)
    (root / "sub").mkdir()
    env = {"PGMIG_DATABASE_URL": database_url, "PGMIG_DEV_URL": database_url}
    result = pgmig_cli("generate", "-m", "initial", cwd=root / "sub", env=env)
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip().splitlines()[-1])
    assert written.parent == root / "my $dir"
    args, cwd = ast.literal_eval((root / "hook-args.txt").read_text())
    assert args == [str(written), "end"] and Path(cwd) == root


def test_a_failing_post_write_names_the_command_and_leaves_the_file(project: Project) -> None:
    script = "import sys; sys.stderr.write('formatter exploded'); sys.exit(3)"
    configure_post_write(project.root, f'{sys.executable} -c "{script}" {{path}}')
    project.models(V1)
    result = project.cli("generate", "-m", "initial", ok=False)
    assert result.returncode == 2
    assert "post_write" in result.stderr and "formatter exploded" in result.stderr and "exit status 3" in result.stderr
    (written,) = project.files()
    assert written.name in result.stderr
    assert load_chain(written.parent).revisions[0].path == written


def test_a_post_write_that_is_not_installed_or_breaks_the_file(project: Project) -> None:
    configure_post_write(project.root, "no-such-formatter-xyz {path}")
    project.models(V1)
    missing = project.cli("generate", "-m", "initial", ok=False)
    assert missing.returncode == 2 and "'no-such-formatter-xyz' is not installed" in missing.stderr
    configure_post_write(project.root, f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write('broken(')\"")
    project.models(V2)
    broken = project.cli("generate", "-m", "second", ok=False)
    assert broken.returncode == 2 and "no longer loads" in broken.stderr


def test_an_unclosed_quote_in_post_write_is_a_configuration_error(project: Project) -> None:
    configure_post_write(project.root, "ruff format '{path}")
    result = project.cli("status", ok=False)
    assert result.returncode == 2 and "post_write" in result.stderr and "not a command line" in result.stderr


def test_check_reports_edits_on_the_embedded_default(tmp_path: Path, database_url: str) -> None:
    """No database_url: `up` runs on the embedded server, and check compares its version table too."""
    project = Project(tmp_path, database_url)
    env = {"PGMIG_DEV_URL": database_url}
    project.models(V1)
    pgmig_cli("check", cwd=tmp_path, env=env)  # fails: the models need a revision
    assert not has_data(tmp_path / ".pgmig")  # nothing applied anywhere: no server made for it
    project.cli("generate", "-m", "initial")
    assert pgmig_cli("up", cwd=tmp_path, env=env).returncode == 0
    (first,) = project.files()
    first.write_text(first.read_text() + "EDITED = True\n")
    result = pgmig_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert f"{first.name} was edited after it was applied to the embedded server's database" in result.stdout
