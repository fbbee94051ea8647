"""Benchmark the history export against the emulator, beside dlt's ``rest_api`` source on the same data.

Measures, for Parquet, the embedded SQLite warehouse and PostgreSQL:

1. throughput with the emulator's limits lifted: rows per second, client CPU seconds per 100k rows, and the
   client's peak RSS for a window of about 100k rows and for the whole 1,000,000-row history (it should stay
   flat); the requests made against the minimum of one per 100 rows;
2. the pace against a short rate-limit window (the emulator's read limit per second): requests per second
   reached, and the 429s the server answered.

The same runs are made with dlt's ``rest_api`` source configured for this API (page-number paginator on
``meta.last_page``, bearer auth) into the same destinations: filesystem/Parquet, ``sqlalchemy`` (SQLite) and
``postgres``, ``merge`` on ``id`` for the databases. dlt lives in its own virtual environment (``.venv-bench``)
so that the project's pinned environment stays as it is::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install "dlt[parquet,postgres,sqlalchemy]"

The emulator runs as a separate process (``smsnexus-emulator``), and every export runs in a fresh child
process, so each figure is the client's alone. Run::

    .venv/bin/python bench/bench_export.py                 # 1,000,000 messages, all destinations, with dlt
    .venv/bin/python bench/bench_export.py --messages 200000 --small 20000 --no-dlt
    .venv/bin/python bench/bench_export.py --write         # and record the figures in .readme-parts/bench-export.md

Each (destination, window) runs ours and dlt alternately, ``--repeat`` times, each export in a fresh child
process: CPU by ``getrusage`` around the export call, peak RSS by the kernel's high-water mark of the child
(``VmHWM``: ``ru_maxrss`` would carry over the forking parent's); the tables show medians and the ratios
ours / dlt. Every export's id set is compared with the emulator's own record (its inspection API): a run that differs is reported as a failure, not a figure,
and the benchmark exits non-zero. ``--imports`` measures the baseline RSS (``import airflow.sdk``, with
pyarrow) and the import time of every operator in a DAG file against ``import airflow.sdk`` alone.

Only the standard library is imported at the top: the child processes run under either environment.
"""

from __future__ import annotations

import argparse
import json
import math
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
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
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


def _measure(run: Any) -> dict[str, Any]:
    """Run ``run()`` and measure wall time, CPU and memory around it (imports excluded from CPU/wall)."""
    import resource

    rss_before = _status_mb("VmRSS")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    rows = run()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "rows": rows,
        "wall_s": wall,
        "cpu_s": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
        "rss_start_mb": rss_before,
        # The kernel's high-water mark of this process's memory (VmHWM, reset at exec). Not ru_maxrss: Linux
        # carries that over from the forking parent, which holds the emulator's million ids.
        "rss_peak_mb": _status_mb("VmHWM"),
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

    figures = _measure(run)
    figures["client_requests"] = result["requests"]
    return figures


def child_dlt(spec: dict[str, Any]) -> dict[str, Any]:
    """The same export with dlt's rest_api source (run under .venv-bench)."""
    work = tempfile.mkdtemp(prefix="bench-dlt-")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
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
# The orchestrator (project environment)
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


def run_child(python: Path, tool: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one export in a fresh process; return its figures (the last stdout line is JSON)."""
    completed = subprocess.run(
        [str(python), str(Path(__file__).resolve()), f"--child-{tool}", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = "\n".join((completed.stderr + completed.stdout).splitlines()[-60:])
        raise RuntimeError(f"{tool} {spec['destination']} failed ({completed.returncode}):\n{tail}")
    return json.loads(lines[-1])


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
        if tool == "dlt":  # dlt writes its own state tables beside the resource's folder
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


def one_run(
    tool: str, destination: str, size: str, window: tuple[str | None, str | None], ctx: dict[str, Any]
) -> dict[str, Any]:
    """One export in a fresh child, its figures, and the check of its ids against the emulator's."""
    admin, scratch = ctx["admin"], ctx["scratch"]
    name = f"bench_{tool}_{size}"
    target = {
        "parquet": str(scratch / f"{name}_parquet"),
        "sqlite": str(scratch / f"{name}.db") if tool == "dlt" else name,
        "postgres": name,
    }[destination]
    if destination == "postgres":
        drop_postgres(ctx["postgres_url"], [name], [f"{name}_ds", f"{name}_ds_staging"])
    home = scratch / f"{name}_home"
    home.mkdir(exist_ok=True)
    spec = {
        "destination": destination,
        "connection": ctx["connection_json"],
        "postgres_url": ctx["postgres_url"],
        "window_start": window[0],
        "window_end": window[1],
        "target": target,
        "dataset": f"{name}_ds",
        "airflow_home": str(home),
    }
    before = admin.stats()
    try:
        figures = run_child(BENCH_PYTHON if tool == "dlt" else MAIN_PYTHON, tool, spec)
        after = admin.stats()
        figures["requests"] = after["requests"]["other"] - before["requests"]["other"]
        figures["rate_limited"] = after["rate_limited"]["other"] - before["rate_limited"]["other"]
        figures["problem"] = id_problem(
            exported_ids(tool, destination, name, spec, ctx), ctx["expected"][size]
        )
    except RuntimeError as exc:
        figures = {"problem": str(exc).splitlines()[0], "rows": 0}
    figures.update(tool=tool, destination=destination, size=size)
    if destination == "postgres":
        drop_postgres(ctx["postgres_url"], [name], [f"{name}_ds", f"{name}_ds_staging"])
    shutil.rmtree(scratch / f"{name}_parquet", ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    for leftover in scratch.glob(f"{name}*.db"):
        leftover.unlink(missing_ok=True)
    print(_row(figures), flush=True)
    return figures


def _row(f: dict[str, Any]) -> str:
    if f.get("problem"):
        return f"| {f['tool']} | {f['destination']} | {f['size']} | FAILED: {f['problem']} | | | | | |"
    rows = max(f["rows"], 1)
    return (
        f"| {f['tool']} | {f['destination']} | {f['size']} | {f['rows']:,} | {f['rows'] / f['wall_s']:,.0f} | "
        f"{f['cpu_s']:.1f} | {f['rss_start_mb']:.0f} → {f['rss_peak_mb']:.0f} | "
        f"{f['requests']:,} / {math.ceil(rows / 100):,} | {f['rate_limited']} |"
    )


HEADER = (
    "| tool | destination | window | rows | rows/s | client CPU s | client RSS MB (start → peak) "
    "| requests / ⌈rows/100⌉ | 429s |\n|---|---|---|---:|---:|---:|---|---:|---:|"
)


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The median of each figure over the repeats; None when any repeat failed its id check."""
    if not runs or any(r.get("problem") for r in runs):
        return None
    out = dict(runs[0])
    for key in ("wall_s", "cpu_s", "rss_start_mb", "rss_peak_mb"):
        out[key] = statistics.median(r[key] for r in runs)
    for key in ("requests", "rate_limited"):
        out[key] = int(statistics.median(r[key] for r in runs))
    return out


def ratio_lines(medians: dict[tuple[str, str, str], dict[str, Any]], sizes: list[str]) -> list[str]:
    """The issue's rows: ours / dlt for CPU, peak RSS and rows/s, and our peak at the whole history / small window."""
    lines = [
        "| destination | window | CPU ours / dlt | peak RSS ours / dlt | rows/s ours / dlt |",
        "|---|---|---:|---:|---:|",
    ]
    for (tool, destination, size), ours in medians.items():
        dlt = medians.get(("dlt", destination, size))
        if tool != "ours" or ours is None or dlt is None:
            continue
        lines.append(
            f"| {destination} | {size} | {ours['cpu_s'] / dlt['cpu_s']:.2f} | "
            f"{ours['rss_peak_mb'] / dlt['rss_peak_mb']:.2f} | "
            f"{(ours['rows'] / ours['wall_s']) / (dlt['rows'] / dlt['wall_s']):.1f}x |"
        )
    lines += ["", "| destination | our peak RSS: whole history / small window |", "|---|---:|"]
    for destination in sorted({d for _, d, _ in medians}):
        small, large = medians.get(("ours", destination, sizes[0])), medians.get(("ours", destination, "all"))
        if small and large:
            lines.append(f"| {destination} | {large['rss_peak_mb'] / small['rss_peak_mb']:.3f} |")
    return lines


def pace_run(tool: str, ctx: dict[str, Any], limit: int, window: tuple[str, str]) -> dict[str, Any]:
    """An export of ``window`` into Parquet with the emulator's read limit at ``limit`` per second."""
    admin = ctx["admin"]
    admin.set_limits(read_limit=limit, window_seconds=1)
    connection = json.loads(ctx["connection_json"])
    connection["extra"] = {**connection.get("extra", {}), "read_rate_limit": limit, "rate_limit_period": 1}
    spec = {
        "destination": "parquet",
        "connection": json.dumps(connection),
        "postgres_url": ctx["postgres_url"],
        "window_start": window[0],
        "window_end": window[1],
        "target": str(ctx["scratch"] / f"pace_{tool}"),
        "dataset": f"pace_{tool}",
        "airflow_home": str(ctx["scratch"]),
    }
    time.sleep(1.1)  # start in a fresh window
    before = admin.stats()
    figures = run_child(BENCH_PYTHON if tool == "dlt" else MAIN_PYTHON, tool, spec)
    after = admin.stats()
    admin.set_limits(read_limit=100_000_000, window_seconds=60)
    problem = id_problem(exported_ids(tool, "parquet", "", spec, ctx), emulator_ids(admin, window[0]))
    shutil.rmtree(ctx["scratch"] / f"pace_{tool}", ignore_errors=True)
    if problem:
        print(f"| {tool} | {limit}/s | FAILED: {problem} | | | | |", flush=True)
        return {"tool": tool, "limit": limit, "problem": problem}
    requests_made = after["requests"]["other"] - before["requests"]["other"]
    refused = after["rate_limited"]["other"] - before["rate_limited"]["other"]
    accepted = requests_made - refused
    result = {
        "tool": tool,
        "limit": limit,
        "rows": figures["rows"],
        "wall_s": figures["wall_s"],
        "requests": requests_made,
        "accepted_per_s": accepted / figures["wall_s"],
        "rate_limited": refused,
        "max_in_window": after["max_in_window"]["other"],
    }
    print(
        f"| {tool} | {limit}/s | {result['rows']:,} | {result['wall_s']:.1f} | {result['accepted_per_s']:.1f} | "
        f"{requests_made} | {refused} |",
        flush=True,
    )
    return result


PACE_HEADER = "| tool | read limit | rows | seconds | accepted requests/s | requests | 429s |\n|---|---|---:|---:|---:|---:|---:|"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for python, names in (
        (MAIN_PYTHON, ["apache-airflow", "pyarrow", "SQLAlchemy", "psycopg"]),
        (BENCH_PYTHON, ["dlt", "pyarrow", "SQLAlchemy", "psycopg2-binary"]),
    ):
        if not python.exists():
            continue
        code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
        out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=False)
        prefix = "dlt env " if python == BENCH_PYTHON else ""
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
                [str(MAIN_PYTHON), str(Path(__file__).resolve()), "--child-imports", code],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="seeded history (the large run)")
    parser.add_argument("--small", type=int, default=100_000, help="rows of the small window")
    parser.add_argument("--destinations", default="parquet,postgres", help="of parquet, sqlite, postgres")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each export (medians are shown)")
    parser.add_argument("--no-dlt", dest="dlt", action="store_false", help="skip the dlt runs")
    parser.add_argument("--no-pace", dest="pace", action="store_false", help="skip the rate-limited runs")
    parser.add_argument("--imports", type=int, default=7, help="fresh processes per import block (0: skip)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--pace-limit", type=int, default=20, help="read limit per 1-second window")
    parser.add_argument("--pace-rows", type=int, default=20_000, help="rows of the paced export")
    parser.add_argument(
        "--write", action="store_true", help="record the figures in .readme-parts/bench-export.md"
    )
    parser.add_argument("--child-ours")
    parser.add_argument("--child-dlt")
    parser.add_argument("--child-imports")
    args = parser.parse_args()
    for flag, child in (
        (args.child_ours, child_ours),
        (args.child_dlt, child_dlt),
        (args.child_imports, None),
    ):
        if flag:
            print(json.dumps(child(json.loads(flag)) if child else child_imports(flag)))
            return

    destinations = args.destinations.split(",")
    if "postgres" in destinations and not postgres_reachable(args.postgres_url):
        print(f"PostgreSQL not reachable at {args.postgres_url}: skipped")
        destinations.remove("postgres")
    tools = ["ours"] + (["dlt"] if args.dlt and BENCH_PYTHON.exists() else [])
    imports = measure_imports(args.imports) if args.imports else []
    print("\n".join(imports), flush=True)
    began = time.perf_counter()
    process, connection, admin = start_emulator(args.messages)
    scratch = Path(tempfile.mkdtemp(prefix="bench-export-"))
    ctx: dict[str, Any] = {
        "admin": admin,
        "connection_json": json.dumps(connection),
        "postgres_url": args.postgres_url,
        "scratch": scratch,
    }
    results: list[dict[str, Any]] = []
    pace: list[dict[str, Any]] = []
    load = os.getloadavg()
    try:
        print(f"Seeded {args.messages:,} messages in {time.perf_counter() - began:.0f} s")
        small_start, small_total = window_of_about(connection, args.small)
        pace_start, _ = window_of_about(connection, args.pace_rows)
        sizes = [f"{small_total // 1000}k", "all"]
        ctx["expected"] = {sizes[0]: emulator_ids(admin, small_start), "all": emulator_ids(admin, None)}
        print(HEADER)
        for destination in destinations:
            for size, window in zip(sizes, ((small_start, SPAN_END), (None, None))):
                for _ in range(args.repeat):
                    for tool in tools:  # alternately, under the same conditions
                        results.append(one_run(tool, destination, size, window, ctx))
        if args.pace:
            print()
            print(PACE_HEADER)
            for tool in tools:
                pace.append(pace_run(tool, ctx, args.pace_limit, (pace_start, SPAN_END)))
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)
    load = (*load, *os.getloadavg())
    medians = {
        key: median_figures([r for r in results if (r["tool"], r["destination"], r["size"]) == key])
        for key in dict.fromkeys((r["tool"], r["destination"], r["size"]) for r in results)
    }
    ratios = ratio_lines(medians, sizes)
    print("\n" + "\n".join(ratios))
    failed = [r for r in results + pace if r.get("problem")]
    report = to_markdown(args, medians, ratios, imports, pace, versions(), load)
    if args.write:
        target = ROOT / ".readme-parts" / "bench-export.md"
        target.parent.mkdir(exist_ok=True)
        target.write_text(report + "\n")
        print(f"Written to {target}")
    if failed:
        print(f"FAILED: {len(failed)} export(s) did not write exactly the emulator's ids", file=sys.stderr)
        sys.exit(1)


#: How to read the figures (written under the tables).
READING_NOTES = [
    "",
    "Reading the figures:",
    "",
    "- *window*: the latest whole days holding at least the small row count, or the whole history (`all`). "
    "*rows/s* and *CPU* are measured around the export call (imports excluded); the emulator's CPU is not "
    "in them, but it shares the machine's cores with the client.",
    "- *ours* is this provider (`SMSNexusToParquetOperator`, `SMSNexusToSqlOperator` with a PostgreSQL "
    "connection or the embedded SQLite warehouse), default `batch_size` of 10,000; each run loads into a new "
    "table (both tools), so ours COPYs straight into it.",
    "- *RSS start* is the child after its imports (Airflow and the operator modules; dlt for dlt), *peak* the "
    "kernel's high-water mark of the whole child, including the libraries the run imports lazily (pyarrow, "
    "the SQL drivers). `import airflow.sdk` alone is about 114 MB and pyarrow adds about 40 MB (the import "
    "rows), so an Airflow task's floor is above dlt's whole peak. The export's own working set (a batch of "
    "Arrow rows, 1,000 API rows as dicts) does not grow with the history.",
    "- *requests / ⌈rows/100⌉*: requests the emulator counted against the minimum of one per 100-row page. A "
    "windowed export stops at the first page older than the window (the list is newest first).",
    "- Every export's ids were read back from its destination and compared with the emulator's record of the "
    "window: a run that differs shows FAILED instead of figures.",
    "- dlt is configured for this API as a user would: `rest_api` source, bearer auth, `page_number` "
    "paginator on `meta.last_page`, `data_selector: data`; `merge` on `id` into SQLite (`sqlalchemy` "
    "destination) and PostgreSQL, `append` into an empty folder for Parquet (dlt's filesystem destination "
    "does not merge plain Parquet). It has no client-side rate limiter: it retries 429s after `Retry-After`.",
    "- The machine (2 cores) was shared with other work during the run: treat throughput as ±30%; the "
    "tools ran alternately under the same conditions.",
]


def to_markdown(
    args: Any,
    medians: dict[tuple[str, str, str], dict[str, Any] | None],
    ratios: list[str],
    imports: list[str],
    pace: list[dict[str, Any]],
    found: dict[str, str],
    load: tuple[float, ...],
) -> str:
    lines = [
        f"`bench/bench_export.py --repeat {args.repeat}`: {args.messages:,} messages seeded over 90 days in the "
        "emulator (a separate process, limits lifted); every export runs in a fresh child process, ours and "
        f"dlt alternately; medians of {args.repeat} runs. Machine: {os.cpu_count()} cores, Python "
        f"{found['python']}; load average {load[0]:.1f} at the start, {load[3]:.1f} at the end (other work "
        "shared the machine).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in found.items() if k != "python") + ".",
        "",
        HEADER,
        *[_row(m) if m else f"| {k[0]} | {k[1]} | {k[2]} | FAILED | | | | | |" for k, m in medians.items()],
        "",
        *ratios,
    ]
    if imports:
        lines += ["", *imports]
    if pace:
        lines += [
            "",
            f"Pace against a read limit of {args.pace_limit} requests per 1-second window (Parquet; this "
            "provider's connection told the limit through `read_rate_limit`/`rate_limit_period`; dlt has no "
            "client-side limiter and relies on retrying 429s after `Retry-After`):",
            "",
            PACE_HEADER,
        ]
        for p in pace:
            if p.get("problem"):
                lines.append(f"| {p['tool']} | {p['limit']}/s | FAILED: {p['problem']} | | | | |")
                continue
            lines.append(
                f"| {p['tool']} | {p['limit']}/s | {p['rows']:,} | {p['wall_s']:.1f} | "
                f"{p['accepted_per_s']:.1f} | {p['requests']} | {p['rate_limited']} |"
            )
    lines += READING_NOTES
    return "\n".join(lines)


if __name__ == "__main__":
    main()
