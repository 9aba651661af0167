"""Option checks every ``sote`` command shares: ISO dates, the data period, and the output rule.

One CLI date parser (:func:`cli_date`) names the option of a bad date; one
period check (:func:`check_period`) holds each index date, and the horizon it
needs, against the data's declared (or inferred) period; two output guards
(:func:`guard_file`, :func:`guard_dir`) apply :mod:`features.contract.outputs`
before any work starts. Each failure is one message and ``ExitCode.USER_ERROR``.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from rich.text import Text

from sote.app import ExitCode, console, fail


def cli_date(value: str, option: str) -> pd.Timestamp:
    """A command-line date, ISO ``YYYY-MM-DD`` only; a bad one fails naming ``option``."""
    from features.contract.dates import DateError, parse_cli_date

    try:
        return parse_cli_date(value, option)
    except DateError as err:
        fail(str(err), ExitCode.USER_ERROR)


def check_period(data: Path, dates: Iterable[tuple[pd.Timestamp, str, int, str]]):
    """Check index dates against the data's period; return the period (None for a folder without records).

    Parameters
    ----------
    data
        The data folder (its ``dataset.yaml``, the synthetic county's manifest, or its record dates).
    dates
        ``(date, option, horizon_days, purpose)`` per date option; ``horizon_days``
        is 0 for a date that needs no outcome period after it.
    """
    from features.contract.dataset import PeriodError
    from features.contract.io import data_period

    if not Path(data).is_dir():
        return None  # the command's own reading names the missing folder
    try:
        period = data_period(data)
    except ValueError as err:
        fail(str(err), ExitCode.USER_ERROR)
    if period is None:
        return None
    if not period.declared:
        console.print(Text.assemble(("note:", "yellow"), f" {data} declares no data period; using "
                                    f"{period.describe()}. Declare it in {Path(data) / 'dataset.yaml'} "
                                    "(docs/data_contract.md)."), highlight=False, soft_wrap=True)
    for t, option, horizon, purpose in dates:
        try:
            period.check(t, option, horizon_days=horizon, purpose=purpose)
        except PeriodError as err:
            fail(str(err), ExitCode.USER_ERROR)
    return period


def horizon_days(target: str, targets: Path | None = None) -> int:
    """The horizon a target's labels need (days), from the targets file; 365 if the target is unknown here."""
    try:
        from features.targets.spec import load_targets
    except ImportError:  # pragma: no cover - older layout
        from features.targets.labels import load_targets
    try:
        declared = load_targets(targets)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err), ExitCode.USER_ERROR)
    return int(declared[target].horizon_days) if target in declared else 365


def guard_file(path: Path | None, option: str = "--out", *, inputs: Iterable[Path | None] = ()) -> None:
    """Refuse an output file that overlaps an input or would replace a file sote did not write."""
    from features.contract.outputs import OutputRefused, check_output_file

    if path is None:
        return
    try:
        check_output_file(path, option, inputs=inputs)
    except OutputRefused as err:
        fail(str(err), ExitCode.USER_ERROR)


def guard_dir(path: Path | None, option: str = "--out", *, overwrite: bool = False,
              inputs: Iterable[Path | None] = ()) -> None:
    """Refuse an output folder that overlaps an input or holds files sote did not write (unless --overwrite)."""
    from features.contract.outputs import OutputRefused, check_output_dir

    if path is None:
        return
    try:
        check_output_dir(path, option, overwrite=overwrite, inputs=inputs)
    except OutputRefused as err:
        fail(str(err), ExitCode.USER_ERROR)
