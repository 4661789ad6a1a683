"""Eight `pgmig up` at once on one database, repeated: each revision applied once, nobody stuck, all exit 0.

Uses the fault tests' chain, whose every revision inserts one row: a revision
applied twice would leave two rows (or fail on its DDL). Starts are staggered
by a seeded random few hundred milliseconds, so some runs arrive while
another holds the lock and some after it is done. `PGMIG_CONCURRENCY_ROUNDS`
(default 3) and `PGMIG_CONCURRENCY_PROCESSES` (default 8) make it bigger.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from typing import Any, List

from tests.helpers import fetch
from tests.test_faults import (  # noqa: F401  (fault_chain, fresh_database: fixtures)
    FAULT_SEED,
    STEPS,
    WAIT,
    FaultChain,
    fault_chain,
    fresh_database,
    spawn,
    wait_until_quiet,
)

ROUNDS = int(os.environ.get("PGMIG_CONCURRENCY_ROUNDS", "3"))
PROCESSES = int(os.environ.get("PGMIG_CONCURRENCY_PROCESSES", "8"))


def run_together(chain: FaultChain, url: str, rng: random.Random) -> List[Any]:
    """Start PROCESSES `pgmig up`; wait for all within a bound (a deadlock fails here, it does not hang)."""
    procs: List[subprocess.Popen] = []
    for _ in range(PROCESSES):
        procs.append(spawn(chain.root, url, "up"))
        time.sleep(rng.uniform(0, 0.3 / PROCESSES * 2))
    deadline = time.monotonic() + WAIT * 2
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=max(0.1, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
        stuck = fetch(
            url,
            "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        for proc in procs:
            proc.kill()
            proc.communicate()
        raise AssertionError(f"pgmig up runs still going after {WAIT * 2}s (a deadlock?): {stuck}")
    return [(proc.returncode, out, err) for proc, (out, err) in zip(procs, outputs)]


def test_concurrent_ups_apply_every_revision_once(fault_chain: FaultChain, fresh_database: Any) -> None:
    rng = random.Random(FAULT_SEED + 2)
    for _ in range(ROUNDS):
        url = fresh_database()
        results = run_together(fault_chain, url, rng)
        assert [code for code, _, _ in results] == [0] * PROCESSES, results
        assert not any("Traceback" in out + err or "error:" in err for _, out, err in results), results
        applied_lines = [line for _, out, _ in results for line in out.splitlines() if line.startswith("applied ")]
        assert sorted(line.split()[1] for line in applied_lines) == fault_chain.ids, applied_lines
        assert sum("Already at head" in out for _, out, _ in results) == PROCESSES - 1, results
        counts = fetch(url, "SELECT name, count(*) AS n FROM account GROUP BY name ORDER BY name")
        assert counts == [{"name": f"r{k}", "n": 1} for k in range(1, STEPS + 1)], counts
        wait_until_quiet(url)
        assert fault_chain.assert_at_a_revision(url) == STEPS
    print(f"\nconcurrency: {ROUNDS} rounds of {PROCESSES} concurrent pgmig up, each revision applied once")
