"""A checkout of another git ref with a virtualenv of its own, for `scripts/bench.py --baseline REF`.

    baseline = prepare("main", plugins=False, log=print)
    subprocess.run([str(baseline.python), "scripts/bench.py", "--worker", ...])

The ref is resolved to its commit and exported (`git archive`, so the
repository's worktree list is left alone) to `.bench/<commit>/src`, with a
virtualenv in `.bench/<commit>/venv` where that checkout is installed
editable (`pip install -e`), and its plugins too when they are measured.
Both are kept for the next run: a commit never changes, so a finished
checkout or install (each marked by a file once complete) is reused as is.
`.bench/` is in .gitignore; delete it to start over.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"


class BaselineError(RuntimeError):
    """The ref does not resolve, or its checkout or install failed (the message says which command)."""


@dataclass(frozen=True)
class Baseline:
    """REF as given, the commit it names, its checkout and the interpreter of its virtualenv."""

    ref: str
    commit: str
    root: Path
    python: Path

    @property
    def label(self) -> str:
        return self.ref if len(self.ref) <= 12 else self.commit[:12]


def _run(command: List[str]) -> str:
    """The command's stdout; BaselineError with the end of its output when it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BaselineError(f"`{' '.join(command)}` failed (exit {done.returncode}): " + " | ".join(tail))
    return done.stdout


def resolve(ref: str) -> str:
    """The full commit `ref` names in this repository; BaselineError when it names none."""
    try:
        return _run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]).strip()
    except BaselineError:
        raise BaselineError(f"--baseline {ref}: not a commit of this repository") from None


def _export(commit: str, target: Path) -> None:
    """The tree of `commit`, as files, in `target` (emptied first)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", "--format=tar", commit], stdout=subprocess.PIPE)
    assert archive.stdout is not None
    extract = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, capture_output=True, text=True)
    archive.stdout.close()
    if archive.wait() != 0 or extract.returncode != 0:
        raise BaselineError(f"could not export {commit[:12]} to {target}: {extract.stderr.strip()[-300:]}")


def _pip(python: Path, args: List[str]) -> None:
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args])


def prepare(ref: str, plugins: bool, log: Callable[[str], None]) -> Baseline:
    """REF checked out and installed in its own virtualenv (reused when already there).

    `plugins`: also install the checkout's `plugins/*` packages (only needed
    when pgmig is measured with its plugins). Raises BaselineError.
    """
    commit = resolve(ref)
    home = CACHE / commit[:12]
    src, venv = home / "src", home / "venv"
    python = venv / "bin" / "python"
    if not (home / "src.done").exists():
        log(f"baseline {ref}: exporting {commit[:12]} to {src}...")
        _export(commit, src)
        (home / "src.done").write_text(commit + "\n", encoding="utf-8")
    if not (home / "venv.done").exists():
        log(f"baseline {ref}: a virtualenv with that pgmig (pip install -e), once; this takes a minute...")
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)])
        _pip(python, ["-e", str(src)])
        (home / "venv.done").write_text(commit + "\n", encoding="utf-8")
    if plugins and not (home / "plugins.done").exists():
        found = sorted(p for p in (src / "plugins").glob("*") if (p / "pyproject.toml").exists())
        log(f"baseline {ref}: installing its plugins ({', '.join(p.name for p in found) or 'none'})...")
        for plugin in found:
            _pip(python, ["-e", str(plugin)])
        (home / "plugins.done").write_text(commit + "\n", encoding="utf-8")
    return Baseline(ref, commit, src, python)
