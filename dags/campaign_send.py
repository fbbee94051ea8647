"""
Example DAG: send an SMS campaign from a CSV shipped beside this file, each text exactly once.

What it shows:

* a dry run first (``check_campaign``): every row validated and priced, the report written, nothing sent;
* the campaign itself split into two mapped partitions that share one campaign and one send ledger
  (``.partial(...).expand(partition=...)``): rerunning a task, or the whole run, never texts anyone twice;
* per-row personalisation (``{{ row.first_name }}``) beside Airflow's own context (``{{ params.shop }}``);
* the per-partition results summed up downstream from XCom;
* templates that work on every run, including one triggered without a logical date (``airflow dags
  trigger``, the REST API and the UI's default in Airflow 3 leave it unset, and with it ``ds``,
  ``ds_nodash`` and ``logical_date``): dates come from ``dag_run.logical_date or dag_run.run_after``;
* retries: a task killed or failed mid-campaign is retried by the scheduler and texts only those not yet
  texted (the ledger remembers the rest).

Settings (environment variables, read when the DAG is parsed):

* ``SMSNEXUS_LEDGER_CONN_ID``: an Airflow SQL connection (PostgreSQL, ...) holding the send ledger; set it
  when tasks run on more than one machine (CeleryExecutor, Kubernetes). Default: the SQLite file
  ``$AIRFLOW_HOME/smsnexus/send_ledger.db`` of the machine that runs the task.
* ``SMSNEXUS_FROM_NUMBER``: the ``from_number`` param's default, the account's sending number; default
  ``+12125550100`` (the emulator's).
* ``SMSNEXUS_SEND_WINDOW``: the ``send_window`` param's default: ``us_federal`` (each recipient only between
  08:00 and 21:00 of their own time zone, the US federal rule; rows outside it wait, the task deferred to the
  triggerer, until their window opens); empty for any time.

Who is texted: the CSV's rows, and only when someone triggers it (it has no schedule, so unpausing it texts
nobody: the rule of docs/examples.md). The CSV holds fictional numbers (``+1 212 555 01xx``, reserved for
fiction), so a trigger on a real account texts nobody real until you give it your own table.

The reports go under the ``report_dir`` param: ``$AIRFLOW_HOME/smsnexus/reports`` unless the run sets it
(an object-storage URL such as ``s3://bucket/reports`` keeps them off the worker). A report that cannot be
written there fails the task before the first text.

The CSV holds a few rows that are not sent on purpose: a duplicate, a national number (read with
``default_region="US"``), a number that lost its ``+``, letters, an empty cell, and a number that is not
in use. Try it against the local emulator::

    smsnexus-emulator --port 8025 &     # prints the AIRFLOW_CONN_SMSNEXUS_DEFAULT value to export
    export AIRFLOW_CONN_SMSNEXUS_DEFAULT='<the JSON it printed>'
    # or store it in the metadata database instead (one command):
    #   airflow connections add smsnexus_default --conn-type smsnexus
    #     --conn-host http://127.0.0.1:8025/api --conn-password '<the token it printed>'
    airflow dags test smsnexus_campaign_send

``airflow dags test`` runs the deferred ``delivery_report``'s trigger inline (no triggerer needed); its
trigger reads a connection from the environment or from the metadata database alike (Airflow 3.3's
asynchronous lookup misses the database there: the provider falls back to the synchronous one; see the
troubleshooting page of the docs). It waits for the emulator's delivery reports, about half a minute.

See "SMSNexusBulkSendOperator" in the docs (docs/guides/sending.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_smsnexus.campaign.report import default_report_dir
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from airflow_provider_smsnexus.sensors.delivery import SMSNexusDeliverySensor

RECIPIENTS = str(Path(__file__).parent / "campaign_recipients.csv")
PARTITIONS = 2
LEDGER_CONN_ID = os.environ.get("SMSNEXUS_LEDGER_CONN_ID") or None
FROM_NUMBER = os.environ.get("SMSNEXUS_FROM_NUMBER") or "+12125550100"
SEND_WINDOW = os.environ.get("SMSNEXUS_SEND_WINDOW", "us_federal")
# How long the delivery report waits for final statuses, and the share of delivered texts it requires.
DELIVERY_WAIT_SECONDS = float(os.environ.get("SMSNEXUS_DELIVERY_WAIT_SECONDS") or 600)
MIN_DELIVERY_RATE = float(os.environ.get("SMSNEXUS_MIN_DELIVERY_RATE") or 0) or None
# The run's date: its logical date, or, on a run triggered without one, the moment it was triggered.
RUN_DATE = "(dag_run.logical_date or dag_run.run_after)"
TEMPLATE = (
    "Hi {{ row.first_name }}, {{ params.shop }} opens in {{ row.city }} on "
    "{{ (" + RUN_DATE + " + macros.timedelta(days=7)).strftime('%Y-%m-%d') }}. Reply STOP to opt out."
)
# One folder per run: run ids are unique, and ':' is left out for object stores and Windows.
REPORT_DIR = "{{ params.report_dir }}/{{ " + RUN_DATE + " | ds_nodash }}/{{ run_id | replace(':', '_') }}"

with DAG(
    dag_id="smsnexus_campaign_send",
    description="Send an SMS campaign from a CSV, exactly once, in two partitions.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["smsnexus", "example"],
    doc_md=__doc__,
    # A retry after a crash or a lost worker texts only the rows that were not texted (see the ledger).
    default_args={"retries": 2},
    params={
        "shop": Param("Corner Shop", type="string", description="The shop named in the text."),
        "from_number": Param(FROM_NUMBER, type="string", description="The sender: a number of the account."),
        "send_window": Param(
            SEND_WINDOW,
            type="string",
            description=(
                "When each recipient may be texted, in their own time zone: 'us_federal' (08:00-21:00), a JSON "
                'window such as {"start": "09:00", "end": "20:00"}, or empty for any time.'
            ),
        ),
        "report_dir": Param(
            str(default_report_dir()),
            type="string",
            description=(
                "Where the Parquet reports go (a local path or an object-storage URL); "
                "default $AIRFLOW_HOME/smsnexus/reports."
            ),
        ),
    },
) as dag:
    campaign = {
        "recipients": RECIPIENTS,
        "message_template": TEMPLATE,
        "from_number": "{{ params.from_number }}",
        "default_region": "US",
        "max_failure_rate": 0.2,
        "ledger_conn_id": LEDGER_CONN_ID,
        "send_window": "{{ params.send_window }}",
    }

    check = SMSNexusBulkSendOperator(
        task_id="check_campaign",
        dry_run=True,
        report_path=REPORT_DIR + "/dry-run.parquet",
        **campaign,
    )

    send = SMSNexusBulkSendOperator.partial(
        task_id="send_campaign",
        num_partitions=PARTITIONS,
        report_path=REPORT_DIR + "/partition-{{ ti.map_index }}.parquet",
        **campaign,
    ).expand(partition=list(range(PARTITIONS)))

    @task
    def summarise(results: list[dict]) -> dict:
        """Add up the partitions' results (each is the operator's XCom dict)."""
        # One read of all the partitions' results: a plain loop over Airflow's lazy sequence reads one past
        # the end, which Airflow logs as an error ("XCom not found") before the loop stops.
        partitions = list(results[:])
        totals: dict = {"campaign_id": partitions[0]["campaign_id"] if partitions else None}
        for result in partitions:
            for key, value in result.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
        return totals

    totals = summarise(send.output)

    # The campaign is done when its texts are delivered: wait for the final statuses (from the ledger's
    # message ids), report counts and the delivery rate; fail below SMSNEXUS_MIN_DELIVERY_RATE if set.
    SMSNexusDeliverySensor(
        task_id="delivery_report",
        campaign=totals,
        ledger_conn_id=LEDGER_CONN_ID,
        min_delivery_rate=MIN_DELIVERY_RATE,
        poke_interval=30,
        timeout=DELIVERY_WAIT_SECONDS,
        deferrable=True,
    )

    check >> send
