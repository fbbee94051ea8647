"""A set of integer ids that stays small for the dense ids of a message history: what a walk, and an
upsert's batches, have already seen."""

from __future__ import annotations

from itertools import repeat
from operator import sub
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


class IdSet:
    """
    A set of integer ids that stays small, and quick to fill a page at a time, for the dense ids of a
    message history.

    Ids within :data:`MAX_SPAN` on either side of the first ids added are kept as one byte each, in a map that
    grows in each direction as ids come (about 1 MB per million dense ids); any others fall back to a plain
    set, so correctness never depends on the ids being dense. A page of ids that fills a run of unmarked
    bytes (a newest-first page of a dense history) is marked in one slice assignment, not a step per id.
    """

    #: Ids kept as bytes on each side of the first ids: 16 MB at most each way.
    MAX_SPAN = 16_000_000

    def __init__(self) -> None:
        self._origin: int | None = None
        self._up = bytearray()  # byte i: origin + i
        self._down = bytearray()  # byte i: origin - 1 - i
        self._other: set[Any] = set()
        self.size = 0

    def add(self, value: Any) -> bool:
        """Add ``value``; return False when it was already there."""
        return self.add_many((value,))[0]

    def add_many(self, values: Sequence[Any]) -> list[bool]:
        """Add each of ``values`` in order; for each, whether it was new (a value twice: new the first time)."""
        if not values:
            return []
        types = set(map(type, values))
        if types == {int}:  # exact ints: True is not the id 1
            if self._origin is None:  # above the first ids: a newest-first walk's ids all fall below it
                self._origin = max(values) + 1
            origin, low, high = self._origin, min(values), max(values)
            if origin <= low and high - origin < self.MAX_SPAN:
                return self._mark(self._up, list(map(sub, values, repeat(origin))))
            if high < origin and origin - 1 - low < self.MAX_SPAN:
                return self._mark(self._down, list(map(sub, repeat(origin - 1), values)))
        if len(values) > 1 and int in types:  # ints on both sides of the origin (a walk's first page), or
            return [self.add_many([value])[0] for value in values]  # ints and others: each on its own
        fresh = []
        for value in values:
            new = value not in self._other
            if new:
                self._other.add(value)
            fresh.append(new)
        self.size += fresh.count(True)
        return fresh

    def _mark(self, marks: bytearray, offsets: list[int]) -> list[bool]:
        low, high, count = min(offsets), max(offsets), len(offsets)
        if high >= len(marks):
            marks.extend(bytes(max(high + 1 - len(marks), len(marks))))
        if high - low + 1 == count and marks.find(1, low, high + 1) == -1 and len(set(offsets)) == count:
            marks[low : high + 1] = b"\x01" * count  # a run of new ids, each once
            self.size += count
            return [True] * count
        fresh = []
        for offset in offsets:
            if marks[offset]:
                fresh.append(False)
            else:
                marks[offset] = 1
                fresh.append(True)
        self.size += fresh.count(True)
        return fresh
