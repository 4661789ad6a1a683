"""The Typer app: global options, the commands, and the one place errors become exit codes.

Commands live one module a command (or a small group) and stay thin: parse
flags into a service's options, call the service, print. `edge` turns a
`PgmigError` into one line on stderr (its hint worded with flags) and the
exit code of its class (DESIGN.md section 1).
"""

from __future__ import annotations

import functools
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

import typer
from typer._completion_shared import Shells
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

try:  # Typer vendors Click in its recent versions
    from typer._click.core import Context
    from typer._click.exceptions import NoSuchOption
    from typer._click.parser import _OptionParser as OptionParser
    from typer._click.parser import _ParsingState as ParsingState
except ImportError:  # pragma: no cover - an older Typer, on Click itself
    from click.core import Context  # type: ignore[no-redef,import-not-found,unused-ignore]
    from click.exceptions import NoSuchOption  # type: ignore[no-redef,import-not-found,unused-ignore]
    from click.parser import OptionParser, ParsingState  # type: ignore[no-redef,import-not-found,unused-ignore]

from pgmig import __version__
from pgmig.cli import baseline, check, diff, fleet, generate, graph, init, plugins, run, server
from pgmig.cli.context import CliState, word_hint
from pgmig.cli.output import err, out, shown
from pgmig.errors import PgmigError
from pgmig.revisions.runner import RELATIVE

F = TypeVar("F", bound=Callable[..., Any])


class PgmigGroup(TyperGroup):
    """The command group: a global option given after the command gets a hint naming its place, and
    `--show-completion SHELL` / `--install-completion SHELL` work for the shell named."""

    def parse_args(self, ctx: Context, args: List[str]) -> List[str]:
        named = named_shell(args, self.commands)
        if named is not None:
            flag, shell = named
            param = next(p for p in self.params if flag in p.opts)
            # Typer's own callbacks take a shell name (what they do without shell detection);
            # they print or install the script and exit.
            assert param.callback is not None
            param.callback(ctx, param, shell)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoSuchOption as exc:
            name = exc.option_name.split("=", 1)[0]
            if name in global_option_names(self):
                # The command as typed after `pgmig` (`server stop` for a subcommand of a group).
                path = exc.ctx.command_path.split(" ", 1) if exc.ctx is not None else []
                command = path[1] if len(path) > 1 else "COMMAND"
                exc.message = f"{name} is a global option: give it before the command (pgmig {name} ... {command} ...)"
            raise


class RelativeTargetParser(OptionParser):
    """Click's option parser that reads `-N` (`pgmig down -2`) as the TARGET argument, where Click
    would read an unknown short option; every other unknown option stays Click's usage error (and a
    global option given after the command gets PgmigGroup's hint)."""

    def _process_opts(self, arg: str, state: ParsingState) -> None:
        # Called only for a token in an option's place: never an option's value, nor after `--`.
        if RELATIVE.fullmatch(arg):
            state.largs.append(arg)
            return
        super()._process_opts(arg, state)


class PgmigCommand(TyperCommand):
    """A command whose help names every value one way: in capitals (TARGET, REV, -m MESSAGE), as its
    usage line does. Recent Typer versions print an argument's Python type after its metavar in the
    Arguments section (`TARGET <str>`, `REV <list[str]>`), and a value without a metavar as its type
    (`--canary <int range>`, usage `[target]`): a parameter declared without one is named after itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            takes_value = isinstance(param, TyperArgument) or not getattr(param, "is_flag", True)
            if param.metavar is None and takes_value and param.name is not None:
                param.metavar = param.name.upper()

    def format_options(self, ctx: Context, formatter: Any) -> None:
        arguments: List[Tuple[str, str]] = []
        options: List[Tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                arguments.append((str(param.metavar), record[1]))
            else:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


class RelativeTargetCommand(PgmigCommand):
    """`up` and `down`: a command whose TARGET may be `-N`."""

    def make_parser(self, ctx: Context) -> OptionParser:
        parser = RelativeTargetParser(ctx)
        for param in self.get_params(ctx):
            param.add_to_parser(parser, ctx)
        return parser


COMPLETION_FLAGS = ("--show-completion", "--install-completion")
COMPLETION_HELP = {
    "--install-completion": "Install completion for the current shell, or for SHELL given after it "
    f"({', '.join(shell.value for shell in Shells)}).",
    "--show-completion": "Show completion for the current shell, or for SHELL given after it, to copy it "
    "or customize the installation.",
}


def named_shell(args: Sequence[str], commands: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """(flag, shell) when `args` give `--show-completion` or `--install-completion` a shell before the
    command (`--show-completion zsh`, `--show-completion=zsh`; a name Typer has no script for too,
    which it refuses); None otherwise. Typer's flags take no value: they detect the shell pgmig runs
    under (with shellingham, else bash) and would leave `zsh` to be read as a command."""
    for index, token in enumerate(args):
        if token in commands:
            return None
        flag, equals, value = token.partition("=")
        if flag in COMPLETION_FLAGS:
            after = args[index + 1] if index + 1 < len(args) else ""
            shell = value if equals else ("" if after in commands or after.startswith("-") else after)
            if shell:
                return flag, shell
    return None


def global_option_names(group: TyperGroup) -> List[str]:
    """The flags of `group`'s own options (`--models`, `--database-url`, ...), without help/completion."""
    names: List[str] = []
    for param in group.params:
        if isinstance(param, TyperOption) and param.expose_value:
            names.extend(param.opts)
    return names


app = typer.Typer(
    name="pgmig",
    cls=PgmigGroup,
    help="Keep a PostgreSQL schema in step with your SQLModel / SQLAlchemy models.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int) -> typer.Exit:
    """The `error: ...` line on stderr (secrets hidden, control characters escaped) and the exit to raise."""
    err.print(f"error: {shown(message)}", markup=False, style="bold red")
    return typer.Exit(code)


def print_traceback() -> None:
    """The traceback being handled, for `--debug`: through the same redaction as every message,
    since an exception's text (asyncpg's, a plugin's) may carry a URL or a password."""
    err.file.write(shown(traceback.format_exc()))
    err.file.flush()


UNEXPECTED = 3
"""Exit code of an error pgmig did not foresee (DESIGN.md: 3 is a database or revision error; 1 would
read as "differences found")."""


def edge(func: F) -> F:
    """Run a command with pgmig's error edge: one line on stderr and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        debug = bool(getattr(getattr(ctx, "obj", None), "debug", False))
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except PgmigError as exc:
            if debug:
                print_traceback()
            raise fail(exc.describe(word_hint), exc.exit_code) from None
        except KeyboardInterrupt as exc:
            # SIGTERM during a scratch database's life stops the run in order too (pgmig.db.scratch.Terminated).
            code = int(getattr(exc, "exit_code", 130))
            raise fail("terminated" if code != 130 else "interrupted", code) from None
        except Exception as exc:  # a bug in pgmig or a plugin: still one line unless --debug
            if debug:
                print_traceback()
            # Not 1: that means "differences found" to `diff --exit-code` and `check` in CI.
            raise fail(
                f"unexpected {exc.__class__.__name__}: {exc} (run with --debug for the traceback)", UNEXPECTED
            ) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"pgmig {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    database_url: Optional[str] = typer.Option(
        None,
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL [env PGMIG_DATABASE_URL; default: the embedded server]",
        show_default=False,
    ),
    models: Optional[List[str]] = typer.Option(
        None,
        "--models",
        metavar="MODELS",
        help="Models to load: import path, module:attr, or file path (repeatable) [env PGMIG_MODELS]",
        show_default=False,
    ),
    migrations_dir: Optional[str] = typer.Option(
        None,
        "--migrations-dir",
        metavar="DIR",
        help="Folder of revision files [env PGMIG_MIGRATIONS_DIR; default: migrations]",
        show_default=False,
    ),
    schema: Optional[List[str]] = typer.Option(
        None,
        "--schema",
        metavar="NAME",
        help="Database schema to manage (repeatable; the first holds the version table and tables "
        "without a schema) [env PGMIG_SCHEMA, comma-separated; default: public]",
        show_default=False,
    ),
    dev_url: Optional[str] = typer.Option(
        None,
        "--dev-url",
        metavar="URL",
        help="Server to make scratch databases on (check, generate's replay and proof, status's drift) "
        "[env PGMIG_DEV_URL; default: the embedded server]",
    ),
    exclude: Optional[List[str]] = typer.Option(
        None,
        "--exclude",
        metavar="PATTERN",
        help="Glob of objects pgmig never reads, diffs or drops: NAME or SCHEMA.NAME (repeatable; added to "
        "other tools' version tables such as alembic_version) [env PGMIG_EXCLUDE, comma-separated]",
        show_default=False,
    ),
    targets: Optional[List[str]] = typer.Option(
        None,
        "--targets",
        metavar="TARGET",
        help="pgmig fleet's targets: URL, URL#schema, #schema (of --database-url), file:PATH or sql:QUERY "
        "(repeatable) [env PGMIG_TARGETS, comma-separated]",
        show_default=False,
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Global options go before the command: pgmig --database-url URL --models app/models.py diff"""
    ctx.obj = CliState(
        overrides={
            "database_url": database_url,
            "models": models,
            "migrations_dir": migrations_dir,
            "schema": schema,
            "dev_url": dev_url,
            "exclude": exclude,
            "targets": targets,
        },
        debug=debug,
    )


# In the order `pgmig --help` lists them.
COMMANDS: List[Callable[..., Any]] = [
    init.init,
    diff.diff,
    generate.generate,
    run.up,
    run.down,
    run.status,
    check.check,
    run.history,
    graph.heads,
    graph.merge,
    run.stamp,
    baseline.baseline,
    plugins.plugins,
]
# `pgmig down -2`, `pgmig fleet down -2`: a relative target that Click would otherwise read as an unknown option.
COMMAND_CLASSES: Dict[Callable[..., Any], Type[TyperCommand]] = {
    run.up: RelativeTargetCommand,
    run.down: RelativeTargetCommand,
    fleet.up: RelativeTargetCommand,
    fleet.down: RelativeTargetCommand,
}
for _command in COMMANDS:
    app.command(cls=COMMAND_CLASSES.get(_command, PgmigCommand))(edge(_command))
for _command in server.COMMANDS:
    server.app.command(cls=PgmigCommand)(edge(_command))
app.add_typer(server.app)
for _command in fleet.COMMANDS:
    fleet.app.command(cls=COMMAND_CLASSES.get(_command, PgmigCommand))(edge(_command))
app.add_typer(fleet.app)


def main() -> None:
    command = typer.main.get_command(app)
    for param in command.params:
        for flag in set(param.opts) & set(COMPLETION_HELP):
            param.help = COMPLETION_HELP[flag]  # type: ignore[attr-defined]
    # One name however pgmig was started (`python -m pgmig` too): the completion script completes `pgmig`.
    command(prog_name="pgmig")


if __name__ == "__main__":  # pragma: no cover
    main()
