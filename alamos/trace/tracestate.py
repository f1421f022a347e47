"""The W3C ``tracestate`` header (Trace Context Level 1, §3.3).

``tracestate`` carries the vendor-specific half of a trace context: an ordered
list of ``key=value`` members, left-most being the system that wrote the
``traceparent``.  alamos forwards it untouched unless it has a member of its
own to add, so the class below is small and immutable: parsing never raises
(a bad header from the network must never break the request it came with),
while :meth:`TraceState.update` raises, because a bad key there is a bug in
*our* caller that it should hear about.

Section numbers in comments refer to the W3C Recommendation
https://www.w3.org/TR/trace-context-1/.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

__all__ = [
    "MAX_MEMBERS",
    "MAX_PROPAGATED_LENGTH",
    "TRUNCATE_FIRST_LENGTH",
    "TraceState",
]

#: §3.3.1.1: "There can be a maximum of 32 list-members in a list" (and the
#: ABNF ``list = list-member 0*31( OWS "," OWS list-member )``).
MAX_MEMBERS = 32

#: §3.3.1.5: vendors SHOULD propagate at least 512 characters of a combined
#: header; we propagate exactly that much and truncate beyond it.
MAX_PROPAGATED_LENGTH = 512

#: §3.3.1.5: when truncating, "entries larger than 128 characters long SHOULD
#: be removed first".
TRUNCATE_FIRST_LENGTH = 128

#: Longest input we are willing to scan.  The longest *valid* list is 32
#: members of a 256-char key, ``=`` and a 256-char value plus 31 commas
#: (16 447 chars); twice that leaves room for OWS and empty members while
#: bounding the work a hostile peer can make every request do.
_MAX_INPUT_LENGTH = 2 * (MAX_MEMBERS * (256 + 1 + 256) + MAX_MEMBERS - 1)

# §3.3.1.3.1 Key:
#   simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
#   multi-tenant-key = tenant-id "@" system-id
#   tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
#   system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
_KEY_RE = re.compile(
    r"[a-z][_0-9a-z\-*/]{0,255}"
    r"|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
)

# §3.3.1.3.2 Value:
#   value    = 0*255(chr) nblk-chr
#   nblk-chr = %x21-2B / %x2D-3C / %x3E-7E     ; printable, not "," nor "="
#   chr      = %x20 / nblk-chr
_VALUE_RE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")

# RFC 7230 §3.2.3: OWS = *( SP / HTAB ).
_OWS = " \t"

Member = tuple[str, str]


def _clip(thing: object) -> str:
    """``repr(thing)``, shortened: error messages must stay readable."""
    text = repr(thing)
    return text if len(text) <= 60 else f"{text[:50]}...({len(text)} chars)"


def _check_member(key: object, value: object) -> None:
    """Raise :class:`ValueError` unless ``key=value`` is a valid list-member."""
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise ValueError(
            f"invalid tracestate key {_clip(key)}: expected a lower-case simple key "
            "(a-z then up to 255 of a-z 0-9 _ - * /) or a tenant@system key (W3C §3.3.1.3.1)"
        )
    if not isinstance(value, str) or _VALUE_RE.fullmatch(value) is None:
        raise ValueError(
            f"invalid tracestate value {_clip(value)} for key {_clip(key)}: expected 1 to 256 "
            "printable ASCII characters other than ',' and '=', not ending with a space "
            "(W3C §3.3.1.3.2)"
        )


def _validate_members(_instance: Any, _attribute: Any, members: tuple[Member, ...]) -> None:
    """attrs validator: the whole list obeys §3.3.1 or the object is not built.

    Validating in the constructor (rather than only in :meth:`TraceState.parse`)
    means no ``TraceState`` can ever hold something we would refuse to parse,
    so :meth:`TraceState.format` never emits an invalid header.
    """
    if len(members) > MAX_MEMBERS:
        raise ValueError(
            f"tracestate has {len(members)} members; at most {MAX_MEMBERS} are allowed "
            "(W3C §3.3.1.1)"
        )
    seen: set[str] = set()
    for member in members:
        if not isinstance(member, tuple) or len(member) != 2:
            raise ValueError(f"tracestate member {_clip(member)} is not a (key, value) pair")
        key, value = member
        _check_member(key, value)
        if key in seen:
            # §3.3.1.4: "Only one entry per key is allowed".
            raise ValueError(f"duplicate tracestate key {_clip(key)} (W3C §3.3.1.4)")
        seen.add(key)


def _to_tuple(members: Iterable[Member]) -> tuple[Member, ...]:
    """attrs converter: accept any iterable of pairs, store an immutable tuple."""
    return tuple(members)


def _combine(value: object) -> str | None:
    """Join one or several header values into a single field value, or ``None``.

    §3.3.1.1: multiple ``tracestate`` fields "MUST be combined into a single
    header according to RFC7230", i.e. joined with commas in order.  Anything
    that is not text (or ASCII bytes) makes the whole header unusable.
    """
    if value is None:
        return None
    parts = value if isinstance(value, list | tuple) else (value,)
    texts: list[str] = []
    total = 0
    for part in parts:
        if not isinstance(part, str | bytes | bytearray):
            return None
        # Check the size before decoding or joining: never copy a huge input.
        total += len(part) + 1
        if total > _MAX_INPUT_LENGTH + 1:
            return None
        if isinstance(part, str):
            texts.append(part)
            continue
        try:
            texts.append(bytes(part).decode("ascii"))
        except UnicodeDecodeError:
            return None
    return ",".join(texts)


@attrs.frozen(slots=True)
class TraceState:
    """An immutable, validated ``tracestate`` list, left-most member first.

    Build one with :meth:`parse` (from the wire) or by :meth:`update` on an
    empty ``TraceState()``; every "mutation" returns a new object so a state
    shared by several spans cannot change under any of them.

    Iteration yields ``(key, value)`` pairs in order (like ``dict.items()``,
    because order is meaningful here), while ``key in state`` tests keys.
    """

    members: tuple[Member, ...] = attrs.field(
        default=(), converter=_to_tuple, validator=_validate_members
    )

    @classmethod
    def parse(cls, value: str | bytes | list[Any] | tuple[Any, ...] | None) -> TraceState:
        """Parse one header value or a list of them; invalid input gives an empty state.

        The Level 1 rules applied (§3.3.1): multiple fields are combined with
        ``,``; empty and whitespace-only members are skipped; OWS around each
        member is ignored (so trailing spaces of a value are dropped while its
        leading spaces are kept, as the value grammar requires); any malformed
        member, duplicate key, or more than 32 members makes the header
        unparseable, and §4.3 step 3 lets us "discard the entire header":
        which we do rather than guess which half of a broken list to trust.
        This also matches the W3C test suite (``test_tracestate_duplicated_keys``,
        ``test_tracestate_member_count_limit``).
        """
        combined = _combine(value)
        if not combined:
            return _EMPTY
        members: list[Member] = []
        for raw in combined.split(","):
            member = raw.strip(_OWS)
            if not member:
                continue
            key, sep, val = member.partition("=")
            if not sep:
                return _EMPTY
            members.append((key, val))
            if len(members) > MAX_MEMBERS:
                return _EMPTY
        if not members:
            return _EMPTY
        try:
            return cls(tuple(members))
        except ValueError:
            return _EMPTY

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""
        for k, v in self.members:
            if k == key:
                return v
        return None

    def update(self, key: str, value: str) -> TraceState:
        """Add or modify ``key``, moving it to the front (§3.5 mutation rules).

        §3.5: "Modified keys SHOULD be moved to the beginning (left) of the
        list" and new ones "SHOULD be added to the beginning".  If the list is
        already full (32 members) the right-most member is dropped to make
        room: the spec deletes from the end when it must shorten a list
        (§3.3.1.5), and the right-most entry is the oldest hop.

        Raises :class:`ValueError` if ``key`` or ``value`` break the grammar:
        unlike parsing, this is our own code asking, and silently dropping
        its member would hide the bug.
        """
        _check_member(key, value)
        rest = tuple(m for m in self.members if m[0] != key)
        return TraceState(((key, value), *rest[: MAX_MEMBERS - 1]))

    def delete(self, key: str) -> TraceState:
        """A copy without ``key`` (unchanged if absent); §3.5 allows deletion."""
        if self.get(key) is None:
            return self
        return TraceState(tuple(m for m in self.members if m[0] != key))

    def format(self, limit: int | None = MAX_PROPAGATED_LENGTH) -> str:
        """The header value, truncated to ``limit`` characters (``None``: no limit).

        §3.3.1.5: truncation "MUST truncate whole entries.  Entries larger than
        128 characters long SHOULD be removed first.  Then entries SHOULD be
        removed starting from the end".  We remove the right-most over-long
        entry while any remains and the header is still too long, then
        right-most entries, so we drop as little as needed.  Members are
        joined with a bare ``,`` because §3.3.1.1 says a caller SHOULD NOT
        generate optional whitespace beyond a single space.
        """
        entries = [f"{k}={v}" for k, v in self.members]
        if limit is not None:
            while entries and sum(map(len, entries)) + len(entries) - 1 > limit:
                drop = len(entries) - 1
                for i in range(len(entries) - 1, -1, -1):
                    if len(entries[i]) > TRUNCATE_FIRST_LENGTH:
                        drop = i
                        break
                del entries[drop]
        return ",".join(entries)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.members)

    def __str__(self) -> str:
        return self.format(limit=None)


_EMPTY = TraceState()
