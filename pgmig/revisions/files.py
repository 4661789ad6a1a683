"""Revision files: loading them and checking that they form one graph.

A revision file is plain Python defining `MigrationRevision`, a subclass of
`MigrationRevisionBase` with `up_revision`, `down_revision` and async
`up`/`down`. Files are loaded by path (the migrations folder need not be a
package), and the graph is checked as a whole before anything runs, so a
broken history fails with the names of the files at fault and applies nothing.

Revisions form a directed acyclic graph, as in Alembic: `down_revision` is
None (a first revision), one revision id, or a tuple of ids (a merge
revision, written by `pgmig merge`). Two branches that each generated a
revision from one parent give two heads until a merge revision joins them.
"""

from __future__ import annotations

import ast
import hashlib
import heapq
import importlib.util
import json
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
)

from pgmig.errors import RevisionError

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.revisions.migrator import Migrator

BASE = "base"
HEAD = "head"
HEADS = "heads"

DownRevision = Union[None, str, Tuple[str, ...]]
"""A revision's `down_revision`: None (the first), one id, or a tuple of ids (a merge revision)."""

Target = Union[None, str, Sequence[str]]
"""Where a run, a stamp or a scratch database stands: `base` / None / () for nothing applied, `head` (the one
head), `heads` (all of them), a revision id or unique prefix, or several of those (both parents of a merge)."""


class MigrationRevisionBase:
    """Base class of every revision file's `MigrationRevision`.

    A revision file subclasses it with `up_revision`, `down_revision` and

        async def up(self, migrator: Migrator) -> None: ...
        async def down(self, migrator: Migrator) -> None: ...

    which type-check under `mypy --strict` as `generate` writes them.
    """

    up_revision: ClassVar[str]
    down_revision: ClassVar[DownRevision] = None
    """None for a first revision; a tuple of ids for a merge revision (`pgmig merge`)."""
    transactional: ClassVar[bool] = True
    """False runs the revision outside a transaction (CREATE INDEX CONCURRENTLY)."""
    commit_in_parts: ClassVar[bool] = False
    """True runs the revision's steps in several transactions, each within a budget of the
    server's lock table (a quarter of it), recording its progress with each part, so that a
    run stopped between parts resumes after the last committed step (`pgmig.revisions.parts`).
    For revisions that create or drop thousands of objects; `generate` writes it when a
    default server could not hold the revision's locks in one transaction. Its steps must
    all go through `migrator.actor` (data steps as `migrator.actor.execute`)."""

    async def up(self, migrator: Migrator) -> None:
        """Carry the database from `down_revision` to this revision."""
        raise NotImplementedError

    async def down(self, migrator: Migrator) -> None:
        """Undo `up`."""
        raise NotImplementedError


def parent_ids(down_revision: DownRevision) -> Tuple[str, ...]:
    """The ids a revision follows: () for a first revision, one for most, several for a merge."""
    if down_revision is None:
        return ()
    if isinstance(down_revision, str):
        return (down_revision,)
    return tuple(down_revision)


@dataclass
class Revision:
    """One loaded revision file.

    `checksum` is the file's meaning (`meaning_checksum`: what the version
    table records); `byte_checksum` is the SHA-256 of its bytes, the checksum
    earlier versions of pgmig recorded, which a version-table row may still hold.
    """

    id: str
    down_revision: DownRevision
    path: Path
    checksum: str
    revision_class: Type[MigrationRevisionBase]
    doc: str = ""
    byte_checksum: str = ""

    def matches(self, recorded: str) -> bool:
        """Whether `recorded` (a version-table row's checksum) is this file's: its meaning checksum,
        or, for a row written before checksums covered meaning, the hash of its bytes."""
        return recorded == self.checksum or (is_legacy_checksum(recorded) and recorded == self.byte_checksum)

    @property
    def transactional(self) -> bool:
        return bool(getattr(self.revision_class, "transactional", True))

    @property
    def commit_in_parts(self) -> bool:
        return bool(getattr(self.revision_class, "commit_in_parts", False))

    @property
    def message(self) -> str:
        doc = (self.doc or self.revision_class.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.path.stem

    def instance(self) -> MigrationRevisionBase:
        return self.revision_class()

    @property
    def parents(self) -> Tuple[str, ...]:
        """The revisions this one follows (see `parent_ids`)."""
        return parent_ids(self.down_revision)

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


@dataclass
class Chain:
    """The revision graph: `revisions` in a topological order (each after every revision it follows;
    revisions free to go in either order go by file name, so the order is the same on every machine).

    Build it with `build_chain`, which checks the graph; a list that is not in such an order
    is not a valid `Chain`.
    """

    revisions: List[Revision]

    def __post_init__(self) -> None:
        self.by_id: Dict[str, Revision] = {r.id: r for r in self.revisions}
        self.children: Dict[str, List[str]] = {r.id: [] for r in self.revisions}
        for revision in self.revisions:
            for parent in revision.parents:
                self.children[parent].append(revision.id)

    @property
    def ids(self) -> List[str]:
        return [r.id for r in self.revisions]

    @property
    def heads(self) -> List[str]:
        """The revisions nothing follows, in graph order; several after two branches each generated one."""
        return [r.id for r in self.revisions if not self.children[r.id]]

    @property
    def head(self) -> Optional[str]:
        """The one head (None without revisions). Raises RevisionError when there are several:
        whatever needs a single parent (generate) must wait for `pgmig merge`."""
        heads = self.heads
        if len(heads) > 1:
            raise RevisionError(f"the revisions have {len(heads)} heads ({self.described(heads)}): {MERGE_ADVICE}")
        return heads[0] if heads else None

    def described(self, ids: Iterable[str]) -> str:
        """`id (file.py), ...` for messages."""
        return ", ".join(f"{rid} ({self.by_id[rid].path.name})" for rid in ids)

    def resolve(self, name: str) -> str:
        """The id `name` stands for: an id, a unique id prefix, or `head` (when there is one head).

        Raises RevisionError for an unknown or ambiguous name, and for `head` with several heads.
        """
        if name == HEAD:
            if len(self.heads) > 1:
                raise RevisionError(
                    f"'head' is ambiguous: the revisions have {len(self.heads)} heads ({self.described(self.heads)}); "
                    f"'heads' names all of them, or {MERGE_ADVICE}"
                )
            head = self.head
            if head is None:
                raise RevisionError("there are no revisions yet: 'head' names nothing (pgmig generate writes one)")
            return head
        if name in self.by_id:
            return name
        matches = [rid for rid in self.by_id if rid.startswith(name)]
        if len(matches) != 1:
            what = "matches several revisions" if matches else "is not a known revision"
            raise RevisionError(f"{name!r} {what} (see pgmig history)")
        return matches[0]

    def ancestors(self, revision_id: str) -> Set[str]:
        """`revision_id` and every revision it follows, directly or not."""
        return self._reach(revision_id, lambda rid: self.by_id[rid].parents)

    def descendants(self, revision_id: str) -> Set[str]:
        """`revision_id` and every revision that follows it, directly or not."""
        return self._reach(revision_id, lambda rid: self.children[rid])

    @staticmethod
    def _reach(start: str, step: Callable[[str], Iterable[str]]) -> Set[str]:
        """`start` and every id reached from it through `step` (parents, or children)."""
        found: Set[str] = set()
        stack = [start]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(step(current))
        return found

    def closure(self, target: Target) -> Set[str]:
        """The revisions applied when a database stands at `target` (see `Target`): the named revisions
        and all they follow. Raises RevisionError for a name `resolve` refuses."""
        if target is None or target == BASE:
            return set()
        if target == HEADS:
            return set(self.by_id)
        names = [target] if isinstance(target, str) else list(target)
        found: Set[str] = set()
        for name in names:
            if name == HEADS:
                found |= set(self.by_id)
            elif name != BASE:
                found |= self.ancestors(self.resolve(name))
        return found

    def ordered(self, ids: Iterable[str]) -> List[Revision]:
        """The revisions `ids` names, in graph order (the order `up` applies them)."""
        wanted = set(ids)
        return [r for r in self.revisions if r.id in wanted]

    def tips(self, ids: Iterable[str]) -> Tuple[str, ...]:
        """The revisions of `ids` (a set closed under ancestry) that no other of them follows, in graph
        order: where a database with those revisions applied stands (() at base)."""
        members = set(ids)
        return tuple(r.id for r in self.ordered(members) if not any(c in members for c in self.children[r.id]))


MERGE_ADVICE = "run pgmig merge -m MESSAGE to join them into one (pgmig heads lists them)"


CHECKSUM_PREFIX = "ast1:"
"""Marks a checksum over meaning (`meaning_checksum`); a bare hex digest is the older hash of the bytes."""


def is_legacy_checksum(checksum: str) -> bool:
    """Whether a recorded checksum is the hash of a file's bytes (earlier versions of pgmig), not of its meaning."""
    return not checksum.startswith(CHECKSUM_PREFIX)


def meaning_checksum(source: bytes, filename: str = "<revision>") -> str:
    """A checksum of what a revision file means, not how it is laid out: `CHECKSUM_PREFIX` + the SHA-256
    of its syntax tree (`canonical_tree`) with comments, docstrings and positions left out.

    So `ruff format`, black, isort, another quote style, parentheses, trailing commas,
    module-level imports split, joined or reordered, or an edited comment or docstring keep
    the checksum; a different call, argument
    or value changes it. The tree is serialised by pgmig, not by `ast.dump`
    (whose output changes between Python versions), so one file keeps one checksum
    across Python 3.8 to 3.14. Raises SyntaxError for a file that does not parse.
    """
    tree = ast.parse(source, filename)
    # Module-level imports as a set of names: isort, ruff's `I` rules (force-single-line, sorted,
    # grouped) and hand edits split, join and reorder them without changing what the file does.
    imports = sorted(
        {
            (
                getattr(statement, "module", None) or "",
                getattr(statement, "level", 0) or 0,
                alias.name,
                alias.asname or "",
            )
            for statement in tree.body
            if isinstance(statement, (ast.Import, ast.ImportFrom))
            for alias in statement.names
        }
    )
    body = [statement for statement in tree.body if not isinstance(statement, (ast.Import, ast.ImportFrom))]
    meaning = ["Module", ["imports", [list(name) for name in imports]], ["body", canonical_tree(body)]]
    text = json.dumps(meaning, separators=(",", ":"), ensure_ascii=True)
    return CHECKSUM_PREFIX + hashlib.sha256(text.encode("ascii")).hexdigest()


# Fields that are comments or spellings, not meaning: `# type:` comments, the `u` of u"...".
_IGNORED_FIELDS = frozenset({"type_comment", "kind"})


def canonical_tree(node: Any) -> Any:
    """`node` (an `ast` tree) as nested lists of plain values, the same on every Python version.

    A node is `[ClassName, [field, value], ...]` over its `_fields`, leaving out
    fields that are empty or None (Python 3.12 added `type_params`, 3.13 more
    optional fields) and those in `_IGNORED_FIELDS`; a constant is
    `["Constant", type name, repr]`; a statement that is only a string (a
    docstring, module, class or function, or an attribute's) is left out. The
    subscript wrappers of Python 3.8 (`Index`, `ExtSlice`) read as 3.9+ parses them.
    """
    if isinstance(node, list):
        return [canonical_tree(item) for item in node if not _is_docstring(item)]
    if not isinstance(node, ast.AST):
        return node
    name = type(node).__name__
    if name == "Index":  # Python 3.8: a[1] is Subscript(slice=Index(value=1)); 3.9+: slice=1
        return canonical_tree(getattr(node, "value"))  # noqa: B009 - no such attribute in 3.9+'s stubs
    if name == "ExtSlice":  # Python 3.8: a[1:2, 3]; 3.9+ parses it as a Tuple of the dimensions
        return canonical_tree(ast.Tuple(elts=getattr(node, "dims"), ctx=ast.Load()))  # noqa: B009
    if isinstance(node, ast.Constant):
        return ["Constant", type(node.value).__name__, repr(node.value)]
    fields: List[Any] = [name]
    for field in node._fields:
        if field in _IGNORED_FIELDS:
            continue
        value = canonical_tree(getattr(node, field, None))
        if value is not None and value != []:
            fields.append([field, value])
    return fields


def _is_docstring(node: Any) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def foreign_exit(exc: BaseException) -> bool:
    """Whether `exc`, raised by a revision's own code, is that revision's failure although it is
    no `Exception`: SystemExit (`sys.exit(0)` included), KeyboardInterrupt, any other
    BaseException (GeneratorExit raised by the revision too); not asyncio's CancelledError (the
    task is being cancelled: by pgmig's own Ctrl-C handling under `asyncio.run`, or by a
    caller's timeout)."""
    import asyncio

    return not isinstance(exc, (Exception, asyncio.CancelledError))


def described_exit(exc: BaseException) -> str:
    """What a revision's SystemExit / KeyboardInterrupt / other BaseException did, in words."""
    if isinstance(exc, SystemExit):
        return (
            f"called sys.exit({exc.code!r}) (SystemExit), which a revision must not do: "
            "a revision fails by raising an exception"
        )
    if isinstance(exc, KeyboardInterrupt):
        return "was interrupted (KeyboardInterrupt)"
    return f"raised {exc.__class__.__name__}: {exc}"


def load_revision_file(path: Path) -> Revision:
    module_name = f"pgmig_revision_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RevisionError(f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise RevisionError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ModuleNotFoundError as exc:
        raise RevisionError(
            f"{path} imports {exc.name!r}, which is not installed (a plugin this revision uses?): "
            f"install the package that provides it"
        ) from None
    except Exception as exc:
        raise RevisionError(f"{path} failed to import: {exc.__class__.__name__}: {exc}") from None
    except BaseException as exc:
        if not foreign_exit(exc):
            raise
        raise RevisionError(f"{path} failed to import: it {described_exit(exc)}") from None
    finally:
        sys.modules.pop(module_name, None)
    cls = getattr(module, "MigrationRevision", None)
    if not (isinstance(cls, type) and issubclass(cls, MigrationRevisionBase)):
        raise RevisionError(f"{path} defines no MigrationRevision(MigrationRevisionBase) class")
    revision_id = getattr(cls, "up_revision", None)
    if not isinstance(revision_id, str) or not revision_id:
        raise RevisionError(f"{path}: MigrationRevision.up_revision must be a non-empty string")
    down = getattr(cls, "down_revision", None)
    if isinstance(down, list):
        down = tuple(down)
    well_formed = down is None or (isinstance(down, str) and down) or _merge_parents(down)
    if not well_formed:
        raise RevisionError(
            f"{path}: MigrationRevision.down_revision must be None, a revision id, or a tuple of two or more "
            f"different revision ids (a merge revision), not {down!r}"
        )
    if getattr(cls, "commit_in_parts", False) and not getattr(cls, "transactional", True):
        raise RevisionError(
            f"{path}: MigrationRevision sets both transactional = False and commit_in_parts = True: a revision "
            "outside a transaction commits each step already; remove commit_in_parts"
        )
    for method in ("up", "down"):
        if getattr(cls, method) is getattr(MigrationRevisionBase, method):
            raise RevisionError(f"{path}: MigrationRevision has no {method}() method")
    source = path.read_bytes()
    return Revision(
        revision_id,
        down,
        path,
        meaning_checksum(source, str(path)),
        cls,
        module.__doc__ or "",
        byte_checksum=hashlib.sha256(source).hexdigest(),
    )


def _merge_parents(down: object) -> bool:
    """Whether `down` is a merge revision's `down_revision`: two or more different non-empty ids."""
    if not isinstance(down, tuple) or len(down) < 2:
        return False
    return all(isinstance(rid, str) and rid for rid in down) and len(set(down)) == len(down)


def revision_files(folder: Path) -> List[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))


def load_chain(folder: Path) -> Chain:
    return build_chain([load_revision_file(path) for path in revision_files(folder)])


def build_chain(revisions: Sequence[Revision]) -> Chain:
    """The revision graph in topological order; every way a history can break is an error naming
    files: an id used twice, a `down_revision` no file defines, a cycle.

    Several heads (branches) and several first revisions are valid graphs: `pgmig heads` lists
    them and `pgmig merge` joins them. Revisions free to go in either order go by file name
    (then id), so that the order does not depend on the machine.
    """
    by_id: Dict[str, Revision] = {}
    for revision in revisions:
        if revision.id in by_id:
            raise RevisionError(
                f"revision id {revision.id!r} is used by both {by_id[revision.id].path.name} and {revision.path.name}"
            )
        by_id[revision.id] = revision
    waiting: Dict[str, int] = {}
    children: Dict[str, List[Revision]] = {rid: [] for rid in by_id}
    for revision in revisions:
        for parent in revision.parents:
            if parent not in by_id:
                raise RevisionError(
                    f"{revision.path.name}: down_revision {parent!r} matches no revision file "
                    "(a file missing from the migrations folder?)"
                )
            children[parent].append(revision)
        waiting[revision.id] = len(revision.parents)
    ready = [(r.path.name, r.id) for r in revisions if not r.parents]
    heapq.heapify(ready)
    ordered: List[Revision] = []
    while ready:
        _, rid = heapq.heappop(ready)
        ordered.append(by_id[rid])
        for child in children[rid]:
            waiting[child.id] -= 1
            if waiting[child.id] == 0:
                heapq.heappush(ready, (child.path.name, child.id))
    if len(ordered) != len(revisions):
        stray = sorted(r.path.name for r in revisions if waiting[r.id] > 0)
        raise RevisionError(
            f"revisions form a cycle (each follows another of them, directly or not): {', '.join(stray)}; "
            "fix their down_revision"
        )
    return Chain(ordered)


def slugify(message: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    return slug[:50].rstrip("_") or "revision"


def new_revision_id(now: Optional[datetime] = None) -> str:
    """Sorts in creation order; the random tail keeps two ids made in one second apart."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"
