"""Risk lists in the worklist database: import, the worklist query, a client's page, actions and counts.

- :func:`import_risklist` loads a scored list (``sote score``) with its
  sidecar, once per file digest; :func:`current_lists` gives the newest list
  per target.
- :func:`worklist_page` and :func:`export_rows` are the rows a user of some
  units may see, filtered and sorted in SQL (one query for the page, one count).
- :func:`client_view` is one client's page; :func:`record_action` appends an
  action (never updated or deleted: the current status is the newest row).
- :func:`team_summary` (unit leads) and :func:`overview` (analysts; no client
  ids or names, counts of 1–4 suppressed) are the aggregate views.

Every function works inside the caller's open ORM session ``db`` and never
commits: an action and its access-log row commit together.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Sequence
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Date, case, delete, func, select
from sqlalchemy.orm import Session as DbSession

from features.contract.dates import LOCAL_ZONE
from models.risklists import BAND_LABELS, RiskListError, band_codes, neutralise_formula, read_risklist
from models.listinfo import probability_text
from worklist.db import (NOTE_MAX, STATUSES, Action, ClientDirectory, ClientSegment, ListRow, RiskListRecord,
                         User, refresh_statistics)

#: Age bands of the worklist filter: label -> (lowest, highest) whole years at the list date (None: no upper end).
AGE_BANDS = {"0-17": (0, 17), "18-29": (18, 29), "30-49": (30, 49), "50-64": (50, 64), "65-74": (65, 74),
             "75-84": (75, 84), "85+": (85, None)}
#: Orders the worklist can be sorted in.
SORTS = ("rank", "probability", "name", "age", "follow_up", "status")
#: Rows per worklist page.
PER_PAGE = 50
#: Counts of the analysts' overview below this (and above 0) are shown as suppressed.
OVERVIEW_MIN_COUNT = 5
#: Longest reason kept with an action (characters; the column's width).
REASON_MAX = 300

_CHUNK = 20_000
_SQLITE_CACHE_KIB = 64 * 1024
_LANGS = ("fi", "sv", "en")


class ActionError(ValueError):
    """An action that cannot be recorded (bad status, missing reason, note too long, bad follow-up date)."""


@dataclass
class ImportResult:
    """What :func:`import_risklist` did: the list's id and digest, its rows, and whether it was new."""

    list_id: int
    digest: str
    rows: int
    created: bool
    target: str
    as_of: date


@dataclass
class Page:
    """One page of a worklist: its rows (dicts, see :func:`worklist_page`) and the paging figures."""

    rows: list[dict]
    total: int
    page: int
    pages: int
    per_page: int


@dataclass
class ClientView:
    """One client's page (see :func:`client_view`)."""

    client_id: str
    unit: str
    list_id: int
    directory: dict | None
    segment_data: str | None
    row: dict
    history: list[dict]
    actions: list[dict]


# ------------------------------------------------------------------ import

def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def bulk_insert(conn, table, frame: pd.DataFrame) -> int:
    """Insert the rows of ``frame`` (columns named as ``table``'s): PostgreSQL ``COPY``, else ``executemany``.

    On PostgreSQL with psycopg 3 the rows are streamed with ``COPY … FROM
    STDIN`` on the transaction's own connection (several times faster than
    an INSERT per row). Elsewhere a parameterised INSERT goes straight to the
    DB-API cursor in chunks: SQLAlchemy's per-row parameter processing would
    take most of the time of a 200k-row list. Values are passed as Python
    objects (missing as None; dates as ISO text on SQLite, as SQLAlchemy
    stores them there).

    Returns
    -------
    int
        Rows inserted.
    """
    cols = list(frame.columns)
    names = ", ".join(table.c[c].name for c in cols)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _copy_rows(conn, f"COPY {table.name} ({names}) FROM STDIN", _values(frame, cols))
    mark = _PLACEHOLDER[conn.dialect.paramstyle]
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * len(cols))})"
    sqlite = conn.dialect.name == "sqlite"
    values = []
    for col in cols:
        series = frame[col]
        if sqlite and isinstance(table.c[col].type, Date):
            series = pd.to_datetime(series).dt.strftime("%Y-%m-%d")
        values.append(series.astype(object).where(series.notna(), None).tolist())
    rows = list(zip(*values))
    if sqlite:  # a larger page cache while the indexes grow (per connection; restored after)
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size={-_SQLITE_CACHE_KIB}")
    try:
        for start in range(0, len(rows), _CHUNK):
            conn.exec_driver_sql(sql, rows[start:start + _CHUNK])
    finally:
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")
    return len(rows)


def _values(frame: pd.DataFrame, cols: list[str]):
    """The rows of ``frame`` as tuples of Python objects (missing values None)."""
    return zip(*(frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in cols))


def _copy_rows(conn, sql: str, rows) -> int:
    """Stream ``rows`` into ``COPY … FROM STDIN`` on the psycopg connection under ``conn`` (same transaction)."""
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _list_rows(risk: pd.DataFrame, previous: set[str]) -> pd.DataFrame:
    """The ``list_rows`` columns of a validated list: band, rank inside the unit, new on the list."""
    risk = risk.sort_values("rank", kind="stable")
    out = pd.DataFrame({"client_id": risk["client_id"].astype(str), "unit": risk["unit"].astype(str),
                        "rank": risk["rank"].astype("int64"), "percentile": risk["percentile"].astype(float),
                        "probability": risk["probability"].astype(float)})
    out["unit_rank"] = out.groupby("unit", sort=False).cumcount() + 1
    out["band"] = band_codes(out["probability"], float(out["probability"].mean()))
    for col in ("probability_bound", "probability_limit", "segment", "reasons_fi", "reasons_sv", "reasons_en",
                "reason_types", "intensive_ongoing", "prior_high_use"):
        out[col] = risk[col] if col in risk else None
    out["new_on_list"] = ~out["client_id"].isin(previous) if previous else False
    return out


def import_risklist(db: DbSession, path: str | Path, *, imported_by: str, now: datetime | None = None
                    ) -> ImportResult:
    """Load a risk list and its sidecar ``<path>.json`` into the database, once per file content.

    Parameters
    ----------
    db
        An open ORM session; the caller commits.
    path
        A list written by ``sote score`` (Parquet or CSV).
    imported_by
        Who imports it (a username, or ``"cli"``).
    now
        The import time (default: now, UTC).

    Returns
    -------
    ImportResult
        ``created`` is False when a file with the same SHA-256 was imported
        before; nothing is written then.

    Raises
    ------
    RiskListError
        If the file is not a valid risk list, is empty or holds several list dates.

    Notes
    -----
    ``new_on_list`` compares with the newest earlier list (``as_of`` before
    this one's) of the same target already in the database; it is fixed at
    import, so import lists oldest first.
    """
    path = Path(path)
    if path.is_dir():  # a Parquet folder (sote score --engine spark): its data files, whatever their names
        from features.histories.engine import output_digest

        digest = output_digest(path)
    else:
        digest = _sha256(path)
    known = db.scalars(select(RiskListRecord).where(RiskListRecord.digest == digest)).first()
    if known is not None:
        return ImportResult(known.id, digest, known.rows, False, known.target, known.as_of)
    risk = read_risklist(path)
    if risk.empty:
        raise RiskListError(f"{path} holds no clients; nothing to import")
    dates = pd.to_datetime(risk["as_of"]).dt.date.unique()
    if len(dates) != 1:
        raise RiskListError(f"{path} holds {len(dates)} list dates; a risk list has one")
    sidecar_path = Path(f"{path}.json")
    sidecar = sidecar_path.read_text(encoding="utf-8") if sidecar_path.is_file() else "{}"
    try:
        about = json.loads(sidecar)
    except ValueError as err:
        raise RiskListError(f"{sidecar_path} is not valid JSON: {err}") from err
    first = risk.iloc[0]
    target = str(about.get("target") or first["model_name"])
    as_of = dates[0]
    earlier = db.scalars(select(RiskListRecord.id).where(RiskListRecord.target == target,
                                                         RiskListRecord.as_of < as_of)
                         .order_by(RiskListRecord.as_of.desc(), RiskListRecord.id.desc()).limit(1)).first()
    previous = set(db.scalars(select(ListRow.client_id).where(ListRow.list_id == earlier))) if earlier else set()
    record = RiskListRecord(digest=digest, target=target, list_kind=about.get("list_kind"), as_of=as_of,
                            model_name=str(first["model_name"]), model_version=str(first["model_version"]),
                            run_id=str(first["run_id"]), rows=len(risk), source_name=path.name[:300],
                            sidecar=sidecar, imported_at=now or datetime.now(timezone.utc), imported_by=imported_by)
    db.add(record)
    db.flush()
    rows = _list_rows(risk, previous)
    rows.insert(0, "list_id", record.id)
    # in client-id order, the two client-id indexes grow at their ends instead of at random pages
    bulk_insert(db.connection(), ListRow.__table__, rows.sort_values("client_id", kind="stable"))
    refresh_statistics(db.connection())  # the planner learns the new rows before the first worklist page
    return ImportResult(record.id, digest, len(rows), True, target, as_of)


def current_lists(db: DbSession) -> dict[str, RiskListRecord]:
    """The current list of every target: the newest ``as_of`` (ties: the latest import)."""
    out: dict[str, RiskListRecord] = {}
    for rec in db.scalars(select(RiskListRecord).order_by(RiskListRecord.as_of.desc(), RiskListRecord.id.desc())):
        out.setdefault(rec.target, rec)
    return out


def lists_of_target(db: DbSession, target: str) -> list[RiskListRecord]:
    """Every imported list of ``target``, newest first."""
    return list(db.scalars(select(RiskListRecord).where(RiskListRecord.target == target)
                           .order_by(RiskListRecord.as_of.desc(), RiskListRecord.id.desc())))


def import_segments(db: DbSession, path: str | Path, *, method: str = "data", as_of: date | None = None) -> int:
    """Replace the ``method`` segments of the clients with those of ``path`` (client_id, segment_name).

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    ValueError
        If the file lacks the ``client_id`` or ``segment_name`` column.
    """
    path = Path(path)
    frame = pd.read_csv(path, dtype=str) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = [c for c in ("client_id", "segment_name") if c not in frame]
    if missing:
        raise ValueError(f"{path} is not a segments file: missing column(s) {', '.join(missing)}")
    frame = frame.dropna(subset=["client_id", "segment_name"]).drop_duplicates("client_id", keep="last")
    rows = pd.DataFrame({"client_id": frame["client_id"].astype(str), "method": method,
                         "segment": frame["segment_name"].astype(str).str.slice(0, 300), "as_of": as_of})
    db.execute(delete(ClientSegment).where(ClientSegment.method == method))
    return bulk_insert(db.connection(), ClientSegment.__table__, rows)


# ------------------------------------------------------------------ the worklist

def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def age_at(birth: date | None, day: date) -> int | None:
    """Whole years from ``birth`` to ``day`` (None without a birth date)."""
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _latest_action():
    """The newest action's id of the row's client on the row's list (correlated; indexed)."""
    return (select(func.max(Action.id)).where(Action.list_id == ListRow.list_id,
                                              Action.client_id == ListRow.client_id)
            .correlate(ListRow).scalar_subquery())


def _filtered(columns, list_id: int, units: Sequence[str], as_of: date, *, band=None, segment=None,
              new_only=False, status=None, age_band=None, directory: bool = True, action: bool = True):
    """SELECT ``columns`` over the visible, filtered rows of a list, joined with the directory and the latest
    action (each join only when asked for, or when a filter needs it)."""
    stmt = select(*columns).select_from(ListRow)
    if directory or age_band:
        stmt = stmt.outerjoin(ClientDirectory, ClientDirectory.client_id == ListRow.client_id)
    if action or status:
        stmt = stmt.outerjoin(Action, Action.id == _latest_action())
    stmt = stmt.where(ListRow.list_id == list_id, ListRow.unit.in_(list(units)))
    if band:
        stmt = stmt.where(ListRow.band == band)
    if segment:
        stmt = stmt.where(ListRow.segment == segment)
    if new_only:
        stmt = stmt.where(ListRow.new_on_list.is_(True))
    if status == "none":
        stmt = stmt.where(Action.id.is_(None))
    elif status:
        if status not in STATUSES:
            raise ValueError(f"status must be 'none' or one of {', '.join(STATUSES)}, got {status!r}")
        stmt = stmt.where(Action.status == status)
    if age_band:
        if age_band not in AGE_BANDS:
            raise ValueError(f"age band must be one of {', '.join(AGE_BANDS)}, got {age_band!r}")
        lo, hi = AGE_BANDS[age_band]
        stmt = stmt.where(ClientDirectory.birth_date <= _years_before(as_of, lo))
        if hi is not None:
            stmt = stmt.where(ClientDirectory.birth_date > _years_before(as_of, hi + 1))
    return stmt


def _order(sort: str, descending: bool, one_unit: bool = False) -> list:
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    # inside one unit, rank order is unit_rank order: the (list_id, unit, unit_rank) index gives it unsorted
    rank = ListRow.unit_rank if one_unit else ListRow.rank
    key = {"rank": rank, "probability": ListRow.probability, "name": ClientDirectory.name,
           "age": ClientDirectory.birth_date, "follow_up": Action.follow_up, "status": Action.status}[sort]
    # an older client has an earlier birth date: "age ascending" is birth date descending
    down = descending != (sort == "age")
    first = (key.desc() if down else key.asc()).nulls_last()
    return [first, rank.asc()] if sort != "rank" else [first]


def _columns(lang: str) -> list:
    if lang not in _LANGS:
        raise ValueError(f"language must be one of {', '.join(_LANGS)}, got {lang!r}")
    return [ListRow.client_id, ListRow.unit, ListRow.rank, ListRow.unit_rank, ListRow.probability,
            ListRow.probability_bound, ListRow.probability_limit, ListRow.band, ListRow.segment,
            getattr(ListRow, f"reasons_{lang}").label("reasons"), ListRow.new_on_list, ListRow.intensive_ongoing,
            ListRow.prior_high_use, ClientDirectory.name, ClientDirectory.birth_date, Action.status,
            Action.follow_up]


def _row(r, as_of: date, lang: str) -> dict:
    limit = r.probability_limit if r.probability_limit is not None else float("nan")
    return {"client_id": r.client_id, "unit": r.unit, "rank": r.rank, "unit_rank": r.unit_rank, "name": r.name,
            "age": age_at(r.birth_date, as_of), "probability": r.probability,
            "probability_bound": r.probability_bound,
            "probability_text": probability_text(r.probability, r.probability_bound, limit, lang=lang),
            "band": r.band, "band_label": BAND_LABELS[lang].get(r.band, r.band), "segment": r.segment,
            "reasons": [s for s in r.reasons.split(" | ") if s] if r.reasons else [],
            "new_on_list": bool(r.new_on_list), "intensive_ongoing": r.intensive_ongoing,
            "prior_high_use": r.prior_high_use, "status": r.status, "follow_up": r.follow_up}


def _as_of(db: DbSession, list_id: int) -> date:
    record = db.get(RiskListRecord, list_id)
    if record is None:
        raise LookupError(f"no risk list {list_id}")
    return record.as_of


def worklist_page(db: DbSession, list_id: int, units: Sequence[str], *, band: str | None = None,
                  segment: str | None = None, new_only: bool = False, status: str | None = None,
                  age_band: str | None = None, sort: str = "rank", descending: bool = False, page: int = 1,
                  per_page: int = PER_PAGE, lang: str = "fi") -> Page:
    """One page of a list's rows of ``units`` (no units: no rows), filtered, sorted and joined.

    Parameters
    ----------
    db
        An open ORM session.
    list_id
        The risk list.
    units
        The units whose clients the user may see.
    band, segment, new_only, status, age_band
        Filters: band code (``usual``/``raised``/``high``), the list's segment
        (need × resources cell), only new on the list, the latest action's
        status (``"none"``: no action yet), an :data:`AGE_BANDS` label.
    sort, descending
        One of :data:`SORTS`; ties go by rank.
    page, per_page
        1-based page (clamped to the pages there are) and its size.
    lang
        Language of probability texts, band labels and reasons (fi, sv, en).

    Returns
    -------
    Page
        Rows as dicts: client_id, unit, rank, unit_rank, name, age (whole years
        at the list date, None without a directory entry), probability,
        probability_bound, probability_text, band, band_label, segment, reasons
        (list), new_on_list, intensive_ongoing, prior_high_use, status (latest
        action's, None if none) and follow_up.

    Raises
    ------
    LookupError
        If there is no such list.
    ValueError
        If a filter value, the sort or the language is not one of the known ones.
    """
    as_of = _as_of(db, list_id)
    per_page = max(1, int(per_page))
    filters = dict(band=band, segment=segment, new_only=new_only, status=status, age_band=age_band)
    if not units:
        return Page([], 0, 1, 1, per_page)
    columns, order = _columns(lang), _order(sort, descending, one_unit=len(set(units)) == 1)
    total = db.execute(_filtered([func.count()], list_id, units, as_of, directory=False, action=False,
                                 **filters)).scalar_one()
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, int(page)), pages)
    # the page's rows are chosen joining only what the filters and the order need; the ~50 chosen rows are
    # then joined with the directory and their latest action (one statement)
    chosen = (_filtered([ListRow.id.label("row_id")], list_id, units, as_of, directory=sort in ("name", "age"),
                        action=sort in ("status", "follow_up"), **filters)
              .order_by(*order).limit(per_page).offset((page - 1) * per_page).subquery())
    stmt = (_filtered(columns, list_id, units, as_of).join(chosen, chosen.c.row_id == ListRow.id)
            .order_by(*order))
    return Page([_row(r, as_of, lang) for r in db.execute(stmt)], total, page, pages, per_page)


def export_rows(db: DbSession, list_id: int, units: Sequence[str], *, sort: str = "rank", descending: bool = False,
                lang: str = "fi", **filters) -> pd.DataFrame:
    """Every filtered row of :func:`worklist_page` (no paging) as a spreadsheet-safe table.

    Columns: rank, unit_rank, client_id, unit, name, age, probability (empty
    for a calibration boundary value), probability_text, band, segment,
    reasons (``" | "``-joined), new_on_list, intensive_ongoing, prior_high_use,
    status, follow_up. Text cells pass :func:`models.risklists.neutralise_formula`.
    """
    as_of = _as_of(db, list_id)
    cols = ["rank", "unit_rank", "client_id", "unit", "name", "age", "probability", "probability_text", "band",
            "segment", "reasons", "new_on_list", "intensive_ongoing", "prior_high_use", "status", "follow_up"]
    rows = []
    if units:
        stmt = _filtered(_columns(lang), list_id, units, as_of, **filters).order_by(*_order(sort, descending))
        rows = [_row(r, as_of, lang) for r in db.execute(stmt)]
    out = pd.DataFrame(rows, columns=[*cols, "probability_bound", "band_label"])
    out["probability"] = out["probability"].where(out["probability_bound"].isna(), None)
    out["band"] = out["band_label"]
    out["reasons"] = out["reasons"].map(lambda r: " | ".join(r) if isinstance(r, list) else r)
    out = out[cols]
    for col in ("client_id", "unit", "name", "probability_text", "band", "segment", "reasons", "status"):
        out[col] = out[col].astype(object).map(neutralise_formula)
    return out


# ------------------------------------------------------------------ one client, actions

def _visible_row(db: DbSession, list_id: int, client_id: str, units: Sequence[str]) -> ListRow | None:
    if not units:
        return None
    return db.scalars(select(ListRow).where(ListRow.list_id == list_id, ListRow.client_id == client_id,
                                            ListRow.unit.in_(list(units)))).first()


def client_view(db: DbSession, client_id: str, units: Sequence[str], list_id: int | None = None,
                lang: str = "fi") -> ClientView | None:
    """One client's page, or None when the client is on no list row of ``units`` (show: not found).

    Parameters
    ----------
    list_id
        The list the page is opened from; default the newest list (by date,
        then import) holding the client in ``units``.

    Returns
    -------
    ClientView or None
        ``row`` as a worklist row (all reasons); ``history`` one dict per
        imported list holding the client (target, as_of, probability_text,
        band, unit_rank, list_id), newest first; ``actions`` of the client in
        ``units``, newest first (list_id, status, reason, note, follow_up,
        username, created_at); ``directory`` and ``segment_data`` (the
        data-driven segment) when known.
    """
    if not units:
        return None
    if list_id is None:
        list_id = db.scalars(select(ListRow.list_id).join(RiskListRecord, RiskListRecord.id == ListRow.list_id)
                             .where(ListRow.client_id == client_id, ListRow.unit.in_(list(units)))
                             .order_by(RiskListRecord.as_of.desc(), RiskListRecord.id.desc()).limit(1)).first()
    if list_id is None or _visible_row(db, list_id, client_id, units) is None:
        return None
    as_of = _as_of(db, list_id)
    stmt = _filtered(_columns(lang), list_id, units, as_of).where(ListRow.client_id == client_id)
    row = _row(db.execute(stmt).one(), as_of, lang)
    history = []
    for lr, rec in db.execute(select(ListRow, RiskListRecord).join(RiskListRecord, RiskListRecord.id == ListRow.list_id)
                              .where(ListRow.client_id == client_id)
                              .order_by(RiskListRecord.as_of.desc(), RiskListRecord.id.desc())):
        limit = lr.probability_limit if lr.probability_limit is not None else float("nan")
        history.append({"list_id": rec.id, "target": rec.target, "as_of": rec.as_of, "band": lr.band,
                        "probability_text": probability_text(lr.probability, lr.probability_bound, limit, lang=lang),
                        "unit_rank": lr.unit_rank})
    actions = [{"list_id": a.list_id, "status": a.status, "reason": a.reason, "note": a.note,
                "follow_up": a.follow_up, "username": username, "created_at": a.created_at}
               for a, username in db.execute(select(Action, User.username).join(User, User.id == Action.user_id)
                                             .where(Action.client_id == client_id, Action.unit.in_(list(units)))
                                             .order_by(Action.id.desc()))]
    entry = db.get(ClientDirectory, client_id)
    directory = None if entry is None else {
        "name": entry.name, "phone": entry.phone, "municipality": entry.municipality, "language": entry.language,
        "birth_date": entry.birth_date, "sex": entry.sex}
    segment = db.scalars(select(ClientSegment.segment).where(ClientSegment.client_id == client_id,
                                                             ClientSegment.method == "data")).first()
    return ClientView(client_id, row["unit"], list_id, directory, segment, row, history, actions)


def _follow_up(value, today: date) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError as err:
            raise ActionError(f"follow-up must be a date (YYYY-MM-DD), got {value!r}") from err
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ActionError(f"follow-up must be a date, got {value!r}")
    if value < today:
        raise ActionError(f"follow-up {value.isoformat()} is before today ({today.isoformat()})")
    return value


def record_action(db: DbSession, *, list_id: int, client_id: str, units: Sequence[str], user: User, status: str,
                  reason: str | None = None, note: str | None = None, follow_up: date | str | None = None,
                  now: datetime | None = None) -> Action:
    """Append an action for a client on a list (never updates one); the caller commits.

    Parameters
    ----------
    status
        One of :data:`worklist.db.STATUSES`.
    reason
        Required (non-blank) for ``not_appropriate``; at most :data:`REASON_MAX` characters.
    note
        At most :data:`worklist.db.NOTE_MAX` characters.
    follow_up
        A date (or ``YYYY-MM-DD``) not before today in Finland.
    now
        The time recorded (default: now, UTC).

    Raises
    ------
    LookupError
        If the client is not on that list in ``units`` (show: not found).
    ActionError
        On a bad status, a missing or too long reason, a too long note or a bad follow-up date.
    """
    row = _visible_row(db, list_id, client_id, units)
    if row is None:
        raise LookupError("no such client on this list")
    now = now or datetime.now(timezone.utc)
    if status not in STATUSES:
        raise ActionError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    reason = (reason or "").strip() or None
    note = (note or "").strip() or None
    if status == "not_appropriate" and reason is None:
        raise ActionError("'not appropriate' needs a reason")
    if reason is not None and len(reason) > REASON_MAX:
        raise ActionError(f"reason is longer than {REASON_MAX} characters")
    if note is not None and len(note) > NOTE_MAX:
        raise ActionError(f"note is longer than {NOTE_MAX} characters ({len(note)})")
    today = now.astimezone(ZoneInfo(LOCAL_ZONE)).date()
    action = Action(list_id=list_id, client_id=client_id, unit=row.unit, status=status, reason=reason, note=note,
                    follow_up=_follow_up(follow_up, today), user_id=user.id, created_at=now)
    db.add(action)
    db.flush()
    return action


# ------------------------------------------------------------------ aggregates

def team_summary(db: DbSession, list_id: int, units: Sequence[str], recent: int = 20) -> dict:
    """The team's work on a list in ``units``, for a unit lead.

    Returns
    -------
    dict
        ``by_status``: clients per latest status (``"none"``: no action yet),
        ``by_user``: actions and distinct clients per username, ``recent``: the
        newest ``recent`` actions (client_id, name, status, username,
        created_at, follow_up), ``follow_up_due``: clients whose latest
        follow-up date is set.
    """
    units = list(units)
    if not units:
        return {"by_status": {}, "by_user": [], "recent": [], "follow_up_due": 0}
    as_of = _as_of(db, list_id)
    status = func.coalesce(Action.status, "none")
    by_status = dict(db.execute(_filtered([status, func.count()], list_id, units, as_of).group_by(status)).all())
    by_user = [{"username": u, "actions": n, "clients": c} for u, n, c in db.execute(
        select(User.username, func.count(Action.id), func.count(func.distinct(Action.client_id)))
        .join(User, User.id == Action.user_id).where(Action.list_id == list_id, Action.unit.in_(units))
        .group_by(User.username).order_by(func.count(Action.id).desc(), User.username))]
    latest = [{"client_id": a.client_id, "name": name, "status": a.status, "username": user,
               "created_at": a.created_at, "follow_up": a.follow_up}
              for a, user, name in db.execute(
                  select(Action, User.username, ClientDirectory.name).join(User, User.id == Action.user_id)
                  .outerjoin(ClientDirectory, ClientDirectory.client_id == Action.client_id)
                  .where(Action.list_id == list_id, Action.unit.in_(units)).order_by(Action.id.desc()).limit(recent))]
    due = db.execute(_filtered([func.count()], list_id, units, as_of).where(Action.follow_up.is_not(None))).scalar_one()
    return {"by_status": by_status, "by_user": by_user, "recent": latest, "follow_up_due": due}


def suppress_counts(counts: pd.Series) -> pd.Series:
    """Counts with 1 to :data:`OVERVIEW_MIN_COUNT` - 1 blanked (None), and one more when only one is blanked.

    A single blanked cell could be recovered from the list's total; the next
    smallest shown count is blanked with it. Zeros stay (they reveal no one).
    """
    counts = counts.astype(object)
    values = pd.to_numeric(counts, errors="coerce")
    small = (values > 0) & (values < OVERVIEW_MIN_COUNT)
    if small.sum() == 1:
        rest = values[~small & (values > 0)]
        if len(rest):
            small[rest.idxmin()] = True
    return counts.where(~small, None)


def _counted(pairs, key: str) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=[key, "clients"])
    shown = suppress_counts(frame["clients"])
    return frame.assign(clients=shown, suppressed=shown.isna())


def overview(db: DbSession, list_id: int) -> dict[str, pd.DataFrame]:
    """Counts of a list for analysts: no client ids, no names; small counts suppressed (:func:`suppress_counts`).

    Returns
    -------
    dict of pandas.DataFrame
        ``band``, ``segment``, ``status`` (latest action's; ``"none"``) with
        columns <key>, clients, suppressed; ``unit`` with unit, clients, high
        (in the high band), actioned (any action), each suppressed by column,
        and suppressed (any cell of the row blanked).
    """
    as_of = _as_of(db, list_id)
    units = list(db.scalars(select(ListRow.unit).where(ListRow.list_id == list_id).distinct()))  # all of them
    status = func.coalesce(Action.status, "none")
    segment = func.coalesce(ListRow.segment, "")
    out = {}
    for key, expr in (("band", ListRow.band), ("segment", segment), ("status", status)):
        pairs = db.execute(_filtered([expr, func.count()], list_id, units, as_of).group_by(expr)
                           .order_by(expr)).all()
        out[key] = _counted(pairs, key)
    per_unit = db.execute(_filtered([ListRow.unit, func.count(), func.sum(case((ListRow.band == "high", 1), else_=0)),
                                     func.sum(case((Action.id.is_not(None), 1), else_=0))], list_id, units, as_of)
                          .group_by(ListRow.unit).order_by(ListRow.unit)).all()
    frame = pd.DataFrame(per_unit, columns=["unit", "clients", "high", "actioned"])
    for col in ("clients", "high", "actioned"):
        frame[col] = suppress_counts(frame[col].astype("int64"))
    frame["suppressed"] = frame[["clients", "high", "actioned"]].isna().any(axis=1)
    out["unit"] = frame
    return out


__all__ = ["AGE_BANDS", "ActionError", "ClientView", "ImportResult", "OVERVIEW_MIN_COUNT", "PER_PAGE", "Page",
           "REASON_MAX", "SORTS", "age_at", "client_view", "current_lists", "export_rows", "import_risklist",
           "import_segments", "lists_of_target", "overview", "record_action", "suppress_counts", "team_summary",
           "worklist_page"]
