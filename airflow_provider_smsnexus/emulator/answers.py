"""The bytes of the emulator's JSON answers: the success envelope, the error bodies, and a page of
``GET /api/messages`` encoded straight from the columnar store (no dict per row).

Encoding is msgspec's (compact, UTF-8, the same JSON the standard library writes with
``ensure_ascii=False``, several times faster); a message page is assembled from per-field bytes,
which is where a page's time went (see bench/README.md, "Emulator at export scale").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi.responses import JSONResponse

from airflow_provider_smsnexus.emulator.store import DIRECTIONS, OUTBOUND, STATUSES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_smsnexus.emulator.store import MessageStore
    from airflow_provider_smsnexus.emulator.validation import EmulatorHTTPError, ValidationFailed

encode_json = msgspec.json.encode

_DIRECTION_JSON = tuple(encode_json(name) for name in DIRECTIONS)
_STATUS_JSON = tuple(encode_json(name) for name in STATUSES)
#: One message of a list, in the reference's key order (as :meth:`.MessageStore.message_dict`).
_MESSAGE_JSON = (
    b'{"id":%d,"from":%b,"to":%b,"body":%b,"direction":%b,"status":%b,"credits_used":%d,'
    b'"created_at":"%b%b%b"}'
)
_SECONDS_PER_DAY = 86400
#: ``created_at`` in three parts, from tables (formatting each time was a third of a page's cost):
#: ``YYYY-MM-DDT`` of each day seen (a few thousand at most: the days the data spans), ``HH:MM:``
#: of each minute of a day and ``SSZ`` of each second of a minute.
_day_prefixes: dict[int, bytes] = {}
_CLOCK_MINUTES = tuple(b"%02d:%02d:" % divmod(minute, 60) for minute in range(1440))
_CLOCK_SECONDS = tuple(b"%02dZ" % second for second in range(60))


class MsgspecJSONResponse(JSONResponse):
    """A :class:`~fastapi.responses.JSONResponse` encoded with msgspec."""

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as compact UTF-8 JSON.

        :param content: the answer.
        """
        return encode_json(content)


def envelope(data: Any, message: str | None = None, meta: dict[str, int] | None = None) -> dict[str, Any]:
    """The success envelope of the reference: ``success``, ``message`` (optional), ``data``, ``meta``.

    :param data: the answer's data.
    :param message: a human-readable message.
    :param meta: pagination meta of a list.
    """
    content: dict[str, Any] = {"success": True}
    if message is not None:
        content["message"] = message
    content["data"] = data
    if meta is not None:
        content["meta"] = meta
    return content


def validation_error_body(exc: ValidationFailed) -> bytes:
    """The body of a 422 answer (Laravel's shape).

    :param exc: the failed validation.
    """
    return encode_json({"success": False, "message": exc.message, "errors": exc.errors})


def http_error_body(exc: EmulatorHTTPError) -> bytes:
    """The body of another error answer.

    :param exc: the error.
    """
    return encode_json({"success": False, "message": exc.message})


def _day_prefix(day: int) -> bytes:
    """``YYYY-MM-DDT`` of a day counted from the epoch (as :func:`.store.iso_utc` writes it)."""
    prefix = _day_prefixes.get(day)
    if prefix is None:
        prefix = _day_prefixes[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * _SECONDS_PER_DAY)).encode()
    return prefix


def message_page_body(store: MessageStore, rows: Sequence[int], meta: dict[str, int]) -> bytes:
    """The whole ``GET /api/messages`` answer for ``rows``, read from the store's columns.

    The same JSON as ``encode_json(envelope([store.message_dict(row) for row in rows], meta=meta))``.

    :param store: the account's messages.
    :param rows: row numbers, in list order.
    :param meta: pagination meta.
    """
    numbers = store.numbers.values
    bodies = store.bodies.values
    ids, created, direction, status = store.ids, store.created, store.direction, store.status
    credits, number, contact, body = store.credits, store.number, store.contact, store.body
    prefixes = _day_prefixes
    items = []
    for row in rows:
        own = encode_json(numbers[number[row]])
        other = encode_json(numbers[contact[row]])
        row_direction = direction[row]
        sender, recipient = (own, other) if row_direction == OUTBOUND else (other, own)
        day, second = divmod(created[row], _SECONDS_PER_DAY)
        minute, second = divmod(second, 60)
        items.append(
            _MESSAGE_JSON
            % (
                ids[row],
                sender,
                recipient,
                encode_json(bodies[body[row]]),
                _DIRECTION_JSON[row_direction],
                _STATUS_JSON[status[row]],
                credits[row],
                prefixes.get(day) or _day_prefix(day),
                _CLOCK_MINUTES[minute],
                _CLOCK_SECONDS[second],
            )
        )
    return b'{"success":true,"data":[%b],"meta":%b}' % (b",".join(items), encode_json(meta))
