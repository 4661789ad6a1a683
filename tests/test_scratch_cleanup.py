"""Scratch databases are dropped on every way out, and the ones a killed run left are reclaimed.

Each test runs `pgmig check` or `pgmig generate` as a process replaying a
revision that sleeps in the scratch database (only when SLOW is set, so the
next run replays it quickly), and stops it there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List

import pytest

from pgmig.db.scratch import GRACE, abandoned, host_tag, maker_of, reclaim, scratch_name
from tests.helpers import fetch, run_sql
from tests.sample_project import V1, Project

MARK = "pgmig-test-slow-replay"
SLOW_UP = (
    "    async def up(self, migrator: Migrator) -> None:\n"
    "        import os\n\n"
    "        if os.environ.get('SLOW'):\n"
    f"            await migrator.connection.execute(\"SELECT '{MARK}', pg_sleep(120)\")\n"
)


def slow_history(project: Project) -> None:
    """An initial revision, then one whose `up` sleeps when SLOW is set; nothing applied."""
    project.models(V1)
    project.generate("initial")
    path = project.generate("slow", "--empty")
    text = path.read_text()
    empty_up = "    async def up(self, migrator: Migrator) -> None:\n        pass\n"
    assert empty_up in text, text
    path.write_text(text.replace(empty_up, SLOW_UP))


def env(project: Project, slow: bool) -> Dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_") and k != "SLOW"}
    out["PGMIG_DATABASE_URL"] = out["PGMIG_DEV_URL"] = project.url
    if slow:
        out["SLOW"] = "1"
    return out


def spawn(project: Project, *args: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "-m", "pgmig", *args],
        cwd=project.root,
        env=env(project, slow=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def scratch_databases(project: Project) -> List[str]:
    return [
        r["datname"]
        for r in fetch(project.url, r"SELECT datname FROM pg_database WHERE datname LIKE 'pgmig\_scratch\_%'")
    ]


def replaying(project: Project, proc: "subprocess.Popen[str]") -> str:
    """The scratch database `proc` is sleeping in, once it is."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows = fetch(
            project.url,
            "SELECT datname FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%'{MARK}'%",
        )
        if rows:
            return str(rows[0]["datname"])
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"never replayed the slow revision: {proc.communicate()}")


@pytest.mark.parametrize("command", [("check",), ("generate", "-m", "next")], ids=["check", "generate"])
def test_a_run_killed_mid_replay_is_reclaimed_by_the_next(project: Project, command: "tuple[str, ...]") -> None:
    slow_history(project)
    proc = spawn(project, *command)
    name = replaying(project, proc)
    maker = maker_of(name)
    assert maker is not None and maker.pid == proc.pid and maker.host == host_tag(), name
    proc.kill()  # SIGKILL: no way out pgmig controls
    proc.communicate(timeout=30)
    assert name in scratch_databases(project), "a killed run cannot drop its own"
    # The next run (no sleep) reclaims it, though the killed run's pg_sleep still holds a session in it.
    project.cli("check")
    assert scratch_databases(project) == []


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("command", [("check",), ("generate", "-m", "next")], ids=["check", "generate"])
def test_sigint_and_sigterm_mid_replay_leave_nothing(
    project: Project, command: "tuple[str, ...]", sig: int, code: int, word: str
) -> None:
    slow_history(project)
    before = set(project.files())
    proc = spawn(project, *command)
    name = replaying(project, proc)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert word in err and "Traceback" not in err, err
    assert name not in scratch_databases(project) and scratch_databases(project) == []
    assert set(project.files()) == before, "nothing written"


def test_a_live_runs_scratch_database_is_not_reclaimed(project: Project) -> None:
    slow_history(project)
    proc = spawn(project, "check")
    try:
        name = replaying(project, proc)
        # Another run on the same server reclaims abandoned scratch databases: not this one.
        project.cli("check")
        assert name in scratch_databases(project) and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert scratch_databases(project) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_which_scratch_databases_are_abandoned() -> None:
    now = time.time()
    here = host_tag()
    other = "0" * 8 if here != "0" * 8 else "1" * 8
    live = scratch_name(now)
    assert maker_of(live) is not None and maker_of(live).pid == os.getpid()  # type: ignore[union-attr]
    dead = live.replace(f"_{os.getpid()}_", f"_{_dead_pid()}_")
    foreign_new = live.replace(here, other)
    foreign_old = scratch_name(now - GRACE - 60).replace(here, other)
    # This host: the maker's process decides, whoever is connected.
    assert not abandoned(live, sessions=0, now=now)
    assert abandoned(dead, sessions=1, now=now)
    # Another host: nobody connected and older than the grace period.
    assert not abandoned(foreign_new, sessions=0, now=now)
    assert not abandoned(foreign_old, sessions=1, now=now)
    assert abandoned(foreign_old, sessions=0, now=now)
    # An older pgmig's name (no maker): nobody connected.
    assert abandoned("pgmig_scratch_0123456789ab", sessions=0, now=now)
    assert not abandoned("pgmig_scratch_0123456789ab", sessions=1, now=now)


def test_reclaim_drops_only_the_abandoned(database_url: str) -> None:
    import asyncpg

    now = time.time()
    here = host_tag()
    other = "0" * 8 if here != "0" * 8 else "1" * 8
    names = {
        "live": scratch_name(now),
        "dead": scratch_name(now).replace(f"_{os.getpid()}_", f"_{_dead_pid()}_"),
        "foreign_old": scratch_name(now - GRACE - 60).replace(here, other),
        "foreign_new": scratch_name(now).replace(here, other),
    }
    run_sql(database_url, *(f'CREATE DATABASE "{name}"' for name in names.values()))

    async def go() -> List[str]:
        admin = await asyncpg.connect(database_url)
        try:
            return await reclaim(admin)
        finally:
            await admin.close()

    try:
        dropped = asyncio.run(go())
        assert sorted(dropped) == sorted([names["dead"], names["foreign_old"]])
        left = {r["datname"] for r in fetch(database_url, "SELECT datname FROM pg_database")}
        assert names["live"] in left and names["foreign_new"] in left
        assert names["dead"] not in left and names["foreign_old"] not in left
    finally:
        run_sql(database_url, *(f'DROP DATABASE IF EXISTS "{name}"' for name in names.values()))
