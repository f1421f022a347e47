"""Attribute values: allowed types, coercion, limits, hostile objects."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from alamos import Experiment
from alamos.core.attributes import (
    MAX_ATTRIBUTES,
    MAX_KEY,
    MAX_SEQUENCE,
    MAX_STRING,
    coerce_key,
    coerce_value,
)
from alamos.testing import Recorder


class Thing:
    def __repr__(self) -> str:
        return "<Thing>"


class HostileRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class HostileStr(str):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Color(enum.Enum):
    RED = 1


class Size(enum.IntEnum):
    BIG = 3


def test_documented_limits() -> None:
    assert (MAX_ATTRIBUTES, MAX_STRING, MAX_SEQUENCE, MAX_KEY) == (128, 4096, 128, 256)


@pytest.mark.parametrize("value", ["s", "", True, False, 0, -3, 2**70, 1.5, float("inf")])
def test_scalars_are_kept(value: Any) -> None:
    out = coerce_value(value)
    assert out == value and type(out) is type(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, "a", True, 2.5], (1, "a", True, 2.5)),
        ((1, 2), (1, 2)),
        ({3}, (3,)),
        (frozenset(), ()),
        ([], ()),
        ([None, Thing(), [1]], ("None", "<Thing>", "[1]")),
    ],
)
def test_sequences_become_tuples_of_scalars(value: Any, expected: tuple[Any, ...]) -> None:
    assert coerce_value(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "None"),
        (Thing(), "<Thing>"),
        ({"a": 1}, "{'a': 1}"),
        (b"raw", "b'raw'"),
        (Color.RED, "<Color.RED: 1>"),
        (range(2), "range(0, 2)"),
    ],
)
def test_anything_else_is_its_repr(value: Any, expected: str) -> None:
    assert coerce_value(value) == expected


def test_hostile_repr() -> None:
    assert coerce_value(HostileRepr()) == "<unrepresentable HostileRepr: RuntimeError>"
    assert coerce_value([HostileRepr()]) == ("<unrepresentable HostileRepr: RuntimeError>",)


def test_subclasses_become_plain_types() -> None:
    assert type(coerce_value(Size.BIG)) is int and coerce_value(Size.BIG) == 3
    out = coerce_value(HostileStr("text"))
    assert type(out) is str and out == "text"
    assert coerce_value((Size.BIG,)) == (3,)
    assert type(coerce_value((Size.BIG,))[0]) is int


def test_long_strings_are_truncated() -> None:
    out = coerce_value("x" * (MAX_STRING + 10))
    assert out == "x" * MAX_STRING + "…"
    assert coerce_value("y" * MAX_STRING) == "y" * MAX_STRING  # exactly at the limit: kept
    (item,) = coerce_value(["z" * (MAX_STRING + 1)])
    assert item == "z" * MAX_STRING + "…"


def test_long_reprs_are_truncated() -> None:
    class Long:
        def __repr__(self) -> str:
            return "r" * (MAX_STRING * 2)

    assert coerce_value(Long()) == "r" * MAX_STRING + "…"


def test_long_sequences_are_truncated() -> None:
    assert coerce_value(list(range(1000))) == tuple(range(MAX_SEQUENCE))


def test_keys() -> None:
    assert coerce_key("k") == "k"
    assert coerce_key(3) == "3"
    assert coerce_key("k" * 1000) == "k" * MAX_KEY
    assert coerce_key(HostileStr("key")) == "key"

    class NoStr:
        def __str__(self) -> str:
            raise RuntimeError

        def __repr__(self) -> str:
            return "<NoStr>"

    assert coerce_key(NoStr()) == "<NoStr>"


def test_span_attribute_coercion_end_to_end(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("x", attributes={"thing": Thing()}) as span:
        span.set("list", [1, 2])
        span.set("hostile", HostileRepr())
        span.set(7, "non-str key")  # type: ignore[arg-type]
        span.set(["unhashable"], "key")  # type: ignore[arg-type]
        span.set_attributes({"long": "x" * 5000, "none": None})
        span.event("e", obj=Thing(), seq=(1, Thing()))
    record = rec.span(name="x")
    attrs = dict(record.attributes)
    assert attrs["thing"] == "<Thing>"
    assert attrs["list"] == (1, 2)
    assert attrs["hostile"] == "<unrepresentable HostileRepr: RuntimeError>"
    assert attrs["7"] == "non-str key"
    assert attrs["['unhashable']"] == "key"
    assert attrs["long"] == "x" * MAX_STRING + "…"
    assert attrs["none"] == "None"
    assert dict(record.events[0].attributes) == {"obj": "<Thing>", "seq": (1, "<Thing>")}


def test_at_most_128_attributes(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("x") as span:
        for i in range(200):
            span.set(f"k{i}", i)
        span.set("k0", "updated")  # an existing key can still change
        assert span.dropped_attributes == 200 - MAX_ATTRIBUTES
    attrs = rec.span(name="x").attributes
    assert len(attrs) == MAX_ATTRIBUTES
    assert attrs["k0"] == "updated" and "k127" in attrs and "k128" not in attrs


def test_event_limits(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("x") as span:
        span.event("big", **{f"a{i}": i for i in range(300)})
        for i in range(300):
            span.event(f"e{i}")
    record = rec.span(name="x")
    assert len(record.events) == MAX_ATTRIBUTES
    assert len(record.events[0].attributes) == MAX_ATTRIBUTES


def test_factory_attributes_follow_the_limits(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("x", attributes={f"k{i}": i for i in range(200)}):
        pass
    assert len(rec.span(name="x").attributes) == MAX_ATTRIBUTES
