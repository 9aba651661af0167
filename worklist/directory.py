"""The synthetic county's client directory: who a pseudonymous id is (name, phone), for the client's own unit.

Names come from Faker's ``fi_FI`` and ``sv_SE`` person word lists (with
their frequency weights), matching the client's language (Swedish speakers
get Swedish names, everyone else Finnish ones) and sex; they are drawn
vectorised from a seeded numpy Generator over the clients sorted by id, so the
same clients and seed give the same directory whatever their order, and a
million clients take a few seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete
from sqlalchemy.orm import Session as DbSession

from worklist.db import ClientDirectory
from worklist.lists import bulk_insert

#: Finnish mobile prefixes a synthetic phone number starts with.
MOBILE_PREFIXES = ("040", "041", "044", "045", "046", "050")
#: Faker locale of the names of each client language (others: Finnish).
LOCALES = {"fi": "fi_FI", "sv": "sv_SE"}
COLUMNS = ("client_id", "unit", "name", "phone", "municipality", "language", "birth_date", "sex")

_CHUNK = 20_000


def _words(locale: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(words, probabilities) of a Faker person word list (``first_names_female``, ``last_names``, ...)."""
    from importlib import import_module

    table = getattr(import_module(f"faker.providers.person.{locale}").Provider, kind)
    words = np.array(list(table), dtype=object)
    weights = np.array(list(table.values()), dtype=float) if isinstance(table, dict) else np.ones(len(words))
    return words, weights / weights.sum()


def _draw(rng: np.random.Generator, locale: str, kind: str, n: int) -> np.ndarray:
    words, p = _words(locale, kind)
    return words[rng.choice(len(words), size=n, p=p)]


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = np.array(MOBILE_PREFIXES, dtype=object)[rng.integers(0, len(MOBILE_PREFIXES), n)]
    digits = rng.integers(0, 10_000_000, n)
    head = pd.Series(digits // 10_000).astype(str).str.zfill(3)
    tail = pd.Series(digits % 10_000).astype(str).str.zfill(4)
    return (pd.Series(prefix) + " " + head + " " + tail).to_numpy(dtype=object)


def build_directory(clients: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A directory row for every client: a name matching language and sex, a Finnish mobile number.

    Parameters
    ----------
    clients
        The canonical clients table (client_id, unit, municipality, language,
        birth_date, sex); clients without a birth date or unit are left out.
    seed
        Seed of the numpy Generator the names and numbers are drawn with.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, one row per client, sorted by client_id;
        ``birth_date`` as ``datetime.date``, phone like ``"040 123 4567"``.
    """
    frame = clients.dropna(subset=["client_id", "birth_date", "unit"])
    frame = frame.assign(client_id=frame["client_id"].astype(str)).sort_values("client_id", kind="stable")
    frame = frame.drop_duplicates("client_id").reset_index(drop=True)
    n = len(frame)
    rng = np.random.default_rng(seed)
    language = frame["language"].astype(str).to_numpy()
    sex = frame["sex"].astype(str).to_numpy()
    # sex X (or unknown) takes a first name of either list with equal chance
    female = np.where(np.isin(sex, ["F", "M"]), sex == "F", rng.random(n) < 0.5)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    locale = np.where(language == "sv", LOCALES["sv"], LOCALES["fi"])
    for loc in (LOCALES["fi"], LOCALES["sv"]):
        here = locale == loc
        last[here] = _draw(rng, loc, "last_names", int(here.sum()))
        for kind, mask in (("first_names_female", here & female), ("first_names_male", here & ~female)):
            first[mask] = _draw(rng, loc, kind, int(mask.sum()))
    name = pd.Series(first) + " " + pd.Series(last)
    return pd.DataFrame({
        "client_id": frame["client_id"], "unit": frame["unit"].astype(str), "name": name.to_numpy(dtype=object),
        "phone": _phones(rng, n), "municipality": frame["municipality"].astype(str), "language": language,
        "birth_date": pd.to_datetime(frame["birth_date"]).dt.date, "sex": sex,
    }, columns=list(COLUMNS))


def load_directory(db: DbSession, frame: pd.DataFrame) -> int:
    """Insert the directory rows of ``frame``, replacing existing rows of the same clients; the caller commits.

    Returns
    -------
    int
        Rows written.
    """
    rows = frame[list(COLUMNS)].sort_values("client_id", kind="stable")
    conn = db.connection()
    ids = rows["client_id"].astype(str).tolist()
    for start in range(0, len(ids), _CHUNK):
        conn.execute(delete(ClientDirectory.__table__).where(ClientDirectory.client_id.in_(ids[start:start + _CHUNK])))
    return bulk_insert(conn, ClientDirectory.__table__, rows)


def read_clients(data_dir: str | Path) -> pd.DataFrame:
    """The canonical clients table of a data folder (Parquet or CSV), typed as sote reads it.

    Raises
    ------
    FileNotFoundError
        If the folder or its clients table is missing.
    """
    from features.contract.io import read_tables

    tables, _problems = read_tables(data_dir, ("clients",))
    return tables["clients"]


__all__ = ["COLUMNS", "LOCALES", "MOBILE_PREFIXES", "build_directory", "load_directory", "read_clients"]
