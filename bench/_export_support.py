"""What ``bench/bench_export.py`` runs in its child processes and how it checks them: the measured exports.

The entry point (``bench_export.py``) runs each export in a fresh child process of itself; the child calls
:func:`child_ours` (this provider, the project's environment) or :func:`child_dlt` (dlt's ``rest_api``
source, ``.venv-bench``), which measure the export call alone. The orchestrator starts the emulator
(:func:`start_emulator`) and compares every export's ids with the emulator's own record
(:func:`exported_ids`, :func:`emulator_ids`, :func:`id_problem`).

Only the standard library is imported at the top: the child processes run under either environment.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTRY = Path(__file__).resolve().parent / "bench_export.py"  # what every child process runs
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
#: dlt as an Airflow task runs it: a venv holding Airflow and dlt; ``airflow.sdk`` is imported before dlt.
TASK_PYTHON = ROOT / ".venv-bench-airflow" / "bin" / "python"
#: Each tool's interpreter and child function (``--child-<name>``).
TOOLS = {"ours": (MAIN_PYTHON, "ours"), "dlt": (BENCH_PYTHON, "dlt"), "dlt-task": (TASK_PYTHON, "dlt")}
DEFAULT_POSTGRES = os.environ.get("SMSNEXUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SPAN_START, SPAN_END = "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"  # the seeded history: 90 days


# --------------------------------------------------------------------------------------------------
# Measuring inside a child process
# --------------------------------------------------------------------------------------------------


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            return int(rest.split()[0]) / 1024
    return float("nan")


def _measure(run: Any, profile: str | None = None) -> dict[str, Any]:
    """
    Run ``run()`` and measure wall time, CPU (every thread's) and memory around it (imports excluded from
    CPU/wall); with ``profile``, under cProfile, its statistics written to that file (figures then inflated).
    """
    import resource

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    rss_before = _status_mb("VmRSS")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        rows = run()
    finally:
        if profiler is not None:
            profiler.disable()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.dump_stats(profile)
    return {
        "rows": rows,
        "wall_s": wall,
        "cpu_s": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
        "rss_start_mb": rss_before,
        # The kernel's high-water mark of this process's memory (VmHWM, reset at exec). Not ru_maxrss: Linux
        # carries that over from the forking parent, which holds the emulator's million ids.
        "rss_peak_mb": _status_mb("VmHWM"),
        # pa.array on a Python list imports pandas (36 MB); our exports must not (bench/README.md).
        "pandas_loaded": "pandas" in sys.modules,
    }


def child_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """One export with this provider's operators (run under the project's environment)."""
    home = spec["airflow_home"]
    os.environ.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_SMSNEXUS_DEFAULT=spec["connection"],
        AIRFLOW_CONN_BENCH_PG=spec["postgres_url"],
    )
    from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator

    window = {"window_start": spec["window_start"], "window_end": spec["window_end"]}
    if spec["destination"] == "parquet":
        operator = SMSNexusToParquetOperator(task_id="bench", path=spec["target"], **window)
    else:
        operator = SMSNexusToSqlOperator(
            task_id="bench",
            sql_conn_id="bench_pg" if spec["destination"] == "postgres" else None,
            table=spec["target"],
            **window,
        )
    result: dict[str, Any] = {}

    def run() -> int:
        result.update(operator.execute({}))
        return result["rows"]

    figures = _measure(run, spec.get("profile"))
    figures["client_requests"] = result["requests"]
    return figures


def child_dlt(spec: dict[str, Any]) -> dict[str, Any]:
    """The same export with dlt's rest_api source (run under .venv-bench; with ``as_task``, under
    .venv-bench-airflow with ``airflow.sdk`` imported first, as in an Airflow task's process)."""
    work = tempfile.mkdtemp(prefix="bench-dlt-")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    if spec.get("as_task"):
        import airflow.sdk  # noqa: F401  # what every task process has loaded before its operator runs
    import dlt
    from dlt.sources.rest_api import rest_api_source

    connection = json.loads(spec["connection"])
    params: dict[str, Any] = {"per_page": 100}
    if spec["window_start"]:
        params.update(start_date=spec["window_start"], end_date=spec["window_end"])
    database = spec["destination"] != "parquet"
    source = rest_api_source(
        {
            "client": {
                "base_url": connection["host"].rstrip("/") + "/",
                "auth": {"type": "bearer", "token": connection["password"]},
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": "meta.last_page",
                },
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "merge" if database else "append",
            },
            "resources": [
                {
                    "name": "messages",
                    "endpoint": {"path": "messages", "params": params, "data_selector": "data"},
                }
            ],
        }
    )
    if spec["destination"] == "parquet":
        destination = dlt.destinations.filesystem(bucket_url=Path(spec["target"]).as_uri())
    elif spec["destination"] == "sqlite":
        destination = dlt.destinations.sqlalchemy(credentials=f"sqlite:///{spec['target']}")
    else:
        # dlt insists on a password; with trust authentication any will do.
        url = re.sub(r"^(postgresql://[^:@/]+)@", r"\1:unused@", spec["postgres_url"])
        destination = dlt.destinations.postgres(credentials=url)
    pipeline = dlt.pipeline(
        pipeline_name="bench_smsnexus",
        pipelines_dir=work,
        destination=destination,
        dataset_name=spec["dataset"],
    )

    def run() -> int:
        info = pipeline.run(source, loader_file_format="parquet" if not database else None)
        info.raise_on_failed_jobs()
        return int(pipeline.last_trace.last_normalize_info.row_counts.get("messages", 0))

    figures = _measure(run)
    shutil.rmtree(work, ignore_errors=True)
    return figures


# --------------------------------------------------------------------------------------------------
# The emulator, PostgreSQL, and the check of every export against the emulator's record
# --------------------------------------------------------------------------------------------------


def start_emulator(messages: int) -> tuple[subprocess.Popen, dict[str, Any], Any]:
    """The emulator as a subprocess with limits lifted, seeded with ``messages`` over 90 days."""
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    process = subprocess.Popen(
        [
            str(MAIN_PYTHON), "-m", "airflow_provider_smsnexus.emulator", "--port", "0", "--lifecycle", "manual",
            "--send-limit", "100000000", "--read-limit", "100000000", "--log-level", "warning",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    match = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", process.stdout.readline())
    if not match:
        process.kill()
        raise SystemExit("the emulator did not start")
    connection = json.loads(match.group(1))
    admin = EmulatorAdmin(connection["host"], timeout=900)
    admin.seed_messages(messages, random_seed=1, start=SPAN_START, end=SPAN_END)
    return process, connection, admin


def window_of_about(connection: dict[str, Any], rows: int) -> tuple[str, int]:
    """The latest start (whole UTC days back from the span's end) whose window holds at least ``rows``."""
    from datetime import datetime, timedelta

    import requests

    end = datetime.fromisoformat(SPAN_END.replace("Z", "+00:00"))
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {connection['password']}"
    for days in range(1, 91):
        start = (end - timedelta(days=days)).isoformat().replace("+00:00", "Z")
        answer = session.get(
            f"{connection['host']}/messages",
            params={"per_page": 1, "start_date": start, "end_date": SPAN_END},
            timeout=60,
        ).json()
        if answer["meta"]["total"] >= rows:
            return start, answer["meta"]["total"]
    return SPAN_START, answer["meta"]["total"]


def drop_postgres(url: str, tables: list[str], schemas: list[str]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
        for schema in schemas:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def postgres_reachable(url: str) -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception:
        return False
    return True


def emulator_ids(admin: Any, start: str | None) -> set[int]:
    """The ids the emulator holds in ``[start, span end)``: the independent record each export is checked against."""
    from datetime import datetime

    if "all_messages" not in admin.__dict__:
        admin.__dict__["all_messages"] = [(m["id"], m["created_at"]) for m in admin.messages()]
    since = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
    return {
        row_id
        for row_id, created in admin.__dict__["all_messages"]
        if since is None or datetime.fromisoformat(created.replace("Z", "+00:00")) >= since
    }


def exported_ids(
    tool: str, destination: str, name: str, spec: dict[str, Any], ctx: dict[str, Any]
) -> list[int]:
    """Every id the export wrote, read back from its destination (files or table)."""
    if destination == "parquet":
        import pyarrow.parquet as pq

        files = [f for f in Path(spec["target"]).rglob("*.parquet") if not f.name.startswith("_")]
        if tool != "ours":  # dlt writes its own state tables beside the resource's folder
            files = [f for f in files if f.parent.name == "messages"]
        return [i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
    if destination == "sqlite":
        import sqlite3

        path = (
            Path(spec["airflow_home"]) / "smsnexus_warehouse.db" if tool == "ours" else Path(spec["target"])
        )
        candidates = [path, *sorted(path.parent.glob(f"{path.stem}*.db"))]  # dlt attaches a file per dataset
        for candidate in candidates:
            with sqlite3.connect(candidate) as db:
                table = name if tool == "ours" else "messages"
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                    return [row[0] for row in db.execute(f'SELECT id FROM "{table}"')]
        return []
    import sqlalchemy as sa

    engine = sa.create_engine(ctx["postgres_url"].replace("postgresql://", "postgresql+psycopg://", 1))
    table = f'"{name}"' if tool == "ours" else f'"{spec["dataset"]}"."messages"'
    with engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql(f"SELECT id FROM {table}")]
    engine.dispose()
    return ids


def id_problem(ids: list[int], expected: set[int]) -> str | None:
    """None when ``ids`` is exactly ``expected``, each once; else what differs."""
    found = set(ids)
    if found == expected and len(ids) == len(expected):
        return None
    return (
        f"{len(expected - found)} ids missing, {len(found - expected)} ids not in the window, "
        f"{len(ids) - len(found)} written twice"
    )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for python, names in (
        (MAIN_PYTHON, ["apache-airflow", "pyarrow", "SQLAlchemy", "psycopg"]),
        (BENCH_PYTHON, ["dlt", "pyarrow", "SQLAlchemy", "psycopg2-binary"]),
        (TASK_PYTHON, ["apache-airflow", "dlt", "pyarrow"]),
    ):
        if not python.exists():
            continue
        code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
        out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=False)
        prefix = {BENCH_PYTHON: "dlt env ", TASK_PYTHON: "dlt-task env "}.get(python, "")
        if out.returncode == 0:
            found.update({f"{prefix}{k}": v for k, v in json.loads(out.stdout).items()})
    return found


#: What a DAG file imports: ``airflow.sdk`` alone, and with every operator, sensor and notifier of this provider.
IMPORTS = {
    "airflow.sdk": "import airflow.sdk",
    "airflow.sdk + pyarrow": "import airflow.sdk, pyarrow, pyarrow.parquet",
    "airflow.sdk + every operator": (
        "import airflow.sdk\n"
        "from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusSendSmsOperator\n"
        "from airflow_provider_smsnexus.operators.webhooks import SMSNexusDeleteWebhookOperator, "
        "SMSNexusEnsureWebhookOperator\n"
        "from airflow_provider_smsnexus.sensors.balance import SMSNexusBalanceSensor\n"
        "from airflow_provider_smsnexus.sensors.delivery import SMSNexusDeliverySensor\n"
        "from airflow_provider_smsnexus.sensors.reply import SMSNexusApprovalSensor, SMSNexusReplySensor\n"
        "from airflow_provider_smsnexus.notifications.smsnexus import SMSNexusNotifier\n"
        "from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator\n"
        "from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator\n"
    ),
}


def child_imports(code: str) -> dict[str, Any]:
    """Time one import block in this fresh process; its RSS high-water mark after it."""
    began = time.perf_counter()
    exec(code, {})
    return {
        "seconds": time.perf_counter() - began,
        "rss_mb": _status_mb("VmHWM"),
        "pandas": "pandas" in sys.modules,
    }


def measure_imports(repeat: int) -> list[str]:
    """Each import block ``repeat`` times, alternately, in fresh processes: medians and spread."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPORTS}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench-imports-")}
    for _ in range(repeat):
        for name, code in IMPORTS.items():
            completed = subprocess.run(
                [str(MAIN_PYTHON), str(ENTRY), "--child-imports", code],
                capture_output=True, text=True, cwd=ROOT, env=env, check=True,
            )  # fmt: skip
            runs[name].append(json.loads(completed.stdout.splitlines()[-1]))
    lines = [
        f"| import (fresh process, median of {repeat}) | seconds | spread (min-max) | RSS MB | pandas loaded |",
        "|---|---:|---:|---:|---|",
    ]
    for name, found in runs.items():
        seconds = [r["seconds"] for r in found]
        lines.append(
            f"| `{name}` | {statistics.median(seconds):.2f} | {min(seconds):.2f}-{max(seconds):.2f} | "
            f"{statistics.median(r['rss_mb'] for r in found):.0f} | {'yes' if found[0]['pandas'] else 'no'} |"
        )
    return lines
