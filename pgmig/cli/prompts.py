"""Questions to a person at a terminal, for `generate`: renames, values for NOT NULL columns, consent to lose data.

The questions themselves, and the answers of a run nobody watches, are the
library's `pgmig.services.generate.Questioner`.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from pgmig.cli.output import err, printable
from pgmig.plan.renames import Candidate
from pgmig.plan.safety import NotNullNeed
from pgmig.services.generate import Questioner


class TerminalQuestioner(Questioner):
    """Django-style questions on stderr."""

    def ask_rename(self, candidate: Candidate) -> bool:
        return typer.confirm(printable(candidate.question()), default=False, err=True)

    def ask_default(self, need: NotNullNeed, problem: Optional[str] = None) -> Optional[str]:
        if problem is None:
            err.print(printable(f"{need.describe()}."), markup=False)
        else:
            err.print(
                printable(f"The server refuses it: {problem} (SQL: a string goes in quotes, 'UTC')"),
                markup=False,
                style="yellow",
            )
        answer: str = typer.prompt(
            f"SQL value for existing rows of {printable(need.name, one_line=True)} (empty: leave a TODO in the revision)",
            default="",
            show_default=False,
            err=True,
        )
        return answer.strip() or None

    def confirm_destructive(self, changes: List[str]) -> bool:
        err.print("This revision would delete data:", style="bold red")
        for change in changes:
            err.print(f"  - {printable(change, one_line=True)}", markup=False)
        return typer.confirm("Write it anyway?", default=False, err=True)
