"""Revisions that commit in parts: the server's lock table, the parts, and the progress row.

Postgres keeps every lock a transaction takes until it ends, in one shared
table of max_locks_per_transaction x (max_connections +
max_prepared_transactions) entries for all sessions together (docs: "Lock
Management"; the table can borrow some spare shared memory, but no more is
promised). One transaction that creates or drops a few thousand tables runs
out of it: "out of shared memory", SQLSTATE 53200. A revision marked
`commit_in_parts = True` therefore runs its steps in several transactions,
each ending before the steps' `Operation.lock_estimate` sum passes a budget
(a quarter of the table, so other sessions keep theirs), and records how many
steps are committed in a progress table beside the version table, in the same
transaction as those steps: a run stopped between parts resumes after the last
committed step, and the version-table row is written with the last part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from pgmig.db.quoting import qualified
from pgmig.errors import RevisionError
from pgmig.ops.base import Operation

BUDGET_FRACTION = 4
"""A part holds at most 1/BUDGET_FRACTION of the server's lock table: the rest stays for the
application's sessions (and for the estimate's errors)."""

TRANSACTION_OVERHEAD = 8
"""Locks a transaction of pgmig's holds besides its steps': its own transaction id, the version
and progress tables and their indexes, the catalog reads."""

OUT_OF_SHARED_MEMORY = "53200"


class LockTableError(RevisionError):
    """A revision needs more locks in one transaction than the server's lock table holds
    (estimated before it runs, or Postgres's "out of shared memory", SQLSTATE 53200): the
    message names the revision, the numbers and the two ways out. Exit code 3."""


@dataclass(frozen=True)
class LockTable:
    """The server settings that size its shared lock table (docs: max_locks_per_transaction)."""

    max_locks_per_transaction: int
    max_connections: int
    max_prepared_transactions: int

    @property
    def slots(self) -> int:
        """Entries of the lock table, shared by all sessions (the documented size, without the
        spare shared memory Postgres may also use)."""
        return self.max_locks_per_transaction * (self.max_connections + self.max_prepared_transactions)

    @property
    def budget(self) -> int:
        """Locks one part of a `commit_in_parts` revision may hold: a quarter of `slots`."""
        return max(1, self.slots // BUDGET_FRACTION)

    def described(self) -> str:
        """`max_locks_per_transaction (64) x (max_connections (100) + max_prepared_transactions (0)) = 6400`."""
        return (
            f"max_locks_per_transaction ({self.max_locks_per_transaction}) x (max_connections "
            f"({self.max_connections}) + max_prepared_transactions ({self.max_prepared_transactions})) = {self.slots}"
        )


DEFAULT_SERVER = LockTable(64, 100, 0)
"""A server with Postgres's default settings: 6,400 entries; what `generate` plans for."""


async def read_lock_table(connection: Any) -> LockTable:
    """The lock table of the server `connection` is on (current_setting, which any role may read)."""
    row = await connection.fetchrow(
        "SELECT current_setting('max_locks_per_transaction')::int AS locks, "
        "current_setting('max_connections')::int AS connections, "
        "current_setting('max_prepared_transactions')::int AS prepared"
    )
    return LockTable(int(row["locks"]), int(row["connections"]), int(row["prepared"]))


def estimate(steps: Sequence[Operation]) -> int:
    """The locks one transaction running all of `steps` holds (their `lock_estimate`s and pgmig's own)."""
    return TRANSACTION_OVERHEAD + sum(step.lock_estimate() for step in steps)


def part_ends(steps: Sequence[Operation], budget: int, start: int = 0) -> List[int]:
    """Where each part of `steps[start:]` ends (exclusive indexes into `steps`, the last one
    `len(steps)`): a part ends before the step that would take it past `budget` locks (a step
    larger than the budget alone is a part of its own), and after a step that must be committed
    before it is used (`Operation.commit_before_use`: a new enum label), so the next part can use it."""
    room = max(1, budget - TRANSACTION_OVERHEAD)
    ends: List[int] = []
    used = 0
    for index in range(start, len(steps)):
        cost = steps[index].lock_estimate()
        if used and used + cost > room:
            ends.append(index)
            used = 0
        used += cost
        if steps[index].commit_before_use and index + 1 < len(steps):
            ends.append(index + 1)
            used = 0
    ends.append(len(steps))
    return ends


def steps_digest(steps: Sequence[Operation]) -> str:
    """A digest of what `steps` run (their names and statements): the progress row keeps the
    committed steps' digest, so an edit of the revision after the last committed step does not
    stop a resume, while one before it does."""
    digest = hashlib.sha256()
    for step in steps:
        digest.update(step.name.encode())
        for statement in step.statements():
            digest.update(b"\0" + statement.encode("utf-8", "surrogateescape"))
        digest.update(b"\1")
    return digest.hexdigest()


@dataclass(frozen=True)
class Progress:
    """A revision partly applied: `steps` of its `direction` committed, whose digest is `digest`;
    `total`: how many steps that direction has (None until counted, or when it cannot be)."""

    revision_id: str
    direction: str
    steps: int
    digest: str
    total: Optional[int] = None


def progress_table_name(version_table: str) -> str:
    """The progress table's name beside the version table `version_table` (the catalog reads
    leave both out: `version_table || '_progress'` in pgmig.schema.handlers)."""
    return f"{version_table}_progress"


class ProgressTable:
    """`<version table>_progress`: one row per revision partly applied (id, direction, steps,
    digest), created by the first part that commits and emptied by the last."""

    def __init__(self, schema: str, version_table: str) -> None:
        self.schema = schema
        self.name = progress_table_name(version_table)
        self.qualified = qualified(schema, self.name)

    async def exists(self, connection: Any) -> bool:
        return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", self.qualified))

    async def rows(self, connection: Any) -> List[Progress]:
        """Every revision partly applied (none when the table does not exist)."""
        if not await self.exists(connection):
            return []
        found = await connection.fetch(f"SELECT id, direction, steps, digest FROM {self.qualified} ORDER BY id")
        return [Progress(r["id"], r["direction"], int(r["steps"]), r["digest"]) for r in found]

    async def find(self, connection: Any, revision_id: str) -> Optional[Progress]:
        return next((row for row in await self.rows(connection) if row.revision_id == revision_id), None)

    async def save(self, connection: Any, revision_id: str, direction: str, steps: int, digest: str) -> None:
        """Record `steps` committed, in the caller's transaction (the part's own)."""
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified} (id text PRIMARY KEY, direction text NOT NULL, "
            "steps integer NOT NULL, digest text NOT NULL)"
        )
        await connection.execute(
            f"INSERT INTO {self.qualified} (id, direction, steps, digest) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id) DO UPDATE SET direction = EXCLUDED.direction, steps = EXCLUDED.steps, "
            "digest = EXCLUDED.digest",
            revision_id,
            direction,
            steps,
            digest,
        )

    async def clear(self, connection: Any, revision_id: Optional[str] = None) -> None:
        """Forget `revision_id`'s progress (its last part committing with its version-table row);
        None: every revision's (`pgmig stamp`, which says by hand where the database stands)."""
        if not await self.exists(connection):
            return
        if revision_id is None:
            await connection.execute(f"DELETE FROM {self.qualified}")
        else:
            await connection.execute(f"DELETE FROM {self.qualified} WHERE id = $1", revision_id)
