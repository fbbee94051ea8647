"""The properties every scenario must end with, judged from the emulator's own record of what it sent.

Safety: no recipient texted twice; no suppressed, opted-out, invalid or otherwise unexpected number texted;
no run reports ``sent`` for a message the server does not hold, and no two runs claim one message as sent.
Completeness: every valid row is texted exactly once, or its final ledger state is ``unknown`` with a reason
the server's record bears out (the message ids it names are messages to that recipient). Agreement: a row's
final ledger state is ``sent``, with the server's message id, exactly when one message reached its number.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

TWICE = "texted twice"
FORBIDDEN = "texted a number it must not"
LOST = "valid row never texted"
LEDGER = "ledger disagrees with the server"
REPORT = "report claims a send the server does not hold"
CLAIMED_TWICE = "two runs claim one message as sent"
UNKNOWN_UNFOUNDED = "unknown, with a reason the server's record does not bear out"
HANG = "worker did not finish"

#: The ids an ``unknown`` reason names ("... (ids 12, 15) ...").
_IDS = re.compile(r"\bids? ([0-9][0-9, ]*)")


@dataclass(frozen=True)
class Violation:
    """One broken property: what (``kind``), for which recipient, and the evidence."""

    kind: str
    recipient: str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.recipient or '-'}: {self.detail}"


@dataclass(frozen=True)
class LedgerRow:
    """What the test reads of one ledger row (read from the ledger's table, not from an operator)."""

    recipient: str
    state: str
    message_id: str | None
    reason: str | None


def check_campaign(
    sent: Iterable[Mapping[str, Any]],
    *,
    expected: set[str],
    forbidden: Mapping[str, str],
    ledger: Iterable[LedgerRow],
    reports: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[Violation]:
    """Every violation of the scenario's properties.

    :param sent: the emulator's record of every message created through ``POST /api/sms/send``.
    :param expected: the valid recipients (E.164) the campaign must text, each once.
    :param forbidden: numbers that must never be texted (E.164), with why (``suppressed``, ``opted out``).
    :param ledger: the campaign's ledger rows after the last run.
    :param reports: each run's report rows (``recipient``, ``outcome``, ``message_id``), by run name.
    """
    to: dict[str, list[str]] = defaultdict(list)
    for message in sent:
        to[str(message["to"])].append(str(message["id"]))
    owner = {message_id: number for number, ids in to.items() for message_id in ids}
    found: list[Violation] = []
    for number, ids in sorted(to.items()):
        if len(ids) > 1:
            found.append(Violation(TWICE, number, f"messages {', '.join(ids)}"))
        if number not in expected:
            why = forbidden.get(number, "not a valid row of the campaign")
            found.append(Violation(FORBIDDEN, number, f"{why}; messages {', '.join(ids)}"))
    rows: dict[str, list[LedgerRow]] = defaultdict(list)
    for row in ledger:
        rows[row.recipient].append(row)
    for number in sorted(expected):
        found += _check_row(number, to.get(number, []), rows.get(number, []), owner)
    for number in sorted(set(rows) - expected):
        for row in rows[number]:
            if row.state == "sent":
                found.append(
                    Violation(LEDGER, number, f"ledger says sent ({row.message_id}) to a number not to text")
                )
    found += _check_reports(reports, owner)
    return found


def _check_row(
    number: str, ids: list[str], rows: list[LedgerRow], owner: Mapping[str, str]
) -> list[Violation]:
    states = (
        ", ".join(f"{row.state} ({row.message_id or row.reason or ''})"[:200] for row in rows)
        or "no ledger row"
    )
    sent_rows = [row for row in rows if row.state == "sent"]
    unknown = [row for row in rows if row.state == "unknown"]
    found = []
    # One message reached the number: the ledger says sent, with its id (or unknown, with a founded reason).
    if len(ids) == 1 and [row.message_id for row in sent_rows] != ids and not (unknown and not sent_rows):
        found.append(Violation(LEDGER, number, f"the server holds message {ids[0]}; the ledger: {states}"))
    if not ids and sent_rows:
        found.append(Violation(LEDGER, number, f"the server holds no message; the ledger: {states}"))
    if not ids and not unknown:
        found.append(Violation(LOST, number, f"the server holds no message; the ledger: {states}"))
    for row in unknown:
        named = _named_ids(row.reason or "")
        if not (row.reason or "").strip():
            found.append(Violation(UNKNOWN_UNFOUNDED, number, "unknown without a reason"))
        elif any(owner.get(message_id) != number for message_id in named):
            found.append(Violation(UNKNOWN_UNFOUNDED, number, f"{row.reason!r}; the server: {ids or 'none'}"))
    return found


def _check_reports(
    reports: Mapping[str, Iterable[Mapping[str, Any]]], owner: Mapping[str, str]
) -> list[Violation]:
    found = []
    claims: dict[str, list[str]] = defaultdict(list)
    for run, report in reports.items():
        for row in report:
            outcome, number = row.get("outcome"), str(row.get("recipient"))
            message_id = row.get("message_id")
            message_id = None if message_id is None or message_id != message_id else str(message_id)  # NaN
            if outcome not in ("sent", "already_sent") or (outcome == "already_sent" and message_id is None):
                continue
            if message_id is None or owner.get(message_id) != number:
                found.append(Violation(REPORT, number, f"{run} reports {outcome} with message {message_id}"))
            if outcome == "sent" and message_id is not None:
                claims[message_id].append(run)
    for message_id, runs in sorted(claims.items()):
        if len(runs) > 1:
            found.append(
                Violation(CLAIMED_TWICE, owner.get(message_id), f"message {message_id}: {', '.join(runs)}")
            )
    return found


def _named_ids(reason: str) -> list[str]:
    named = []
    for match in _IDS.finditer(reason):
        named += [part.strip() for part in match.group(1).split(",") if part.strip()]
    return named
