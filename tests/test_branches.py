"""Two branches, two heads: the revision graph through the CLI, against the real server (issue 20).

Two branches each generate a revision from one base (two different tables);
git merges them cleanly, so both files sit in the migrations folder.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

from pgmig.testing import ScratchServer
from tests.helpers import fetch, pgmig_cli
from tests.sample_project import V1, Project, rid
from tests.test_revisions import _write_revision

ALPHA = """

class Alpha(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    label: str
"""

BETA = """

class Beta(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    amount: int
"""


@dataclass
class Branches:
    """A base revision and one revision on each branch, both files in the folder; alpha's id sorts first."""

    base: str
    alpha: Path
    beta: Path

    @property
    def ids(self) -> List[str]:
        return [self.base, rid(self.alpha), rid(self.beta)]


def two_branches(project: Project) -> Branches:
    project.models(V1)
    base = project.generate("base", "--no-verify")
    project.models(V1 + ALPHA)
    alpha = project.generate("add alpha", "--no-verify")
    text = alpha.read_text()
    alpha.unlink()  # the other branch has not seen it
    project.models(V1 + BETA)
    # An id is its second plus random hex: beta sorts after alpha only when written in a later second.
    while time.strftime("%Y%m%d_%H%M%S", time.gmtime()) <= rid(alpha)[:15]:
        time.sleep(0.05)
    beta = project.generate("add beta", "--no-verify")
    alpha.write_text(text)  # git merges both branches
    project.models(V1 + ALPHA + BETA)
    assert rid(alpha) < rid(beta)
    return Branches(rid(base), alpha, beta)


def cli_on(project: Project, url: str, *args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = pgmig_cli(*args, cwd=project.root, env={"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": project.url})
    if ok:
        assert result.returncode == 0, f"pgmig {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def applied_in_order(url: str) -> List[str]:
    """The version table's rows in the order they were written."""
    return [r["id"] for r in fetch(url, "SELECT id FROM pgmig_revisions ORDER BY applied_at, id")]


def tables(url: str) -> List[str]:
    rows = fetch(url, "SELECT relname FROM pg_class WHERE relname IN ('alpha', 'beta') AND relkind = 'r' ORDER BY 1")
    return [r["relname"] for r in rows]


def merge_id(project: Project, *args: str) -> str:
    path = Path(project.cli("merge", "-m", "join alpha and beta", *args).stdout.strip().splitlines()[-1])
    assert path.parent == project.root / "migrations"
    return rid(path)


def test_two_heads_apply_merge_and_roll_back(project: Project) -> None:
    b = two_branches(project)
    base, alpha, beta = b.ids

    # Read-only commands work whatever the shape.
    history = project.cli("history").stdout
    assert "branch point: 2 revisions follow it" in history
    assert f"(follows {base}; head)" in history and history.count("head)") == 2
    document = json.loads(project.cli("heads", "--json").stdout)
    heads = document["heads"]
    assert document["version"] == 1
    assert [(h["revision"], h["file"], h["message"]) for h in heads] == [
        (alpha, b.alpha.name, "add alpha"),
        (beta, b.beta.name, "add beta"),
    ]
    assert "2 heads: pgmig merge" in project.cli("heads").stdout
    status = project.cli("status", "--no-drift").stdout
    assert f"heads:   {alpha}, {beta}" in status and "pending: 3" in status

    # What needs one head says what to run; nothing is written or applied.
    generate = project.cli("generate", "-m", "more", ok=False)
    assert generate.returncode == 3 and "run pgmig merge -m MESSAGE" in generate.stderr
    assert len(project.files()) == 3
    up_head = project.cli("up", "head", ok=False)
    assert up_head.returncode == 3 and "'head' is ambiguous" in up_head.stderr and "'heads'" in up_head.stderr

    # `up` applies every head.
    project.cli("up")
    assert applied_in_order(project.url) == [base, alpha, beta]
    assert tables(project.url) == ["alpha", "beta"]
    assert "current: " + f"{alpha} + {beta} (2 branches applied" in project.cli("status", "--no-drift").stdout
    several = project.cli("down", ok=False)
    assert several.returncode == 3 and "stands on 2 branches" in several.stderr

    merge = merge_id(project)
    text = next(p for p in project.files() if rid(p) == merge).read_text()
    assert f'down_revision = ("{alpha}", "{beta}")' in text
    assert [h["revision"] for h in json.loads(project.cli("heads", "--json").stdout)["heads"]] == [merge]
    assert f"(merges {alpha}, {beta})" in project.cli("history").stdout
    sql = project.cli("up", "--sql").stdout
    assert f"-- up: {merge}" in sql and alpha not in sql.replace(f"({alpha}", "")
    project.cli("up")
    assert applied_in_order(project.url) == [base, alpha, beta, merge]
    assert "No changes" in project.cli("diff").stdout

    # down of the merge returns to both parents; down REV removes what depends on REV.
    project.cli("down")
    assert applied_in_order(project.url) == [base, alpha, beta] and tables(project.url) == ["alpha", "beta"]
    project.cli("up")
    project.cli("down", alpha)
    assert sorted(project.applied()) == sorted([base, alpha, beta]) and tables(project.url) == ["alpha", "beta"]
    project.cli("down", base)
    assert project.applied() == [base] and tables(project.url) == []
    project.cli("up", beta)
    assert project.applied() == sorted([base, beta]) and tables(project.url) == ["beta"]
    project.cli("up", "head")  # one head again: the merge
    assert applied_in_order(project.url)[-2:] == [alpha, merge]

    # The merged history generates on (nothing left to do) and passes check, each revision replayed once.
    assert "No changes" in project.cli("generate", "-m", "nothing").stdout
    report = json.loads(project.cli("check", "--json").stdout)
    assert report["ok"], report
    assert [r["revision"] for r in report["revisions"]] == [base, alpha, beta, merge]


def test_databases_on_either_branch_take_the_merge(project: Project, pgmig_server: ScratchServer) -> None:
    """Each branch's revision applied to its own database before the merge existed; after the merge,
    `up` brings each the other branch's revision and the merge. beta's id sorts after alpha's, so the
    database on beta applies a revision that sorts before one it has."""
    b = two_branches(project)
    base, alpha, beta = b.ids
    on_alpha, on_beta = pgmig_server.create_database(), pgmig_server.create_database()
    try:
        text = b.beta.read_text()
        b.beta.unlink()
        cli_on(project, on_alpha, "up")
        b.beta.write_text(text)
        text = b.alpha.read_text()
        b.alpha.unlink()
        cli_on(project, on_beta, "up")
        b.alpha.write_text(text)
        assert applied_in_order(on_alpha) == [base, alpha] and applied_in_order(on_beta) == [base, beta]

        merge = merge_id(project)
        status = cli_on(project, on_beta, "status", "--no-drift").stdout
        assert f"current: {beta}" in status and "pending: 2" in status
        assert re.search(rf"{alpha} .*\n.*{merge} ", status), status
        cli_on(project, on_alpha, "up")
        cli_on(project, on_beta, "up")
        assert applied_in_order(on_alpha) == [base, alpha, beta, merge]
        assert applied_in_order(on_beta) == [base, beta, alpha, merge]
        assert tables(on_alpha) == tables(on_beta) == ["alpha", "beta"]
        assert "No changes" in cli_on(project, on_beta, "diff").stdout
        assert "drift: none" in cli_on(project, on_beta, "status").stdout  # replayed up to the merge
    finally:
        pgmig_server.drop_database(on_alpha)
        pgmig_server.drop_database(on_beta)


def _graph(folder: Path) -> None:
    """r1; r2 and r3 both follow r1 (r3's file sorts first); m merges them."""
    _write_revision(folder, "a.py", "r1")
    _write_revision(folder, "c.py", "r2", '"r1"')
    _write_revision(folder, "b.py", "r3", '"r1"')
    _write_revision(folder, "d.py", "m", '("r2", "r3")')


def test_stamp_on_a_graph(project: Project) -> None:
    project.models(V1)
    _graph(project.root / "migrations")
    project.cli("stamp", "r2", "r3")
    assert project.applied() == ["r1", "r2", "r3"]
    project.cli("stamp", "r3")
    assert project.applied() == ["r1", "r3"]
    assert "pending: 2" in project.cli("status", "--no-drift").stdout
    project.cli("stamp", "heads")
    assert project.applied() == ["m", "r1", "r2", "r3"]
    project.cli("stamp", "r2")
    assert project.applied() == ["r1", "r2"]
    project.cli("stamp", "base")
    assert project.applied() == []


def test_plan_run_on_a_graph() -> None:
    from pgmig.errors import RevisionError
    from pgmig.revisions.files import MigrationRevisionBase, Revision, build_chain
    from pgmig.revisions.runner import DOWN, UP, plan_rollback, plan_run, read_status

    chain = build_chain(
        [
            Revision(rid, down, Path(name), "", MigrationRevisionBase)
            for name, rid, down in [
                ("a.py", "r1", None),
                ("c.py", "r2", "r1"),
                ("b.py", "r3", "r1"),
                ("d.py", "m", ("r2", "r3")),
            ]
        ]
    )
    assert chain.ids == ["r1", "r3", "r2", "m"] and chain.heads == ["m"]

    def ids(direction: str, applied: List[str], target: object) -> List[str]:
        status = read_status(chain, {r: None for r in applied})  # type: ignore[misc]
        return [r.id for r in plan_run(status, direction, target).revisions]  # type: ignore[arg-type]

    assert ids(UP, ["r1", "r2"], None) == ["r3", "m"]
    assert ids(UP, ["r1"], "r2") == ["r2"] and ids(UP, ["r1", "r2"], "r3") == ["r3"]
    assert ids(UP, ["r1", "r2"], "r2") == [] and ids(UP, ["r1", "r3"], "r2") == ["r2"] and ids(UP, [], "base") == []
    assert ids(DOWN, ["r1", "r2", "r3", "m"], None) == ["m"]
    assert ids(DOWN, ["r1", "r2", "r3", "m"], "r2") == ["m"]
    assert ids(DOWN, ["r1", "r2", "r3", "m"], "r1") == ["m", "r2", "r3"]
    assert ids(DOWN, ["r1", "r2", "r3"], "base") == ["r2", "r3", "r1"]
    status = read_status(chain, {r: None for r in ["r1", "r2", "r3"]})  # type: ignore[misc]
    assert [r.id for r in plan_rollback(status, "r3").revisions] == ["r3"]
    for direction, applied, target, message in [
        (UP, ["r1", "r2", "r3", "m"], "r2", "r2 is behind the current revision m; use pgmig down"),
        (DOWN, ["r1", "r3"], "r2", "r2 is ahead of the current revision r3; use pgmig up"),
        (DOWN, ["r1", "r2", "r3"], None, "stands on 2 branches"),
        (UP, ["r1"], "base", "base is behind the current revision r1; use pgmig down"),
    ]:
        with pytest.raises(RevisionError, match=message):
            ids(direction, applied, target)
    with pytest.raises(RevisionError, match="r2 is applied but r1 .*which it follows, is not"):
        read_status(chain, {"r2": None})  # type: ignore[dict-item]


def test_merge_joins_named_heads_and_refuses_what_is_no_merge(project: Project) -> None:
    project.models(V1)
    folder = project.root / "migrations"
    _write_revision(folder, "a.py", "r1")
    for name, revision_id in [("b.py", "r2"), ("c.py", "r3"), ("d.py", "r4")]:
        _write_revision(folder, name, revision_id, '"r1"')
    for args, code, message in [
        (["r1", "r2"], 2, "r1 (a.py) is already followed by r2 (b.py)"),
        (["r2", "r2"], 2, "there is only r2 (b.py): nothing to merge"),
        (["r2", "zz"], 3, "'zz' is not a known revision"),
        (["r2", "head"], 3, "'head' is ambiguous: the revisions have 3 heads"),
    ]:
        refused = project.cli("merge", "-m", "join", *args, ok=False)
        assert refused.returncode == code and message in refused.stderr, refused.stderr
    assert len(project.files()) == 4

    first = merge_id(project, "r3", "r2")
    assert {h["revision"] for h in json.loads(project.cli("heads", "--json").stdout)["heads"]} == {first, "r4"}
    second = merge_id(project)
    written = next(p for p in project.files() if rid(p) == second).read_text()
    assert f'down_revision = ("{first}", "r4")' in written  # graph order: the merge's file name sorts first
    assert 'down_revision = ("r2", "r3")' in next(p for p in project.files() if rid(p) == first).read_text()
    last = project.cli("merge", "-m", "again", ok=False)
    assert last.returncode == 2 and f"there is only {second}" in last.stderr
    project.cli("up")
    assert project.applied() == sorted(["r1", "r2", "r3", "r4", first, second])
    assert applied_in_order(project.url)[-1] == second


def test_a_revision_re_parented_after_it_was_applied_is_said_and_status_still_reads(
    project: Project, pgmig_server: ScratchServer
) -> None:
    """The advice teams followed before merge revisions existed: beta, applied on a database, is edited
    to follow alpha. `history` and `status` only read, so they show the graph with a warning naming the
    way out (`pgmig merge`); `up` refuses with the same words, and nothing runs."""
    b = two_branches(project)
    base, alpha, beta = b.ids
    on_beta = pgmig_server.create_database()
    try:
        text = b.alpha.read_text()
        b.alpha.unlink()
        cli_on(project, on_beta, "up")
        b.alpha.write_text(text)
        b.beta.write_text(b.beta.read_text().replace(f'down_revision = "{base}"', f'down_revision = "{alpha}"'))
        for args in (["history"], ["status", "--no-drift"]):
            result = cli_on(project, on_beta, *args)
            assert f"revision {beta} is applied but" in result.stderr and "pgmig merge" in result.stderr, result
            assert alpha in result.stdout and beta in result.stdout, result
        refused = cli_on(project, on_beta, "up", ok=False)
        assert refused.returncode == 3 and "re-parented" in refused.stderr, refused
        assert applied_in_order(on_beta) == [base, beta]
    finally:
        pgmig_server.drop_database(on_beta)
