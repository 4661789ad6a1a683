"""Revision files: loading them and checking that they form one chain.

A revision file is plain Python defining `MigrationRevision`, a subclass of
`MigrationRevisionBase` with `up_revision`, `down_revision` and async
`up`/`down`. Files are loaded by path (the migrations folder need not be a
package), and the chain is checked as a whole before anything runs, so a
broken history fails with the names of the files at fault and applies nothing.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Sequence, Type

from pgmig.errors import RevisionError

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.revisions.migrator import Migrator

BASE = "base"
HEAD = "head"


class MigrationRevisionBase:
    """Base class of every revision file's `MigrationRevision`.

    A revision file subclasses it with `up_revision`, `down_revision` and

        async def up(self, migrator: Migrator) -> None: ...
        async def down(self, migrator: Migrator) -> None: ...

    which type-check under `mypy --strict` as `generate` writes them.
    """

    up_revision: ClassVar[str]
    down_revision: ClassVar[Optional[str]] = None
    transactional: ClassVar[bool] = True
    """False runs the revision outside a transaction (CREATE INDEX CONCURRENTLY)."""

    async def up(self, migrator: Migrator) -> None:
        """Carry the database from `down_revision` to this revision."""
        raise NotImplementedError

    async def down(self, migrator: Migrator) -> None:
        """Undo `up`."""
        raise NotImplementedError


@dataclass
class Revision:
    """One loaded revision file.

    `checksum` is the file's meaning (`meaning_checksum`: what the version
    table records); `byte_checksum` is the SHA-256 of its bytes, the checksum
    earlier versions of pgmig recorded, which a version-table row may still hold.
    """

    id: str
    down_revision: Optional[str]
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
    def message(self) -> str:
        doc = (self.doc or self.revision_class.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.path.stem

    def instance(self) -> MigrationRevisionBase:
        return self.revision_class()


@dataclass
class Chain:
    """Revisions from the first (down_revision None) to the head, in order."""

    revisions: List[Revision]

    @property
    def head(self) -> Optional[str]:
        return self.revisions[-1].id if self.revisions else None

    @property
    def ids(self) -> List[str]:
        return [r.id for r in self.revisions]

    def index(self, revision_id: Optional[str]) -> int:
        """Position of a revision, -1 for base; accepts a unique id prefix."""
        if revision_id in (None, BASE):
            return -1
        if revision_id == HEAD:
            return len(self.revisions) - 1
        matches = [i for i, r in enumerate(self.revisions) if r.id == revision_id]
        if not matches:
            matches = [i for i, r in enumerate(self.revisions) if r.id.startswith(str(revision_id))]
        if len(matches) != 1:
            what = "matches several revisions" if matches else "is not a known revision"
            raise RevisionError(f"{revision_id!r} {what} (see pgmig history)")
        return matches[0]


CHECKSUM_PREFIX = "ast1:"
"""Marks a checksum over meaning (`meaning_checksum`); a bare hex digest is the older hash of the bytes."""


def is_legacy_checksum(checksum: str) -> bool:
    """Whether a recorded checksum is the hash of a file's bytes (earlier versions of pgmig), not of its meaning."""
    return not checksum.startswith(CHECKSUM_PREFIX)


def meaning_checksum(source: bytes, filename: str = "<revision>") -> str:
    """A checksum of what a revision file means, not how it is laid out: `CHECKSUM_PREFIX` + the SHA-256
    of its syntax tree (`canonical_tree`) with comments, docstrings and positions left out.

    So `ruff format`, black, another quote style, parentheses, trailing commas
    or an edited comment or docstring keep the checksum; a different call, argument
    or value changes it. The tree is serialised by pgmig, not by `ast.dump`
    (whose output changes between Python versions), so one file keeps one checksum
    across Python 3.8 to 3.14. Raises SyntaxError for a file that does not parse.
    """
    tree = ast.parse(source, filename)
    text = json.dumps(canonical_tree(tree), separators=(",", ":"), ensure_ascii=True)
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
    if down is not None and not isinstance(down, str):
        raise RevisionError(f"{path}: MigrationRevision.down_revision must be a string or None")
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


def revision_files(folder: Path) -> List[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))


def load_chain(folder: Path) -> Chain:
    return build_chain([load_revision_file(path) for path in revision_files(folder)])


def build_chain(revisions: Sequence[Revision]) -> Chain:
    """Order revisions by their links; every way a history can break is an error naming files."""
    by_id: Dict[str, Revision] = {}
    for revision in revisions:
        if revision.id in by_id:
            raise RevisionError(
                f"revision id {revision.id!r} is used by both {by_id[revision.id].path.name} and {revision.path.name}"
            )
        by_id[revision.id] = revision
    children: Dict[Optional[str], List[Revision]] = {}
    for revision in revisions:
        if revision.down_revision is not None and revision.down_revision not in by_id:
            raise RevisionError(
                f"{revision.path.name}: down_revision {revision.down_revision!r} matches no revision file"
            )
        children.setdefault(revision.down_revision, []).append(revision)
    for parent, kids in children.items():
        if len(kids) > 1:
            names = ", ".join(k.path.name for k in kids)
            where = "the first revision (down_revision None)" if parent is None else f"revision {parent!r}"
            raise RevisionError(
                f"two heads: {names} all follow {where}; set one's down_revision to the other's up_revision"
            )
    ordered: List[Revision] = []
    current: Optional[str] = None
    while current in children:
        (nxt,) = children[current]
        ordered.append(nxt)
        current = nxt.id
        if len(ordered) > len(revisions):
            break
    if len(ordered) != len(revisions):
        stray = [r.path.name for r in revisions if r not in ordered]
        raise RevisionError(f"revisions form a cycle or are cut off from the first revision: {', '.join(stray)}")
    return Chain(ordered)


def slugify(message: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    return slug[:50].rstrip("_") or "revision"


def new_revision_id(now: Optional[datetime] = None) -> str:
    """Sorts in creation order; the random tail keeps two ids made in one second apart."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"
