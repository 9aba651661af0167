"""Objects every ``sote`` command module shares: the Typer app, the console, errors and progress bars.

Command modules (``sote/cli_*.py``) import from here and register their
commands on :data:`app`; :mod:`sote.cli` imports them all. Nothing here
imports a command module, so there is no import loop.
"""
from __future__ import annotations

import re
import tempfile
import traceback
from enum import IntEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.status import Status
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

class _LiteralStatus(Status):
    """A status line whose text is shown literally (rich reads a plain string as markup)."""

    def update(self, status=None, **kwargs) -> None:
        super().update(Text(status) if isinstance(status, str) else status, **kwargs)


class _LiteralConsole(Console):
    """A console that prints user values literally: no markup in ``print`` or in ``status`` lines."""

    def status(self, status, *, spinner: str = "dots", spinner_style="status.spinner", speed: float = 1.0,
               refresh_per_second: float = 12.5) -> Status:
        return _LiteralStatus(Text(status) if isinstance(status, str) else status, console=self, spinner=spinner,
                              spinner_style=spinner_style, speed=speed, refresh_per_second=refresh_per_second)


#: The console every command prints to (stderr). Markup is off: user values (a unit named
#: "tuusula [kotihoito]", a path "br[/]") are printed literally, never read as rich markup.
console = _LiteralConsole(stderr=True, markup=False)


class ExitCode(IntEnum):
    """The exit statuses of every ``sote`` command, defined once (docs/cli.md lists them)."""

    OK = 0
    FAILED = 1  #: an internal error: a bug or an unexpected failure (``--debug`` shows the traceback)
    USER_ERROR = 2  #: a wrong option, a missing or unreadable file, an output folder that is refused
    DATA_INVALID = 3  #: the input breaks the data contract (strict validation), records outside its declared period included
    QUALITY_GATE = 4  #: a model failed its quality gate (not registered or not promoted)
    DRIFT = 5  #: drift above the configured threshold (batch jobs with ``fail_on_drift``)


def quiet_libraries() -> None:
    """Keep MLflow's routine notices (store set-up, pickling advice, schema hints) out of a command's output."""
    import logging
    import warnings

    import mlflow  # noqa: F401 - MLflow sets its loggers' levels on import; ours must come after

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")


#: Top-level packages whose own exceptions are messages for the person running sote.
_OUR_PACKAGES = frozenset({"features", "segmentation", "models", "sote", "worklist", "scenarios"})
_DEBUG = "sote.debug"
_INVOKED = "sote.invoked"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")  # features.contract.io.atomic_path's temporaries


class UserError(ValueError):
    """A problem the user can fix (an option, a file, a value); the message names it. Exit status USER_ERROR."""


def _ours(err: BaseException) -> bool:
    """Whether ``err`` comes from sote's own code: an exception class of ours, or raised by our code."""
    if type(err).__module__.split(".")[0] in _OUR_PACKAGES:
        return True
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in _OUR_PACKAGES


def _file_named(err: OSError) -> str:
    """The file an OS error is about, as the user named it (a write's temporary name becomes its target)."""
    name = str(err.filename2 if err.filename2 is not None else err.filename)
    path = Path(name)
    match = _TEMP_NAME.match(path.name)
    return str(path.with_name(match["name"])) if match else name


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + " …"


def describe_error(err: BaseException, data: object | None = None) -> tuple[ExitCode, str]:
    """The exit status and the one-line message for an exception that ended a command.

    Parameters
    ----------
    err
        The exception.
    data
        The command's input data folder, named in a data-contract message.

    Returns
    -------
    (ExitCode, str)
        ``DATA_INVALID`` for a :class:`~features.contract.validation.ContractError`;
        ``USER_ERROR`` for a file that cannot be read or written (the message
        names it) and for a ``ValueError`` raised by sote's own code (its
        message); ``FAILED`` for anything else (an internal error), with the
        hint to rerun with ``--debug``.
    """
    from features.contract.validation import ContractError

    if isinstance(err, ContractError):
        where = str(data) if data is not None else "the input data"
        return (ExitCode.DATA_INVALID,
                f"{where} breaks the data contract ({len(err.report.problems)} problem(s), listed above); "
                f"`sote validate {data if data is not None else '<folder>'}` reports them with example rows")
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return ExitCode.USER_ERROR, f"cannot access {_file_named(err)}: {err.strerror}"
    if isinstance(err, UnicodeDecodeError):
        return (ExitCode.USER_ERROR, f"a file is not UTF-8 text ({err.reason} at byte {err.start}); "
                                     "save it as UTF-8")
    if isinstance(err, (ValueError, FileNotFoundError)) and _ours(err):
        return ExitCode.USER_ERROR, str(err)
    if isinstance(err, MemoryError):
        return ExitCode.FAILED, "out of memory; try a smaller chunk size or fewer clients, or rerun with --debug"
    import duckdb  # a core dependency; imported here so that start-up does not pay for it

    if isinstance(err, duckdb.OutOfMemoryException):
        return (ExitCode.FAILED, f"DuckDB ran out of memory ({_first_line(str(err))}); raise its limit with "
                                 "SOTE_DUCKDB_MEMORY_LIMIT (e.g. 8GB) if the machine has room, or build fewer "
                                 "clients per query with SOTE_CLIENTS_PER_QUERY (docs/scale.md, Knobs)")
    detail = _first_line(str(err))
    return (ExitCode.FAILED, f"internal error ({type(err).__name__}{': ' + detail if detail else ''}); this is a "
                             "bug or an unexpected failure: rerun with --debug to see the traceback")


def _print_error(message: str) -> None:
    console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = ExitCode.USER_ERROR) -> None:
    """Print one error message (literally, never as markup) and exit with ``code`` (default USER_ERROR)."""
    _print_error(message)
    raise typer.Exit(int(code))


def check_writable(*files: Path | str | None, folders: tuple = ()) -> None:
    """Refuse, before any work starts, outputs that cannot be written: one message naming the path.

    Parameters
    ----------
    *files
        Output files (None is skipped). Each must not be a folder, and its
        nearest existing parent must be a folder where a file can be created.
    folders
        Output folders, checked the same way (an existing one must be a folder).

    Raises
    ------
    UserError
        Naming the output and why it cannot be written. The probe creates
        and removes an anonymous temporary file; nothing else is touched.
    """
    outputs = [(Path(p), False) for p in files if p is not None]
    outputs += [(Path(p), True) for p in folders if p is not None]
    for path, is_folder in outputs:
        if path.exists() and path.is_dir() != is_folder:
            raise UserError(f"cannot write {path}: it is a folder; give a file name" if not is_folder
                            else f"cannot write {path}: it is a file, and this output is a folder")
        anchor = path if is_folder and path.is_dir() else path.parent
        while not anchor.exists() and anchor != anchor.parent:
            anchor = anchor.parent
        if not anchor.is_dir():
            raise UserError(f"cannot write {path}: {anchor} is a file, not a folder")
        try:
            with tempfile.TemporaryFile(dir=anchor):
                pass
        except OSError as err:
            raise UserError(f"cannot write {path}: cannot create files in {anchor} ({err.strerror})") from err


class _SoteGroup(TyperGroup):
    """The root command group: maps every exception a command raises to one message and an exit status."""

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta[_INVOKED] = (ctx, cmd, name, list(rest))
        return name, cmd, rest

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # usage errors and exits: Typer prints them
            raise
        except Exception as err:  # noqa: BLE001 - the one place where every error becomes a message
            code, message = describe_error(err, _command_params(ctx).get("data"))
            if ctx.meta.get(_DEBUG):
                console.print("".join(traceback.format_exception(err)), highlight=False, soft_wrap=True)
            if code == ExitCode.DATA_INVALID:  # every problem, with example rows
                console.print(err.report.to_text(), highlight=False, soft_wrap=True)
            _print_error(message)
            raise typer.Exit(int(code)) from None


def _command_params(ctx: typer.Context) -> dict:
    """The parameters of the command that failed (parsed again, leniently), or {} if unknown."""
    invoked = ctx.meta.get(_INVOKED)
    if invoked is None:
        return {}
    parent, cmd, name, args = invoked
    try:
        return dict(cmd.make_context(name, list(args), parent=parent, resilient_parsing=True).params)
    except Exception:  # noqa: BLE001 - only used to name the data folder in a message
        return {}


#: ``--spark-master`` of every command with ``--engine spark``.
SPARK_MASTER = typer.Option(None, "--spark-master", help="Spark master URL (spark://host:7077, yarn, ...); "
                                                         "default: a local Spark. Needs --engine spark.")

app = typer.Typer(cls=_SoteGroup, add_completion=False, no_args_is_help=True,
                  help="Client segmentation and service-need prediction for wellbeing services counties.")


@app.callback()
def _root(ctx: typer.Context,
          debug: bool = typer.Option(False, "--debug", envvar="SOTE_DEBUG",
                                     help="On an error, show the full traceback (give it before the command: "
                                          "sote --debug score …).")) -> None:
    """Client segmentation and service-need prediction for wellbeing services counties.

    Every error is one message naming the file, option or value; exit statuses: 0 ok, 1 internal error,
    2 user error, 3 data invalid, 4 quality gate failed, 5 drift (docs/cli.md).
    """
    ctx.meta[_DEBUG] = debug


def progress_bar():
    """A rich progress bar on the command console (stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)
