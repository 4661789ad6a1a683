"""`generate`: write the next revision file from the difference between the revisions and the models.

The revisions' schema is read from the configured database when it is at
head, else from a scratch database the revisions are replayed into, so
generating never needs production access and never repeats a pending
revision. Renames are tried before reading, on a scratch database only
(a RENAME takes a lock that the application's reads would wait on), NOT
NULL steps get the values given, enum labels that rows still hold must be
mapped, and a revision that deletes data needs consent.
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from pgmig.errors import DatabaseError, Hint, UsageError, WordHint, agree, plural
from pgmig.ops.base import Operation
from pgmig.plan.renames import Candidate, Renames
from pgmig.plan.safety import NotNullNeed
from pgmig.revisions.files import Chain
from pgmig.services.project import Project

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.plan.diff import Change, Plan
    from pgmig.schema.catalog import ColumnDependent


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate, parsed (the CLI turns `--rename a=b` and the like into these).

    - `renames`: tables, columns and enum labels the models call by a new name.
    - `enum_maps`: `{enum: {removed_label: label}}`, where rows of a removed label move.
    - `defaults`: `{(table, column): SQL}`, the value existing rows get when a column becomes NOT NULL.
    - `allow_destructive`: write a revision that deletes data without asking.
    - `concurrently`: build and drop indexes of existing tables CONCURRENTLY (a non-transactional revision).
    - `empty`: write a blank revision (for data migrations) without diffing.
    - `verify`: prove the revision on a scratch database before writing it (see pgmig.services.proof);
      False writes it unproven (`--no-verify`).
    """

    message: str
    empty: bool = False
    allow_destructive: bool = False
    renames: Renames = field(default_factory=Renames)
    enum_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    defaults: Mapping[Tuple[str, str], str] = field(default_factory=dict)
    concurrently: bool = False
    verify: bool = True


class Questioner:
    """What `generate` may ask a person: renames, values for NOT NULL columns, consent to lose data.

    This base answers as a non-interactive run must: no rename, no value, no
    consent. The CLI asks at a terminal; tests and scripts override what they answer.
    """

    def ask_rename(self, candidate: Candidate) -> bool:
        """`candidate.question()` reads e.g. "Was column article.title renamed to article.headline?"."""
        return False

    def ask_default(self, need: NotNullNeed, problem: Optional[str] = None) -> Optional[str]:
        """An SQL expression for the existing rows of `need.name`, or None to leave a TODO; `problem`:
        the server's error for the previous answer, which is asked again (see `_ask_value`)."""
        return None

    def confirm_destructive(self, changes: List[str]) -> bool:
        """Consent to write a revision that makes these `changes` (in words), which delete data.

        Each reads e.g. `change column price of item: 1 of 3 rows change under
        numeric(10,2) -> integer of public.item.price (e.g. '19.99' becomes '20')`
        when the configured database holds the rows (see `Operation.preflight`).
        """
        return False


ALLOW_DESTRUCTIVE = Hint("review the models, then rerun", "allow_destructive")


class DestructiveChangeError(UsageError):
    """Generating would write a revision that deletes data, and nobody agreed to it.

    `changes` are the destructive changes in words (`drop column bio of author`);
    `renames`: how to say that a drop and a create that look like a rename are one
    (`Candidate.hint`), named before consent to the loss, which a user following
    the first hint would otherwise give and lose the data.
    """

    def __init__(self, changes: Sequence[str], renames: Sequence[Hint] = ()) -> None:
        super().__init__(f"the revision would delete data ({'; '.join(changes)})", hint=ALLOW_DESTRUCTIVE)
        self.changes = list(changes)
        self.renames = list(renames)

    def describe(self, word: WordHint = str) -> str:
        if not self.renames:
            return super().describe(word)
        message = Exception.__str__(self)
        renamed = "; ".join(word(hint) for hint in self.renames)
        return f"{message}; {renamed}; if nothing was renamed and the data may go, {word(ALLOW_DESTRUCTIVE)}"


class UnmappedLabelsError(UsageError):
    """An enum loses labels that rows still hold, and no mapping says where those rows go.

    `rows` is `{label: number of rows holding it}`.
    """

    def __init__(self, type_name: str, rows: Mapping[str, int]) -> None:
        counts = ", ".join(f"{plural(n, 'row')} {agree(n, 'holds', 'hold')} {label!r}" for label, n in rows.items())
        super().__init__(
            f"enum {type_name} loses labels that rows still use ({counts})",
            hint=Hint("move them", "enum_maps", tuple(f"{type_name}.{label}=OTHER" for label in rows)),
        )
        self.type_name = type_name
        self.rows = dict(rows)


class UnmodeledDependentsError(UsageError):
    """The revision would drop or retype a column, or drop or replace a type, that objects no
    installed plugin models depend on.

    Postgres would refuse the DROP COLUMN, ALTER COLUMN TYPE or DROP TYPE half-way
    through the revision; `dependents` are those objects (from pg_depend).
    """

    def __init__(self, dependents: Sequence["ColumnDependent"]) -> None:
        from pgmig.plan.rebuilds import described, ways_on

        named = "; ".join(f"{described(d)} depends on {d.depends_on} ({ways_on(d)})" for d in dependents)
        super().__init__(
            f"the revision would drop or replace columns or types that objects pgmig does not model use: {named}"
        )
        self.dependents = list(dependents)


def default_hint(needs: Sequence[NotNullNeed]) -> Hint:
    """How to give the existing rows of these columns a value."""
    return Hint("give a value", "defaults", tuple(f"{need.name}=EXPR" for need in needs))


@dataclass(frozen=True)
class Summary:
    """What a written revision does, for its author: `plan`, its changes (each with its hazards; the
    renames not among them), and `renamed`, how many tables, columns and enum labels it renames."""

    plan: "Plan"
    renamed: int


async def generate(
    project: Project,
    options: GenerateOptions,
    questioner: Optional[Questioner] = None,
    summary: Optional[Callable[[Summary], None]] = None,
) -> Optional[Path]:
    """Write the next revision file and return its path; None when the models need no change.

    `summary` is given what the revision does once it is written (not for an `empty` one).

    `questioner` answers what a person would be asked at a terminal; without
    one, only the options decide and anything unresolved is refused or left
    as a TODO that stops the revision. Raises DestructiveChangeError and
    UnmappedLabelsError (usage, with hints), ModelsError, DatabaseError,
    RevisionError; ProofError (a RevisionError) when the revision fails its
    proof, in which case nothing is written.
    """
    from datetime import datetime, timezone

    from pgmig.revisions.files import new_revision_id, slugify
    from pgmig.revisions.writer import refuse_invalid_text, render_revision
    from pgmig.services.proof import load_text

    refuse_invalid_text(options.message, [])  # before any work: the message is the user's to fix
    questioner = questioner or Questioner()
    chain = project.chain()
    parent = chain.head  # several heads: RevisionError, as the revision needs one parent (pgmig merge)
    created = datetime.now(timezone.utc)
    revision_id = new_revision_id(created)
    file_name = f"{revision_id}_{slugify(options.message)}.py"

    def render(work: _Work, preamble: Sequence[str]) -> str:
        with project.timings.phase("render"):
            transactional = all(op.transactional for op in [*work.up, *work.down])
            return render_revision(
                revision_id,
                parent,
                options.message,
                work.up,
                work.down,
                transactional=transactional,
                up_preamble=preamble,
            )

    said: Optional[Summary] = None
    if options.empty:
        text = render(_Work([], [], []), [])
    else:
        async with _history_database(project, chain) as (conn, real, url):
            work = await _changes(project, chain, conn, url, real, options, questioner)
            if work is None:
                return None
            text, said = render(work, [*work.notes, *work.preamble]), work.summary
            if options.verify:
                # A TODO stops `up` until a person edits it: what can be proven is the rest, as written.
                proven = text if not work.preamble else render(work, work.notes)
                await _prove(project, chain, file_name, proven, None if real else url)
                if work.preamble:
                    load_text(file_name, text)  # the file as written, TODO included, must load too
                    project.notice(
                        "the revision was proven without its TODO, which stops it until you edit it; "
                        "run pgmig check after editing"
                    )
    # Complete and loadable, or not there at all (a broken file would stop every later command).
    path = project.write_revision(file_name, text)
    if summary is not None and said is not None:
        summary(said)
    return path


async def _prove(project: Project, chain: Chain, file_name: str, text: str, scratch_url: Optional[str]) -> None:
    """Prove `text` on `scratch_url` (the history's scratch database, at head), or, when the configured
    database is at head (None), on a scratch database built from its objects (see pgmig.services.proof)."""
    from pgmig.services.proof import Source, prove, scratch_from

    if scratch_url is not None:
        with project.timings.phase("proof"):
            await prove(project, chain, file_name, text, scratch_url)
        return
    # The revision was computed against the database's objects: they are its exact starting point
    # (even where the history does not build from empty, or the database drifted from it).
    source = Source(project.database_url, chain.head)
    async with scratch_from(project, chain, source, purpose="generate's proof") as url:
        with project.timings.phase("proof"):
            await prove(project, chain, file_name, text, url)


@dataclass
class _Work:
    """A revision's steps both ways; `preamble`: the TODO lines that stop its `up` until a person
    edits it (left out of the proof); `notes`: comments opening `up` (kept in the proof)."""

    up: List[Operation]
    down: List[Operation]
    preamble: List[str]
    notes: List[str] = field(default_factory=list)
    summary: Optional[Summary] = None


async def _changes(
    project: Project,
    chain: Chain,
    conn: Any,
    url: str,
    real: bool,
    options: GenerateOptions,
    questioner: Questioner,
) -> Optional[_Work]:
    """The revision's operations both ways and the TODO that opens `up`; None when nothing changes."""
    from pgmig.plan.renames import rename_candidates, without_conflicts
    from pgmig.plan.safety import add_remaps, apply_defaults, not_null_needs, time_zone_notes, unmet_not_null

    schema = project.settings.schema_name
    given = options.renames
    # Answers at the prompt are added to a copy: the options stay as given.
    renames = Renames(list(given.tables), list(given.columns), list(given.enum_values))
    maps: Dict[str, Dict[str, str]] = {enum: dict(mapping) for enum, mapping in options.enum_maps.items()}
    answers = dict(options.defaults)

    project.models  # noqa: B018 - loaded (and timed) before the diff
    async with AsyncExitStack() as stack:
        trials = _Trials(project, chain, conn, url, real, stack)
        up, down = await trials.diff(renames)
        asked = False
        declined: List[Candidate] = []
        for candidate in without_conflicts(rename_candidates(up), renames):
            if questioner.ask_rename(candidate):
                candidate.add_to(renames)
                asked = True
            else:
                declined.append(candidate)
        if asked:
            up, down = await trials.diff(renames)
    for message in up.warnings:  # what the models declare and the revision leaves out (pgmig.schema.unmodeled)
        project.notice(f"warning: {message}")
    if up.is_empty and not renames:
        return None
    if up.unmodeled:
        raise UnmodeledDependentsError(up.unmodeled)

    _refuse_unknown_labels(up.operations, maps, renames)
    body = add_remaps(up.operations, maps)
    up_ops = renames.operations(schema) + body
    down_ops = down.operations + renames.inverse_operations(schema)

    needs = not_null_needs(up_ops)
    located = _locator(project, renames)
    for need in needs:
        key = (need.table, need.column)
        if key in answers:
            await _refuse_value(conn, up_ops, need, answers[key], located, project.word_hint)
            continue
        answer = await _ask_value(conn, up_ops, need, questioner, located)
        if answer:
            answers[key] = answer
    up_ops = apply_defaults(up_ops, answers)
    unresolved = [need for need in needs if (need.table, need.column) not in answers]
    notes: List[str] = []
    if real and unresolved:
        # The rows are there to read: a step they do not trip over is written as it is, under a
        # comment, as `up` asks the rows again before it runs (and the step fails atomically).
        clear = [need for need in unresolved if not await unmet_not_null(conn, [need], located)]
        notes = [line for need in clear for line in _clear_note(project, need)]
        unresolved = [need for need in unresolved if need not in clear]
    preamble = await _todo(project, conn, real, renames, unresolved) if unresolved else []

    if real:
        await _refuse_unmapped_labels(conn, up_ops, maps, renames, schema)

    if options.concurrently:
        up_ops, down_ops = _concurrently(up_ops), _concurrently(down_ops)

    destructive = [change for change in up.changes if "deletes_data" in change.hazards]
    for note in time_zone_notes(up_ops):
        project.notice(f"note: {note}")
    if destructive and not options.allow_destructive:
        # What the rows say is worth a query only when someone is asked, or refused.
        said = await _rows_said(conn, renames, schema, body, destructive) if real else {}
        described = [describe_change(change) + said.get(id(change), "") for change in destructive]
        if not questioner.confirm_destructive(described):
            raise DestructiveChangeError(described, [candidate.hint() for candidate in declined])
    renamed = len(renames.tables) + len(renames.columns) + len(renames.enum_values)
    return _Work(up_ops, down_ops, preamble, notes, Summary(up, renamed))


async def _rows_said(
    conn: Any, renames: Renames, schema: str, ops: Sequence[Operation], changes: Sequence["Change"]
) -> Dict[int, str]:
    """For each of `changes` (by id) whose steps would change or refuse rows the database holds:
    `: 2 of 4 rows change under ...` (see `Operation.preflight`).

    Steps on a table or enum the renames change say nothing: their rows are
    under other names until the revision runs (renaming them here would lock
    the configured database); `up` checks them again before it runs.
    """
    from pgmig.ops.base import RowProblem

    found: Dict[int, List[RowProblem]] = {}
    for index, op in enumerate(ops):
        if _names_renamed(op, renames, schema):
            continue
        problems = await op.preflight(conn, ops[:index])
        if problems:
            found[id(op)] = problems
    said: Dict[int, str] = {}
    for change in changes:
        problems = [problem for op in change.operations for problem in found.get(id(op), [])]
        if problems:
            said[id(change)] = ": " + "; ".join(problem.message for problem in problems)
    return said


def _locator(project: Project, renames: Renames) -> Callable[[NotNullNeed], NotNullNeed]:
    """Where the database holds a need's rows now: under the names before the revision's renames."""
    schema = project.settings.schema_name

    def located(need: NotNullNeed) -> NotNullNeed:
        if need.schema != schema:
            return need
        table, column = renames.column_before(need.table, need.column)
        return replace(need, table=table, column=column)

    return located


class RefusedValueError(UsageError):
    """A value given for the existing rows of a column becoming NOT NULL that the server refuses as
    that column's value (checked in a rolled-back transaction), so the revision would fail at `up`."""


async def _refuse_value(
    conn: Any,
    ops: Sequence[Operation],
    need: NotNullNeed,
    expression: str,
    located: Callable[[NotNullNeed], NotNullNeed],
    word: WordHint,
) -> None:
    """RefusedValueError when the server refuses `expression` (given up front) for `need`'s rows."""
    from pgmig.plan.safety import refused_value

    problem = await refused_value(conn, ops, need, expression, located(need))
    if problem is not None:
        raise RefusedValueError(
            f"the value given for the existing rows of {need.name} ({expression}) is refused by the server: {problem}",
            hint=Hint(
                "give a SQL value it takes (text in quotes, 'UTC'; a number, true or now() as is)",
                "defaults",
                (f"{need.name}=EXPR",),
            ),
        )


async def _ask_value(
    conn: Any,
    ops: Sequence[Operation],
    need: NotNullNeed,
    questioner: Questioner,
    located: Callable[[NotNullNeed], NotNullNeed],
) -> Optional[str]:
    """The questioner's value for `need`'s rows, asked again with the server's error until the server
    takes it (or the answer is empty: a TODO); the same refused answer twice is a RefusedValueError."""
    from pgmig.plan.safety import refused_value

    problem: Optional[str] = None
    previous: Optional[str] = None
    while True:
        answer = questioner.ask_default(need, problem)
        if not answer:
            return None
        if answer == previous:  # a questioner that cannot change its answer: said once, not asked forever
            raise RefusedValueError(
                f"the value for the existing rows of {need.name} ({answer}) is refused by the server: {problem}"
            )
        problem = await refused_value(conn, ops, need, answer, located(need))
        if problem is None:
            return answer
        previous = answer


def _clear_note(project: Project, need: NotNullNeed) -> List[str]:
    """The comment over a NOT NULL step that the rows of the database generated against do not trip over."""
    from pgmig.revisions.writer import comment_text

    found = "had no rows" if need.adds_column else f"had no NULL in {need.column}"
    hint = project.word_hint(default_hint([need]))
    return [
        f"# {comment_text(need.describe())}: table {need.table} {found} when this revision was generated.",
        "# Should rows trip over it when it runs, pgmig up stops before anything runs, naming them",
        f"# (the step alone would fail without changing anything); fill them here first, or regenerate: {hint}.",
    ]


async def _todo(project: Project, conn: Any, real: bool, renames: Renames, unresolved: List[NotNullNeed]) -> List[str]:
    """The lines that stop `up` before it fails on rows: what the rows trip over, and the hint."""
    from pgmig.plan.safety import todo_lines, unmet_not_null

    problems = [need.describe() for need in unresolved]
    if real:
        problems = await unmet_not_null(conn, unresolved, _locator(project, renames)) or problems
    hint = project.word_hint(default_hint(unresolved))
    project.notice(f"warning: the revision stops with a TODO: {'; '.join(problems)} ({hint})")
    return todo_lines(problems, hint)


async def _refuse_unmapped_labels(
    conn: Any, ops: Sequence[Operation], maps: Mapping[str, Mapping[str, str]], renames: Renames, schema: str
) -> None:
    """UnmappedLabelsError when a swap removes labels that rows hold and `maps` does not move them.

    The rows are read under the names the database gives them now (the
    renames of `schema` undone on the swap's columns and labels).
    """
    from pgmig.ops.enum import SwapTypeValues
    from pgmig.plan.safety import removed_label_rows

    for op in ops:
        if not isinstance(op, SwapTypeValues):
            continue
        current = op
        if op.schema == schema and renames:
            columns = tuple(
                (s, *renames.column_before(t, c), is_array, default) if s == schema else (s, t, c, is_array, default)
                for s, t, c, is_array, default in op.columns
            )
            labels = {renames.label_before(op.type_name, label): label for label in op.removed_values}
            current = replace(op, columns=columns, removed_values=tuple(labels))
            held = {labels[label]: n for label, n in (await removed_label_rows(conn, current)).items()}
        else:
            held = await removed_label_rows(conn, current)
        unmapped = {label: n for label, n in held.items() if label not in maps.get(op.type_name, {})}
        if unmapped:
            raise UnmappedLabelsError(op.type_name, unmapped)


class UnknownLabelMapError(UsageError):
    """A mapping of enum labels (`enum_maps`) that the revision cannot carry out: the enum loses no
    label in it, or the mapping moves rows off a label it keeps, or onto one the models do not give
    the enum (the remap would fail at `up`, on the rows, Postgres's 22P02)."""


def _refuse_unknown_labels(ops: Sequence[Operation], maps: Mapping[str, Mapping[str, str]], renames: Renames) -> None:
    """UnknownLabelMapError for a mapping in `maps` ({enum: {removed label: label}}) that names an enum
    none of `ops` swaps, a label the swap does not remove, or a target the models do not give it."""
    from pgmig.ops.enum import SwapTypeValues

    swaps = {op.type_name: op for op in ops if isinstance(op, SwapTypeValues)}
    for enum, mapping in maps.items():
        swap = swaps.get(enum)
        if swap is None:
            raise UnknownLabelMapError(
                f"a label mapping names enum {enum}, which loses no label in this revision (nothing to move)",
                hint=Hint("leave it out, or name an enum the models remove labels of, then rerun", "enum_maps"),
            )
        removed = {renames.label_before(enum, label) for label in swap.removed_values} | set(swap.removed_values)
        labels = ", ".join(repr(label) for label in swap.values)
        for old, new in mapping.items():
            if old not in removed:
                raise UnknownLabelMapError(
                    f"a label mapping moves rows off {old!r} of enum {enum}, which the models keep or never had "
                    f"(removed: {', '.join(repr(label) for label in swap.removed_values)})",
                    hint=Hint("map a removed label", "enum_maps", tuple(f"{enum}.{r}=LABEL" for r in removed)),
                )
            if new not in swap.values:
                raise UnknownLabelMapError(
                    f"a label mapping moves rows of enum {enum} to {new!r}, which the models do not give it "
                    f"(its labels: {labels})",
                    hint=Hint("name one of its labels", "enum_maps", (f"{enum}.{old}={swap.values[0]}",)),
                )


def _concurrently(ops: List[Operation]) -> List[Operation]:
    """Index builds and drops on existing tables CONCURRENTLY, NOT NULL through a validated check.

    The revision then runs outside a transaction (`transactional = False`), so
    each statement commits on its own and the lighter locks really are light.
    """
    from pgmig.ops.column import AddNotNull
    from pgmig.ops.index import concurrent

    return [replace(op, via_check=True) if isinstance(op, AddNotNull) else op for op in concurrent(ops)]


def _names_renamed(op: Operation, renames: Renames, schema: str) -> bool:
    """Whether `op` names a table (itself or in its `columns`) or an enum that `renames` change."""
    if not renames:
        return False
    tables = {new for _old, new in renames.tables} | {table for table, _old, _new in renames.columns}
    enums = {enum for enum, _old, _new in renames.enum_values}
    if getattr(op, "schema", "public") == schema:
        if getattr(op, "table_name", None) in tables or getattr(op, "type_name", None) in enums:
            return True
    listed = getattr(op, "columns", None)
    return isinstance(listed, tuple) and any(
        isinstance(item, tuple) and item[0] == schema and item[1] in tables for item in listed
    )


class _Trials:
    """The diff, on a database as the renames would leave it.

    Renames are tried on a scratch database only: the history's replay, or
    (when the configured database is at head) a copy of its objects made the
    first time a rename is tried. On the configured database a trial RENAME
    takes an ACCESS EXCLUSIVE lock, which queues behind any open query of
    the table and makes every later read of it wait in turn, even in a
    transaction that is rolled back (Explicit Locking, table-level locks).
    """

    def __init__(self, project: Project, chain: Chain, conn: Any, url: str, real: bool, stack: AsyncExitStack) -> None:
        self.project = project
        self.chain = chain
        self.conn = conn
        self.url = url
        self.real = real
        self.stack = stack
        self.copy: "Optional[tuple[Any, str]]" = None

    async def diff(self, renames: Renames) -> "tuple[Plan, Plan]":
        """Both plans (database to models, models to database) with `renames` applied first."""
        if not renames:
            return await self.project.diff_both_ways(self.conn, self.url)
        conn, url = await self._scratch()
        async with _renamed(conn, renames, self.project.settings.schema_name):
            return await self.project.diff_both_ways(conn, url)

    async def _scratch(self) -> "tuple[Any, str]":
        if not self.real:
            return self.conn, self.url
        if self.copy is None:
            from pgmig.db.connect import connect
            from pgmig.services.proof import Source, scratch_from

            source = Source(self.project.database_url, self.chain.head)
            copy = scratch_from(self.project, self.chain, source, purpose="generate's trial renames")
            url = await self.stack.enter_async_context(copy)
            conn = await connect(url)
            self.stack.push_async_callback(conn.close)
            self.copy = (conn, url)
        return self.copy


@asynccontextmanager
async def _renamed(conn: Any, renames: Renames, schema: str) -> AsyncIterator[None]:
    """Inside: the scratch database behind `conn` as if the renames had run (a transaction that is
    always rolled back). Never the configured database: see `_Trials`."""
    from pgmig.db.connect import rolled_back
    from pgmig.ops.actor import DatabaseActions

    async with rolled_back(conn):
        actor = DatabaseActions(conn)
        for op in renames.operations(schema) if renames else []:
            await actor.run(op)
        yield


@asynccontextmanager
async def _history_database(project: Project, chain: Chain) -> AsyncIterator["tuple[Any, bool, str]"]:
    """A connection to the schema the revisions produce, whether it holds real data, and its URL.

    The configured database is used when it is at head; otherwise the
    revisions are replayed into a scratch database (from the configured
    database's objects where the history does not build from empty).
    """
    from pgmig.db.connect import connect
    from pgmig.revisions.runner import read_status
    from pgmig.services.proof import Source, scratch_at

    conn = None
    source = None
    try:
        conn = await connect(project.database_url)
        status = read_status(chain, await project.versions.applied(conn))
        if status.heads != tuple(chain.heads):
            project.notice(
                f"the database is at {status.current}, not at head {chain.head}: "
                "comparing with a scratch database built from the revisions"
            )
            source = Source(project.database_url, status.heads)
            await conn.close()
            conn = None
    except DatabaseError as exc:
        if conn is not None:
            await conn.close()
            conn = None
        if not project.settings.database_url:
            raise
        project.notice(f"{exc}; comparing with a scratch database built from the revisions instead")
    if conn is not None:
        try:
            yield conn, True, project.database_url
        finally:
            await conn.close()
        return
    async with scratch_at(project, chain, chain.head, source, purpose="generate's replay") as url:
        scratch = await connect(url)
        try:
            yield scratch, False, url
        finally:
            await scratch.close()


VERBS = {"create": "create", "migrate": "change", "destroy": "drop"}


def describe_change(change: "Change") -> str:
    """`drop column bio of author`: a change in words, for prompts and errors."""
    text = f"{VERBS[change.action]} {change.obj.label}"
    if change.obj.group != change.key:
        text += f" of {change.obj.group[-1]}"
    return text
