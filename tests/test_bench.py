"""scripts/bench.py's schema shapes at a tiny size: built on a real server, pgmig must see no change on each.

A correctness test of the benchmark's inputs and of the code it runs in
pgmig (scripts/bench_pgmig.py), not a timing: nothing here measures time.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, List

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench  # noqa: E402
import bench_baseline  # noqa: E402
import bench_pgmig  # noqa: E402
import bench_shapes  # noqa: E402


async def _fetch(url: str, query: str) -> List[Any]:
    conn = await bench_pgmig.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


@pytest.mark.parametrize("shape", list(bench_shapes.SHAPES))
def test_pgmig_sees_no_change_on_each_shape(database_url: str, shape: str) -> None:
    metadata = bench_shapes.build_metadata(shape, 3)
    asyncio.run(bench._execute_script(database_url, bench.ddl_script(metadata)))

    assert bench_pgmig.changes(database_url, metadata) == []
    tables = asyncio.run(_fetch(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    assert len(tables) == 3


def test_enum_partial_shape_is_printed_back_with_a_cast(database_url: str) -> None:
    # What makes the shape worth measuring: the model says status != 'v0', the catalog holds a cast to the enum.
    metadata = bench_shapes.build_metadata("enum-partial", 3)
    asyncio.run(bench._execute_script(database_url, bench.ddl_script(metadata)))

    rows = asyncio.run(_fetch(database_url, "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'ix_%_open'"))
    assert len(rows) == 3
    assert all("'v0'::status_0" in row["indexdef"] for row in rows)


def test_shapes_are_deterministic() -> None:
    for shape in bench_shapes.SHAPES:
        first, second = (set(bench.ddl_script(bench_shapes.build_metadata(shape, 12))) for _ in range(2))
        assert first == second, shape


def test_unknown_shape_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="expression-index"):
        bench_shapes.build_metadata("no-such-shape", 1)


@pytest.mark.skipif(not (bench_baseline.ROOT / ".git").exists(), reason="not a git checkout")
def test_baseline_ref_resolves_to_a_commit_or_fails_clearly() -> None:
    assert len(bench_baseline.resolve("HEAD")) == 40
    with pytest.raises(bench_baseline.BaselineError, match="not a commit"):
        bench_baseline.resolve("no-such-ref-anywhere")


def test_a_changed_schema_is_seen(database_url: str) -> None:
    # So that "no change" above means pgmig looked: the same diff finds an index the database lacks.
    metadata = bench_shapes.build_metadata("expression-index", 2)
    asyncio.run(bench._execute_script(database_url, bench.ddl_script(metadata)))
    asyncio.run(bench._execute_script(database_url, ["DROP INDEX ix_x00001_lower_name"]))

    found = bench_pgmig.changes(database_url, metadata)
    assert len(found) == 1 and "ix_x00001_lower_name" in found[0]


def test_the_proof_section_runs_generate_both_ways(pgmig_server: Any, tmp_path: Path) -> None:
    """`--proof`: generate with its proof and with --no-verify both write the new table's revision."""
    run = bench.time_generate_proof(pgmig_server, 3, 1, tmp_path)
    assert run.proven.error is None and run.unproven.error is None, (run.proven.error, run.unproven.error)
    assert len(run.proven.runs) == 1 and "proof" in run.proven.parts and "proof" not in run.unproven.parts
    assert "with proof" in "\n".join(bench.render_proof([run]))
