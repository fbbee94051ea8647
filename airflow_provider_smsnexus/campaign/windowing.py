"""A campaign's send window applied to its rows, on the server's clock: which rows may be texted now, which wait
for their window (and when the task should come back for them), which are never texted within it; and the
schedule a dry run shows.

The window is judged on the server's clock as this hook measures it (``hook.server_clock``), because the
server's ``created_at`` is the record of when a text left: a row goes now only when its window is open over
the whole span its request may take, from the server's present less the clock's uncertainty to the present
plus the uncertainty and the request's longest time (the connection's ``request_seconds``). A row sent late
in its window carries the moment on this machine's clock after which its request may no longer leave
(:attr:`~airflow_provider_smsnexus.campaign.model.CampaignRow.send_until`); the sender checks it right before
the request leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_provider_smsnexus.campaign.model import ALREADY_SENT, OUTSIDE_WINDOW, SENT, WAITING
from airflow_provider_smsnexus.campaign.send_timing import (
    OPEN,
    SKIP,
    closes_at,
    local_moment,
    next_opening,
    plan_row,
    schedule,
    zones_for_row,
)
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusError
from airflow_provider_smsnexus.utils.times import iso_utc, utcnow

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.campaign.send_window import SendWindow
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

#: How long after a window's opening (by the clock's estimate, less its uncertainty) the task comes back.
RESUME_MARGIN = timedelta(seconds=1)


class WindowClosed(SMSNexusCampaignError):
    """A row's send window closed (its ``send_until`` passed) before its request left: not sent; it waits."""


@dataclass(frozen=True)
class WindowVerdict:
    """
    What a send window makes of a campaign's rows at one moment.

    :param now: the rows that may be texted now (each with its ``send_until``).
    :param resume_at: when the task should run again for the rows that wait (this machine's clock, UTC);
        None when no row waits.
    :param schedule: rows per window opening (``now`` first), for the dry run and the summary.
    """

    now: list[CampaignRow]
    resume_at: datetime | None
    schedule: list[tuple[str, int]]


def apply_window(
    rows: Sequence[CampaignRow],
    window: SendWindow,
    hook: SMSNexusHook,
    *,
    deadline: datetime | None = None,
) -> WindowVerdict:
    """
    Judge every row against ``window`` now; settle those that wait (``waiting``) or never go
    (``outside_window``), each with a reason naming its zones and local times.

    :param rows: the rows still to send (planned, valid, not suppressed, not already sent).
    :param window: the campaign's send window.
    :param hook: the hook whose measured server clock judges the windows (``hook.server_clock``), and whose
        connection bounds how long a request takes (``request_seconds``).
    :param deadline: rows whose window opens after this moment are ``outside_window``; None: no deadline.
    :raises SMSNexusValidationError: a zone column's value is not a time zone, or a row's zone is unknown and
        ``unknown_zone="fail"`` (before anything is sent).
    """
    local_now = utcnow()
    server_now, uncertainty = hook.server_clock.to_server(local_now)
    flight_seconds = hook.config.request_seconds
    earliest = server_now - timedelta(seconds=uncertainty)
    latest = server_now + timedelta(seconds=uncertainty + flight_seconds)
    timed = [(row, _zones(window, row)) for row in rows]  # every zone error before any row is settled
    now: list[CampaignRow] = []
    openings: list[datetime | None] = []
    resume_at: datetime | None = None
    for row, zones in timed:
        row.zones = zones
        timing = plan_row(window, zones, earliest, row_label=f"row {row.row_number}")
        if timing.status == SKIP:
            row.settle(OUTSIDE_WINDOW, timing.reason)
            continue
        opening = timing.opening
        if timing.status == OPEN:
            if not zones:  # an unknown zone, sent as unknown_zone="send" says
                now.append(row)
                openings.append(None)
                continue
            closes = closes_at(window, zones, earliest)
            if closes > latest:
                row.send_until = local_now + (closes - latest)
                now.append(row)
                openings.append(None)
                continue
            opening = next_opening(window, zones, closes)  # too close to its end: the next one
        if opening is None:
            row.settle(OUTSIDE_WINDOW, f"its send window never opens in {', '.join(zones)} at once")
            continue
        if deadline is not None and opening > deadline:
            row.settle(
                OUTSIDE_WINDOW,
                f"its send window opens at {local_moment(zones[0], opening)}, after send_deadline "
                f"{iso_utc(deadline)}",
            )
            continue
        row.settle(
            WAITING,
            timing.reason
            if timing.opening == opening
            else f"row {row.row_number}: its send window closes before its request could arrive; it goes at "
            f"{local_moment(zones[0], opening)}",
        )
        openings.append(opening)
        wake = local_now + (opening - earliest) + RESUME_MARGIN
        resume_at = wake if resume_at is None else min(resume_at, wake)
    return WindowVerdict(now, resume_at, schedule(openings))


def _zones(window: SendWindow, row: CampaignRow) -> tuple[str, ...]:
    return zones_for_row(window, row.recipient or "", row.zone_value, f"row {row.row_number}")


def note_zones(rows: Sequence[CampaignRow], window: SendWindow) -> None:
    """Give the rows sent by this run or an earlier one their zones, for the report's local times (a zone
    that cannot be told is left empty: the row went out already)."""
    for row in rows:
        if row.outcome in (SENT, ALREADY_SENT) and not row.zones:
            try:
                row.zones = _zones(window, row)
            except SMSNexusError:
                row.zones = ()
