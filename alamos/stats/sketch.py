"""The quantile sketch of span durations: DataDog's DDSketch, stored as text.

`ddsketch <https://github.com/DataDog/sketches-py>`_ (Apache-2.0) is a
mergeable quantile sketch with a *relative* error guarantee: with
:data:`RELATIVE_ACCURACY` = 0.01, any quantile it returns is within 1% of the
true value of that quantile (``|estimate - true| <= 0.01 * true``), for
every quantile, however many sketches were merged.  Durations are
nanoseconds, so its logarithmic bins (``gamma = 1.0202``) cover 1 ns to
hours in under 1,500 bins; a sketch of one span name typically holds tens.

A stored sketch is the sketch's protobuf (ddsketch's own serialisation,
the format DataDog's other libraries read) in base64 ASCII.

Adding values is the costly part of live statistics (``DDSketch.add`` takes
about 1.3 us a value here, a third of what a whole recorded span costs the
process), so values are not added one by one: :func:`positive_keys` computes
the bin keys of a batch by C-level ``map`` calls, the caller counts them
with :class:`collections.Counter`, and :class:`Bins` fills the sketch's
store once, when a row is emitted, one ``add`` per distinct key.  The key
is the mapping's, ``ceil(log(v, 2) * multiplier)``, with ``log2(v)``
(measured three times faster than ``log(v, 2)`` here): the two differ only
for a value within a rounding error of a bin boundary, whose key may then
be the neighbouring one, an error of about 1e-16 beyond the guarantee.
:func:`_check_keys` compares them with ``mapping.key`` at import, and the
mapping's own ``key`` is used if they ever differ.
"""

from __future__ import annotations

import base64
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from itertools import repeat
from typing import Any

from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

__all__ = [
    "RELATIVE_ACCURACY",
    "Bins",
    "decode",
    "empty",
    "encode",
    "merge_all",
    "positive_keys",
    "quantile",
]

#: Every quantile read from a sketch is within this relative error.
RELATIVE_ACCURACY = 0.01

_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
# LogarithmicMapping.key(v) is int(ceil(log(v, 2) * multiplier) + offset),
# offset 0, multiplier log(2) / log1p(gamma - 1): derived here as ddsketch does.
_MULTIPLIER = math.log(2) / math.log1p(2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY))


def _log2_keys(values: Iterable[float]) -> Iterable[int]:
    return map(math.ceil, map(operator.mul, map(math.log2, values), repeat(_MULTIPLIER)))


def _check_keys() -> bool:
    probe: list[float] = [1, 2, 3, 7, 999, 1000, 1001, 12_345, 10**6, 10**9 + 7, 3.5, 0.25]
    probe += [round(_MAPPING.value(k)) for k in range(1, 1500, 7)]
    return list(_log2_keys(probe)) == [_MAPPING.key(v) for v in probe]


_KEYS: Callable[[Iterable[float]], Iterable[int]] = (
    _log2_keys if _check_keys() else partial(map, _MAPPING.key)
)


def positive_keys(values: Iterable[float]) -> Iterable[int]:
    """The bin keys of ``values`` (each above 0), lazily."""
    return _KEYS(values)


def empty() -> BaseDDSketch:
    """A new, empty sketch with alamos' mapping."""
    return BaseDDSketch(_MAPPING, DenseStore(), DenseStore(), 0.0)


class Bins:
    """A sketch's content as counted: ``{key: count}`` and the count of zeros."""

    __slots__ = ("keys", "zero")

    def __init__(self, keys: Mapping[int, float], zero: float = 0) -> None:
        self.keys = keys
        self.zero = zero

    def sketch(self) -> BaseDDSketch:
        store = DenseStore()
        for key in sorted(self.keys):
            store.add(key, self.keys[key])
        return BaseDDSketch(_MAPPING, store, DenseStore(), float(self.zero))


def encode(sketch: BaseDDSketch) -> str:
    """The sketch as text: its protobuf in base64."""
    from ddsketch.pb.proto import DDSketchProto  # protobuf: 50 ms to import, first use only

    data = DDSketchProto.to_proto(sketch).SerializeToString()  # type: ignore[no-untyped-call]
    return base64.b64encode(data).decode("ascii")


def decode(text: str) -> BaseDDSketch:
    """The sketch :func:`encode` wrote.  Raises ValueError if it is not one."""
    from ddsketch.pb.ddsketch_pb2 import DDSketch as _SketchProto
    from ddsketch.pb.proto import DDSketchProto

    try:
        proto = _SketchProto()
        proto.ParseFromString(base64.b64decode(text.encode("ascii"), validate=True))
        sketch: BaseDDSketch = DDSketchProto.from_proto(proto)  # type: ignore[no-untyped-call]
    except Exception as exc:  # binascii.Error, DecodeError, ValueError
        raise ValueError(f"not a stored alamos sketch: {exc}") from exc
    return sketch


def merge_all(texts: Iterable[str]) -> BaseDDSketch:
    """One sketch of everything the stored sketches ``texts`` hold."""
    out = empty()
    for text in texts:
        out.merge(decode(text))
    return out


def quantile(sketch: Any, q: float) -> float | None:
    """The ``q`` quantile (0 to 1) of ``sketch``, ``None`` if it is empty."""
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)
