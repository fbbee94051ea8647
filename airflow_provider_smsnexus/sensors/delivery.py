"""SMSNexusDeliverySensor: wait until a campaign's sent messages are delivered or failed, report the
counts and the delivery rate, fail below a minimum, and write the final statuses into its report."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.triggers.base import TRANSIENT_ERRORS
from airflow_provider_smsnexus.triggers.delivery import (
    FINAL_STATUSES,
    SMSNexusDeliveryTrigger,
    delivery_counts,
    read_statuses,
    window_from,
)
from airflow_provider_smsnexus.utils.paths import local_path

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

#: The column the sensor adds to (or refreshes in) the campaign's Parquet report.
DELIVERY_STATUS_COLUMN = "delivery_status"


def write_delivery_statuses(report_path: str, statuses: dict[str, str | None]) -> int:
    """
    Set the ``delivery_status`` column of a campaign report from message id → status; rows without a
    message id (never sent) keep it empty. Local files are replaced atomically.

    :return: how many rows got a status.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    local = local_path(report_path)
    if local is None:
        from airflow.sdk import ObjectStoragePath

        with ObjectStoragePath(report_path).open("rb") as handle:
            table = pq.read_table(handle)
    else:
        table = pq.read_table(local)
    if "message_id" not in table.column_names:
        raise SMSNexusError(
            f"report_path={report_path!r} is not a campaign report: it has no message_id column"
        )
    values = [
        statuses.get(str(mid)) if mid is not None else None for mid in table.column("message_id").to_pylist()
    ]
    if DELIVERY_STATUS_COLUMN in table.column_names:
        table = table.drop_columns([DELIVERY_STATUS_COLUMN])
    table = table.append_column(DELIVERY_STATUS_COLUMN, pa.array(values, pa.string()))
    if local is None:
        from airflow.sdk import ObjectStoragePath

        with ObjectStoragePath(report_path).open("wb") as handle:
            pq.write_table(table, handle)
    else:
        temporary = f"{local}.{os.getpid()}.delivery.tmp"
        pq.write_table(table, temporary)
        os.replace(temporary, local)
    return sum(value is not None for value in values)


class SMSNexusDeliverySensor(BaseSensorOperator):
    """
    Wait until every message a campaign sent is ``delivered`` or ``failed``, then return the counts.

    The campaign's messages come from its send ledger (rows in state ``sent``, with their message id);
    rows whose outcome is not known (``pending``/``unknown``) are counted as ``untracked``, never guessed.
    Statuses come from full walks of ``GET /api/messages?direction=outbound`` (no list order assumed).

    Returns ``{"campaign_id", "total", "delivered", "failed", "pending", "not_listed", "untracked",
    "delivery_rate", "complete"}``. At ``timeout`` the sensor does not fail for that alone: it returns
    the counts with ``complete: false`` (messages still queued count as not delivered). It fails
    (:class:`AirflowFailException`) when ``delivery_rate`` is below ``min_delivery_rate``.

    .. seealso:: "Delivery reports" in :doc:`/guides/two-way`.

    :param campaign: the bulk operator's XCom summary (its ``campaign_id`` is used), or a campaign id.
    :param ledger_conn_id: the ledger's SQL connection, as given to the bulk operator (None: SQLite file).
    :param ledger_table: the ledger's table, as given to the bulk operator.
    :param min_delivery_rate: fail below this share (0..1) of delivered messages; None never fails.
    :param report_path: the campaign's Parquet report, to update with a ``delivery_status`` column.
    :param smsnexus_conn_id: the SMS Nexus connection id.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("campaign", "report_path", "ledger_conn_id", "smsnexus_conn_id")
    ui_color = "#d7e4ec"

    def __init__(
        self,
        *,
        campaign: dict[str, Any] | str,
        ledger_conn_id: str | None = None,
        ledger_table: str | None = None,
        min_delivery_rate: float | None = None,
        report_path: str | None = None,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if min_delivery_rate is not None and not 0 <= float(min_delivery_rate) <= 1:
            raise SMSNexusError(f"min_delivery_rate must be between 0 and 1, not {min_delivery_rate!r}")
        self.campaign = campaign
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table
        self.min_delivery_rate = None if min_delivery_rate is None else float(min_delivery_rate)
        self.report_path = report_path
        self.smsnexus_conn_id = smsnexus_conn_id
        self.deferrable = deferrable
        self._statuses: dict[int, str | None] = {}

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook for ``smsnexus_conn_id``."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    @property
    def campaign_id(self) -> str:
        """The rendered campaign's id."""
        campaign = self.campaign
        value = campaign.get("campaign_id") if isinstance(campaign, dict) else campaign
        if not value or not isinstance(value, str):
            raise SMSNexusError(
                f"campaign: give the bulk operator's summary or a campaign id, not {campaign!r}"
            )
        return value

    @cached_property
    def tracked(self) -> tuple[list[int], str | None, int]:
        """The ledger's sent message ids, the oldest send's time, and the rows not known to be sent."""
        from airflow_provider_smsnexus.campaign.lease import run_scoped
        from airflow_provider_smsnexus.campaign.ledger import SendLedger
        from airflow_provider_smsnexus.campaign.ledger_schema import STATE_FAILED, STATE_SENT

        options = {"table_name": self.ledger_table} if self.ledger_table else {}
        with SendLedger.for_connection(self.ledger_conn_id, **options) as ledger:
            entries = ledger.entries(run_scoped(self.campaign_id, self.hook))
        sent = [entry for entry in entries if entry.state == STATE_SENT and entry.message_id]
        untracked = sum(1 for entry in entries if entry.state not in (STATE_SENT, STATE_FAILED))
        moments = [entry.created_at for entry in sent if entry.created_at is not None]
        oldest = min(moments).isoformat() if moments else None
        if not entries:
            raise SMSNexusError(
                f"campaign {self.campaign_id!r} has no rows in the ledger {self.ledger_table!r}"
            )
        return [int(entry.message_id) for entry in sent], oldest, untracked

    def poke(self, context: Context) -> PokeReturnValue:
        """Walk the outbound list once; done when every tracked message is final."""
        ids, oldest, _ = self.tracked
        try:
            self._statuses = read_statuses(self.hook, ids, window_from(oldest))
        except TRANSIENT_ERRORS as error:
            self.log.warning("Reading delivery statuses failed for now (%s); again later", error)
            return PokeReturnValue(is_done=False)
        counts = delivery_counts(self._statuses, self.campaign_id)
        self.log.info(
            "Campaign %s: %d delivered, %d failed, %d pending of %d",
            self.campaign_id,
            counts["delivered"],
            counts["failed"],
            counts["pending"],
            counts["total"],
        )
        if all(status in FINAL_STATUSES for status in self._statuses.values()):
            return PokeReturnValue(is_done=True, xcom_value=self.finish(self._statuses))
        return PokeReturnValue(is_done=False)

    def execute(self, context: Context) -> Any:
        """Poke until final (poke/reschedule mode) or defer; at the timeout, report what there is."""
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                self.log.warning("Timeout: reporting the statuses as they are")
                return self.finish(self._statuses or dict.fromkeys(self.tracked[0]))
        first = self.poke(context)
        if first:
            return first.xcom_value
        ids, oldest, _ = self.tracked
        self.defer(
            trigger=SMSNexusDeliveryTrigger(
                message_ids=ids,
                campaign_id=self.campaign_id,
                oldest=oldest,
                smsnexus_conn_id=self.smsnexus_conn_id,
                poke_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.poke_interval * 2),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: the same counts as poke mode."""
        if event.get("status") not in ("success", "timeout"):
            raise SMSNexusError(f"Delivery trigger failed: {event.get('message') or event!r}")
        return self.finish({int(key): value for key, value in event["statuses"].items()})

    def finish(self, statuses: dict[int, str | None]) -> dict[str, Any]:
        """The counts; the report updated; a failure below ``min_delivery_rate``."""
        counts = {**delivery_counts(statuses, self.campaign_id), "untracked": self.tracked[2]}
        if self.report_path:
            written = write_delivery_statuses(self.report_path, {str(k): v for k, v in statuses.items()})
            self.log.info("Wrote %d delivery statuses into %s", written, self.report_path)
        rate = counts["delivery_rate"]
        if self.min_delivery_rate is not None and (rate is None or rate < self.min_delivery_rate):
            shown = "n/a" if rate is None else f"{rate:.1%}"
            raise AirflowFailException(
                f"Campaign {self.campaign_id}: delivery rate {shown} is below min_delivery_rate="
                f"{self.min_delivery_rate:.1%} ({counts['delivered']} delivered, {counts['failed']} failed, "
                f"{counts['pending']} still pending of {counts['total']})"
            )
        return counts
