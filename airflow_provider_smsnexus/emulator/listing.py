"""The two paged lists, ``GET /api/messages`` and ``GET /api/conversations``, with Laravel's
pagination ``meta``, and the switches that make them drift the way the API reference allows:
the order (``list_order``), date parameters ignored (``ignore_date_params``), conversations that
move to the top while a client pages (``reorder_conversations_per_list``) and messages that leave
a status-filtered list while it is paged (``status_changes_per_list``), and ids that become visible
out of order (``late_visibility_ms``). :class:`Listing` answers both lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_smsnexus.emulator.lifecycle import NEXT_STATUS
from airflow_provider_smsnexus.emulator.settings import OLDEST_FIRST
from airflow_provider_smsnexus.emulator.store import DIRECTION_CODES, STATUS_CODES

if TYPE_CHECKING:
    import random
    from array import array
    from collections.abc import Callable

    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.core import IdCounters, ServerClock, SettingsInForce
    from airflow_provider_smsnexus.emulator.lifecycle import Lifecycle
    from airflow_provider_smsnexus.emulator.store import MessageStore
    from airflow_provider_smsnexus.emulator.traffic import Traffic

T = TypeVar("T")


def page_meta(page: int, per_page: int, total: int) -> dict[str, int]:
    """Pagination ``meta`` exactly as the reference (Laravel's length-aware paginator).

    :param page: 1-based page.
    :param per_page: rows per page.
    :param total: rows in the whole list.
    """
    return {
        "current_page": page,
        "last_page": max(1, math.ceil(total / per_page)),
        "per_page": per_page,
        "total": total,
    }


@dataclass(eq=False)
class Listing:
    """The message and conversation lists, and what their switches change while a client pages.

    :param settings: the settings in force (order and drift switches).
    :param clock: the server's clock (when a moved conversation's reply is written).
    :param ids: the id counters (which message ids are still held back).
    :param rng: the dice of the drift switches.
    :param drift_counts: the ``drift`` counters of the inspection API's stats (this adds to
        ``status_changes`` and ``conversation_moves``).
    :param traffic: what adds live traffic and the replies that move conversations.
    :param lifecycle: what moves a listed message's status on.
    """

    settings: SettingsInForce
    clock: ServerClock
    ids: IdCounters
    rng: random.Random
    drift_counts: dict[str, int]
    traffic: Traffic
    lifecycle: Lifecycle

    def _oldest_first(self) -> bool:
        return self.settings.current.list_order == OLDEST_FIRST

    def _in_list_order(
        self, store: MessageStore, index: array, lo: int, hi: int, offset: int, limit: int
    ) -> list[int]:
        """Rows ``offset .. offset+limit`` of the selection ``index[lo:hi]`` in the list's order."""
        if self._oldest_first():
            return list(index[lo + offset : min(hi, lo + offset + limit)])
        return store.newest_first(index, lo, hi, offset, limit)

    def _without_late(self, store: MessageStore, index: array, lo: int, hi: int) -> tuple[array, int, int]:
        """The selection ``index[lo:hi]`` without the messages still held back (``late_visibility_ms``)."""
        late = self.ids.held_back()
        if not late:
            return index, lo, hi
        hidden = {row for row in map(store.row_of, late) if row is not None}
        if not hidden:
            return index, lo, hi
        from array import array

        kept = array(index.typecode, (row for row in index[lo:hi] if row not in hidden))
        return kept, 0, len(kept)

    def message_page(
        self,
        account: Account,
        render: Callable[[MessageStore, list[int], dict[str, int]], T],
        *,
        page: int,
        per_page: int,
        status: str | None = None,
        direction: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> T:
        """``GET /api/messages``: newest first by default (created_at, then id, descending).

        :param account: the caller.
        :param page: 1-based page.
        :param per_page: rows per page.
        :param status: status filter.
        :param direction: direction filter.
        :param start: created_at lower bound, included (epoch seconds, server clock).
        :param end: created_at upper bound, excluded (epoch seconds, server clock).
        :param render: makes the answer from the store, the page's rows in list order and the
            pagination ``meta``; it runs before ``status_changes_per_list`` moves any of these rows.
        :return: what ``render`` returned.
        """
        settings = self.settings.current
        if settings.live_traffic_per_list:
            self.traffic.add_live_traffic(account, int(settings.live_traffic_per_list))
        if settings.ignore_date_params:
            start = end = None
        store = account.store
        filters = {
            "status": None if status is None else STATUS_CODES[status],
            "direction": None if direction is None else DIRECTION_CODES[direction],
            "start": None if start is None else math.ceil(start),
            "end": None if end is None else math.ceil(end),
        }
        offset = (page - 1) * per_page
        changes = int(settings.status_changes_per_list)
        index, lo, hi = self._without_late(store, *store.select(**filters))
        if changes and offset:
            # The pages before this one: a client walking forward has read them already.
            read = self._in_list_order(store, index, lo, hi, 0, min(offset, hi - lo))
            changes -= self._change_statuses(account, read, changes)
            index, lo, hi = self._without_late(store, *store.select(**filters))
        rows = self._in_list_order(store, index, lo, hi, offset, per_page)
        answer = render(store, rows, page_meta(page, per_page, hi - lo))
        if changes > 0:
            self._change_statuses(account, rows, changes)  # this page, now that it has been read
        return answer

    def _change_statuses(self, account: Account, rows: list[int], count: int) -> int:
        """Move up to ``count`` of ``rows`` (those that can move) one status on.

        :return: how many moved.
        """
        store = account.store
        movable = [row for row in rows if store.status[row] in NEXT_STATUS]
        chosen = self.rng.sample(movable, min(count, len(movable)))
        for row in chosen:
            self.lifecycle.move_status_on(account, row)
        self.drift_counts["status_changes"] += len(chosen)
        return len(chosen)

    def list_conversations(
        self, account: Account, *, page: int, per_page: int
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """``GET /api/conversations``: newest last message first by default.

        :param account: the caller.
        :param page: 1-based page.
        :param per_page: rows per page.
        """
        moves = int(self.settings.current.reorder_conversations_per_list)
        if moves:
            self._reply_on_old_conversations(account, moves, page, per_page)
        store = account.store
        ordered = list(store.conversations_newest_first())
        if self._oldest_first():
            ordered.reverse()
        chosen = ordered[(page - 1) * per_page : page * per_page]
        return [store.conversation_dict(item) for item in chosen], page_meta(page, per_page, len(ordered))

    def _reply_on_old_conversations(self, account: Account, count: int, page: int, per_page: int) -> None:
        """Give ``count`` old conversations a new inbound message, so they become the newest.

        Old means after the requested page in newest-first order (not yet read by a client walking
        forward), or when there are too few of those, after page 1.
        """
        store = account.store
        ordered = store.conversations_newest_first()
        candidates = list(ordered[page * per_page :])
        if len(candidates) < count:
            candidates = list(ordered[per_page:]) or list(ordered[1:])
        chosen = self.rng.sample(candidates, min(count, len(candidates)))
        if not chosen:
            return
        # Never older than the current newest message, so the reply really goes to the top.
        created = max(int(self.clock.now()), store.created[ordered[0].last_row])
        for conversation in chosen:
            self.traffic.add_reply(account, conversation.number, conversation.contact, created)
        self.drift_counts["conversation_moves"] += len(chosen)
