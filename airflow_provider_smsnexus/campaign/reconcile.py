"""Reconciliation: finding a send whose answer was lost in ``/api/messages``, on the server's clock.

A row's message is searched for in a window of the server's time: from this attempt's own pending mark
(estimated in server time, minus the estimate's uncertainty, truncated to the API's ``created_at``
resolution) until the request can no longer be in flight. A candidate has the row's recipient, sender and
text, and is neither a message the ledger already holds for this account nor one that existed before the
send (``foreign_ids``). No candidate: the server provably does not hold the message; one: it is the row's;
two or more: the evidence is ambiguous and the row ends ``unknown``, never resent automatically.

The server's clock may be set while a request is inside it (an NTP step): the message is then dated on the new
clock, outside a window drawn on the old one. Each lookup reads the clock anew first; when it puts the mark
elsewhere than the mark's own estimate did, the window spans both. The part of it that the pre-send listing
(:data:`FOREIGN_GUARD`) did not cover could hold someone else's message of the same text: a candidate there
makes the row ``unknown``, never ``sent`` and never resent.

.. seealso:: "Exactly once" in :doc:`/guides/sending`; :doc:`/guarantees`: what this assumes of the server.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import CLOCK_SKEW, CREATED_AT_RESOLUTION
from airflow_provider_smsnexus.campaign.render import message_hash
from airflow_provider_smsnexus.utils.phone import listed_number
from airflow_provider_smsnexus.utils.times import created_at_of, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

FOUND = "found"
ABSENT = "absent"
AMBIGUOUS = "ambiguous"
#: How far before "now" the pre-send listing looks for messages that already carry a row's text.
FOREIGN_GUARD = timedelta(seconds=5)


def truncate(moment: datetime, resolution: timedelta = CREATED_AT_RESOLUTION) -> datetime:
    """``moment`` rounded down to the API's ``created_at`` resolution."""
    step = resolution.total_seconds()
    epoch = moment.timestamp()
    return moment - timedelta(seconds=epoch - math.floor(epoch / step) * step)


@dataclass
class Window:
    """Where one row's message may be: ``key`` = (recipient, message hash); server time, ``[start, end)``."""

    key: tuple[str, str]
    start: datetime
    end: datetime
    foreign_ids: set[str] = field(default_factory=set)
    #: The mark on this machine's (or the ledger's) clock, its server-time estimate then and that estimate's
    #: uncertainty: re-estimated at lookup time to see a server clock set since.
    mark: tuple[datetime, datetime, float] | None = None
    #: Messages created before this were not listed before the send (widened windows only).
    guarded_from: datetime | None = None


@dataclass
class Verdict:
    """What a lookup found for one window: ``found`` (with the message), ``absent`` or ``ambiguous``."""

    kind: str
    message: dict[str, Any] | None = None
    reason: str | None = None


class Reconciler:
    """
    Looks sends up in ``/api/messages`` on the server's clock (see the module documentation).

    :param hook: the SMS Nexus hook; its ``server_clock`` (measured from ``Date`` headers) converts times.
    :param ledger: the send ledger (known message ids).
    :param account: the account fingerprint that scopes the known ids.
    :param clock_skew: the uncertainty used while no ``Date`` header has been seen.
    """

    def __init__(
        self, hook: SMSNexusHook, ledger: SendLedger, account: str, *, clock_skew: timedelta = CLOCK_SKEW
    ) -> None:
        self.hook = hook
        self.ledger = ledger
        self.account = account
        self.clock_skew = clock_skew

    def server_time(self, local: datetime | None = None) -> tuple[datetime, float]:
        """A local moment (default now) in the server's time, with the estimate's half-width in seconds."""
        local = local or utcnow()
        clock = self.hook.server_clock
        if clock.samples:  # no Date header seen yet: clock_skew
            estimate, uncertainty = clock.to_server(local)
            if math.isfinite(uncertainty):
                return estimate, float(uncertainty)
        return local, self.clock_skew.total_seconds()

    def window(
        self,
        key: tuple[str, str],
        server_at: datetime,
        uncertainty: float,
        *,
        until: datetime | None = None,
        foreign_ids: Iterable[str] = (),
        local_at: datetime | None = None,
    ) -> Window:
        """
        The window of one pending mark: from the mark (server time) minus its uncertainty, truncated, until
        ``until`` (a server time; default now on the server) plus the current uncertainty.

        :param local_at: the mark on the local (ledger's) clock: with it, :meth:`lookup` widens the window
            when the server's clock was set since.
        """
        now, now_uncertainty = self.server_time()
        end = (until or now) + timedelta(seconds=now_uncertainty) + CREATED_AT_RESOLUTION
        start = truncate(server_at - timedelta(seconds=uncertainty))
        mark = None if local_at is None else (local_at, server_at, uncertainty)
        return Window(key, start, max(end, start + CREATED_AT_RESOLUTION), set(foreign_ids), mark)

    def widen(self, window: Window) -> Window:
        """``window`` spanning the server's clock as it was at the mark and as it is measured now, when the
        two disagree (the clock was set since); ``window`` itself otherwise."""
        if window.mark is None:
            return window
        local_at, server_at, uncertainty = window.mark
        again, again_uncertainty = self.server_time(local_at)
        step = (again - server_at).total_seconds()
        if abs(step) <= uncertainty + again_uncertainty:
            return window
        start = min(window.start, truncate(again - timedelta(seconds=again_uncertainty)))
        end = max(window.end, window.end + timedelta(seconds=step))
        guarded_from = truncate(server_at - timedelta(seconds=uncertainty) - FOREIGN_GUARD)
        return dataclasses.replace(window, start=start, end=end, guarded_from=guarded_from)

    def refresh_clock(self) -> None:
        """One read (``GET /api/balance``), so that the server's clock is measured as it is now."""
        self.hook.get_balance()

    def existing(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """The ids of messages that already carry these (recipient, hash) pairs, created in the last moments:
        listed right before sending, so that a lookup never takes one of them for this attempt's."""
        wanted = set(keys)
        if not wanted:
            return {}
        now, uncertainty = self.server_time()
        spread = timedelta(seconds=uncertainty) + CREATED_AT_RESOLUTION
        start, end = truncate(now - spread - FOREIGN_GUARD), now + spread
        found: dict[tuple[str, str], set[str]] = defaultdict(set)
        for key, message in self._matching(wanted, start, end):
            found[key].add(str(message.get("id")))
        return dict(found)

    def lookup(self, windows: Sequence[Window]) -> list[Verdict]:
        """One verdict per window, in order; raises when the list cannot be read (then nothing is decided)."""
        if not windows:
            return []
        if any(window.mark is not None for window in windows):
            self.refresh_clock()
            windows = [self.widen(window) for window in windows]
        wanted = {window.key for window in windows}
        candidates: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for start, end in _merge([(w.start, w.end) for w in windows]):
            for key, message in self._matching(wanted, start, end):
                candidates[key].append(message)
        known = self.ledger.known_message_ids(
            (str(m.get("id")) for found in candidates.values() for m in found), account=self.account
        )
        verdicts = []
        for window in windows:
            seen: dict[str, dict[str, Any]] = {}
            for message in candidates.get(window.key, []):
                message_id = str(message.get("id"))
                created = created_at_of(message)
                if message_id in known or message_id in window.foreign_ids or created is None:
                    continue
                if window.start <= created < window.end:
                    seen[message_id] = message
            guard = window.guarded_from
            unguarded = sorted(i for i, m in seen.items() if guard is not None and created_at_of(m) < guard)
            if not seen:
                verdicts.append(Verdict(ABSENT))
            elif unguarded:
                verdicts.append(Verdict(AMBIGUOUS, reason=_stepped_reason(window, unguarded)))
            elif len(seen) == 1:
                verdicts.append(Verdict(FOUND, next(iter(seen.values()))))
            else:
                verdicts.append(
                    Verdict(
                        AMBIGUOUS,
                        reason=(
                            f"{len(seen)} messages with this text to this recipient were created while this "
                            f"attempt's request may have been in flight (ids {', '.join(sorted(seen))}); "
                            "cannot tell which is this row's. Not resent: check them and settle the ledger row."
                        ),
                    )
                )
        return verdicts

    def _matching(
        self, wanted: set[tuple[str, str]], start: datetime, end: datetime
    ) -> Iterable[tuple[tuple[str, str], dict[str, Any]]]:
        for message in self.hook.iter_messages(direction="outbound", start_date=start, end_date=end):
            body = message.get("body")
            recipient, sender = listed_number(message.get("to")), listed_number(message.get("from"))
            if not isinstance(body, str) or recipient is None or sender is None:
                continue
            key = (recipient, message_hash(sender, body))
            if key in wanted:
                yield key, message


def _stepped_reason(window: Window, ids: Sequence[str]) -> str:
    assert window.mark is not None
    return (
        f"the server's clock was set since this attempt's mark (it put the mark at {window.mark[1].isoformat()}); "
        f"message {', '.join(ids)} with this text to this recipient is dated before the moments listed before "
        "the send, so it may be this row's or one sent earlier by something else. Not resent: check it and "
        "settle the ledger row."
    )


def _merge(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Merge overlapping time windows so each stretch is read once."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
