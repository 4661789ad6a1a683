"""What `generate` may ask a person: renames, values for NOT NULL columns, consent to lose data.

The base class answers as a non-interactive run must: no rename, no value,
no consent. The CLI asks at a terminal; tests and scripts pass their own.
"""

from __future__ import annotations

from typing import Any, List, Optional


class Questioner:
    def ask_rename(self, candidate: Any) -> bool:
        """`candidate.question()` reads e.g. "Was column article.title renamed to article.headline?"."""
        return False

    def ask_default(self, need: Any) -> Optional[str]:
        """An SQL expression for the existing rows of `need.name`, or None to leave a TODO."""
        return None

    def confirm_destructive(self, changes: List[str]) -> bool:
        return False
