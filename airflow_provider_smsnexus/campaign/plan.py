"""Planning a campaign: rows read, normalised, rendered and checked; duplicates, suppressed numbers and STOP
opt-outs marked; rows split into stable partitions. Nothing here sends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import DUPLICATE, INVALID, SUPPRESSED, CampaignRow
from airflow_provider_smsnexus.campaign.render import (
    MessageTemplate,
    TemplateRow,
    media_url_problem,
    message_hash,
    message_problem,
    raw_text,
)
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusMissingValueError
from airflow_provider_smsnexus.utils.keywords import reply_keyword
from airflow_provider_smsnexus.utils.phone import (
    is_missing,
    listed_number,
    normalise_phone,
    normalise_phones,
    phone_argument,
)
from airflow_provider_smsnexus.utils.segments import estimate_segments
from airflow_provider_smsnexus.utils.times import created_at_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

#: Inbound texts that opt a number out, read as carriers read keywords
#: (:func:`~airflow_provider_smsnexus.utils.keywords.reply_keyword`: the whole text, any case, trailing
#: punctuation ignored).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
#: Inbound texts that opt a number back in (the carriers' standard keywords); the latest keyword wins.
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RowSpec:
    """How to read the rows of a recipient table (the bulk operator's arguments, checked).

    :param to_column: the column of recipients.
    :param from_number: one sender for every row, or None with ``from_column``.
    :param from_column: the column of each row's sender.
    :param media_url_column: the column of media URLs.
    :param default_region: region of national numbers.
    :param num_partitions: how many partitions split the campaign.
    :param partition: the partition planned here.
    :param mms_credits: the credits an MMS is estimated to cost.
    :param zone_column: the column of each row's IANA time zone (a send window's ``zone_column``), or None.
    """

    to_column: str = "to"
    from_number: str | None = None
    from_column: str | None = None
    media_url_column: str | None = None
    default_region: str | None = None
    num_partitions: int = 1
    partition: int = 0
    mms_credits: int = 3
    zone_column: str | None = None

    def check(self) -> None:
        """Raise :class:`SMSNexusCampaignError` for a partition that cannot exist."""
        if not isinstance(self.num_partitions, int) or self.num_partitions < 1:
            raise SMSNexusCampaignError(
                f"num_partitions must be a whole number >= 1, not {self.num_partitions!r}"
            )
        if not isinstance(self.partition, int) or not 0 <= self.partition < self.num_partitions:
            raise SMSNexusCampaignError(
                f"partition must be between 0 and num_partitions - 1 = {self.num_partitions - 1}, "
                f"not {self.partition!r}"
            )

    def check_columns(self, frame: Any, template: MessageTemplate) -> None:
        """Raise when the table lacks a column the arguments or the template name; nothing was sent."""
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise SMSNexusCampaignError(
                f"The recipients have duplicate column names: {', '.join(duplicated)}"
            )
        if not len(frame.columns) and frame.empty:
            return
        columns = ", ".join(map(repr, map(str, frame.columns)))
        needed = {
            "to_column": self.to_column,
            "from_column": self.from_column,
            "media_url_column": self.media_url_column,
            "send_window zone_column": self.zone_column,
        }
        absent = [f"{param}={name!r}" for param, name in needed.items() if name and name not in frame.columns]
        if absent:
            raise SMSNexusCampaignError(
                f"The recipients have no column for {', '.join(absent)} (columns: {columns}); nothing was sent"
            )
        missing = template.missing_columns(frame.columns)
        if missing:
            raise SMSNexusCampaignError(
                f"message_template uses column(s) {', '.join(map(repr, missing))} that the recipients do not "
                f"have (columns: {columns}); nothing was sent"
            )


def plan_rows(
    frame: Any,
    spec: RowSpec,
    template: MessageTemplate,
    render_context: Mapping[str, Any],
    places: Callable[[int], str] | None = None,
) -> list[CampaignRow]:
    """
    Validate, render and deduplicate the rows of one partition of a recipient table; nothing is sent.

    :param places: where a row is, by its number (``"line 3 of recipients.csv"``), for the reasons of rows
        with an unusable number and of duplicates; default ``"row <number>"``.
    :return: one :class:`CampaignRow` per input row of the partition; rows that cannot be sent already
        carry their outcome (``invalid``, ``duplicate``) and reason.
    :raises SMSNexusInvalidNumberError: when ``from_number`` is not a usable number; nothing was sent.
    """
    spec.check_columns(frame, template)
    if frame.empty:
        return []
    place = places or row_place
    fixed_sender = None
    if spec.from_number is not None:
        fixed_sender = phone_argument(spec.from_number, "from_number", spec.default_region)
    context = dict(render_context)
    rows = []
    records = frame.to_dict("records")
    phones = normalise_phones(frame[spec.to_column], spec.default_region)
    for number, (record, phone) in enumerate(zip(records, phones), start=1):
        key = phone.number or f"row:{number}"
        if spec.num_partitions > 1 and partition_of(key, spec.num_partitions) != spec.partition:
            continue
        row = CampaignRow(number, raw_to=record[spec.to_column], recipient=phone.number)
        if spec.zone_column:
            row.zone_value = record[spec.zone_column]
        rows.append(row)
        if phone.number is None:
            row.settle(INVALID, f"{place(number)}: {phone.reason}")
            continue
        _prepare(row, record, fixed_sender, spec, template, context, place)
    mark_duplicates(rows, place)
    return rows


def row_place(row_number: int) -> str:
    """The default place of a row: ``"row <number>"`` (its position, from 1)."""
    return f"row {row_number}"


def _prepare(
    row: CampaignRow,
    record: dict[Any, Any],
    sender: str | None,
    spec: RowSpec,
    template: MessageTemplate,
    context: dict[str, Any],
    place: Callable[[int], str] = row_place,
) -> None:
    """Fill in a row with a valid recipient: sender, media URL, text; or mark it invalid."""
    if sender is None:
        parsed = normalise_phone(record[spec.from_column], spec.default_region)
        if parsed.number is None:
            row.settle(
                INVALID, f"{place(row.row_number)}: invalid sender ({spec.from_column}): {parsed.reason}"
            )
            return
        sender = parsed.number
    row.from_number = sender
    if spec.media_url_column:
        media = record[spec.media_url_column]
        if not is_missing(media) and str(media).strip():
            row.media_url = str(media).strip()
            problem = media_url_problem(row.media_url)
            if problem:
                row.settle(INVALID, problem)
                return
    try:
        body = template.render(context, TemplateRow(record))
    except SMSNexusCampaignError:
        raise
    except SMSNexusMissingValueError as exc:
        row.settle(INVALID, f"row {row.row_number}: {exc}")
        return
    except Exception as exc:
        row.settle(INVALID, f"template error: {type(exc).__name__}: {raw_text(str(exc))}")
        return
    problem = message_problem(body)
    if problem:
        row.settle(INVALID, problem)
        return
    row.body = body
    row.message_hash = message_hash(sender, body)
    row.credits_estimated = spec.mms_credits if row.media_url else estimate_segments(body).segments


def mark_duplicates(rows: Iterable[CampaignRow], place: Callable[[int], str] = row_place) -> None:
    """Mark every row after the first sendable one of a recipient as ``duplicate``, naming that row's place."""
    first: dict[str, int] = {}
    for row in rows:
        if row.outcome is not None or row.recipient is None:
            continue
        if row.recipient in first:
            row.settle(DUPLICATE, f"same number as {place(first[row.recipient])}")
        else:
            first[row.recipient] = row.row_number


def suppress(rows: Sequence[CampaignRow], reasons: Mapping[str, str]) -> list[CampaignRow]:
    """Mark the undecided rows whose number has a suppression reason (a list, or a STOP); return them."""
    suppressed = []
    for row in rows:
        if row.outcome is None and row.recipient in reasons:
            row.settle(SUPPRESSED, reasons[row.recipient])
            suppressed.append(row)
    return suppressed


def opted_out_numbers(inbound_messages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """
    The numbers that opted out by texting a stop keyword, each with the reason to report.

    A keyword is the whole text, read as carriers read it (any case, surrounding whitespace and trailing
    punctuation ignored: ``Stop.`` opts out, ``stop sending me ads`` does not). A number that later texted
    ``START`` or ``UNSTOP`` opted back in: its latest keyword (by ``created_at``, then id) wins.

    :param inbound_messages: inbound message dicts of ``/api/messages`` (``from``, ``body``, ``created_at``).
    :return: normalised number -> reason (``"opted out: STOP at 2026-03-08T12:00:00Z"``).
    """
    latest: dict[str, tuple[datetime, int, str, str]] = {}
    for message in inbound_messages:
        body = message.get("body")
        if not isinstance(body, str):
            continue
        keyword = reply_keyword(body)
        if keyword not in OPT_OUT_KEYWORDS and keyword not in OPT_IN_KEYWORDS:
            continue
        number = listed_number(message.get("from"))
        if number is None:
            continue
        message_id = message.get("id")
        order = (
            created_at_of(message) or _EARLIEST,
            message_id if isinstance(message_id, int) else 0,
            keyword,
            str(message.get("created_at") or "unknown time"),
        )
        if number not in latest or order[:2] >= latest[number][:2]:
            latest[number] = order
    return {
        number: f"opted out: {keyword} at {when}"
        for number, (_, _, keyword, when) in latest.items()
        if keyword in OPT_OUT_KEYWORDS
    }


def partition_of(key: str, num_partitions: int) -> int:
    """The partition of a row: SHA-256 of its key (the normalised number) modulo ``num_partitions``.

    Stable across processes and Python versions (unlike ``hash()``), so every worker splits alike.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % num_partitions
