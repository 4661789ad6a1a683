"""Revision files: loading them and checking that they form one chain.

A revision file is plain Python defining `MigrationRevision`, a subclass of
`MigrationRevisionBase` with `up_revision`, `down_revision` and async
`up`/`down`. Files are loaded by path (the migrations folder need not be a
package), and the chain is checked as a whole before anything runs, so a
broken history fails with the names of the files at fault and applies nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Dict, List, Optional, Sequence, Type

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


@dataclass
class Revision:
    id: str
    down_revision: Optional[str]
    path: Path
    checksum: str
    revision_class: Type[MigrationRevisionBase]
    doc: str = ""

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


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    if getattr(cls, "commit_in_parts", False) and not getattr(cls, "transactional", True):
        raise RevisionError(
            f"{path}: MigrationRevision sets both transactional = False and commit_in_parts = True: a revision "
            "outside a transaction commits each step already; remove commit_in_parts"
        )
    for method in ("up", "down"):
        if getattr(cls, method) is getattr(MigrationRevisionBase, method):
            raise RevisionError(f"{path}: MigrationRevision has no {method}() method")
    return Revision(revision_id, down, path, file_checksum(path), cls, module.__doc__ or "")


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
