"""Compact, indexed storage of one account's messages and conversations.

Messages live in column arrays (``array.array``: 8 bytes for ids and times, 1-4 bytes for the rest)
in insertion order; strings (phone numbers, bodies) are interned in a shared :class:`StringTable`
and stored as integers. Sorted indexes of row numbers, ordered by ``(created_at, id)``, exist for
all rows, per status, per direction and per status and direction, so that a filtered, date-bounded
page is two binary searches and a slice. A million messages take about 50 MB of arrays (the whole
server stays under 200 MB; see bench/bench_emulator.py).
"""

from __future__ import annotations

import bisect
import time
from array import array
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import numpy as np

STATUSES = ("queued", "sent", "delivered", "failed", "received")
STATUS_CODES = {name: code for code, name in enumerate(STATUSES)}
QUEUED, SENT, DELIVERED, FAILED, RECEIVED = range(len(STATUSES))

DIRECTIONS = ("outbound", "inbound")
DIRECTION_CODES = {name: code for code, name in enumerate(DIRECTIONS)}
OUTBOUND, INBOUND = 0, 1

#: Where a message came from (only visible through the inspection API).
ORIGINS = ("api", "seed", "live", "reply", "admin")
ORIGIN_CODES = {name: code for code, name in enumerate(ORIGINS)}

IndexKey = tuple[Any, ...]


def iso_utc(epoch_seconds: float) -> str:
    """Format epoch seconds like the reference: ``2026-03-08T12:00:00Z``.

    :param epoch_seconds: seconds since the epoch (fractions are dropped).
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch_seconds)))


class StringTable:
    """Interns strings: each distinct string is stored once and referred to by its integer code."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        """Return the code of ``value``, adding it when new.

        :param value: the string.
        """
        code = self._codes.get(value)
        if code is None:
            code = len(self.values)
            self.values.append(value)
            self._codes[value] = code
        return code

    def __getitem__(self, code: int) -> str:
        return self.values[code]


class Conversation:
    """One thread between an account number and a contact number.

    :param conversation_id: public id.
    :param number: code of the account's number.
    :param contact: code of the contact's number.
    """

    __slots__ = ("contact", "id", "last_row", "message_count", "number", "unread_count")

    def __init__(self, conversation_id: int, number: int, contact: int) -> None:
        self.id = conversation_id
        self.number = number
        self.contact = contact
        self.last_row = -1
        self.message_count = 0
        self.unread_count = 0


def _index_keys(status: int, direction: int) -> tuple[IndexKey, ...]:
    """The indexes a row with ``status`` and ``direction`` belongs to."""
    return (("all",), ("s", status), ("d", direction), ("sd", status, direction))


class MessageStore:
    """The messages and conversations of one account.

    Rows are numbered in insertion order; message ids grow with insertion, so the ``ids`` column is
    sorted and a row is found from its id by binary search.

    :param numbers: shared table of phone numbers.
    :param bodies: shared table of message bodies.
    :param next_conversation_id: returns the next public conversation id.
    """

    def __init__(
        self, numbers: StringTable, bodies: StringTable, next_conversation_id: Callable[[], int]
    ) -> None:
        self.numbers = numbers
        self.bodies = bodies
        self._next_conversation_id = next_conversation_id
        self.ids = array("q")
        self.created = array("q")
        self.direction = array("b")
        self.status = array("b")
        self.origin = array("b")
        self.credits = array("i")
        self.number = array("i")
        self.contact = array("i")
        self.body = array("i")
        self.media: dict[int, str] = {}
        self.indexes: dict[IndexKey, array] = {}
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self._conversation_order: list[Conversation] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    # -- keys and indexes -------------------------------------------------------------------------

    def sort_key(self, row: int) -> tuple[int, int]:
        """The order of rows in every index: ``(created_at, id)``.

        :param row: row number.
        """
        return (self.created[row], self.ids[row])

    def _index(self, key: IndexKey) -> array:
        index = self.indexes.get(key)
        if index is None:
            index = self.indexes[key] = array("i")
        return index

    def _index_insert(self, key: IndexKey, row: int) -> None:
        index = self._index(key)
        sort_key = self.sort_key(row)
        if not index or self.sort_key(index[-1]) < sort_key:
            index.append(row)
        else:
            index.insert(bisect.bisect_right(index, sort_key, key=self.sort_key), row)

    def _index_remove(self, key: IndexKey, row: int) -> None:
        index = self._index(key)
        position = bisect.bisect_left(index, self.sort_key(row), key=self.sort_key)
        if position < len(index) and index[position] == row:
            del index[position]

    # -- writing ----------------------------------------------------------------------------------

    def append(
        self,
        *,
        message_id: int,
        created: int,
        direction: int,
        status: int,
        credits: int,
        number: str,
        contact: str,
        body: str,
        origin: int,
        media_url: str | None = None,
    ) -> int:
        """Add one message and return its row number.

        :param message_id: public id; must be greater than every id stored so far.
        :param created: created_at in epoch seconds.
        :param direction: :data:`OUTBOUND` or :data:`INBOUND`.
        :param status: a code of :data:`STATUSES`.
        :param credits: credits charged.
        :param number: the account's number (sender of outbound, recipient of inbound).
        :param contact: the other party.
        :param body: the text.
        :param origin: a code of :data:`ORIGINS`.
        :param media_url: attachment URL of an MMS.
        """
        row = len(self.ids)
        self.ids.append(message_id)
        self.created.append(created)
        self.direction.append(direction)
        self.status.append(status)
        self.origin.append(origin)
        self.credits.append(credits)
        number_code = self.numbers.code(number)
        contact_code = self.numbers.code(contact)
        self.number.append(number_code)
        self.contact.append(contact_code)
        self.body.append(self.bodies.code(body))
        if media_url:
            self.media[row] = media_url
        for key in _index_keys(status, direction):
            self._index_insert(key, row)
        self._add_to_conversation(row, number_code, contact_code, direction)
        return row

    def set_status(self, row: int, status: int) -> None:
        """Change the status of a row and move it between the status indexes.

        :param row: row number.
        :param status: new status code.
        """
        old = self.status[row]
        if old == status:
            return
        direction = self.direction[row]
        self._index_remove(("s", old), row)
        self._index_remove(("sd", old, direction), row)
        self.status[row] = status
        self._index_insert(("s", status), row)
        self._index_insert(("sd", status, direction), row)

    def _add_to_conversation(self, row: int, number: int, contact: int, direction: int) -> None:
        pair = (number, contact)
        conversation = self.conversations.get(pair)
        if conversation is None:
            conversation = self.conversations[pair] = Conversation(
                self._next_conversation_id(), number, contact
            )
        conversation.message_count += 1
        if conversation.last_row < 0 or self.sort_key(row) > self.sort_key(conversation.last_row):
            conversation.last_row = row
            conversation.unread_count = 0 if direction == OUTBOUND else conversation.unread_count + 1
        self._conversation_order = None

    def extend(
        self,
        *,
        ids: np.ndarray,
        created: np.ndarray,
        direction: np.ndarray,
        status: np.ndarray,
        credits: np.ndarray,
        number: np.ndarray,
        contact: np.ndarray,
        body: np.ndarray,
        origin: int,
    ) -> None:
        """Add many messages at once (seeding) and rebuild the indexes and conversations.

        All arguments but ``origin`` are numpy arrays of one length; ``number``, ``contact`` and
        ``body`` hold codes of the shared string tables, ``ids`` must exceed every stored id.

        :param origin: a code of :data:`ORIGINS` for all of them.
        """
        import numpy as np

        count = len(ids)
        self.ids.frombytes(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        self.created.frombytes(np.ascontiguousarray(created, dtype=np.int64).tobytes())
        self.direction.frombytes(np.ascontiguousarray(direction, dtype=np.int8).tobytes())
        self.status.frombytes(np.ascontiguousarray(status, dtype=np.int8).tobytes())
        self.origin.frombytes(np.full(count, origin, dtype=np.int8).tobytes())
        self.credits.frombytes(np.ascontiguousarray(credits, dtype=np.int32).tobytes())
        self.number.frombytes(np.ascontiguousarray(number, dtype=np.int32).tobytes())
        self.contact.frombytes(np.ascontiguousarray(contact, dtype=np.int32).tobytes())
        self.body.frombytes(np.ascontiguousarray(body, dtype=np.int32).tobytes())
        self._rebuild()

    def _column(self, column: array, dtype: Any) -> np.ndarray:
        """A numpy copy of a column (a copy, so the array stays resizable)."""
        import numpy as np

        return np.frombuffer(column, dtype=dtype).copy() if len(column) else np.zeros(0, dtype=dtype)

    def _rebuild(self) -> None:
        """Rebuild every index and recount every conversation from the columns."""
        import numpy as np

        ids = self._column(self.ids, np.int64)
        created = self._column(self.created, np.int64)
        order = np.lexsort((ids, created)).astype(np.int32)
        status = self._column(self.status, np.int8)[order]
        direction = self._column(self.direction, np.int8)[order]
        self.indexes = {("all",): array("i", order.tobytes())}
        for code in np.unique(status):
            self.indexes["s", int(code)] = array("i", order[status == code].tobytes())
        for code in np.unique(direction):
            self.indexes["d", int(code)] = array("i", order[direction == code].tobytes())
        pairs = np.unique(np.stack([status, direction], axis=1), axis=0) if len(order) else []
        for status_code, direction_code in pairs:
            mask = (status == status_code) & (direction == direction_code)
            self.indexes["sd", int(status_code), int(direction_code)] = array("i", order[mask].tobytes())
        self._recount_conversations(order, direction)

    def _recount_conversations(self, order: np.ndarray, direction: np.ndarray) -> None:
        import numpy as np

        if not len(order):
            return
        number = self._column(self.number, np.int32)[order].astype(np.int64)
        contact = self._column(self.contact, np.int32)[order].astype(np.int64)
        pair_keys, inverse = np.unique((number << 32) | contact, return_inverse=True)
        positions = np.arange(len(order), dtype=np.int64)
        groups = len(pair_keys)
        counts = np.bincount(inverse, minlength=groups)
        first = np.full(groups, len(order), dtype=np.int64)
        np.minimum.at(first, inverse, positions)
        last = np.full(groups, -1, dtype=np.int64)
        np.maximum.at(last, inverse, positions)
        outbound = direction == OUTBOUND
        last_outbound = np.full(groups, -1, dtype=np.int64)
        np.maximum.at(last_outbound, inverse[outbound], positions[outbound])
        unread_mask = ~outbound & (positions > last_outbound[inverse])
        unread = np.bincount(inverse[unread_mask], minlength=groups)
        for group in np.argsort(first, kind="stable"):
            pair = (int(pair_keys[group] >> 32), int(pair_keys[group] & 0xFFFFFFFF))
            conversation = self.conversations.get(pair)
            if conversation is None:
                conversation = self.conversations[pair] = Conversation(
                    self._next_conversation_id(), pair[0], pair[1]
                )
            conversation.message_count = int(counts[group])
            conversation.last_row = int(order[last[group]])
            conversation.unread_count = int(unread[group])
        self._conversation_order = None

    # -- reading ----------------------------------------------------------------------------------

    def row_of(self, message_id: int) -> int | None:
        """Return the row of a message id, or None.

        :param message_id: public id.
        """
        row = bisect.bisect_left(self.ids, message_id)
        if row < len(self.ids) and self.ids[row] == message_id:
            return row
        return None

    def select(
        self,
        *,
        status: int | None = None,
        direction: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> tuple[array, int, int]:
        """Find the rows matching the filters, as a slice ``index[lo:hi]`` in ascending order.

        :param status: status code or None for any.
        :param direction: direction code or None for any.
        :param start: lowest created_at included (epoch seconds) or None.
        :param end: lowest created_at excluded (epoch seconds) or None.
        :return: ``(index, lo, hi)``; ``hi - lo`` is the number of matching rows.
        """
        if status is not None and direction is not None:
            key: IndexKey = ("sd", status, direction)
        elif status is not None:
            key = ("s", status)
        elif direction is not None:
            key = ("d", direction)
        else:
            key = ("all",)
        index = self.indexes.get(key) or array("i")
        lo = 0 if start is None else bisect.bisect_left(index, (start, -1), key=self.sort_key)
        hi = len(index) if end is None else bisect.bisect_left(index, (end, -1), key=self.sort_key, lo=lo)
        return index, lo, hi

    def newest_first(self, index: array, lo: int, hi: int, offset: int, limit: int) -> list[int]:
        """Rows ``offset .. offset+limit`` of ``index[lo:hi]`` counted from the newest.

        :param index: an index from :meth:`select`.
        :param lo: first position of the selection.
        :param hi: end position of the selection.
        :param offset: rows to skip from the newest.
        :param limit: rows to return at most.
        """
        top = hi - offset
        bottom = max(lo, top - limit)
        if top <= bottom:
            return []
        return list(reversed(index[bottom:top]))

    def rows_in_insertion_order(
        self, *, origins: Iterable[int] | None = None, direction: int | None = None
    ) -> list[int]:
        """All rows in insertion (creation) order, optionally only some origins or one direction.

        :param origins: origin codes to keep, or None for all.
        :param direction: direction code to keep, or None for both.
        """
        wanted = None if origins is None else set(origins)
        return [
            row
            for row in range(len(self.ids))
            if (wanted is None or self.origin[row] in wanted)
            and (direction is None or self.direction[row] == direction)
        ]

    def conversations_newest_first(self) -> Sequence[Conversation]:
        """Conversations ordered by their last message, newest first (cached until a change)."""
        if self._conversation_order is None:
            self._conversation_order = sorted(
                self.conversations.values(),
                key=lambda conv: (*self.sort_key(conv.last_row), conv.id),
                reverse=True,
            )
        return self._conversation_order

    def message_dict(self, row: int, *, with_direction: bool = True) -> dict[str, Any]:
        """The public JSON shape of a message (``/api/messages`` item, or send answer without
        ``direction``).

        :param row: row number.
        :param with_direction: include ``direction`` (the send answer of the reference has none).
        """
        number = self.numbers[self.number[row]]
        contact = self.numbers[self.contact[row]]
        outbound = self.direction[row] == OUTBOUND
        item: dict[str, Any] = {
            "id": self.ids[row],
            "from": number if outbound else contact,
            "to": contact if outbound else number,
            "body": self.bodies[self.body[row]],
        }
        if with_direction:
            item["direction"] = DIRECTIONS[self.direction[row]]
        item["status"] = STATUSES[self.status[row]]
        item["credits_used"] = self.credits[row]
        item["created_at"] = iso_utc(self.created[row])
        return item

    def conversation_dict(self, conversation: Conversation) -> dict[str, Any]:
        """The public JSON shape of a conversation.

        :param conversation: the conversation.
        """
        row = conversation.last_row
        return {
            "id": conversation.id,
            "phone_number": self.numbers[conversation.number],
            "contact_number": self.numbers[conversation.contact],
            "last_message": self.bodies[self.body[row]],
            "last_message_at": iso_utc(self.created[row]),
            "unread_count": conversation.unread_count,
            "message_count": conversation.message_count,
        }
