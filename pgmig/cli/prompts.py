"""Questions to a person at a terminal, for `generate`: renames, values for NOT NULL columns, consent to lose data.

The questions themselves, and the answers of a run nobody watches, are the
library's `pgmig.services.generate.Questioner`.
"""

from __future__ import annotations

from typing import Callable, List, Optional, TypeVar

import typer

from pgmig.cli.output import err, printable
from pgmig.plan.renames import Candidate
from pgmig.plan.safety import NotNullNeed
from pgmig.services.generate import Questioner

T = TypeVar("T")


def answered(ask: Callable[[], T], at_end: T) -> T:
    """`ask()` (a typer prompt), or `at_end` when the input ends (Ctrl-D, a closed pipe): an end of
    input is the empty answer, not an error. Ctrl-C stays an interruption (KeyboardInterrupt, which
    the CLI's edge reports as `interrupted`, exit 130).

    Click turns both into `Abort`, raised inside the handler of the EOFError or KeyboardInterrupt:
    that exception is the Abort's `__context__`.
    """
    try:
        return ask()
    except typer.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            err.print("", markup=False)  # end the prompt's line
            return at_end
        raise KeyboardInterrupt from None


def confirm(question: str) -> bool:
    """A yes/no question on stderr, no by default; the end of input is a no."""
    return answered(lambda: typer.confirm(question, default=False, err=True), False)


def confirm_or_stop(question: str, nothing: str) -> None:
    """Ask `question` before a command deletes what was asked for (`down base`, `server stop
    --delete`); a no, or the end of input, says `nothing` (what was left alone) on stderr and ends
    the command with exit 0: declining is an answer, not a failure (exit 1 means "differences
    found" to CI, DESIGN.md section 1)."""
    if not confirm(question):
        err.print(nothing, markup=False)
        raise typer.Exit(0)


class TerminalQuestioner(Questioner):
    """Django-style questions on stderr."""

    def ask_rename(self, candidate: Candidate) -> bool:
        return confirm(printable(candidate.question()))

    def ask_default(self, need: NotNullNeed, problem: Optional[str] = None) -> Optional[str]:
        if problem is None:
            err.print(printable(f"{need.describe()}."), markup=False)
        else:
            err.print(
                printable(
                    f"The server refuses it: {problem} (the answer is SQL: text in quotes, 'UTC'; a number, true or now() as is)"
                ),
                markup=False,
                style="yellow",
            )
        question = f"SQL value for existing rows of {printable(need.name, one_line=True)} (empty: leave a TODO in the revision)"
        answer: str = answered(lambda: typer.prompt(question, default="", show_default=False, err=True), "")
        return answer.strip() or None

    def confirm_destructive(self, changes: List[str]) -> bool:
        err.print("This revision would delete data:", style="bold red")
        for change in changes:
            err.print(f"  - {printable(change, one_line=True)}", markup=False)
        return confirm("Write it anyway?")
