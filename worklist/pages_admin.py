"""Role pages without a worklist: the unit lead's team summary, the analyst's overview, the admin's log and users.

- ``/team`` (unit lead): the team's actions on the current list of its units.
- ``/overview`` (analyst, admin): counts per band, segment, action status and
  unit; small counts suppressed, no client ids or names.
- ``/admin/log`` (admin): the access log, filtered and paged.
- ``/admin/users`` (admin): the accounts, read-only (changes go through
  ``sote worklist users``).

Every page view is written to the access log.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session as OrmSession

from worklist import accesslog, auth, lists
from worklist.pages import Filters, pick_list
from worklist.web_common import LOCAL_TZ, Viewer, get_db, get_viewer, log, render, require_role, state

router = APIRouter()
#: Rows per page of the admin's log browser.
LOG_PER_PAGE = 100


def _target(request: Request) -> str | None:
    return Filters.parse(request.query_params).target


@router.get("/team")
def team(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    require_role(viewer, "team")
    record, current = pick_list(db, _target(request))
    summary = lists.team_summary(db, record.id, viewer.client_units) if record is not None else None
    shown = [r["client_id"] for r in summary["recent"]] if summary else []
    log(request, db, viewer, "view_team", client_ids=shown,
        purpose=f"worklist:{record.target}" if record else "worklist",
        detail={"list_id": record.id if record else None})
    db.commit()
    return render(request, "team", viewer, record=record, current=current, summary=summary)


def _table(key: str, frame) -> dict:
    """An overview table as the template shows it: columns and rows with None for a suppressed count."""
    columns = [c for c in frame.columns if c != "suppressed"]
    rows = []
    for values in frame[columns].itertuples(index=False, name=None):
        rows.append([None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values])
    return {"key": key, "columns": columns, "rows": rows}


@router.get("/overview")
def overview(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    require_role(viewer, "overview")
    record, current = pick_list(db, _target(request))
    tables = [_table(k, f) for k, f in lists.overview(db, record.id).items()] if record is not None else []
    log(request, db, viewer, "view_overview", purpose=f"worklist:{record.target}" if record else "worklist",
        detail={"list_id": record.id if record else None})
    db.commit()
    return render(request, "overview", viewer, record=record, current=current, tables=tables)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(timezone.utc)


@router.get("/admin/log")
def admin_log(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    require_role(viewer, "admin")
    q = request.query_params
    what = q.get("what") if q.get("what") in accesslog.WHAT else None
    filters = {"username": (q.get("username") or "").strip().lower()[:64] or None, "what": what,
               "client": (q.get("client") or "").strip()[:64] or None, "since": _day(q.get("since")),
               "until": _day(q.get("until"))}
    try:
        page = max(1, int(q.get("page") or 1))
    except ValueError:
        page = 1
    rows, total = accesslog.browse(
        state(request).engine, username=filters["username"], what=what, client_id=filters["client"],
        since=_local_midnight(filters["since"]) if filters["since"] else None,
        until=_local_midnight(filters["until"] + timedelta(days=1)) if filters["until"] else None,
        page=page, per_page=LOG_PER_PAGE)
    pages = max(1, math.ceil(total / LOG_PER_PAGE))
    # looking a client up in the log is processing that client's data: the client id goes into this row
    log(request, db, viewer, "view_log", client_ids=[filters["client"]] if filters["client"] else [],
        detail={k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items() if v} | {"page": page})
    db.commit()
    base = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items() if v}
    links = {"prev": urlencode({**base, "page": page - 1}) if page > 1 else None,
             "next": urlencode({**base, "page": page + 1}) if page < pages else None}
    return render(request, "admin_log", viewer, rows=rows, total=total, page=page, pages=pages, links=links,
                  filters=base, whats=accesslog.WHAT)


@router.get("/admin/users")
def admin_users(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    require_role(viewer, "admin")
    users = auth.list_users(db)
    log(request, db, viewer, "user_admin", detail={"view": "users", "rows": len(users)})
    db.commit()
    return render(request, "admin_users", viewer, users=users)


__all__ = ["LOG_PER_PAGE", "router"]
