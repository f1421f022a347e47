"""report.sql.reading: the one "this experiment and its subtree" condition,
used by every reader (traces, logs, metrics, statistics, the dashboard)."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, Table, Text, create_engine, insert, select
from sqlalchemy.pool import NullPool

from alamos.report.sql import normalize_url
from alamos.report.sql.reading import in_subtree


def test_in_subtree_matches_the_path_and_below_and_nothing_like_it(db_url: str) -> None:
    md = MetaData()
    t = Table("reading_paths", md, Column("path", Text))
    engine = create_engine(normalize_url(db_url), poolclass=NullPool)
    paths = ["a_b", "a_b.c", "a_b.c.d", "axb.c", "a_bc", "a_bc.d", "a%b.c", "a", "b.a_b"]
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(t), [{"path": p} for p in paths])

            def under(path: str) -> list[str]:
                rows = conn.execute(select(t.c.path).where(in_subtree(t.c.path, path)))
                return sorted(rows.scalars())

            got, pct = under("a_b"), under("a%b")
        # "_" and "%" are literal: not one-character or any-length wildcards.
        assert got == ["a_b", "a_b.c", "a_b.c.d"]
        assert pct == ["a%b.c"]
    finally:
        md.drop_all(engine)
        engine.dispose()
