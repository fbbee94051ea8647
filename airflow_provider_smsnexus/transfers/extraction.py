"""
The operator base shared by the SMS Nexus transfer operators: the steps every export takes.

An export fixes its window (:mod:`~airflow_provider_smsnexus.transfers.window`), streams the API's pages
into the destination's :class:`ExportWriter` (:mod:`~airflow_provider_smsnexus.transfers.stream`), commits
(with the record of the run, for the next run's window) and returns the run's figures; it also names the
task's lineage. The destinations only implement :class:`ExportWriter`.

.. seealso:: :doc:`/guides/exports`.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk import BaseOperator

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.hooks.pagination import MAX_PER_PAGE
from airflow_provider_smsnexus.transfers.horizon import (
    MAX_HORIZON_WAIT,
    created_from,
    measure_horizon,
    wait_for_horizon,
)
from airflow_provider_smsnexus.transfers.schema import (
    MESSAGE_DIRECTIONS,
    MESSAGE_STATUSES,
    RESOURCE_PATHS,
    arrow_schema,
    check_resource,
)
from airflow_provider_smsnexus.transfers.stream import (
    DEFAULT_BATCH_SIZE,
    ExportStats,
    iter_export_batches,
    system_memory_pool,
)
from airflow_provider_smsnexus.transfers.window import (
    RULE_CLEARED_RUN,
    RULE_DATA_INTERVAL,
    ExportRun,
    ExportWindow,
    RunFacts,
    choose_window,
    resolve_window,
    to_utc,
)
from airflow_provider_smsnexus.utils.times import utcnow

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
    from airflow.sdk import Context

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

__all__ = ["ExportWriter", "SMSNexusExportBaseOperator", "is_templated"]


def is_templated(value: Any) -> bool:
    """Whether a parameter's value is a Jinja template (checked once rendered, not when parsed)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class ExportWriter(Protocol):
    """What a destination does with the batches of one run."""

    def write(self, table: pa.Table) -> None:
        """Take one batch (the run's schema; ids unique within the run)."""

    def heartbeat(self) -> None:
        """Called after every API page: show that the run is alive."""

    def commit(self, record: ExportRun | None) -> None:
        """Make the whole run visible at once (or per partition, see the writer), and keep ``record``
        (when given) with the destination, for the next run's window."""

    def abort(self) -> None:
        """Drop everything this run staged; the destination stays as it was."""


class SMSNexusExportBaseOperator(BaseOperator):
    """
    The steps every SMS Nexus export shares; subclasses name the destination.

    :param resource: ``messages`` (default), ``conversations`` or ``phone_numbers``. Conversations and phone
        numbers are exported whole; messages for a window on created_at.
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param window_start: (templated) the window's start on created_at; default: the run's
        ``data_interval_start`` when its data interval is not empty, else where the last export of this task
        into this destination ended (see the table in :doc:`/guides/exports`). (Not ``start_date``: that name
        is BaseOperator's own.)
    :param window_end: (templated) the window's end (excluded); default: the run's ``data_interval_end`` when
        its data interval is not empty, else its logical date, else its ``run_after``. Never later than the
        moment the task starts.
    :param initial_window_start: where the first export of this task starts when the run has no data
        interval and the destination holds no record of an earlier run; default: the whole history.
    :param lookback: re-export this much before ``window_start`` too, so that later status changes of recent
        messages reach the destination (e.g. ``timedelta(days=2)``).
    :param status: (templated) messages only: export only this status.
    :param direction: (templated) messages only: export only ``outbound`` or ``inbound``.
    :param per_page: rows per API page (at most 100, the API's maximum and the default).
    :param batch_size: rows per batch written to the destination; bounds the memory used.
    """

    template_fields: Sequence[str] = ("window_start", "window_end", "status", "direction")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        resource: str = "messages",
        smsnexus_conn_id: str = DEFAULT_CONN_ID,
        window_start: datetime | date | str | None = None,
        window_end: datetime | date | str | None = None,
        initial_window_start: datetime | date | str | None = None,
        lookback: timedelta | None = None,
        status: str | None = None,
        direction: str | None = None,
        per_page: int = MAX_PER_PAGE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resource = check_resource(resource)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.window_start = window_start
        self.window_end = window_end
        self.initial_window_start = to_utc(initial_window_start, "initial_window_start")
        self.lookback = lookback
        self.status = status
        self.direction = direction
        self.per_page = per_page
        self.batch_size = batch_size
        if resource != "messages" and (
            status or direction or window_start or window_end or initial_window_start or lookback
        ):
            raise ValueError(
                f"{resource} are exported whole: window_start, window_end, initial_window_start, lookback, "
                "status and direction apply to resource='messages' only"
            )
        for name, value, allowed in (
            ("status", status, MESSAGE_STATUSES),
            ("direction", direction, MESSAGE_DIRECTIONS),
        ):
            if value and not is_templated(value) and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if lookback is not None and not isinstance(lookback, timedelta):
            raise TypeError(f"lookback must be a datetime.timedelta, not {type(lookback).__name__}")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._stats: ExportStats | None = None

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook of this task."""
        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
        from airflow_provider_smsnexus.utils.rate_budget import BULK

        # Bulk in a shared rate budget (the connection's rate_budget): sensors and triggers go first.
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id, priority=BULK)

    # -- steps the destinations provide -------------------------------------------------------------

    def _whole_days(self) -> bool:
        """Whether the window is widened to whole UTC days (partitioned destinations)."""
        return False

    def _check_destination(self) -> None:
        """Refuse a destination that cannot take the export, before the first request (default: no check)."""

    def _open_writer(self, window: ExportWindow | None) -> ExportWriter:
        raise NotImplementedError

    def _history(self) -> list[ExportRun]:
        """The runs the destination recorded (read before the export; empty when it holds none)."""
        raise NotImplementedError

    def _destination(self) -> str:
        raise NotImplementedError

    def _lineage_output(self) -> tuple[str, str]:
        """The OpenLineage (namespace, name) of the destination."""
        raise NotImplementedError

    # -- the shared run -----------------------------------------------------------------------------

    @property
    def export_key(self) -> str:
        """This task's key in its destination's record of runs: ``<dag_id>.<task_id>``."""
        dag_id = self.dag_id if self.has_dag() else ""
        return f"{dag_id}.{self.task_id}"

    def export_window(
        self, context: Context, now: datetime
    ) -> tuple[ExportWindow | None, ExportRun | None, str | None]:
        """
        The run's window (None for resources exported whole), the record to keep with the destination
        (None outside a DAG run), and the rule that chose the window.

        The window never ends after the listed horizon (:mod:`~airflow_provider_smsnexus.transfers.horizon`):
        a window without a fixed end ends there; one whose end has passed on the worker's clock (``now``) but
        not yet on the horizon waits for it.
        """
        if self.resource != "messages":
            return None, None, None
        horizon, measured_at = measure_horizon(self.hook)
        facts = RunFacts.from_context(context)
        needs_history = self.window_start is None and self.window_end is None
        history = self._history() if needs_history and facts.run_id is not None else []
        start, end, rule = choose_window(
            facts,
            history,
            key=self.export_key,
            now=horizon,
            window_start=self.window_start,
            window_end=self.window_end,
            initial_window_start=self.initial_window_start,
            server_clock_now=lambda local: created_from(self.hook, local),
        )
        fixed_end = to_utc(end, "window_end")
        # An end that has passed on the worker's clock waits until it is listed, and so does a data interval
        # (exported once: the next starts at its end) ending within the longest wait; an end further ahead
        # is cut to the horizon, as an explicit window_end in the future always was.
        soon = fixed_end is not None and fixed_end - horizon <= MAX_HORIZON_WAIT
        must_reach = fixed_end is not None and (
            fixed_end <= now or (soon and rule in (RULE_DATA_INTERVAL, RULE_CLEARED_RUN))
        )
        if fixed_end is not None and horizon < fixed_end and must_reach:
            horizon = wait_for_horizon(self.hook, fixed_end, log=self.log)
            measured_at = utcnow()
        window = resolve_window(
            start, end, now=horizon, lookback=self.lookback, whole_days=self._whole_days()
        )
        record = None
        if facts.run_id is not None:  # the window asked for, before lookback and widening
            asked_end = min(fixed_end or horizon, horizon)
            asked_start = to_utc(start, "window_start")
            asked_start = None if asked_start is None else min(asked_start, asked_end)
            record = ExportRun(self.export_key, facts.run_id, asked_start, asked_end, exported_at=measured_at)
        return window, record, rule

    def execute(self, context: Context) -> dict[str, Any]:
        """Fix the window, stream the pages into the destination's writer, commit, return the figures."""
        self._check_destination()
        now = utcnow().replace(microsecond=0)
        window, record, rule = self.export_window(context, now)
        stats = ExportStats(
            resource=self.resource,
            window_start=window.start if window else None,
            window_end=window.end if window else now,
            destination=self._destination(),
            window_rule=rule,
        )
        self._stats = stats
        self.log.info(
            "Exporting %s [%s, %s) to %s (window: %s)",
            self.resource,
            stats.to_xcom()["window_start"] or "beginning",
            stats.to_xcom()["window_end"],
            stats.destination,
            rule or "whole resource",
        )
        writer = self._open_writer(window)
        try:
            with system_memory_pool():
                for batch in iter_export_batches(
                    self.hook,
                    self.resource,
                    stats,
                    window=window,
                    status=self.status or None,
                    direction=self.direction or None,
                    per_page=self.per_page,
                    batch_size=self.batch_size,
                    on_page=writer.heartbeat,
                ):
                    writer.write(batch)
                    self.log.info(
                        "%d rows so far (%d pages, %d requests)", stats.rows, stats.pages, stats.requests
                    )
                if record is not None:
                    record = dataclasses.replace(record, rows=stats.rows)
                writer.commit(record)
        except BaseException:
            writer.abort()
            raise
        self.log.info(
            "Exported %d %s rows in %d pages, %d pass(es) (%d requests, %d duplicates dropped, %d outside "
            "the window, %d of another status or direction, %d found by re-reads)",
            stats.rows,
            self.resource,
            stats.pages,
            stats.passes,
            stats.requests,
            stats.duplicates_dropped,
            stats.outside_window,
            stats.filtered_out,
            stats.reread_rows,
        )
        return stats.to_xcom()

    # -- lineage ------------------------------------------------------------------------------------

    def lineage_datasets(self) -> dict[str, Any]:
        """
        The lineage of this task as plain values: the API path read and the destination written.

        :return: ``{"input": (namespace, name), "output": (namespace, name), "schema": [(column, type)],
            "rows": int | None}``.
        """
        from urllib.parse import urlsplit

        parts = urlsplit(self.hook.config.base_url)
        return {
            "input": (f"{parts.scheme}://{parts.netloc}", RESOURCE_PATHS[self.resource]),
            "output": self._lineage_output(),
            "schema": [(f.name, str(f.type)) for f in arrow_schema(self.resource)],
            "rows": self._stats.rows if self._stats else None,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """
        OpenLineage: the API endpoint as input, the file or table (with its schema) as output.

        Returns None when the OpenLineage provider is not installed (nothing would ask for it then).
        """
        try:
            from airflow.providers.common.compat.openlineage.facet import (
                Dataset,
                SchemaDatasetFacet,
                SchemaDatasetFacetFields,
            )
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        lineage = self.lineage_datasets()
        schema = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=name, type=kind) for name, kind in lineage["schema"]]
        )
        return OperatorLineage(
            inputs=[Dataset(namespace=lineage["input"][0], name=lineage["input"][1])],
            outputs=[
                Dataset(namespace=lineage["output"][0], name=lineage["output"][1], facets={"schema": schema})
            ],
        )
