"""Objects every ``sote`` command module shares: the Typer app, the console, errors and progress bars.

Command modules (``sote/cli_*.py``) import from here and register their
commands on :data:`app`; :mod:`sote.cli` imports them all. Nothing here
imports a command module, so there is no import loop.
"""
from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Client segmentation and service-need prediction for wellbeing services counties.")
console = Console(stderr=True)


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
