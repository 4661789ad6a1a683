"""Writing revision files: the plan's operations as readable actor calls.

The same operations that render the preview and `--sql` are written here as
`await migrator.actor.<name>(...)`, so what a person reviews is exactly what
runs. A plugin's operation is written as `await migrator.actor.run(CreateView(...))`
with its class imported from the plugin (so a missing plugin fails at import
with its package named): the typed actor has methods for pgmig's own
operations only, and the file type-checks under `mypy --strict` as written.
"""

from __future__ import annotations

import math
import os
import secrets
import shlex
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Type

from pgmig.errors import ConfigError, Hint, RevisionError, UsageError
from pgmig.files import write_new_file
from pgmig.ops.base import Hazard, Operation
from pgmig.ops.table import TablePart
from pgmig.revisions.files import DownRevision

LINE_LIMIT = 88
"""ruff's and black's default line length: the writer's own layout, before `formatted` runs ruff."""
INDENT = " " * 8


def _escaped(char: str) -> str:
    """`char` as a Python escape: `\\n`, `\\x1b`, `\\u202e`, `\\udcff`, `\\U000e0001` (repr's spelling)."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _source_text(text: str, keep: str = "") -> str:
    """`text` with backslashes doubled and every character `str.isprintable` rejects (controls such as
    ESC and NUL, CR, tabs, bidi overrides, line separators, lone surrogates) written as its escape, except
    those in `keep`: what Python reads back is `text`, and the file holds printable UTF-8 only (nothing a
    terminal, an editor or an encoder would act on)."""
    return "".join(
        "\\\\" if char == "\\" else char if char.isprintable() or char in keep else _escaped(char) for char in text
    )


def python_string(text: str) -> str:
    """`text` as a double-quoted Python string literal (as ruff or black would quote it) that reads back
    exactly: quotes, backslashes (`C:\\Users`, `\\N{`), control characters and lone surrogates escaped."""
    return '"' + _source_text(text).replace('"', '\\"') + '"'


def docstring_text(text: str) -> str:
    """`text` for the inside of a triple-double-quoted docstring, read back exactly as `text`.

    Newlines stay (a message may have several lines); backslashes and the
    other characters of `_source_text` are escaped; a quote is escaped
    where it could close the docstring (before another quote, or last).
    """
    body = _source_text(text, keep="\n")
    return "".join(
        '\\"' if char == '"' and (i + 1 == len(body) or body[i + 1] == '"') else char for i, char in enumerate(body)
    )


def comment_text(text: str) -> str:
    """`text` for a `#` comment: on one line (a newline in a name must not end the comment and start code)."""
    return _source_text(text).replace("\\\\", "\\")


def literal(value: Any) -> str:
    """A Python literal for an operation argument (double-quoted strings, as a formatter would).

    Strings go through `python_string`, so whatever a model holds (a comment
    `C:\\new`, a default with a quote, a label with an ESC) is written as an
    escape and reads back the same.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return python_string(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({python_string(repr(value))})"  # repr gives `nan`/`inf`, which are not literals
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, TablePart):
        return f"{type(value).__name__}({', '.join(_part_arguments(value))})"
    raise TypeError(f"cannot write {type(value).__name__} into a revision file")


def _part_arguments(part: TablePart) -> List[str]:
    positional, keywords = part.call_arguments()
    return [literal(v) for v in positional] + [f"{name}={literal(v)}" for name, v in keywords.items()]


def _wrapped(head: str, value: Any, indent: str, tail: str) -> List[str]:
    """`head + literal(value) + tail` laid out as ruff or black would lay it out: on one line when it
    fits in LINE_LIMIT; else a list's items or a `create_table` part's arguments on one indented line
    between the brackets; else one a line, each laid out the same way."""
    if isinstance(value, (list, tuple)) and value:
        return _bracketed(f"{head}[", [("", item) for item in value], "]", indent, tail)
    if isinstance(value, TablePart):
        positional, keywords = value.call_arguments()
        items = [("", v) for v in positional] + [(f"{name}=", v) for name, v in keywords.items()]
        return _bracketed(f"{head}{type(value).__name__}(", items, ")", indent, tail)
    return [f"{indent}{head}{literal(value)}{tail}"]


def _bracketed(opening: str, items: Sequence[Tuple[str, Any]], closing: str, indent: str, tail: str) -> List[str]:
    """`opening` + the (prefix, value) items, comma separated, + `closing`: see `_wrapped`."""
    flat = ", ".join(f"{prefix}{literal(value)}" for prefix, value in items)
    if len(indent) + len(opening) + len(flat) + len(closing) + len(tail) <= LINE_LIMIT:
        return [f"{indent}{opening}{flat}{closing}{tail}"]
    inner = indent + "    "
    if len(inner) + len(flat) <= LINE_LIMIT:
        return [f"{indent}{opening}", f"{inner}{flat}", f"{indent}{closing}{tail}"]
    lines = [line for prefix, value in items for line in _wrapped(prefix, value, inner, ",")]
    return [f"{indent}{opening}", *lines, f"{indent}{closing}{tail}"]


def is_builtin(operation_class: Type[Operation]) -> bool:
    """Whether the typed actor has a method for this operation (pgmig's own, not a plugin's)."""
    from pgmig.ops.actor_methods import OperationMethods

    return callable(getattr(OperationMethods, operation_class.name, None))


def hazard_comment(op: Operation) -> Optional[str]:
    """The comment a revision writes above an operation with hazards, or None."""
    hazards = op.hazards()
    if Hazard.DELETES_DATA in hazards:
        return f"{INDENT}# destructive: {', '.join(hazards)}"
    if hazards:
        return f"{INDENT}# hazards: {', '.join(hazards)}"
    return None


def render_call(op: Operation, comment: bool = True) -> List[str]:
    """`await migrator.actor.<name>(...)` for a built-in operation, `...actor.run(Class(...))` for a plugin's.

    Laid out as ruff or black would (see `_wrapped`), under a comment naming
    its hazards (unless `comment` is False: the call before had the same one).
    """
    note = hazard_comment(op) if comment else None
    lines = [note] if note else []
    if is_builtin(type(op)):
        positional, keywords = op.call_arguments()
        called = [("", value) for value in positional] + [(f"{name}=", value) for name, value in keywords.items()]
        return lines + _bracketed(f"await migrator.actor.{op.name}(", called, ")", INDENT, "")
    items = [(f"{name}=", value) for name, value in op.arguments().items()]
    inner = _bracketed(f"{type(op).__name__}(", items, ")", INDENT + "    ", "")
    if len(inner) == 1 and len(INDENT) + len("await migrator.actor.run()") + len(inner[0].strip()) <= LINE_LIMIT:
        return lines + [f"{INDENT}await migrator.actor.run({inner[0].strip()})"]
    return lines + [f"{INDENT}await migrator.actor.run(", *inner, f"{INDENT})"]


def render_body(ops: Sequence[Operation], extra: Sequence[str] = (), preamble: Sequence[str] = ()) -> List[str]:
    lines: List[str] = [f"{INDENT}{line}" for line in preamble]
    previous: Optional[str] = None
    for op in ops:
        # One comment over a run of calls with the same hazards (the drops of a `down`).
        comment = hazard_comment(op)
        lines.extend(render_call(op, comment=comment != previous))
        previous = comment
    lines.extend(f"{INDENT}{line}" for line in extra)
    return lines or [f"{INDENT}pass"]


def plugin_imports(ops: Iterable[Operation]) -> List[str]:
    """`from <plugin module> import <Operation>, ...` for every plugin operation in `ops`."""
    names: Dict[str, Set[str]] = {}
    for op in ops:
        cls = type(op)
        if not is_builtin(cls):
            names.setdefault(cls.__module__, set()).add(cls.__name__)
    return [f"from {module} import {', '.join(sorted(names[module]))}" for module in sorted(names)]


def part_names(ops: Iterable[Operation]) -> Set[str]:
    """Names of the `create_table` parts (`Column`, `PrimaryKey`, ...) the arguments of `ops` use:
    revision files import them from `pgmig`."""
    found: Set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, TablePart):
            found.add(type(value).__name__)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    for op in ops:
        for value in op.arguments().values():
            visit(value)
    return found


def down_revision_lines(down_revision: DownRevision) -> List[str]:
    """`down_revision = ...` as the revision file spells it: `None`, `"a"`, or the tuple `("a", "b")` of
    a merge, laid out as ruff or black would (see `_bracketed`) when a merge joins many heads."""
    head = "down_revision = "
    if isinstance(down_revision, tuple):
        return _bracketed(f"{head}(", [("", rid) for rid in down_revision], ")", "    ", "")
    return [f"    {head}{literal(down_revision)}"]


def render_revision(
    revision_id: str,
    down_revision: DownRevision,
    message: str,
    up: Sequence[Operation],
    down: Sequence[Operation],
    down_extra: Sequence[str] = (),
    transactional: bool = True,
    up_preamble: Sequence[str] = (),
) -> str:
    """The text of a revision file: its docstring (`message`, escaped by `docstring_text`), imports,
    and `up`/`down` calling the actor with every argument as a Python literal (`literal`).

    Raises UsageError when the message or an argument is not text that UTF-8
    can carry (a lone surrogate: invalid UTF-8 read from argv or a file).
    """
    refuse_invalid_text(message, [*up, *down])
    # The message alone: the id (which holds the time it was made, to the second) and what it
    # revises are the class's first lines.
    title = docstring_text(message.strip()) or "Revision"
    header = [f'"""{title}"""' if "\n" not in title else f'"""{title}\n"""', ""]
    # One sorted block, as isort (ruff's I001) orders third-party imports.
    pgmig_names = sorted({"MigrationRevisionBase", "Migrator", *part_names([*up, *down])})
    header.extend(sorted([f"from pgmig import {', '.join(pgmig_names)}", *plugin_imports([*up, *down])]))
    body = [
        "",
        "",
        "class MigrationRevision(MigrationRevisionBase):",
        f"    up_revision = {literal(revision_id)}",
        *down_revision_lines(down_revision),
    ]
    if not transactional:
        body.append("    transactional = False  # CONCURRENTLY cannot run inside a transaction")
    else:
        body.extend(parts_lines(up, down))
    body += ["", "    async def up(self, migrator: Migrator) -> None:", *render_body(up, preamble=up_preamble)]
    body += ["", "    async def down(self, migrator: Migrator) -> None:", *render_body(down, down_extra)]
    return "\n".join(header + body) + "\n"


def parts_lines(up: Sequence[Operation], down: Sequence[Operation]) -> List[str]:
    """`commit_in_parts = True` under a comment saying why, when `up` or `down` needs more locks
    in one transaction (`pgmig.revisions.parts.estimate`) than a part may hold on a server with
    default settings (`DEFAULT_SERVER.budget`); none otherwise."""
    from pgmig.revisions.parts import DEFAULT_SERVER, estimate

    needs = {name: estimate(steps) for name, steps in (("up", up), ("down", down))}
    largest = max(needs, key=lambda name: needs[name])
    if needs[largest] <= DEFAULT_SERVER.budget:
        return []
    server = DEFAULT_SERVER
    return [
        f"    # Its {largest}() needs about {needs[largest]:,} locks in one transaction; a server with default",
        f"    # settings holds {server.slots:,} (max_locks_per_transaction {server.max_locks_per_transaction} x "
        f"max_connections {server.max_connections}) for all",
        "    # sessions. It runs in parts, each within a quarter of the server's lock table, and",
        "    # records its progress with each part: a run stopped between parts resumes after the",
        "    # last committed step.",
        "    commit_in_parts = True",
    ]


MESSAGE_HINT = Hint("give a message that is valid UTF-8", "message")


def invalid_text(text: str) -> Optional[str]:
    """Why `text` cannot be written as UTF-8 (its first lone surrogate, which is how Python decodes
    invalid UTF-8 bytes in argv or a file), or None when it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        if 0xDC80 <= ord(bad) <= 0xDCFF:
            return f"it holds the byte 0x{ord(bad) - 0xDC00:02x}, which is not valid UTF-8 (in {python_string(text)})"
        return f"it holds U+{ord(bad):04X}, a lone surrogate, which UTF-8 cannot carry (in {python_string(text)})"
    return None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, TablePart):
        positional, keywords = value.call_arguments()
        yield from _strings([*positional, *keywords.values()])


def refuse_invalid_text(message: str, ops: Sequence[Operation]) -> None:
    """UsageError (exit 2) when the message or a string an operation carries (a name, comment, default,
    label, check body: whatever the models hold) is not valid text; nothing is written then."""
    problem = invalid_text(message)
    if problem is not None:
        raise UsageError(f"the revision message is not valid text: {problem}", hint=MESSAGE_HINT)
    for op in ops:
        for name, value in op.arguments().items():
            for text in _strings(value):
                problem = invalid_text(text)
                if problem is not None:
                    raise UsageError(f"{op.name}: {name} is not valid text: {problem}; fix the models")


def write_revision(
    folder: Path, file_name: str, text: str, post_write: Optional[str] = None, cwd: Optional[Path] = None
) -> Path:
    """Write `text` as `folder`/`file_name` so that the file appears only complete and loadable.

    The text is laid out by ruff's formatter (`formatted`), compiled, written
    to a hidden temporary file in the same folder (which `revision_files`
    skips), loaded as a revision, and only then renamed over the final name
    (`os.replace`, atomic within a folder). On any failure the temporary file
    is removed, nothing is left in the folder and RevisionError says why.
    Then `post_write` (the setting: a command, `{path}` replaced) runs on the
    written file from the folder `cwd` (`run_post_write`; PostWriteError when
    it fails, the file staying written).
    """
    text = formatted(text)
    try:
        compile(text, file_name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise RevisionError(f"the revision {file_name} was not written: it does not compile: {exc}") from None
    from pgmig.revisions.files import load_revision_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    temporary = folder / f".{path.stem}.{secrets.token_hex(4)}.tmp.py"
    try:
        write_new_file(temporary, text)
        try:
            load_revision_file(temporary)
        except RevisionError as exc:
            reason = str(exc).replace(str(temporary), file_name)
            raise RevisionError(f"the revision {file_name} was not written: {reason}") from None
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    if post_write:
        run_post_write(post_write, path, cwd)
    return path


FORMAT_TIMEOUT = 30.0
"""Seconds ruff may take to lay out one revision (it takes milliseconds)."""


def ruff_binary() -> Optional[str]:
    """The ruff executable of the installed `ruff` package (a dependency of pgmig), or None without one.

    Not a `ruff` found on PATH: the package's own is the version pgmig was
    installed with, so the same models give the same bytes on every machine
    of a project that pins its dependencies.
    """
    import importlib

    for module in ("ruff", "ruff.__main__"):  # `find_ruff_bin` moved to the package in ruff 0.5
        try:
            find = getattr(importlib.import_module(module), "find_ruff_bin", None)
            if find is not None:
                return str(find())
        except (ImportError, OSError):  # FileNotFoundError: a package without its binary
            continue
    return None


def formatted(text: str) -> str:
    """`text` (Python source) as `ruff format` lays it out at its defaults (line length 88, double
    quotes), whatever configuration the project has (`--isolated`): what pgmig writes passes
    `ruff format --check` and, for the project's own style, `post_write` runs the project's
    formatter. The same text gives the same bytes. Without ruff (or when it fails), `text` as
    it is: the writer's own layout (`LINE_LIMIT`) is close to ruff's."""
    ruff = ruff_binary()
    if ruff is None:
        return text
    try:
        done = subprocess.run(
            [ruff, "format", "--isolated", "--stdin-filename", "revision.py", "-"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=FORMAT_TIMEOUT,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return text
    return done.stdout.decode("utf-8")


POST_WRITE_TIMEOUT = 300.0
"""Seconds the `post_write` command may take on one file."""


POST_WRITE_OUTPUT = 2000
"""How many characters of the failed command's output (its end) the error repeats."""


class PostWriteError(ConfigError):
    """The `post_write` command failed on a written revision file (which stays written)."""


def post_write_command(command: str, path: Path) -> List[str]:
    """`command` split as a POSIX shell would (`shlex.split`; no shell runs it), with `{path}` in
    each word replaced by `path`, or `path` added as the last word when no word holds `{path}`.
    The path is one word whatever it holds (spaces, quotes, `$`), so nothing in it is interpreted."""
    words = shlex.split(command)
    if not any("{path}" in word for word in words):
        return [*words, str(path)]
    return [word.replace("{path}", str(path)) for word in words]


def run_post_write(command: str, path: Path, cwd: Optional[Path] = None) -> None:
    """Run the `post_write` command on the revision file at `path`, from the folder `cwd` (the project's
    root; default: the current folder), and check that the file still loads as a revision.

    Raises PostWriteError (exit 2) naming the command, its exit status and
    what it printed on stderr when it cannot start, fails, times out, or
    leaves a file that no longer loads; the file stays written either way.
    """
    from pgmig.revisions.files import load_revision_file

    words = post_write_command(command, path)
    where = f"pgmig wrote {path}, but the post_write command {shlex.join(words)!r}"
    fix = "fix post_write in [tool.pgmig] (or PGMIG_POST_WRITE)"
    try:
        done = subprocess.run(words, cwd=cwd, capture_output=True, timeout=POST_WRITE_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise PostWriteError(f"{where} could not start: {words[0]!r} is not installed or not on PATH; {fix}") from None
    except subprocess.TimeoutExpired:
        raise PostWriteError(f"{where} did not finish within {POST_WRITE_TIMEOUT:.0f} s; {fix}") from None
    except OSError as exc:
        raise PostWriteError(f"{where} could not start: {exc.strerror}; {fix}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        said = f": {said[-POST_WRITE_OUTPUT:]}" if said else " and printed nothing"
        raise PostWriteError(f"{where} failed (exit status {done.returncode}){said}; {fix}")
    try:
        load_revision_file(path)
    except RevisionError as exc:
        raise PostWriteError(f"{where} left a file that no longer loads: {exc}; {fix}") from None
