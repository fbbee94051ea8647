"""The property every export scenario must end with, judged from the emulator's own record of its messages: the
destination holds exactly the ids of the server's messages whose ``created_at`` (the server's clock) lies in the
union of the windows the runs covered; no message of it missing, none twice, none from outside, no id the
server does not hold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.transfers.export_helpers import api_time, parse_api_time

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

MISSING = "message of a covered window not exported"
TWICE = "message exported twice"
OUTSIDE = "message exported from outside every covered window"
UNKNOWN = "exported an id the server does not hold"
RUN_FAILED = "export run failed"

DAY = timedelta(days=1)


@dataclass(frozen=True)
class ExportViolation:
    """One broken property: what (``kind``), for which message id, and the evidence."""

    kind: str
    message_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message_id if self.message_id is not None else '-'}: {self.detail}"


@dataclass(frozen=True)
class Coverage:
    """The union of the windows a scenario's runs covered, on the server's clock: spans ``[start, end)``,
    widened to whole UTC days for a destination that rewrites day partitions."""

    spans: tuple[tuple[datetime, datetime], ...]
    whole_days: bool = False

    def covers(self, moment: datetime) -> bool:
        return any(start <= moment < end for start, end in self._spans())

    def _spans(self) -> list[tuple[datetime, datetime]]:
        if not self.whole_days:
            return list(self.spans)
        return [
            (_midnight(start), _midnight(end - timedelta(microseconds=1)) + DAY) for start, end in self.spans
        ]

    def describe(self) -> str:
        spans = ", ".join(f"[{api_time(start)}, {api_time(end)})" for start, end in self._spans())
        return spans + (" (whole days)" if self.whole_days else "")


def check_export(
    messages: Iterable[Mapping[str, Any]], exported: Iterable[int], coverage: Coverage
) -> list[ExportViolation]:
    """Every violation of "exactly the server's messages of the covered windows, each once".

    :param messages: the emulator's record of every message (``id``, ``created_at``).
    :param exported: the ids the destination holds, one per row (a repeat is a row exported twice).
    :param coverage: the union of the windows the runs covered.
    """
    created = {int(m["id"]): parse_api_time(m["created_at"]) for m in messages}
    rows = Counter(int(message_id) for message_id in exported)
    found = [ExportViolation(TWICE, n, f"{count} rows") for n, count in sorted(rows.items()) if count > 1]
    for message_id in sorted(rows):
        if message_id not in created:
            found.append(ExportViolation(UNKNOWN, message_id, "not in the emulator's record"))
        elif not coverage.covers(created[message_id]):
            found.append(ExportViolation(OUTSIDE, message_id, f"created {api_time(created[message_id])}"))
    for message_id, moment in sorted(created.items()):
        if coverage.covers(moment) and message_id not in rows:
            found.append(ExportViolation(MISSING, message_id, f"created {api_time(moment)}"))
    return found


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)
