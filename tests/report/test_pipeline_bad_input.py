"""Bad input, end to end: huge strings, odd unicode, SQL-looking names and
non-finite numbers go through the public API into SQLite and PostgreSQL.
Each is stored safely (verbatim where the database can hold it, U+FFFD for
NUL and lone surrogates, "NaN"/"Infinity" strings inside JSON) or rejected at
the call with a clear error; the exporter never fails on them and keeps
storing what follows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import alamos

from .pipeline_support import HANG, count, new_root, query

INJECTION = "'; DROP TABLE alamos_spans; --"
HUGE = "x" * 1_000_000
#: Hostile text kept verbatim.
VERBATIM = [
    INJECTION,
    'Robert"); DELETE FROM alamos_logs WHERE ("1"="1',
    "rtl \u202eevil\u202c \u05e9\u05dc\u05d5\u05dd",
    "emoji 🚀 👩\u200d👩\u200d👧 🏳️\u200d🌈",
    "combining e\u0301 z\u0336\u0317\u0353",
    "format {0} {x} %s %(x)s",
    "quotes ' \" ` \\ \\0 $$ ;",
    "control \r\n\t\x1b[31m\x7f",
    "",
]
#: Hostile text, and what the database must hold for it.
HOSTILE: dict[str, str] = {
    **{text: text for text in VERBATIM},
    "lone \ud800 surrogate": "lone \ufffd surrogate",
    "low \udfff first": "low \ufffd first",
    "nul \x00 inside": "nul \ufffd inside",
}
NONFINITE = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}


def as_json(value: Any) -> Any:
    """A JSON column read back: text on SQLite, parsed already on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def test_hostile_input_is_stored_safely_and_export_goes_on(db_url: str, tmp_path: Path) -> None:
    root = new_root("bad", db_url, tmp_path / "spool", service=f"svc {INJECTION} \x00\ud800")
    exp = root.sub("api")
    for i, (text, _) in enumerate(HOSTILE.items()):
        with exp.trace.prod(text, attributes={text: text, "i": i, **NONFINITE}) as span:
            span.set("seq", (text, math.nan, math.inf))
            span.event(text, **{text: math.nan})
            exp.log.info(text)  # as the message itself: never formatted without arguments
            exp.log.warning("value={v}", v=text, i=i, **{text: -math.inf})
    with exp.trace.prod(HUGE, attributes={"huge": HUGE}):
        exp.log.error(HUGE)
    # Non-finite metric values, hostile label values.
    gauge = exp.metrics.gauge("level", labelnames=["what"])
    for i, text in enumerate(HOSTILE):
        gauge.labels(text).set(i)
    for name, value in NONFINITE.items():
        exp.metrics.gauge(f"g_{name}").set(value)
    hist = exp.metrics.histogram("h", buckets=[1.0])
    hist.observe(math.inf)
    hist.observe(math.nan)
    exp.attach("hostile", lambda: {INJECTION: math.nan, "s": "\ud800\x00", "inf": math.inf})

    # Rejected at the call, with a clear error (nothing reaches the exporter).
    with pytest.raises(ValueError, match="invalid experiment key"):
        root.sub(INJECTION)
    with pytest.raises(ValueError, match="invalid experiment key"):
        alamos.new("bad\x00key")
    with pytest.raises(ValueError, match=r"(?i)invalid metric name|metric name"):
        exp.metrics.counter(INJECTION)

    assert root.flush(HANG)
    with exp.trace.prod("normal", attributes={"ok": True}):  # the exporter keeps running
        exp.log.info("normal")
    assert root.flush(HANG)
    stats = root.stats()
    root.close(HANG)
    (delivery,) = stats.exporters.values()
    assert delivery.failures == 0  # nothing above made an export fail
    assert delivery.spooled == 0 and stats.dropped == 0

    # -- spans: every one stored, names and attributes as expected -------------------
    n = len(HOSTILE) + 2
    assert count(db_url, "alamos_spans") == n
    spans = {
        name: (attrs, events)
        for name, attrs, events in query(
            db_url, "SELECT name, attributes, events FROM alamos_spans"
        )
    }
    # Names are cut at 1,024 characters (issue 10, defect 8: documented limits).
    huge_name = HUGE[:1024] + "…"
    assert set(spans) == {*HOSTILE.values(), huge_name, "normal"}
    assert len(spans[huge_name][0]) > 0
    assert as_json(spans[huge_name][0])["huge"] == HUGE[:4096] + "…"
    for i, stored in enumerate(HOSTILE.values()):
        attrs = as_json(spans[stored][0])
        assert attrs[stored] == stored
        assert attrs["i"] == i
        assert (attrs["nan"], attrs["inf"], attrs["ninf"]) == ("NaN", "Infinity", "-Infinity")
        assert attrs["seq"] == [stored, "NaN", "Infinity"]
        (event,) = as_json(spans[stored][1])
        assert event["name"] == stored
        assert event["attributes"] == {stored: "NaN"}
    assert as_json(spans["normal"][0]) == {"ok": True}
    services = {s for (s,) in query(db_url, "SELECT DISTINCT service FROM alamos_spans")}
    assert services == {f"svc {INJECTION} \ufffd\ufffd"}

    # -- logs -------------------------------------------------------------------------
    messages = [m for (m,) in query(db_url, "SELECT message FROM alamos_logs")]
    assert len(messages) == 2 * len(HOSTILE) + 2
    assert sorted(messages) == sorted(
        # Messages are cut at 32,768 characters (issue 10, defect 8).
        [*HOSTILE.values(), *(f"value={s}" for s in HOSTILE.values()), HUGE[:32768] + "…", "normal"]
    )
    for (attrs,) in query(db_url, "SELECT attributes FROM alamos_logs WHERE level = 'WARNING'"):
        data = as_json(attrs)
        stored = data["v"]
        assert data[stored] == "-Infinity"

    # -- metrics: non-finite values kept where the column type can ---------------------
    postgres = not db_url.startswith("sqlite")
    # One snapshot per flush and one at close: look at the last one.
    last = "ts_ns = (SELECT max(ts_ns) FROM alamos_metrics)"
    values = dict(query(db_url, f"SELECT name, value FROM alamos_metrics WHERE {last}"))
    assert values["g_inf"] == math.inf and values["g_ninf"] == -math.inf
    if postgres:
        assert math.isnan(values["g_nan"])
    else:
        assert values["g_nan"] is None  # SQLite has no NaN: it stores NULL
    labels = sorted(
        as_json(lab)["what"]
        for (lab,) in query(
            db_url, f"SELECT labels FROM alamos_metrics WHERE name = 'level' AND {last}"
        )
    )
    assert labels == sorted(HOSTILE.values())
    ((hsum, hcount),) = query(
        db_url, f"SELECT sum, count FROM alamos_metrics WHERE name = 'h' AND {last}"
    )
    assert hcount in (1.0, 2.0)  # prometheus_client puts a NaN observation in no bucket
    assert hsum is None or math.isnan(hsum)  # inf + nan is nan (NULL on SQLite)

    # -- reports, experiments, and the tables are all still there ---------------------
    ((report,),) = query(db_url, "SELECT report FROM alamos_reports WHERE key = 'hostile'")
    assert as_json(report) == {INJECTION: None, "s": "\ufffd\ufffd", "inf": None}
    assert count(db_url, "alamos_experiments") == 2
    assert count(db_url, "alamos_spans", "name = :n", n=INJECTION) == 1
