"""The trace page's hold button: keep a trace from garbage collection.

``POST /trace/<id>/hold`` with a form (``application/x-www-form-urlencoded``)
of ``action=hold`` (``reason``, and ``for``: empty for "until released", or
``1d``, ``7d``, ``30d``) or ``action=unhold`` holds or releases the trace
through :mod:`alamos.retention` (a row of ``alamos_holds``), then redirects
back to the trace page (303), which shows the hold: its reason, when it was
made and until when.

A POST changes the database, so :class:`~alamos.dashboard.security.Guard`
lets it through only from the dashboard's own pages (the ``Origin``, else
``Referer``, must name the host the request was sent to) and, when the
dashboard serves other machines, with the token: another site open in the
user's browser cannot make the browser post it.  The form is plain HTML,
no script.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import attrs
from sqlalchemy import Connection, inspect, select

from alamos.report.sql.schema import holds
from alamos.retention.holds import MAX_REASON, Hold, hold, unhold

__all__ = ["DURATIONS", "MAX_FORM_BYTES", "HoldForm", "apply", "hold_of", "parse_form"]

#: What the form's ``for`` may say, in seconds (``""``: until released).
DURATIONS: dict[str, int | None] = {"": None, "1d": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
#: The largest form body read.
MAX_FORM_BYTES = 16 * 1024
#: The reason stored when the form gives none.
DEFAULT_REASON = "held from the dashboard"


@attrs.frozen
class HoldForm:
    action: str
    """``hold`` or ``unhold``."""
    reason: str
    until_ns: int | None


def parse_form(body: bytes, now_ns: int | None = None) -> HoldForm:
    """The hold form's fields; :class:`ValueError` (a 400 page) for anything else."""
    if len(body) > MAX_FORM_BYTES:
        raise ValueError(f"the hold form is larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise ValueError("the hold form is not UTF-8") from exc

    def one(name: str) -> str:
        values = fields.get(name) or [""]
        return values[0]

    action = one("action")
    if action not in ("hold", "unhold"):
        raise ValueError(f"unknown hold action {action!r}: use hold or unhold")
    keep = one("for").strip()
    if keep not in DURATIONS:
        raise ValueError(
            f"unknown hold duration {keep!r}: use {', '.join(d for d in DURATIONS if d)} or nothing"
        )
    seconds = DURATIONS[keep]
    now = time.time_ns() if now_ns is None else now_ns
    until = None if seconds is None else now + seconds * 1_000_000_000
    reason = one("reason").strip()[:MAX_REASON] or DEFAULT_REASON
    return HoldForm(action, reason, until)


def apply(url: str, trace_id: str, form: HoldForm) -> None:
    """Hold or release ``trace_id`` in the database at ``url`` (alamos.retention)."""
    if form.action == "hold":
        hold(url, trace_id, reason=form.reason, until_ns=form.until_ns)
    else:
        unhold(url, trace_id)


def hold_of(conn: Connection, trace_id: str) -> Hold | None:
    """The hold of ``trace_id`` (expired or not), None if it has none or the
    database has no ``alamos_holds`` table."""
    if not inspect(conn).has_table(holds.name):
        return None
    h = holds.c
    row = conn.execute(
        select(h.trace_id, h.reason, h.created_ns, h.until_ns).where(h.trace_id == trace_id)
    ).first()
    if row is None:
        return None
    until = None if row.until_ns is None else int(row.until_ns)
    return Hold(row.trace_id, row.reason, int(row.created_ns), until)
