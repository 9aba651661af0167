"""The pages with client rows: the worklist, a client's page, actions, exports and their JSON forms.

Every route here shows clients only of the viewer's client units
(:attr:`worklist.web_common.Viewer.client_units`); a client of another unit,
or an unknown one, is 404 on every route. Every view, export and action is
written to the access log with the client ids shown, purpose
``worklist:<target>``.
"""
from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from models.risklists import BANDS
from worklist import lists
from worklist.db import STATUSES, ListRow, RiskListRecord
from worklist.i18n import label
from worklist.web_common import (LOCAL_TZ, Viewer, check_csrf, get_db, get_viewer, log, render, require_clients, state,
                                 writing)

router = APIRouter()
#: The list shown when the user picks none: the rising-risk list once it is imported.
DEFAULT_TARGET = "rising_high_use"
#: Query parameters of the worklist filters, in the order links carry them.
FILTER_KEYS = ("target", "band", "segment", "new", "status", "age", "sort", "desc")


@dataclass(frozen=True)
class Filters:
    """The worklist's filters from the query string; unknown values are dropped, never passed on."""

    target: str | None = None
    band: str | None = None
    segment: str | None = None
    new: bool = False
    status: str | None = None
    age: str | None = None
    sort: str = "rank"
    desc: bool = False
    page: int = 1

    @classmethod
    def parse(cls, query) -> "Filters":
        """Filters from a request's query parameters."""
        def pick(key, allowed):
            value = query.get(key) or None
            return value if value in allowed else None

        try:
            page = max(1, int(query.get("page") or 1))
        except ValueError:
            page = 1
        segment = (query.get("segment") or "").strip() or None
        return cls(target=(query.get("target") or None), band=pick("band", [b for b, _, _ in BANDS]),
                   segment=segment[:200] if segment else None, new=query.get("new") == "1",
                   status=pick("status", (*STATUSES, "none")), age=pick("age", lists.AGE_BANDS),
                   sort=pick("sort", lists.SORTS) or "rank", desc=query.get("desc") == "1", page=page)

    def lists_kwargs(self) -> dict:
        """Keyword arguments of :func:`worklist.lists.worklist_page` and :func:`~worklist.lists.export_rows`."""
        return dict(band=self.band, segment=self.segment, new_only=self.new, status=self.status,
                    age_band=self.age, sort=self.sort, descending=self.desc)

    def query(self, **change) -> str:
        """The query string of these filters with ``change`` applied (defaults left out)."""
        values = {**dataclasses.asdict(self), **change}
        out = {}
        for key in (*FILTER_KEYS, "page"):
            value = values[key]
            if value in (None, False, "") or (key == "sort" and value == "rank") or (key == "page" and value == 1):
                continue
            out[key] = "1" if value is True else value
        return urlencode(out)

    def detail(self) -> dict:
        """The filters as the access log keeps them."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, False)}


def pick_list(db: OrmSession, target: str | None) -> tuple[RiskListRecord | None, dict[str, RiskListRecord]]:
    """The current list of ``target`` (default :data:`DEFAULT_TARGET`, else the first target) and all current lists."""
    current = lists.current_lists(db)
    if target in current:
        return current[target], current
    if DEFAULT_TARGET in current:
        return current[DEFAULT_TARGET], current
    return (current[sorted(current)[0]] if current else None), current


def _segments(request: Request, db: OrmSession, record: RiskListRecord, units: list[str]) -> list[str]:
    """The need × resources cells present among the units' rows of a list (the segment filter's choices).

    A list's rows never change after import, so the answer is kept per list (id and digest) and units
    (:class:`worklist.web_common.Memo`).
    """
    def build() -> list[str]:
        return sorted(s for s in db.scalars(select(ListRow.segment).where(ListRow.list_id == record.id,
                                                                          ListRow.unit.in_(units)).distinct()) if s)

    return state(request).memo.get(("segments", record.id, record.digest, tuple(sorted(units))), build)


def _purpose(record: RiskListRecord | None) -> str:
    return f"worklist:{record.target}" if record is not None else "worklist"


def _page(request: Request, viewer: Viewer, db: OrmSession):
    units = require_clients(viewer)
    filters = Filters.parse(request.query_params)
    record, current = pick_list(db, filters.target)
    if record is None:
        return filters, None, current, lists.Page([], 0, 1, 1, lists.PER_PAGE)
    filters = dataclasses.replace(filters, target=record.target)
    page = lists.worklist_page(db, record.id, units, page=filters.page, lang=viewer.lang, **filters.lists_kwargs())
    return dataclasses.replace(filters, page=page.page), record, current, page


@router.get("/worklist")
def worklist(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    filters, record, current, page = _page(request, viewer, db)
    log(request, db, viewer, "view_worklist", client_ids=[r["client_id"] for r in page.rows],
        purpose=_purpose(record), detail={**filters.detail(), "list_id": record.id if record else None})
    db.commit()
    about = None
    if record is not None:
        try:
            about = json.loads(record.sidecar or "{}")
        except ValueError:
            about = None
    return render(request, "worklist", viewer, filters=filters, record=record, current=current, page=page,
                  segments=_segments(request, db, record, viewer.client_units) if record else [],
                  bands=[b for b, _, _ in BANDS], statuses=(*STATUSES, "none"), age_bands=list(lists.AGE_BANDS),
                  sorts=lists.SORTS, about=about if isinstance(about, dict) else None)


@router.get("/api/worklist")
def api_worklist(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    filters, record, _, page = _page(request, viewer, db)
    log(request, db, viewer, "view_worklist", client_ids=[r["client_id"] for r in page.rows],
        purpose=_purpose(record), detail={**filters.detail(), "list_id": record.id if record else None,
                                          "format": "json"})
    db.commit()
    body = {"target": record.target if record else None, "list_id": record.id if record else None,
            "as_of": record.as_of if record else None, "total": page.total, "page": page.page,
            "pages": page.pages, "per_page": page.per_page, "rows": page.rows}
    return JSONResponse(jsonable_encoder(body))


def _export(request: Request, viewer: Viewer, db: OrmSession, kind: str) -> Response:
    units = require_clients(viewer)
    filters = Filters.parse(request.query_params)
    record, _ = pick_list(db, filters.target)
    if record is None:
        raise HTTPException(404, "no list")
    frame = lists.export_rows(db, record.id, units, lang=viewer.lang, **filters.lists_kwargs())
    log(request, db, viewer, "export", client_ids=frame["client_id"].astype(str).str.lstrip("'").tolist(),
        purpose=_purpose(record), detail={**filters.detail(), "list_id": record.id, "format": kind,
                                          "rows": len(frame)})
    name = f"worklist-{record.target}-{record.as_of.isoformat()}.{kind}"
    if kind == "csv":
        body = frame.to_csv(index=False).encode("utf-8-sig")  # the BOM lets Excel read ä and ö
        media = "text/csv; charset=utf-8"
    else:
        from worklist.report import write_xlsx

        buffer = io.BytesIO()
        write_xlsx(frame, buffer, "worklist")
        body = buffer.getvalue()
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    db.commit()  # the export is logged before it leaves
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/export.csv")
def export_csv(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    return _export(request, viewer, db, "csv")


@router.get("/export.xlsx")
def export_xlsx(request: Request, viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    return _export(request, viewer, db, "xlsx")


def _list_param(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPException(404, "no such list") from None


def _client(request: Request, viewer: Viewer, db: OrmSession, client_id: str, list_id: int | None):
    """The client's view on the list (default: the newest holding the client in the viewer's units) or 404."""
    units = viewer.client_units
    view = lists.client_view(db, client_id, units, list_id=list_id, lang=viewer.lang) if units else None
    if view is None:
        raise HTTPException(404, "not found")
    return view, db.get(RiskListRecord, view.list_id)


def _client_page(request: Request, viewer: Viewer, db: OrmSession, view, record, *, status: int = 200,
                 error: str | None = None, form: dict | None = None):
    log(request, db, viewer, "view_client", client_ids=[view.client_id], purpose=_purpose(record),
        detail={"list_id": view.list_id})
    db.commit()
    svg = None
    service = state(request).service_use()
    if service is not None:
        from worklist.history import usage_svg

        svg = Markup(usage_svg(service.monthly(view.client_id, record.as_of), viewer.lang))  # escaped inside
    list_names = {h["list_id"]: f"{label('target', h['target'], viewer.lang)} {h['as_of']}" for h in view.history}
    return render(request, "client", viewer, status=status, view=view, record=record, usage=svg, error=error,
                  list_names=list_names,
                  form=form or {}, statuses=STATUSES, saved=request.query_params.get("saved") == "1",
                  today=datetime.now(LOCAL_TZ).date().isoformat())


@router.get("/clients/{client_id}")
def client_page(request: Request, client_id: str, viewer: Viewer = Depends(get_viewer),
                db: OrmSession = Depends(get_db)):
    view, record = _client(request, viewer, db, client_id, _list_param(request.query_params.get("list")))
    return _client_page(request, viewer, db, view, record)


@router.get("/api/clients/{client_id}")
def api_client(request: Request, client_id: str, viewer: Viewer = Depends(get_viewer),
               db: OrmSession = Depends(get_db)):
    view, record = _client(request, viewer, db, client_id, _list_param(request.query_params.get("list")))
    log(request, db, viewer, "view_client", client_ids=[view.client_id], purpose=_purpose(record),
        detail={"list_id": view.list_id, "format": "json"})
    db.commit()
    return JSONResponse(jsonable_encoder({**dataclasses.asdict(view), "target": record.target,
                                         "as_of": record.as_of}))


@router.post("/clients/{client_id}/actions")
def post_action(request: Request, client_id: str, csrf: str = Form(""), list_field: str = Form("", alias="list"),
                status: str = Form(""), reason: str = Form(""), note: str = Form(""), follow_up: str = Form(""),
                viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
    check_csrf(viewer, csrf)
    list_id = _list_param(list_field)
    if list_id is None:
        raise HTTPException(404, "no list")
    writing(db)  # the action and its log row: one short writing transaction
    try:
        action = lists.record_action(db, list_id=list_id, client_id=client_id, units=viewer.client_units,
                                     user=viewer.user, status=status, reason=reason, note=note,
                                     follow_up=follow_up or None)
    except LookupError:
        raise HTTPException(404, "not found") from None
    except lists.ActionError as err:
        db.rollback()
        view, record = _client(request, viewer, db, client_id, list_id)
        return _client_page(request, viewer, db, view, record, status=400, error=str(err),
                            form={"status": status, "reason": reason, "note": note, "follow_up": follow_up})
    record = db.get(RiskListRecord, list_id)
    log(request, db, viewer, "action", client_ids=[client_id], purpose=_purpose(record),
        detail={"list_id": list_id, "action_id": action.id, "status": action.status})
    db.commit()  # the action and its log row together
    return RedirectResponse(f"/clients/{quote(client_id, safe='')}?{urlencode({'list': list_id, 'saved': 1})}",
                            status_code=303)


__all__ = ["DEFAULT_TARGET", "Filters", "pick_list", "router"]
