"""`pgmig fleet`: the same revisions on many targets (databases, or schemas of one database) at once.

A target is a database URL, optionally with a schema after `#`
(`postgresql://h/app#tenant_a`: schema-per-tenant); `#tenant_a` alone is a
schema of the configured database. The fragment is the part of a URL
(RFC 3986 section 3.5) that no client sends to the server, and Python's
`urllib.parse` keeps it apart from the query, so it never reaches libpq's
or asyncpg's parameters; a `#` inside a password must be written `%23`.

Each target runs through the ordinary runner (`Project.runner`): its own
session, advisory lock and version table (in the target's schema), so a
fleet is many `pgmig up`s at once that share one read of the revision files.
A schema target runs each step with its schema renamed from the first
managed schema to the target's (`pgmig.ops.base.translate_schemas`).

At most `concurrency` targets of one server (host and port as the URL
names them) work at once, each on one session; a revision with
commit-before-use steps (a new enum label used in the same revision) opens
a second, short one (`pgmig.revisions.runner.Runner.session`).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine, Dict, Iterable, List, Literal, Optional, Sequence

from pgmig.errors import ConfigError, DatabaseError, Hint, PgmigError, UsageError
from pgmig.revisions.files import BASE, Chain, Revision
from pgmig.revisions.runner import RELATIVE, Direction, Runner, Status, read_status, relative_steps, relative_target
from pgmig.services.project import Project

JSON_VERSION = 1
"""The `version` field of `pgmig fleet status --json`; raised when a field changes meaning."""

DEFAULT_CONCURRENCY = 4

TARGETS_HINT = Hint("give the targets", "targets")

_SCHEMA_NAME = re.compile(r"[^\s#/?@:]+")


@dataclass(frozen=True)
class Target:
    """One place the revisions run: a database URL, and a schema of it (None: the first managed one)."""

    url: str
    schema: Optional[str] = None

    @property
    def label(self) -> str:
        """The target as written (`URL#schema`), password hidden: for tables and messages."""
        from pgmig.db.urls import redact_url

        return redact_url(self.url) + (f"#{self.schema}" if self.schema else "")

    @property
    def server(self) -> str:
        """The server the URL names (its hosts and ports as written; "" for the local socket): the
        unit the concurrency bound counts sessions in."""
        from pgmig.db.urls import split_url

        parts = split_url(self.url, generous=False)
        return parts.hosts.lower() if parts is not None else self.url


def parse_target(text: str, database_url: Optional[str]) -> Target:
    """`URL`, `URL#schema`, or `#schema` (a schema of `database_url`) as a Target.

    Raises UsageError for an empty schema, a schema name holding spaces, `#`, `/`, `?`, `@` or `:`
    (a second `#`; a `#` that belongs to a password: write it `%23`), or `#schema` with no `database_url`;
    ConfigError for a URL pgmig cannot connect with (`normalize_url`: another scheme than postgresql://,
    a bad port).
    """
    text = text.strip()
    # At the first '#': a second one is not part of a schema name (`URL#s0#1` is refused, not schema `1`).
    url, mark, schema = text.partition("#")
    if mark:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise UsageError(
                f"target {_shown(text)}: {schema!r} after '#' is not a schema name (a '#' in a password is written %23)"
            )
        if not url:
            if not database_url:
                raise UsageError(f"target {text}: a schema alone needs database_url (--database-url)")
            url = database_url
    if "://" not in url:
        raise UsageError(f"target {_shown(text)} is not a postgresql:// URL, URL#schema or #schema")
    from pgmig.db.urls import normalize_url

    try:
        # Checked here, with the others, so a bad one is refused before any target runs.
        normalize_url(url)
    except ConfigError as exc:
        raise ConfigError(f"target {_shown(text)}: {exc}") from None
    return Target(url, schema or None)


def _shown(text: str) -> str:
    from pgmig.db.urls import redact_url

    return redact_url(text)


async def resolve_targets(project: Project, entries: Optional[Sequence[str]] = None) -> List[Target]:
    """The targets `entries` name (default: the `targets` setting), in order.

    Each entry is a target (`parse_target`), `file:PATH` (one target a line, blank lines skipped;
    PATH relative to the project root), or `sql:QUERY`, run on the configured database, each row's
    first column a target (`SELECT '#' || schema_name FROM tenants`). A query that returns no rows
    or an empty file gives no targets (an empty list: a registry with no tenant yet is not an error).
    Raises UsageError when the setting names nothing, for a target named twice, a missing file;
    DatabaseError when the query fails.
    """
    given = list(project.settings.targets if entries is None else entries)
    if not given:
        raise UsageError(
            "no fleet targets: name them in the targets setting (URL, URL#schema or #schema; file:PATH; sql:QUERY)",
            hint=TARGETS_HINT,
        )
    texts: List[str] = []
    for entry in given:
        if entry.startswith("file:"):
            path = project.settings.project_root / Path(entry[len("file:") :].strip())
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise UsageError(f"targets file {path}: {exc.strerror or exc}") from None
            texts.extend(line for line in lines if line.strip())
        elif entry.startswith("sql:"):
            texts.extend(await _query_targets(project.database_url, entry[len("sql:") :]))
        else:
            texts.append(entry)
    # `#schema` targets are schemas of the configured database (the embedded server's when none is).
    base = project.database_url if any(text.strip().startswith("#") for text in texts) else None
    targets: List[Target] = []
    seen = set()
    for text in texts:
        target = parse_target(text, base)
        if target in seen:
            raise UsageError(f"target {target.label} is named twice")
        seen.add(target)
        targets.append(target)
    managed = project.settings.schema_names
    if len(managed) > 1 and any(target.schema for target in targets):
        # The revisions' other schemas would be shared by every tenant (created by the first, dropped by
        # any one's down): a schema target stands for exactly one schema.
        raise UsageError(
            f"schema targets (URL#schema) need revisions of one schema; these manage {', '.join(managed)}: "
            "give each tenant a database of its own (URL targets), or manage one schema"
        )
    return targets


async def _query_targets(url: str, query: str) -> List[str]:
    from pgmig.db.connect import connection

    async with connection(url) as conn:
        try:
            rows = await conn.fetch(query)
        except Exception as exc:  # noqa: BLE001 - asyncpg's many error classes, one message
            raise DatabaseError(f"the targets query failed: {exc}") from None
    if any(row[0] is None for row in rows):
        # A tenant whose registry row lacks its schema or URL would be skipped without a word.
        raise UsageError(f"the targets query returned NULL in {sum(row[0] is None for row in rows)} of its rows")
    return [str(row[0]) for row in rows]


# -- running ---------------------------------------------------------------------------------

State = Literal["done", "failed", "skipped"]


@dataclass
class TargetResult:
    """What a fleet run did on one target: `state` is done, failed (with `error`), or skipped (not
    started: a canary failed, or `fail_fast` stopped the run); `before`/`after` are where it stood
    (`Status.current`), `revisions` the ids run, `seconds` its wall time."""

    target: Target
    state: State = "skipped"
    before: Optional[str] = None
    after: Optional[str] = None
    revisions: List[str] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0


@dataclass
class FleetReport:
    """Every target's result, in the targets' order; `stopped` says why targets were skipped."""

    results: List[TargetResult]
    stopped: Optional[str] = None

    @property
    def failed(self) -> List[TargetResult]:
        return [r for r in self.results if r.state == "failed"]


Event = Callable[[str, TargetResult, Optional[Revision]], None]
"""What a caller is told while a fleet runs: ("start"|"revision"|"done"|"failed", the target's
result so far, the revision just run for "revision")."""


@dataclass(frozen=True)
class FleetOptions:
    """One fleet run: `direction` and `target` as `RunOptions` takes them (None: every head for up,
    one revision for down), or relative (`+N` up, `-N` down: from where each target stands); at most `concurrency` targets of one server at once; `canary` targets
    first (in order), the rest not started if any fails; `fail_fast` starts no target after a failure.
    Raises UsageError for another direction, a concurrency below 1, a negative canary, or a relative
    target going the other way or of 0 revisions."""

    direction: Direction
    target: Optional[str] = None
    concurrency: int = DEFAULT_CONCURRENCY
    canary: int = 0
    fail_fast: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down"):
            raise UsageError(f"a fleet run goes up or down, not {self.direction!r}")
        if self.concurrency < 1:
            raise UsageError("the concurrency must be at least 1")
        if self.canary < 0:
            raise UsageError("the canary count must be 0 or more")
        if self.relative:
            relative_steps(self.direction, self.target or "")

    @property
    def relative(self) -> bool:
        """Whether `target` is `+N`/`-N`: each target resolves it from where it stands."""
        return self.target is not None and RELATIVE.fullmatch(self.target) is not None


class _Pool:
    """At most `limit` jobs of one server at once (`Target.server`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._servers: Dict[str, asyncio.Semaphore] = {}

    def slot(self, target: Target) -> asyncio.Semaphore:
        return self._servers.setdefault(target.server, asyncio.Semaphore(self.limit))


def _error_text(exc: BaseException, project: Project) -> str:
    if isinstance(exc, PgmigError):
        return exc.describe(project.word_hint)
    return f"{exc.__class__.__name__}: {exc}"


async def run_fleet(
    project: Project, options: FleetOptions, targets: Optional[List[Target]] = None, on_event: Optional[Event] = None
) -> FleetReport:
    """Run `options.direction` to `options.target` on every target (default: `resolve_targets`).

    The revision files are read once. A target's failure (a refused statement, an unreachable
    server, a target revision it cannot reach) is its result's error, the others go on; the
    report says which failed and which were not started. Rerunning resumes each target where it
    stands. Raises UsageError for no targets or an unknown target revision (before any runs).
    """
    chain = project.chain()
    if not options.relative:
        chain.closure(options.target)  # an unknown revision is refused before any target runs
    targets = await resolve_targets(project) if targets is None else targets
    tell: Event = on_event or (lambda kind, result, revision: None)
    results = [TargetResult(target) for target in targets]
    pool = _Pool(options.concurrency)
    stop: List[str] = []

    async def one(result: TargetResult) -> None:
        async with pool.slot(result.target):
            if stop:
                return
            await _run_one(project, chain, options, result, tell)
            if result.state == "failed" and options.fail_fast and not stop:
                stop.append(f"--fail-fast: {result.target.label} failed")

    canaries, rest = results[: options.canary], results[options.canary :]
    await _all(one(r) for r in canaries)
    failed = [r for r in canaries if r.state == "failed"]
    if failed and not stop:
        stop.append(f"canary {failed[0].target.label} failed; the other targets were not started")
    if not stop:
        await _all(one(r) for r in rest)
    return FleetReport(results, stop[0] if stop else None)


async def _all(jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run `jobs` at once. Cancelled (Ctrl-C), every job is cancelled and awaited before the
    cancellation goes on: each target's session is closed (its transaction rolled back by the
    server) and no job's exception is left unretrieved."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _run_one(project: Project, chain: Chain, options: FleetOptions, result: TargetResult, tell: Event) -> None:
    started = time.monotonic()
    tell("start", result, None)

    def progress(direction: str, revision: Revision, seconds: float) -> None:
        result.revisions.append(revision.id)
        tell("revision", result, revision)

    runner = project.runner(result.target.url, progress, chain=chain, schema=result.target.schema)
    try:
        # Where it stands, read on the run's own session: a target never takes a second one.
        async with runner.session() as conn:
            if options.direction == "up" and result.target.schema:
                await _create_schema(conn, result.target.schema)
            standing = await _standing(runner, conn)
            result.before = standing.current
            if not _below(options, standing):
                await runner.run(options.direction, _own_target(options, standing))
            result.after = (await _standing(runner, conn)).current
        result.state = "done"
    except Exception as exc:  # noqa: BLE001 - pgmig's, asyncpg's, the network's, a revision's: this target's failure
        result.state, result.error = "failed", _error_text(exc, project)
        if result.before is not None:
            result.after = await _stands_at(runner)
    result.seconds = time.monotonic() - started
    tell(result.state, result, None)


def _own_target(options: FleetOptions, standing: Status) -> Optional[str]:
    """The revision this target runs to: a relative target resolved from where it stands
    (`relative_target`: `-2` is two revisions back on each target), else `options.target`."""
    if options.relative:
        return relative_target(standing, options.direction, options.target or "")
    return options.target


def _below(options: FleetOptions, standing: Status) -> bool:
    """Whether a down has nothing to roll back on this target: it stands at base, or a down to a
    revision stops at one it has not reached (it stands at or below it), as `pgmig down` to the
    current revision does nothing."""
    if options.direction != "down":
        return False
    if not standing.applied:
        return True  # at base: `pgmig down` would refuse, a fleet's targets need not all have revisions
    if options.relative or options.target in (None, BASE):
        return False
    return not standing.chain.closure(options.target) <= set(standing.applied)


async def _create_schema(conn: Any, schema: str) -> None:
    """A schema target's schema, made if missing before its first revision (a new tenant); left by
    `fleet down base`, which removes what the revisions made (the schema holds the version table)."""
    from pgmig.db.quoting import quote_ident

    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")


async def _standing(runner: Runner, conn: Any) -> Status:
    return read_status(runner.chain, await runner.versions.applied(conn), strict=False)


async def _stands_at(runner: Runner) -> Optional[str]:
    """Where a failed target stands now (its revisions before the failing one are committed), read on
    a new session (the run's is closed); None when that cannot be read either."""
    try:
        async with runner.session() as conn:
            return (await _standing(runner, conn)).current
    except Exception:  # noqa: BLE001 - the failure itself is already the target's error
        return None


# -- status and check --------------------------------------------------------------------------


@dataclass
class TargetStatus:
    """One target's standing: `status` (None when it could not be read: `error` says why)."""

    target: Target
    status: Optional[Status] = None
    error: Optional[str] = None
    drift: Optional[List[str]] = None
    """What differs from what its applied revisions build (empty: none); None: not measured."""
    drift_note: Optional[str] = None
    """Why drift was not measured, when it was asked for."""

    @property
    def ok(self) -> bool:
        """At every head, nothing partly applied, no applied file edited, the version table consistent."""
        s = self.status
        return s is not None and not (s.pending or s.partial or s.edited or s.problems or self.drift)

    def to_json(self) -> Dict[str, Any]:
        s = self.status
        return {
            "target": self.target.label,
            "schema": self.target.schema,
            "current": list(s.heads) if s is not None else None,
            "pending": [r.id for r in s.pending] if s is not None else None,
            "partial": [p.revision_id for p in s.partial] if s is not None else [],
            "edited": [r.id for r in s.edited] if s is not None else [],
            "problems": list(s.problems) if s is not None else [],
            "drift": self.drift,
            "drift_note": self.drift_note,
            "ok": self.ok,
            "error": self.error,
        }


async def fleet_status(
    project: Project, concurrency: int = DEFAULT_CONCURRENCY, targets: Optional[List[Target]] = None
) -> List[TargetStatus]:
    """Every target's status (revision, pending, partly applied, edited files), read `concurrency`
    at a time per server, the revision files read once; an unreachable target has its error."""
    if concurrency < 1:
        raise UsageError("the concurrency must be at least 1")
    chain = project.chain()
    targets = await resolve_targets(project) if targets is None else targets
    pool = _Pool(concurrency)

    async def one(target: Target) -> TargetStatus:
        async with pool.slot(target):
            try:
                runner = project.runner(target.url, chain=chain, schema=target.schema)
                return TargetStatus(target, await runner.status())
            except Exception as exc:  # noqa: BLE001 - reported per target, the others go on
                return TargetStatus(target, error=_error_text(exc, project))

    return list(await asyncio.gather(*(one(t) for t in targets)))


async def measure_drift(project: Project, statuses: Sequence[TargetStatus], dev_url: Optional[str] = None) -> None:
    """Fill each readable target's `drift`: its objects against what its applied revisions build.

    One scratch database (on `dev_url`, else the project's scratch server) per distinct set of
    applied heads, in which the revisions are run once per schema the targets use (a schema
    target's in its own schema, as `fleet up` runs them there), then each target is compared in
    that schema. A revision that fails on the scratch database, or a target partly applied or
    unreadable, gets a `drift_note` instead. Targets are read one at a time.
    """
    from pgmig.db.connect import connection
    from pgmig.db.quoting import quote_ident
    from pgmig.db.scratch import scratch_database
    from pgmig.services.check import Checker, describe_differences

    groups: Dict[Any, List[TargetStatus]] = {}
    for item in statuses:
        if item.status is None:
            item.drift_note = "not measured (the target could not be read)"
        elif item.status.partial:
            item.drift_note = "not measured (a revision is partly applied: finish it first)"
        else:
            groups.setdefault(item.status.heads, []).append(item)
    if not groups:
        return
    chain = next(iter(groups.values()))[0].status.chain  # type: ignore[union-attr]
    server = project.scratch_server("fleet status's drift", dev_url)
    home = project.settings.schema_name
    for heads, members in groups.items():
        async with scratch_database(project.settings.embedded_data_dir, server) as url:
            built: Dict[str, Any] = {}
            for item in members:
                schema = item.target.schema or home
                if schema not in built:
                    try:
                        if schema != home:
                            async with connection(url) as conn:
                                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                        await project.runner(url, chain=chain, schema=schema).run("up", list(heads))
                        built[schema] = await Checker(project, url).state(schemas=_read_schemas(project, item.target))
                    except PgmigError as exc:
                        built[schema] = f"not measured (the revisions do not build on a scratch database: {exc})"
                expected = built[schema]
                if isinstance(expected, str):
                    item.drift_note = expected
                    continue
                try:
                    actual = await Checker(project, item.target.url).state(schemas=_read_schemas(project, item.target))
                except Exception as exc:  # noqa: BLE001 - reported per target
                    item.drift_note = f"not measured ({_error_text(exc, project)})"
                    continue
                item.drift = describe_differences(expected, actual)


def _read_schemas(project: Project, target: Target) -> Sequence[str]:
    """The schemas drift reads on `target`: its own, or the managed ones for a database target."""
    return (target.schema,) if target.schema else project.settings.schema_names


def json_report(statuses: Sequence[TargetStatus], chain_heads: Sequence[str]) -> Dict[str, Any]:
    """`fleet status --json`: {"version": JSON_VERSION, "heads": [...], "targets": [TargetStatus.to_json()]}."""
    return {"version": JSON_VERSION, "heads": list(chain_heads), "targets": [s.to_json() for s in statuses]}
