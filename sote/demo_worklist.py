"""The demo's worklist step: its risk lists, the county's client directory and segments, and demo users.

The worklist database lives outside the demo's output folder (default
``var/worklist.db``), so a rerun of the demo never touches its actions or its
access log: lists already imported (same file digest) are skipped, and users
that exist are kept with their passwords. New demo users get generated
passwords, written once to a file readable only by its owner
(``demo-users.txt`` beside a SQLite database, else ``var/demo-users.txt``).
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

#: Who the demo's imports and new users are recorded as in the access log.
DEMO_OPERATOR = "sote-demo"
USERS_FILE = "demo-users.txt"


def check_outside(url: str, out: str | Path) -> None:
    """Refuse (``ValueError``) a worklist database, anchor or users file inside the output folder ``out``."""
    from sqlalchemy.exc import ArgumentError

    from features.contract.outputs import OutputRefused, check_store_outside

    try:
        paths = worklist_paths(url)
    except ArgumentError:
        return  # not a URL: opening the database names the problem
    for name, path in paths.items():
        if path is None:
            continue
        try:
            check_store_outside(f"sqlite:///{path}", out, "--out", "--worklist-db" if name == "database"
                                else f"--worklist-db (its {name} file)")
        except OutputRefused as err:
            raise ValueError(str(err)) from None


def worklist_paths(url: str) -> dict[str, Path | None]:
    """Local files of the worklist at ``url``: the SQLite file (None otherwise), anchor and demo-users file."""
    from sqlalchemy.engine import make_url

    from worklist.accesslog import default_anchor

    parsed = make_url(url)
    database = (Path(parsed.database).resolve() if parsed.get_backend_name() == "sqlite" and parsed.database
                and parsed.database != ":memory:" else None)
    users = (database.parent if database is not None else Path("var").resolve()) / USERS_FILE
    return {"database": database, "anchor": default_anchor(url), "users": users}


def _slug(unit: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", unit).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")[:50] or "unit"


def unit_groups(units: Sequence[str]) -> list[list[str]]:
    """The units in sorted order cut into groups of three, with two groups of two instead of a lone unit.

    One unit stays alone only when it is the only one.
    """
    units = sorted(set(units))
    sizes = [3] * (len(units) // 3)
    rest = len(units) % 3
    if rest == 2 or (rest == 1 and not sizes):
        sizes.append(rest)
    elif rest == 1:  # 3 + 1 -> 2 + 2
        sizes[-1:] = [2, 2]
    groups, start = [], 0
    for size in sizes:
        groups.append(units[start:start + size])
        start += size
    return groups


def demo_users(units: Sequence[str]) -> list[dict]:
    """The demo's accounts: a case manager per 2–3 units, a unit lead of the first group, an analyst, an admin.

    Returns
    -------
    list of dict
        username, role, units, display_name. Case managers are ``cm_<first unit>``.
    """
    groups = unit_groups(units)
    users = [{"username": f"cm_{_slug(group[0])}", "role": "case_manager", "units": group,
              "display_name": f"Demo case manager {i}"} for i, group in enumerate(groups, 1)]
    if groups:
        users.append({"username": "lead_demo", "role": "unit_lead", "units": groups[0],
                      "display_name": "Demo unit lead"})
    users += [{"username": "analyst_demo", "role": "analyst", "units": [], "display_name": "Demo analyst"},
              {"username": "admin_demo", "role": "admin", "units": [], "display_name": "Demo admin"}]
    return users


def _write_passwords(path: Path, lines: list[str]) -> None:
    """Append ``lines`` to the users file, created readable and writable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        header = ("# sote demo users (generated passwords; only their hashes are in the database). "
                  "username<TAB>role<TAB>units<TAB>password\n") if new else ""
        os.write(fd, (header + "".join(lines)).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_users(session, units: Sequence[str], users_file: Path, anchor: Path) -> tuple[list[str], list[str]]:
    """Create the missing demo users (logged); return (created, kept) usernames. The caller commits."""
    from sqlalchemy import select

    from worklist.accesslog import record
    from worklist.auth import add_user
    from worklist.db import User

    existing = set(session.scalars(select(User.username)))
    created, kept, lines = [], [], []
    for spec in demo_users(units):
        if spec["username"] in existing:
            kept.append(spec["username"])
            continue
        _, password = add_user(session, spec["username"], spec["role"], spec["units"],
                               display_name=spec["display_name"])
        created.append(spec["username"])
        lines.append(f"{spec['username']}\t{spec['role']}\t{','.join(spec['units'])}\t{password}\n")
    if created:
        record(session, user=DEMO_OPERATOR, role="admin", units=(), what="user_admin", source="sote demo",
               detail={"command": "demo users", "created": created}, anchor=anchor)
        _write_passwords(users_file, lines)  # before the commit: a password is never lost once its user exists
    return created, kept


def load_demo_worklist(url: str, lists: Sequence[Path], data: Path, segments: Path | None) -> dict:
    """Migrate the worklist database, import the demo's lists (oldest first), directory and segments, add users.

    Parameters
    ----------
    url
        The worklist database URL.
    lists
        Risk lists to import (each with its sidecar); imported in as-of order so ``new_on_list`` is right.
    data
        The county folder (its clients table becomes the client directory).
    segments
        The data-driven segments file (client_id, segment_name), or None.

    Returns
    -------
    dict
        lists (imported, already there), directory and segments rows (0 when nothing new was imported),
        users created and kept, and the users file.
    """
    import pandas as pd
    from sqlalchemy import func, select

    from worklist.accesslog import record
    from worklist.db import ClientDirectory, make_engine, migrate, session_factory
    from worklist.directory import build_directory, load_directory, read_clients
    from worklist.lists import import_risklist, import_segments

    where = worklist_paths(url)
    engine = make_engine(url)
    try:
        migrate(engine)
        ordered = sorted(lists, key=lambda p: pd.read_parquet(p, columns=["as_of"])["as_of"].iloc[0])
        units = sorted(set().union(*(pd.read_parquet(p, columns=["unit"])["unit"].astype(str) for p in lists)))
        with session_factory(engine)() as session:
            results = [import_risklist(session, path, imported_by=DEMO_OPERATOR) for path in ordered]
            new = [r for r in results if r.created]
            directory = segment_rows = 0
            if new or not session.scalar(select(func.count()).select_from(ClientDirectory)):
                directory = load_directory(session, build_directory(read_clients(data)))
                segment_rows = import_segments(session, segments, method="data") if segments is not None else 0
            if new:
                record(session, user=DEMO_OPERATOR, role="admin", units=(), what="import", source="sote demo",
                       detail={"lists": [{"list_id": r.list_id, "target": r.target, "as_of": r.as_of,
                                          "rows": r.rows} for r in new],
                               "directory": directory, "segments": segment_rows}, anchor=where["anchor"])
            created, kept = _ensure_users(session, units, where["users"], where["anchor"])
            session.commit()
    finally:
        engine.dispose()
    return {"imported": len(new), "already": len(results) - len(new), "directory": directory,
            "segments": segment_rows, "users_created": created, "users_kept": kept, "users_file": where["users"]}
