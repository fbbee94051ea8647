"""
Pages of ``/api/messages`` decoded once into columns: the export's path, with no Python dict per row.

msgspec decodes a page's JSON straight into typed records, whose values are then read out once as one
sequence per field (:class:`MessageColumns`). The walker checks order, window and duplicates on those
columns, and the export builds its Arrow batch from them.

Only a page that is exactly what the API reference describes takes this path: every row's ``id`` a whole
number within 64 bits, ``created_at`` an RFC 3339 time with its offset, the texts text or null,
``credits_used`` a whole number or null, and ``meta`` an object. Any other page (a number where text is due,
an id as a string, a time without its offset, an error body ...) is decoded as plain JSON and walked row by
row, so an odd value gives the same result and the same typed error as it always did.
"""

from __future__ import annotations

from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from airflow_provider_smsnexus.hooks._answers import decode_body

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

#: The fields of a message, as the API reference names them (the export's sources: ``transfers/schema.py``).
MESSAGE_FIELDS = ("id", "from", "to", "body", "direction", "status", "credits_used", "created_at")


class MessageColumns:
    """
    Messages as columns: for each of :data:`MESSAGE_FIELDS`, its values in listing order.

    ``created_at`` holds aware datetimes as decoded (any offset); ``id`` holds ints.

    :param values: the sequence of each field's values, all of one length.
    """

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Sequence[Any]]) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values["id"])

    def __repr__(self) -> str:
        return f"MessageColumns({len(self)} rows)"

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts (see :meth:`rows`)."""
        return iter(self.rows())

    def field(self, name: str) -> Sequence[Any]:
        """The values of field ``name``, one of :data:`MESSAGE_FIELDS` (KeyError for any other: a column read
        from a field the records do not hold would be silently empty)."""
        return self.values[name]

    def take(self, indices: Sequence[int]) -> MessageColumns:
        """The rows at ``indices``, in that order."""
        if len(indices) == len(self):  # every row kept: indices are 0..n-1 (the walker keeps rows in order)
            return self
        return MessageColumns({name: [values[i] for i in indices] for name, values in self.values.items()})

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts of :data:`MESSAGE_FIELDS` (``created_at`` as the decoded datetime, not text)."""
        names = list(self.values)
        return [dict(zip(names, row)) for row in zip(*self.values.values())]

    @classmethod
    def concat(cls, parts: Iterable[MessageColumns]) -> MessageColumns:
        """One set of columns holding the rows of ``parts``, in order."""
        parts = list(parts)
        return cls(
            {name: list(chain.from_iterable(p.values[name] for p in parts)) for name in MESSAGE_FIELDS}
        )


_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class _Message(msgspec.Struct, kw_only=True, gc=False):
    """A message whose every value is of its documented type; fields in :data:`MESSAGE_FIELDS` order, so
    that a record's tuple is one row of the columns."""

    id: _Int64
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    body: str | None = None
    direction: str | None = None
    status: str | None = None
    credits_used: _Int64 | None = None
    created_at: _Aware


class _Page(msgspec.Struct, gc=False):
    data: list[_Message]
    meta: dict[str, Any] | None = None
    success: bool | None = None


#: Built once (msgspec is imported by ``airflow.sdk`` already).
_PAGE_DECODER = msgspec.json.Decoder(_Page)


def decode_message_page(text: str) -> Any:
    """
    A message page's body with its ``data`` as :class:`MessageColumns` when every row is of its documented
    type; otherwise the plain JSON body (see the module's docstring).
    """
    try:
        page = _PAGE_DECODER.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return decode_body(text)
    records = page.data
    if records:
        columns: list[Sequence[Any]] = list(zip(*map(msgspec.structs.astuple, records)))
    else:
        columns = [()] * len(MESSAGE_FIELDS)
    body: dict[str, Any] = {"data": MessageColumns(dict(zip(MESSAGE_FIELDS, columns)))}
    if page.meta is not None:
        body["meta"] = page.meta
    if page.success is not None:
        body["success"] = page.success
    return body
