"""What the two send operators share: the hook, the send ledger, the attempt, and templating that leaves data alone.

.. seealso:: :mod:`airflow_provider_smsnexus.operators.sms`, the operators themselves.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_smsnexus.campaign.lease import SendAttempt, lease_owner
from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import DEFAULT_TABLE_NAME
from airflow_provider_smsnexus.campaign.model import CLOCK_SKEW, LEASE_SECONDS
from airflow_provider_smsnexus.campaign.sources import is_storage_path
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.utils.rate_budget import INTERACTIVE

if TYPE_CHECKING:
    from airflow.sdk import Context


class SendOperatorBase(BaseOperator):
    """What both operators share: the hook, the ledger, the attempt, and templating that leaves data alone."""

    ui_color = "#d8f3dc"
    #: The hook's priority in a shared rate budget: a single send is waited on; a campaign is bulk.
    hook_priority = INTERACTIVE

    def __init__(
        self,
        *,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        campaign_id: str | None = None,
        ledger_conn_id: str | None = None,
        ledger_table: str = DEFAULT_TABLE_NAME,
        clock_skew: timedelta | float = CLOCK_SKEW,
        lease_seconds: float = LEASE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.campaign_id = campaign_id
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table
        self.clock_skew = clock_skew if isinstance(clock_skew, timedelta) else timedelta(seconds=clock_skew)
        if self.clock_skew < timedelta(0) or float(lease_seconds) <= 0:
            raise ValueError("clock_skew must not be negative, and lease_seconds must be positive")
        self.lease_seconds = float(lease_seconds)

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id, priority=self.hook_priority)

    def open_ledger(self) -> SendLedger:
        """The send ledger: in ``ledger_conn_id``'s database, or the SQLite file under AIRFLOW_HOME."""
        return SendLedger.for_connection(self.ledger_conn_id, table_name=self.ledger_table)

    def attempt(self, context: Context) -> SendAttempt:
        """This attempt at the sends: its leases owned by this task instance's try, on the task's lease terms."""
        return SendAttempt(lease_owner(context), lease_seconds=self.lease_seconds, clock_skew=self.clock_skew)

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: Any = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render strings, storage paths and XCom references; keep data (DataFrames, rows, numbers) as is.

        Recipient data is never a template: a ``{{`` in a customer's name must reach the text unchanged.
        """
        if (
            isinstance(content, str)
            or callable(getattr(type(content), "resolve", None))  # XComArg and friends
            or is_storage_path(content)
        ):
            return super().render_template(content, context, jinja_env, seen_oids)
        return content


#: The parameters of :class:`SendOperatorBase`, appended to each operator's docstring.
SHARED_PARAMS = """
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param campaign_id: the ledger's campaign. Templated.
    :param ledger_conn_id: an Airflow SQL connection (PostgreSQL...) holding the ledger; shared by workers
        that run one campaign. Default: an SQLite file under AIRFLOW_HOME (one machine only).
    :param ledger_table: the ledger's table name.
    :param clock_skew: the lookup's uncertainty about the server's clock while no ``Date`` header of the
        server was seen (once one was, the measured uncertainty is used). Default 60 s.
    :param lease_seconds: how long a claim on a ledger row lives unless renewed (renewed every third of it
        while the task runs); a dead attempt's rows are taken over after it. Default 30 s.
"""
