"""The arithmetic of a rate budget that several processes share: reservations, priorities, fair shares.

Pure apart from the times it is given. A :class:`SharedWindow` is the state of one account's budget for one
rate-limit class (sends or reads). A store (a file under a lock, a SQL row under ``SELECT ... FOR UPDATE``, a
Redis key under ``WATCH``) reads it, lets one of its methods change it, and writes it back, all inside the
store's lock; so every process that uses the account sees one window.

The rules, checked on every reservation:

* **a sliding window**: at most ``limit`` requests in any ``period`` seconds. A slot is held from its
  reservation until ``period`` seconds after its answer arrived (an upper bound of the moment the server
  counted it), so requests that wait in a socket never overlap the server's next window. The limit adapts to
  429s as :class:`~airflow_provider_smsnexus.utils.rate_limit.RateLimiter`'s does (halved by a 429, once per
  window; one more per window's worth of answers with room), as the fallback when a server's headers say
  nothing;
* **the server's word**: every answer's ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` are written into
  the window. Once the server said nothing is left (or a 429), nobody asks before its reset: a process outside
  the budget (a user's script, another tool) costs the requests already in flight, not a storm;
* **priorities**: ``interactive`` calls (someone waits on them) may use the whole limit; ``bulk`` calls
  leave a reserve of ``reserve_share`` of it to interactive calls while any was seen in the last
  :data:`INTERACTIVE_RECENT_WINDOWS` windows, and leave a slot to each interactive caller waiting for one.
  Every slot is free again within one window of its answer, so an interactive call waits at most one window;
* **spread bulk calls**: bulk calls leave one every ``period / limit`` seconds at most, so slots free one by one
  through the window instead of all at once, and an interactive call rarely waits more than that interval;
* **fair shares**: bulk callers (one per hook) active in the last :data:`CLAIMANT_IDLE_WINDOWS` windows
  each get an equal share of what the interactive calls leave. A caller at its share takes a free slot only
  when no other bulk caller below its share is waiting for one, so a lone export still uses all of it.

.. seealso:: :doc:`/guides/budget`, the guide.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.utils.rate_limit import (
    PACE_DECREASE_FACTOR,
    PACE_INCREASE,
    RESET_MARGIN_SECONDS,
)

if TYPE_CHECKING:
    from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo

#: Calls someone waits on: sensors, triggers, the notifier, single sends, the connection test.
INTERACTIVE = "interactive"
#: Calls nobody waits on one by one: exports and campaign sends.
BULK = "bulk"
PRIORITIES = (INTERACTIVE, BULK)

#: The share of the limit that bulk calls leave to interactive calls (rounded up, never the whole limit).
DEFAULT_RESERVE_SHARE = 0.1
#: The reserve is kept while an interactive call was seen within this many windows (a lone export uses all).
INTERACTIVE_RECENT_WINDOWS = 10
#: A bulk caller not seen for this many windows no longer counts in the fair shares.
CLAIMANT_IDLE_WINDOWS = 2
#: A refused bulk call asks again this share of a window after the moment a slot frees, so that an
#: interactive caller waiting for that slot (it asks at that moment) takes it first.
BULK_YIELD_SHARE = 0.01
#: The shortest wait a refusal returns: no busy loop while the answers that free slots are awaited.
MIN_WAIT_SECONDS = 0.005

# The fields of one slot, stored as a list to keep the stored state small.
_TICKET, _AT, _PRIORITY, _CLAIMANT, _PENDING = range(5)
# What a stored window may hold (anything else, from an older or foreign writer, is left at its default).
_STORED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "slots": list,
    "remaining": int,
    "reset_at": (int, float),
    "announced_limit": int,
    "pace": (int, float),
    "last_decrease_at": (int, float),
    "interactive_seen_at": (int, float),
    "bulk_next_at": (int, float),
    "claimants": dict,
    "waiting": dict,
    "refusals": int,
}


@dataclass(frozen=True)
class BudgetRules:
    """
    What the connection says about one class of requests.

    :param limit: requests allowed per ``period`` (raised to a larger announced limit when
        ``adopt_announced_limit``).
    :param period: the window in seconds.
    :param reserve_share: the share of the limit kept for interactive calls (0 to 0.5).
    :param request_seconds: the longest a request can be in flight; a slot still unanswered after it (its
        process died) counts as answered then.
    :param adopt_announced_limit: raise the limit to a larger ``X-RateLimit-Limit`` (off when the connection set
        the limit on purpose).
    :param max_wait: the farthest reset that is believed (``max_rate_limit_wait``); one further away is taken
        as this far.
    """

    limit: int
    period: float
    reserve_share: float = DEFAULT_RESERVE_SHARE
    request_seconds: float = 60.0
    adopt_announced_limit: bool = True
    max_wait: float = 120.0


class SharedWindow:
    """
    The budget of one account and rate-limit class, as its store keeps it (:meth:`to_json`/:meth:`from_json`).

    Each method takes the current time and changes the window as the event it names does; a store runs it
    inside its lock. Tickets name reservations so that an answer frees its own slot.
    """

    def __init__(self) -> None:
        #: ``[ticket, time, priority, claimant, pending]``: reserved at ``time`` while pending, else answered then.
        self.slots: list[list[Any]] = []
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.announced_limit: int | None = None
        self.pace: float | None = None  # None: the whole limit
        self.last_decrease_at: float | None = None
        self.interactive_seen_at: float | None = None
        #: The earliest moment of the next bulk call (bulk calls are spread evenly over the window).
        self.bulk_next_at: float | None = None
        #: Bulk callers and when each last asked.
        self.claimants: dict[str, float] = {}
        #: Callers refused a slot: ``claimant -> [priority, asks again at, forgotten at]``.
        self.waiting: dict[str, list[Any]] = {}
        self.refusals = 0

    # -- storage -------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The window as compact JSON text."""
        return json.dumps(vars(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | None) -> SharedWindow:
        """A window from :meth:`to_json`'s text; an empty, unreadable or foreign text gives a fresh window."""
        window = cls()
        if not text:
            return window
        try:
            stored = json.loads(text)
        except ValueError:
            return window
        if isinstance(stored, dict):
            for name, kinds in _STORED_FIELDS.items():
                value = stored.get(name)
                if isinstance(value, kinds) and not isinstance(value, bool):
                    setattr(window, name, value)
            window.slots = [slot for slot in window.slots if isinstance(slot, list) and len(slot) == 5]
        return window

    # -- events --------------------------------------------------------------------------------------

    def reserve(
        self, rules: BudgetRules, *, now: float, priority: str, claimant: str, ticket: str
    ) -> tuple[float, str]:
        """
        Reserve a slot for one request if it may leave now.

        :param priority: :data:`INTERACTIVE` or :data:`BULK`.
        :param claimant: who asks (one per hook): fair shares and waiting callers are counted by it.
        :param ticket: names the reservation, for :meth:`answered`, :meth:`refused` and :meth:`release`.
        :return: ``(0, "")`` when reserved, else the seconds to wait before asking again and why, in words.
        """
        self._forget(rules, now)
        limit = self.allowed(rules)
        interactive_used = sum(1 for slot in self.slots if slot[_PRIORITY] == INTERACTIVE)
        if priority == INTERACTIVE:
            self.interactive_seen_at = now
            wait, why = self._wait_for_room(rules, now, limit, headroom=0)
        else:
            self.claimants[claimant] = now
            # Left free: the reserve interactive calls have not used in this window, and a slot for each
            # interactive caller already waiting for one.
            waiters = sum(1 for w in self.waiting.values() if w[0] == INTERACTIVE)
            headroom = max(0, self._reserve(rules, limit, now) - interactive_used) + waiters
            wait, why = self._wait_for_room(rules, now, limit, headroom)
            if wait <= 0:
                wait, why = self._wait_for_turn(rules, now, limit, claimant, interactive_used)
            if wait > 0:
                wait += max(MIN_WAIT_SECONDS, BULK_YIELD_SHARE * rules.period)
        if wait > 0:
            wait = max(wait, MIN_WAIT_SECONDS)
            self.waiting[claimant] = [priority, now + wait, now + wait + rules.period]
            return wait, why
        self.slots.append([ticket, now, priority, claimant, True])
        if priority == BULK:
            # The next bulk call's moment; a caller late by less than one interval does not delay the next.
            interval = rules.period / limit
            self.bulk_next_at = max(self.bulk_next_at or now, now - interval) + interval
        if self.remaining is not None:
            self.remaining -= 1
        self.waiting.pop(claimant, None)
        return 0.0, ""

    def answered(
        self, rules: BudgetRules, *, now: float, ticket: str | None, info: RateLimitInfo | None
    ) -> None:
        """
        An answer arrived (``info``: what its headers said), or none will (``info`` None: a transport failure,
        the request may have arrived until now): the slot runs a window from now, the server's word is kept.
        """
        self._forget(rules, now)
        self._settle(ticket, now)
        if info is None:
            return
        info = self._bounded(rules, info, now)
        if rules.adopt_announced_limit and info.limit is not None and info.limit > rules.limit:
            self.announced_limit = max(info.limit, self.announced_limit or 0)
        limit = self._limit(rules)
        if info.remaining is None or info.remaining > 0:
            # Additive increase: one more request per window, spread over a window's worth of answers.
            pace = limit if self.pace is None else self.pace
            self.pace = None if pace >= limit else min(limit, pace + PACE_INCREASE / max(pace, 1.0))
        if info.remaining is None or info.reset_at is None:
            return
        same_window = self.reset_at is not None and abs(info.reset_at - self.reset_at) < 0.5
        if same_window and self.remaining is not None:
            # Answers overtake each other: the smaller budget is the true one.
            self.remaining = min(self.remaining, info.remaining)
        elif self.reset_at is None or info.reset_at > self.reset_at:
            self.remaining, self.reset_at = info.remaining, info.reset_at

    def refused(self, rules: BudgetRules, *, now: float, ticket: str | None, info: RateLimitInfo) -> None:
        """A 429: nothing is left until the server's reset, and the pace halves (once per window)."""
        self._forget(rules, now)
        self._settle(ticket, now)
        self.refusals += 1
        if self.last_decrease_at is None or now - self.last_decrease_at >= rules.period:
            pace = self._limit(rules) if self.pace is None else self.pace
            self.pace = max(1.0, pace * PACE_DECREASE_FACTOR)
            self.last_decrease_at = now
        info = self._bounded(rules, info, now)
        if info.reset_at is not None:
            self.reset_at = info.reset_at
        elif info.retry_after is not None:
            self.reset_at = now + info.retry_after
        if self.reset_at is not None:
            self.remaining = 0

    def release(self, rules: BudgetRules, *, now: float, ticket: str) -> None:
        """A reserved request that never left (its ``before_send`` raised): its slot is free again."""
        self._forget(rules, now)
        self.slots = [slot for slot in self.slots if slot[_TICKET] != ticket]
        if self.remaining is not None:
            self.remaining += 1

    # -- what the window allows ----------------------------------------------------------------------

    def allowed(self, rules: BudgetRules) -> int:
        """The requests per window allowed now: the limit, or the pace after 429s (at least 1)."""
        limit = self._limit(rules)
        if self.pace is None:
            return limit
        return max(1, min(limit, math.floor(self.pace + 1e-9)))

    def _limit(self, rules: BudgetRules) -> int:
        if rules.adopt_announced_limit and self.announced_limit is not None:
            return max(rules.limit, self.announced_limit)
        return rules.limit

    def _reserve(self, rules: BudgetRules, limit: int, now: float) -> int:
        """The slots bulk calls leave to interactive ones: none while no interactive call was seen lately."""
        seen = self.interactive_seen_at
        if seen is None or now - seen > INTERACTIVE_RECENT_WINDOWS * rules.period or rules.reserve_share <= 0:
            return 0
        return min(limit - 1, math.ceil(limit * rules.reserve_share - 1e-9))

    def _wait_for_room(self, rules: BudgetRules, now: float, limit: int, headroom: int) -> tuple[float, str]:
        """The wait until a slot is free beyond ``headroom`` (kept for interactive calls) and the server has one."""
        if self.reset_at is not None and self.remaining is not None and self.remaining <= headroom:
            return (
                self.reset_at - now + RESET_MARGIN_SECONDS,
                "the server said nothing is left until its reset",
            )
        excess = len(self.slots) + headroom - limit + 1
        if excess <= 0:
            return 0.0, ""
        # A pending slot frees no earlier than a window after now (its answer is yet to come).
        frees = sorted(
            slot[_AT] + rules.period if not slot[_PENDING] else now + rules.period for slot in self.slots
        )
        why = f"{len(self.slots)} of {limit} requests in the last {rules.period:g} s"
        if headroom:
            why += f", {headroom} kept for interactive calls (unused reserve, waiting callers)"
        return frees[min(excess, len(frees)) - 1] - now, why

    def _wait_for_turn(
        self, rules: BudgetRules, now: float, limit: int, claimant: str, interactive_used: int
    ) -> tuple[float, str]:
        """
        A bulk call's turn: bulk calls leave one every ``period / limit`` seconds (so slots free one by one,
        and an interactive call finds one soon), and a caller at its fair share yields to a waiting one below.
        """
        interval = rules.period / limit
        if self.bulk_next_at is not None and now < self.bulk_next_at:
            return (
                self.bulk_next_at - now,
                f"bulk calls are spread over the window, one every {interval:.3g} s",
            )
        if len(self.claimants) < 2:
            return 0.0, ""
        capacity = limit - max(interactive_used, self._reserve(rules, limit, now))
        share = max(1, math.ceil(capacity / len(self.claimants)))
        counts = Counter(slot[_CLAIMANT] for slot in self.slots if slot[_PRIORITY] == BULK)
        if counts[claimant] < share or not any(
            w[0] == BULK and c != claimant and counts[c] < share for c, w in self.waiting.items()
        ):
            return 0.0, ""
        why = (
            f"this caller holds its fair share ({share} of {limit} among {len(self.claimants)} bulk callers)"
        )
        return interval, why

    # -- housekeeping --------------------------------------------------------------------------------

    def _settle(self, ticket: str | None, now: float) -> None:
        for slot in self.slots:
            if slot[_TICKET] == ticket:
                slot[_AT], slot[_PENDING] = now, False
                return

    def _bounded(self, rules: BudgetRules, info: RateLimitInfo, now: float) -> RateLimitInfo:
        latest = now + rules.max_wait - RESET_MARGIN_SECONDS
        if info.reset_at is not None and info.reset_at > latest:
            info = dataclasses.replace(info, reset_at=latest)
        if info.retry_after is not None and info.retry_after > rules.max_wait - RESET_MARGIN_SECONDS:
            info = dataclasses.replace(info, retry_after=rules.max_wait - RESET_MARGIN_SECONDS)
        return info

    def _forget(self, rules: BudgetRules, now: float) -> None:
        """Drop what no longer counts: slots a window past their answer, a passed reset, idle callers."""
        kept = []
        for slot in self.slots:
            if slot[_PENDING] and now - slot[_AT] > rules.request_seconds:
                slot[_AT], slot[_PENDING] = slot[_AT] + rules.request_seconds, False  # its process gave up
            if slot[_PENDING] or now < slot[_AT] + rules.period:
                kept.append(slot)
        self.slots = kept
        if self.reset_at is not None and now >= self.reset_at:
            self.remaining, self.reset_at = None, None  # a new server window: unknown until an answer tells
        idle = CLAIMANT_IDLE_WINDOWS * rules.period
        self.claimants = {c: seen for c, seen in self.claimants.items() if now - seen <= idle}
        self.waiting = {c: w for c, w in self.waiting.items() if now < w[2]}
