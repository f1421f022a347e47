"""BinSum (the dashboard's sum of stored sketches) against ddsketch's own
decode and merge: the same bins, so the same quantiles, exactly."""

from __future__ import annotations

import random
from collections import Counter

from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

from alamos.stats.sketch import Bins, BinSum, encode, merge_all, positive_keys

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0)


def _stored(rnd: random.Random) -> str:
    n = rnd.randrange(1, 400)
    scale = 10 ** rnd.randrange(0, 11)
    durations = [max(0, int(scale * rnd.lognormvariate(0, rnd.random() * 3))) for _ in range(n)]
    positive = [d for d in durations if d > 0]
    return encode(Bins(Counter(positive_keys(positive)), len(durations) - len(positive)).sketch())


def test_binsum_equals_the_merge_of_the_decoded_sketches() -> None:
    rnd = random.Random(11)
    for _ in range(300):
        texts = [_stored(rnd) for _ in range(rnd.randrange(1, 8))]
        merged = merge_all(texts)
        summed = BinSum()
        for text in texts:
            summed.add_text(text)
        assert summed.compact() is not None  # every one read by the fast path
        got = summed.sketch()
        assert got.count == merged.count == summed.count
        assert [got.get_quantile_value(q) for q in QS] == [merged.get_quantile_value(q) for q in QS]


def test_a_foreign_sketch_is_merged_the_slow_way_with_the_same_result() -> None:
    from alamos.stats.sketch import decode

    other = BaseDDSketch(LogarithmicMapping(0.01), DenseStore(), DenseStore(), 0.0)
    for v in (-5.0, 3.0, 1000.0):  # a negative value: never written by alamos
        other.add(v)
    import base64

    from ddsketch.pb.proto import DDSketchProto

    foreign = base64.b64encode(DDSketchProto.to_proto(other).SerializeToString()).decode()
    ours = _stored(random.Random(3))
    summed = BinSum()
    summed.add_text(ours)
    summed.add_text(foreign)
    assert summed.compact() is None  # a part needed ddsketch's merge
    merged = merge_all([ours, foreign])
    assert summed.sketch().count == merged.count == decode(ours).count + 3
    assert summed.sketch().get_quantile_value(0.0) == merged.get_quantile_value(0.0)


def test_durations_add_as_a_live_sketch_counts_them() -> None:
    durations = [0, 5, 5, 1_000, 2_000_000, 7]
    summed = BinSum()
    summed.add_durations(durations)
    live = Bins(Counter(positive_keys([d for d in durations if d > 0])), 1).sketch()
    assert summed.count == 6
    assert [summed.sketch().get_quantile_value(q) for q in QS] == [
        live.get_quantile_value(q) for q in QS
    ]
