"""Objects every ``sote`` command module shares: the Typer app, the console, errors and progress bars.

Command modules (``sote/cli_*.py``) import from here and register their
commands on :data:`app`; :mod:`sote.cli` imports them all. Nothing here
imports a command module, so there is no import loop.
"""
from __future__ import annotations

from enum import IntEnum

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Client segmentation and service-need prediction for wellbeing services counties.")
console = Console(stderr=True)


class ExitCode(IntEnum):
    """The exit statuses of every ``sote`` command, defined once (docs/cli.md lists them)."""

    OK = 0
    FAILED = 1  #: an internal error: a bug or an unexpected failure (``--debug`` shows the traceback)
    USER_ERROR = 2  #: a wrong option, a missing or unreadable file, an output folder that is refused
    DATA_INVALID = 3  #: the input breaks the data contract (strict validation) or its declared period
    QUALITY_GATE = 4  #: a model failed its quality gate (not registered or not promoted)
    DRIFT = 5  #: drift above the configured threshold (batch jobs with ``fail_on_drift``)


@app.callback()
def _root() -> None:
    """Client segmentation and service-need prediction for wellbeing services counties."""


def quiet_libraries() -> None:
    """Keep MLflow's routine notices (store set-up, pickling advice, schema hints) out of a command's output."""
    import logging
    import warnings

    import mlflow  # noqa: F401 - MLflow sets its loggers' levels on import; ours must come after

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")


def fail(message: str, code: int = 1) -> None:
    """Print an error without a traceback and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def progress_bar():
    """A rich progress bar on the command console (stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)
