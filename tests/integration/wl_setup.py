"""Data for the integration tests: the worklist suite's fixtures, and a loaded worklist database.

The small county and its two risk lists are the worklist suite's own session fixtures
(``tests/worklist/conftest.py``), loaded from that file by path rather than copied: a conftest module
cannot be imported by name.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd


def _worklist_suite():
    path = Path(__file__).resolve().parents[1] / "worklist" / "conftest.py"
    if str(path.parent) not in sys.path:  # the conftest imports its neighbour list_helpers by name
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("worklist_suite_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: tests/worklist/conftest.py as a module: fixtures wl_county and wl_lists, LIST_TARGET, LIST_DATES.
WORKLIST_SUITE = _worklist_suite()
LIST_TARGET = WORKLIST_SUITE.LIST_TARGET


def load_database(url: str, county: Path, lists: list[Path]) -> dict:
    """Import both lists, the county's directory and two case managers of different units into ``url``.

    Returns
    -------
    dict
        ``list_id`` (the newest list), ``units`` (unit A, unit B), ``client`` (a client of unit A on the
        newest list) and ``users``: {"a": (username, password), "b": (username, password)}.
    """
    from worklist import auth, directory, lists as wlists
    from worklist.db import ListRow, make_engine, session_factory

    engine = make_engine(url)
    Session = session_factory(engine)
    try:
        with Session.begin() as db:
            results = [wlists.import_risklist(db, p, imported_by="integration") for p in lists]
        with Session.begin() as db:
            directory.load_directory(db, directory.build_directory(directory.read_clients(county), seed=14))
        newest = max(results, key=lambda r: r.as_of)
        with Session() as db:
            rows = pd.read_sql(
                ListRow.__table__.select().where(ListRow.list_id == newest.list_id).order_by(ListRow.client_id),
                db.connection())
        counts = rows["unit"].value_counts()
        unit_a, unit_b = counts.index[0], counts.index[1]
        client = rows[rows["unit"] == unit_a].sort_values("unit_rank")["client_id"].iloc[0]
        with Session.begin() as db:
            _, pw_a = auth.add_user(db, "cm.a", "case_manager", [unit_a], display_name="Case Manager A", lang="fi")
            _, pw_b = auth.add_user(db, "cm.b", "case_manager", [unit_b], display_name="Case Manager B", lang="fi")
    finally:
        engine.dispose()
    return {"list_id": newest.list_id, "units": (unit_a, unit_b), "client": str(client),
            "users": {"a": ("cm.a", pw_a), "b": ("cm.b", pw_b)}}
