"""
Export the SMS Nexus message log and conversations every night: to Parquet files and to the SQL warehouse.

Every day at midnight UTC (``@daily``: in Airflow 3 a cron trigger, whose runs have an empty data interval):

* ``messages_to_parquet`` writes the messages created since the last night's export ended (the first night:
  the whole history), and again the two days before (``lookback``), into ``created_date=YYYY-MM-DD/``
  partitions under ``$SMSNEXUS_EXPORT_DIR/messages``: messages sent two days ago and delivered since get
  their final status. The destination keeps the record of each night's window, so a cleared run exports
  its window again and a manual run in between neither loses nor repeats a message.
* ``messages_to_sql`` upserts the same window into the ``smsnexus_messages`` table of the warehouse.
* ``conversations_to_parquet`` and ``conversations_to_sql`` snapshot every conversation (a file, and a table
  whose rows are replaced).

The four tasks are independent (one failing does not hold back the others) but run one at a time
(``max_active_tasks=1``), so that together they stay inside the account's read limit of 60 requests a minute. Each task's outlet is an Airflow asset: schedule a downstream DAG on
``Asset("file://.../messages")`` or ``Asset("smsnexus-sql://smsnexus_warehouse/smsnexus_messages")``.

Settings (environment variables, read when the DAG is parsed):

* ``SMSNEXUS_EXPORT_DIR``: the Parquet root; default ``$AIRFLOW_HOME/smsnexus-exports``. Any
  ObjectStoragePath URL works (``s3://bucket/smsnexus``), with ``SMSNEXUS_EXPORT_STORAGE_CONN_ID``.
* ``SMSNEXUS_WAREHOUSE_CONN_ID``: an Airflow SQL connection (PostgreSQL, ...); default: the embedded SQLite
  warehouse ``$AIRFLOW_HOME/smsnexus_warehouse.db``.
* ``SMSNEXUS_WAREHOUSE_SCHEMA``: the warehouse schema of both tables (and of their record of runs); default:
  the database's default.

Connection: ``smsnexus_default`` (host ``https://www.smsnexus.net/api``, password the API token).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import dag

from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator

AIRFLOW_HOME = os.path.expanduser(os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow"))
EXPORT_DIR = (os.environ.get("SMSNEXUS_EXPORT_DIR") or os.path.join(AIRFLOW_HOME, "smsnexus-exports")).rstrip(
    "/"
)
STORAGE_CONN_ID = os.environ.get("SMSNEXUS_EXPORT_STORAGE_CONN_ID") or None
WAREHOUSE_CONN_ID = os.environ.get("SMSNEXUS_WAREHOUSE_CONN_ID") or None
WAREHOUSE_SCHEMA = os.environ.get("SMSNEXUS_WAREHOUSE_SCHEMA") or None
LOOKBACK = timedelta(days=2)


@dag(
    dag_id="nightly_export",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    dagrun_timeout=timedelta(hours=6),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["smsnexus", "export"],
    doc_md=__doc__,
)
def nightly_export() -> None:
    """Messages (with a two-day lookback) and conversations, to Parquet and to the warehouse."""
    SMSNexusToParquetOperator(
        task_id="messages_to_parquet",
        path=f"{EXPORT_DIR}/messages",
        storage_conn_id=STORAGE_CONN_ID,
        lookback=LOOKBACK,
    )
    SMSNexusToSqlOperator(
        task_id="messages_to_sql",
        sql_conn_id=WAREHOUSE_CONN_ID,
        schema=WAREHOUSE_SCHEMA,
        table="smsnexus_messages",
        lookback=LOOKBACK,
    )
    SMSNexusToParquetOperator(
        task_id="conversations_to_parquet",
        resource="conversations",
        path=f"{EXPORT_DIR}/conversations",
        storage_conn_id=STORAGE_CONN_ID,
    )
    SMSNexusToSqlOperator(
        task_id="conversations_to_sql",
        resource="conversations",
        sql_conn_id=WAREHOUSE_CONN_ID,
        schema=WAREHOUSE_SCHEMA,
        table="smsnexus_conversations",
        mode="replace",
    )


nightly_export()
