"""The campaign report: its destination checked before the first send, one Parquet row per input row written
atomically (local or in object storage), the summary, and the task's verdict."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusDestinationError
from airflow_provider_smsnexus.utils.paths import local_path, provider_home

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

log = logging.getLogger(__name__)

#: The report's columns, in order, with their Arrow types.
REPORT_COLUMNS = (
    ("row_number", "int64"),
    ("recipient", "string"),
    ("outcome", "string"),
    ("message_id", "string"),
    ("credits", "int64"),
    ("reason", "string"),
    ("zones", "string"),
    ("local_time", "string"),
)


def write_report(rows: Sequence[Mapping[str, Any]], destination: Any) -> str:
    """
    Write the campaign report: one Parquet row per input row, columns :data:`REPORT_COLUMNS`.

    A local file is written beside its destination and renamed into place, so that a reader never sees a
    half-written report; an object-storage URL is written through ObjectStoragePath.

    :param rows: dicts with the report's columns.
    :param destination: a local path or an object-storage URL.
    :return: the destination as a string.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in REPORT_COLUMNS])
    columns = {name: [_clean(row.get(name)) for row in rows] for name, _ in REPORT_COLUMNS}
    table = pa.Table.from_pydict(columns, schema=schema)
    name = str(destination)
    local = local_path(name)
    if local is None:
        from airflow.sdk import ObjectStoragePath

        with ObjectStoragePath(name).open("wb") as handle:
            pq.write_table(table, handle)
        return name
    directory = os.path.dirname(os.path.abspath(local))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(local)}.{os.getpid()}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, local)
    return local


def default_report_dir() -> Path:
    """Where campaign reports go unless told otherwise: ``$AIRFLOW_HOME/smsnexus/reports``."""
    return provider_home() / "reports"


def check_destination(destination: Any, *, parameter: str = "report_path") -> None:
    """
    Check, before the first send, that a report can be written to ``destination``.

    A local destination must not be a folder; its folder is created, and a file is created in it and
    removed (as :func:`write_report` writes beside the target and renames). In object storage a small object
    is written beside the target and removed (a destination that allows writing but not removing passes,
    with a warning naming the object left behind).

    :param destination: a local path or an object-storage URL.
    :param parameter: the operator's argument that names it, for the error.
    :raises SMSNexusDestinationError: naming ``parameter`` and the path, when it cannot be written.
    """
    name = str(destination)
    local = local_path(name)
    try:
        problem = _local_problem(local) if local is not None else _object_storage_problem(name)
    except Exception as exc:  # fsspec and cloud SDKs raise their own types, not only OSError
        problem = f"it cannot be checked ({type(exc).__name__}: {exc})"
    if problem:
        raise SMSNexusDestinationError(
            f"{parameter}={name!r} cannot be written: {problem}. Nothing was sent: give a {parameter} that "
            "this worker can write, or fix the folder, and run the task again.",
            parameter=parameter,
            path=name,
        )


def _local_problem(local: str) -> str | None:
    """Why nothing can be written at a local path, or None; its folder is created."""
    import tempfile

    target = os.path.abspath(local)
    if os.path.isdir(target):
        return "it is a folder, not a file name"
    directory = os.path.dirname(target)
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        return f"its folder {directory} cannot be created: a file is in the way"
    except OSError as exc:
        return f"its folder {directory} cannot be created ({exc.strerror or exc})"
    try:
        handle, probe = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".check", dir=directory
        )
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        return f"no file can be created in {directory} ({exc.strerror or exc})"
    return None


def _object_storage_problem(url: str) -> str | None:
    """Why nothing can be written at an object-storage URL, or None."""
    import uuid

    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath(url)
    if target.is_dir():
        return "it is a folder, not an object name"
    probe = target.parent / f".{target.name}.{uuid.uuid4().hex}.check"
    with probe.open("wb") as handle:
        handle.write(b"")
    try:
        probe.unlink()
    except Exception as exc:  # writing is what the report needs; a probe left behind is only untidy
        log.warning(
            "Could not remove the probe %s (%s: %s); the report can be written",
            probe,
            type(exc).__name__,
            exc,
        )
    return None


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def summarise(
    campaign_id: str, rows: Sequence[Any], credits_estimated: int, *, dry_run: bool
) -> dict[str, Any]:
    """The bulk operator's XCom value: counts per outcome and credits.

    :param rows: the :class:`~airflow_provider_smsnexus.campaign.model.CampaignRow` of the campaign.
    """
    from collections import Counter

    from airflow_provider_smsnexus.campaign import model

    counts = Counter(row.outcome for row in rows)
    return {
        "campaign_id": campaign_id,
        "total": len(rows),
        "invalid": counts[model.INVALID],
        "duplicates": counts[model.DUPLICATE],
        "suppressed": counts[model.SUPPRESSED],
        "already_sent": counts[model.ALREADY_SENT],
        "sent": counts[model.SENT],
        "failed": counts[model.FAILED],
        "unknown": counts[model.UNKNOWN],
        "credits_estimated": credits_estimated,
        "credits_used": sum(row.credits or 0 for row in rows if row.outcome == model.SENT),
        "dry_run": bool(dry_run),
    }


class Progress:
    """Logs sent / failed / remaining, the rate and the ETA every ``every_rows`` rows or ``every_seconds``."""

    def __init__(self, log: Any, campaign_id: str, every_rows: int = 100, every_seconds: float = 10):
        import time
        from collections import Counter

        self.log = log
        self.campaign_id = campaign_id
        self.every_rows = every_rows
        self.every_seconds = every_seconds
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self._last_done = 0

    def add(self, rows: int) -> None:
        self.total += rows

    def done(self, row: Any) -> None:
        self.counts[row.outcome or "not_attempted"] += 1

    def seconds_to_next(self) -> float:
        import time

        return max(0.05, self._last_log + self.every_seconds - time.monotonic())

    def maybe_log(self, *, force: bool = False) -> None:
        import time

        done = sum(self.counts.values())
        now = time.monotonic()
        if (
            not force
            and done - self._last_done < self.every_rows
            and now - self._last_log < self.every_seconds
        ):
            return
        self._last_log, self._last_done = now, done
        elapsed = max(now - self.started, 1e-6)
        remaining = max(self.total - done, 0)
        eta = f"{remaining / (done / elapsed):.0f}s" if done else "unknown"
        self.log.info(
            "Campaign %s: %d sent, %d failed, %d unknown, %d remaining of %d; %.1f/min, ETA %s",
            self.campaign_id,
            self.counts["sent"],
            self.counts["failed"],
            self.counts["unknown"],
            remaining,
            self.total,
            done / elapsed * 60,
            eta,
        )


def raise_for_outcome(
    fatal: BaseException | None, summary: Mapping[str, Any], max_failure_rate: float
) -> None:
    """Fail the task when the campaign stopped, left rows unknown, or failed more than allowed."""
    from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusSendOutcomeUnknownError

    if fatal is not None:
        raise fatal
    if summary["unknown"]:
        raise SMSNexusSendOutcomeUnknownError(
            f"{summary['unknown']} of {summary['total']} messages have an unknown outcome (each row's reason is "
            "in the report) and stay in the send ledger. Run the task again: it looks them up in /api/messages "
            "before sending any again, and never resends one whose evidence is ambiguous."
        )
    attempted = summary["sent"] + summary["failed"]
    if attempted and summary["failed"] / attempted > max_failure_rate:
        raise SMSNexusError(
            f"{summary['failed']} of {attempted} sends failed ({summary['failed'] / attempted:.1%}), more than "
            f"max_failure_rate={max_failure_rate:.1%}. Every row's reason is in the report."
        )
