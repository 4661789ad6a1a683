"""`pgmig heads` and `pgmig merge`: the heads of the revision graph, and the revision that joins them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

from pgmig.errors import UsageError
from pgmig.revisions.files import Revision
from pgmig.services.project import Project


def heads(project: Project) -> List[Revision]:
    """The revisions nothing follows, in graph order (several after two branches each generated one;
    none without revision files). Reads the files only. Raises RevisionError for a broken graph."""
    chain = project.chain()
    return [chain.by_id[rid] for rid in chain.heads]


@dataclass(frozen=True)
class MergeOptions:
    """`message`: the merge revision's docstring and file name; `revisions`: the ids (or unique
    prefixes, `head` excluded) it joins, default every head."""

    message: str
    revisions: Sequence[str] = ()


def merge(project: Project, options: MergeOptions) -> Path:
    """Write a merge revision: `down_revision` the tuple of the joined revisions (Alembic's form),
    `up` and `down` empty; returns its path. Written as generate writes (`write_revision`: whole and
    loadable, or not at all); it changes no schema, so it needs no proof.

    Raises UsageError (exit 2) with fewer than two revisions to join, or when one of them follows
    another (nothing to join); RevisionError for an unknown revision or a broken graph.
    """
    from datetime import datetime, timezone

    from pgmig.revisions.files import new_revision_id, slugify
    from pgmig.revisions.writer import refuse_invalid_text, render_revision

    refuse_invalid_text(options.message, [])
    chain = project.chain()
    names = list(options.revisions) or chain.heads
    joined: List[str] = []
    for name in names:
        rid = chain.resolve(name)
        if rid not in joined:
            joined.append(rid)
    if len(joined) < 2:
        what = f"only {chain.described(joined)}" if joined else "no revision"
        raise UsageError(
            f"a merge joins two or more heads, and there is {what}: nothing to merge "
            "(pgmig heads lists the heads; pgmig merge -m MESSAGE REV REV names them)"
        )
    for rid in joined:
        later = [other for other in joined if other != rid and rid in chain.ancestors(other)]
        if later:
            raise UsageError(
                f"{chain.described([rid])} is already followed by {chain.described(later)}: "
                "a merge joins revisions on different branches (pgmig heads lists them)"
            )
    joined = [r.id for r in chain.ordered(joined)]
    created = datetime.now(timezone.utc)
    revision_id = new_revision_id(created)
    text = render_revision(revision_id, tuple(joined), options.message, [], [])
    return project.write_revision(f"{revision_id}_{slugify(options.message)}.py", text)  # with post_write
