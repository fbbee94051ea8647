"""
Example DAG: send an SMS campaign from a CSV shipped beside this file, each text exactly once.

What it shows:

* a dry run first (``check_campaign``): every row validated and priced, the report written, nothing sent;
* the campaign itself split into two mapped partitions that share one campaign and one send ledger
  (``.partial(...).expand(partition=...)``): rerunning a task, or the whole run, never texts anyone twice;
* per-row personalisation (``{{ row.first_name }}``) beside Airflow's own context (``{{ params.shop }}``);
* the per-partition results summed up downstream from XCom.

The CSV holds a few rows that are not sent on purpose: a duplicate, a national number (read with
``default_region="US"``), a number that lost its ``+``, letters, an empty cell, and a number that is not
in use. Try it against the local emulator::

    smsnexus-emulator --port 8025 &     # prints the AIRFLOW_CONN_SMSNEXUS_DEFAULT value to export
    export AIRFLOW_CONN_SMSNEXUS_DEFAULT='<the JSON it printed>'
    airflow dags test smsnexus_campaign_send

.. seealso:: The "SMSNexusBulkSendOperator" section of the README.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

RECIPIENTS = str(Path(__file__).parent / "campaign_recipients.csv")
PARTITIONS = 2
TEMPLATE = (
    "Hi {{ row.first_name }}, {{ params.shop }} opens in {{ row.city }} on {{ macros.ds_add(ds, 7) }}. "
    "Reply STOP to opt out."
)

with DAG(
    dag_id="smsnexus_campaign_send",
    description="Send an SMS campaign from a CSV, exactly once, in two partitions.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["smsnexus", "example"],
    doc_md=__doc__,
    params={
        "shop": Param("Corner Shop", type="string", description="The shop named in the text."),
        "from_number": Param(
            "+12125550100", type="string", description="The sender: a number of the account."
        ),
        "report_dir": Param(
            str(Path(tempfile.gettempdir()) / "smsnexus-reports"),
            type="string",
            description="Where the Parquet reports go (a local path or an object-storage URL).",
        ),
    },
) as dag:
    campaign = {
        "recipients": RECIPIENTS,
        "message_template": TEMPLATE,
        "from_number": "{{ params.from_number }}",
        "default_region": "US",
        "max_failure_rate": 0.2,
    }

    check = SMSNexusBulkSendOperator(
        task_id="check_campaign",
        dry_run=True,
        report_path="{{ params.report_dir }}/{{ ds_nodash }}/{{ run_id | replace(':', '_') }}/dry-run.parquet",
        **campaign,
    )

    send = SMSNexusBulkSendOperator.partial(
        task_id="send_campaign",
        num_partitions=PARTITIONS,
        report_path=(
            "{{ params.report_dir }}/{{ ds_nodash }}/{{ run_id | replace(':', '_') }}/"
            "partition-{{ ti.map_index }}.parquet"
        ),
        **campaign,
    ).expand(partition=list(range(PARTITIONS)))

    @task
    def summarise(results: list[dict]) -> dict:
        """Add up the partitions' results (each is the operator's XCom dict)."""
        totals: dict = {"campaign_id": results[0]["campaign_id"] if results else None}
        for result in results:
            for key, value in result.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
        return totals

    check >> send
    summarise(send.output)
