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
0.49 us a value, against 0.11 us for this module's batch keys plus a
``Counter``: timeit over batches of 512 durations on the idle 2-core VM,
2026-11-29), so values are not added one by one: :func:`positive_keys` computes
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
import binascii
import math
import operator
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import repeat
from typing import Any

from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

__all__ = [
    "RELATIVE_ACCURACY",
    "BinSum",
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


# ---------------------------------------------------------------------------
# Summing many stored sketches fast
# ---------------------------------------------------------------------------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of a protobuf message: an int
    for a varint, bytes for a length-delimited field, 8 bytes for a fixed64."""
    i, n = 0, len(data)
    while i < n:
        tag, i = _varint(data, i)
        field, wire = tag >> 3, tag & 7
        value: Any
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i : i + size], i + size
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        if i > n:
            raise ValueError("truncated protobuf")
        yield field, wire, value


class BinSum:
    """The sum of many stored sketches, as bin counts: what merging them
    gives (:func:`merge_all`), at a fraction of the cost.

    ddsketch's own decoding adds each of a stored sketch's bins to a
    ``DenseStore`` one by one (its bins come in chunks of 128, mostly
    zeros), and merging does it again: 784 us a row measured on sketches of
    40 durations (128 bins), where reading the packed doubles with
    :mod:`array` and adding them to a list slice by C-level ``map`` takes
    about 25 us.  So the dashboard can merge the 8,640 rows of a day of
    ``scripts/dashboard_bench.py``.  A stored sketch this does not
    recognise (another mapping, negative values, the sparse bin map) is
    decoded and merged the slow way, and gives the same sum.
    """

    __slots__ = ("_bins", "_low", "_other", "zero")

    def __init__(self) -> None:
        self._bins: list[float] = []
        self._low = 0
        """The key of ``_bins[0]``."""
        self.zero = 0.0
        self._other: BaseDDSketch | None = None

    def _room(self, low: int, high: int) -> None:
        """Grow ``_bins`` to hold keys ``low`` to ``high - 1``."""
        if not self._bins:
            self._bins = [0.0] * (high - low)
            self._low = low
            return
        if low < self._low:
            self._bins[:0] = [0.0] * (self._low - low)
            self._low = low
        end = self._low + len(self._bins)
        if high > end:
            self._bins.extend([0.0] * (high - end))

    def add_counts(self, offset: int, counts: Sequence[float]) -> None:
        """Add ``counts[i]`` to the bin of key ``offset + i``."""
        if not counts:
            return
        self._room(offset, offset + len(counts))
        i = offset - self._low
        j = i + len(counts)
        self._bins[i:j] = map(operator.add, self._bins[i:j], counts)

    def add_sum(self, other: BinSum) -> None:
        """Add everything ``other`` holds."""
        self.add_counts(other._low, other._bins)
        self.zero += other.zero
        if other._other is not None:
            if self._other is None:
                self._other = empty()
            self._other.merge(other._other)

    def compact(self) -> tuple[int, array[float], float] | None:
        """``(low key, counts, zero count)`` of the sum, without the zero bins
        at either end; ``None`` if a stored sketch needed ddsketch's own merge."""
        if self._other is not None:
            return None
        bins = self._bins
        first = next((i for i, c in enumerate(bins) if c), len(bins))
        last = len(bins)
        while last > first and not bins[last - 1]:
            last -= 1
        return self._low + first, array("d", bins[first:last]), self.zero

    def add_keys(self, keys: Iterable[int]) -> None:
        """Add one to the bin of each key (see :func:`positive_keys`)."""
        for key, n in Counter(keys).items():
            self.add_counts(key, (float(n),))

    def add_durations(self, durations: Sequence[int]) -> None:
        """Add raw durations (ns), as a live sketch would count them."""
        positive = [d for d in durations if d > 0]
        self.zero += len(durations) - len(positive)
        self.add_keys(positive_keys(positive))

    def add_text(self, text: str) -> None:
        """Add a stored sketch (:func:`encode`'s text)."""
        try:
            if self._add_common_text(text):
                return
            data = binascii.a2b_base64(text)
            if self._add_proto(data):
                return
        except (ValueError, IndexError, binascii.Error):
            pass
        other = decode(text)  # raises ValueError if it is not a sketch at all
        if self._other is None:
            self._other = empty()
        self._other.merge(other)

    def _add_common_text(self, text: str) -> bool:
        """A stored sketch in the layout ddsketch writes for alamos' (the
        mapping, the positive store: its packed counts then its offset; an
        empty negative store; the zero count if any), read without decoding
        all of its text; False (having added nothing) for anything else.

        Why: base64-decoding a whole stored sketch (2.5 KB of text on the
        bench) was 19 of the 30 us a row took.  Its counts come in chunks of
        128 doubles, mostly zeros, and a run of zero bytes is a run of "A"s
        in base64: so only the header, the part of the counts between the
        first and the last non-"A" character, and the tail are decoded (C-level
        ``strip`` finds them).  Measured on the 8,289 rows of the bench:
        see :class:`BinSum`.
        """
        head = binascii.a2b_base64(text[:24])  # the first 18 bytes
        if not head.startswith(_HEAD):
            return False
        size, i = _varint(head, len(_HEAD))
        end = i + size
        if head[i] != 0x12:
            return False
        packed, p0 = _varint(head, i + 1)
        p1 = p0 + packed
        if packed % 8 or p1 > end:
            return False
        g0, g1 = -(-p0 // 3), p1 // 3  # base64 groups (3 bytes) inside the counts
        if g1 - g0 < 2:
            return False
        inside = text[4 * g0 : 4 * g1]
        lead = (len(inside) - len(inside.lstrip("A"))) // 4
        trail = (len(inside) - len(inside.rstrip("A"))) // 4
        q0, q1 = 3 * (g0 + lead), 3 * max(g0 + lead, g1 - trail)
        tail = binascii.a2b_base64(text[4 * g1 :])  # from byte 3 * g1 on
        # The counts: the bytes of the partial groups at both ends, the
        # decoded middle, zeros between.
        buf = bytearray(packed)
        buf[: 3 * g0 - p0] = head[p0 : 3 * g0]
        if q1 > q0:
            buf[q0 - p0 : q1 - p0] = binascii.a2b_base64(text[4 * (g0 + lead) : 4 * (q1 // 3)])
        buf[3 * g1 - p0 :] = tail[: p1 - 3 * g1]
        if len(buf) != packed:
            return False
        # Whole zero doubles stripped at both ends (a count is a positive
        # double, whose last byte, little-endian, is never 0: so rstrip
        # removes whole doubles; lstrip may eat low zero bytes of the
        # first count, hence the // 8).
        d0 = (packed - len(buf.lstrip(b"\x00"))) // 8
        d1 = len(buf.rstrip(b"\x00"))
        raw = bytes(buf[8 * d0 : d1 + (-d1) % 8])
        tail_from = 3 * g1
        j = p1 - tail_from
        offset = 0
        if j < end - tail_from:
            if tail[j] != 0x18:
                return False
            value, j = _varint(tail, j + 1)
            offset = (value >> 1) ^ -(value & 1)  # zigzag (sint32)
        if j != end - tail_from:
            return False
        rest = tail[j:]
        zero = 0.0
        if rest.startswith(b"\x1a\x00"):
            rest = rest[2:]
        if rest:
            if len(rest) != 9 or rest[0] != 0x21:
                return False
            zero = struct.unpack_from("<d", rest, 1)[0]
        counts = array("d")
        counts.frombytes(raw)
        if _BIG_ENDIAN:
            counts.byteswap()
        self.add_counts(offset + d0, counts)
        self.zero += zero
        return True

    def _add_proto(self, data: bytes) -> bool:
        """Add a sketch's protobuf; False (having added nothing) if it is not
        one this fast path reads."""
        positive: bytes = b""
        zero = 0.0
        for field, wire, value in _fields(data):
            if field == 1 and wire == 2:
                if value != _MAPPING_BYTES:
                    return False
            elif field == 2 and wire == 2:
                positive = value
            elif field == 3 and wire == 2:
                if value and any(_store_counts(value)[1]):
                    return False  # negative durations: never written by alamos
            elif field == 4 and wire == 1:
                zero = struct.unpack("<d", value)[0]
            else:
                return False
        offset, counts = _store_counts(positive)
        self.add_counts(offset, counts)
        self.zero += zero
        return True

    def sketch(self) -> BaseDDSketch:
        """A sketch holding the sum (its quantiles are the merge's)."""
        keys = {self._low + i: c for i, c in enumerate(self._bins) if c}
        out = Bins(keys, self.zero).sketch()
        if self._other is not None:
            out.merge(self._other)
        return out

    @property
    def count(self) -> float:
        total = math.fsum(self._bins) + self.zero
        return total + (self._other.count if self._other is not None else 0.0)


def _store_counts(data: bytes) -> tuple[int, Sequence[float]]:
    """``(offset, counts)`` of a stored ``Store`` message; ValueError for the
    sparse ``binCounts`` map (ddsketch never writes it for a DenseStore)."""
    offset = 0
    counts: Sequence[float] = ()
    for field, wire, value in _fields(data):
        if field == 2 and wire == 2:
            packed = array("d")
            packed.frombytes(value)
            if _BIG_ENDIAN:
                packed.byteswap()
            counts = packed if not counts else [*counts, *packed]
        elif field == 2 and wire == 1:
            counts = [*counts, struct.unpack("<d", value)[0]]
        elif field == 3 and wire == 0:
            offset = (value >> 1) ^ -(value & 1)  # zigzag (sint32)
        else:
            raise ValueError(f"unexpected field {field} in a stored sketch's store")
    return offset, counts


def _mapping_bytes() -> bytes:
    for field, _, value in _fields(base64.b64decode(encode(empty()))):
        if field == 1:
            return bytes(value)
    raise AssertionError("ddsketch wrote no mapping")


_BIG_ENDIAN = sys.byteorder == "big"
# The stored form of alamos' mapping (field 1 of the DDSketch message): a
# stored sketch whose mapping is anything else is merged the slow way.
_MAPPING_BYTES = _mapping_bytes()
# The start of every stored sketch of alamos: the mapping, then the tag of
# the positive store.
_HEAD = bytes([0x0A, len(_MAPPING_BYTES)]) + _MAPPING_BYTES + b"\x12"
