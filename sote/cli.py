"""The ``sote`` command: a thin layer over the library API.

Each ``sote/cli_*.py`` module registers its commands on :data:`sote.app.app`;
importing them here is what assembles the command line.
"""
from __future__ import annotations

from sote import cli_batch  # noqa: F401  (sote batch)
from sote import cli_data  # noqa: F401  (sote validate, synth, demo)
from sote import cli_evaluate  # noqa: F401  (sote evaluate-list)
from sote import cli_features  # noqa: F401  (sote features, labels)
from sote import cli_ingest  # noqa: F401  (sote ingest)
from sote import cli_models  # noqa: F401  (sote train)
from sote import cli_monitor  # noqa: F401  (sote monitor)
from sote import cli_scenarios  # noqa: F401  (sote scenarios)
from sote import cli_score  # noqa: F401  (sote score, report)
from sote import cli_segment  # noqa: F401  (sote segment, segment-transitions)
from sote import cli_worklist  # noqa: F401  (sote serve, worklist import)
from sote import cli_worklist_admin  # noqa: F401  (sote worklist users, audit, reset)
from sote.app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    app()
