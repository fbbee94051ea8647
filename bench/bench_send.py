"""Benchmark the campaign sender against the emulator, beside the naive loop a user would otherwise write.

Measures:

1. the per-row client overhead of :class:`SMSNexusBulkSendOperator` without HTTP: validation and rendering
   (``plan_rows``), and the ledger's writes per row (SQLite; PostgreSQL when reachable): as the sender writes
   them (claims in batches, one durable pending commit per row, ``sent`` marks in groups), and one commit per
   write (claim, pending, sent: the path before grouped commits);
2. throughput with the emulator's limits lifted: the operator (1 and 4 sends in flight) and a naive loop of
   ``HttpHook.run`` per row (apache-airflow-providers-http, with ``check_response`` off so a 429 does not
   end the loop), alternately, each run in a fresh child process, ``--rounds`` times; medians reported, and
   the client's CPU per row (``getrusage`` of the child, every thread). Every operator run checks the
   emulator's record: each recipient texted exactly once, or the benchmark fails;
3. the pace against an announced limit with a one-second window, and the 429s: the operator, and the naive
   loop (which has no limiter: every 429 is a message it did not send).

The emulator runs as a separate process (``smsnexus-emulator``) on a free loopback port, so client and
server do not share an interpreter. Run::

    .venv/bin/python bench/bench_send.py                                  # 1,000 rows, 3 rounds, limit 50/s
    .venv/bin/python bench/bench_send.py --rows 500 --rounds 5 --write    # and record the figures in .readme-parts/bench-send.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
SENDER = "+12125550100"
TEMPLATE = "Hi {{ row.first_name }}, your order {{ row.order }} ships on {{ ds }}. Reply STOP to opt out."
POSTGRES_URL = os.environ.get("SMSNEXUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def emulator() -> Iterator[tuple[dict[str, Any], Any]]:
    """A fresh ``smsnexus-emulator`` process with lifted limits: (connection dict, admin client)."""
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    process = subprocess.Popen(
        [
            sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--port", "0", "--lifecycle", "manual",
            "--send-limit", "1000000", "--read-limit", "1000000", "--log-level", "warning",
            "--initial-credits", "100000000",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", line)
        if not match:
            raise SystemExit(f"the emulator did not start: {line!r}")
        connection = json.loads(match.group(1))
        yield connection, EmulatorAdmin(connection["host"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def recipients(count: int, offset: int = 0):
    """A table of ``count`` distinct valid fictional numbers (+1 212 555 01xx across area codes)."""
    import pandas as pd

    area_codes = ["212", "312", "415", "617", "646", "718", "202", "305", "503", "702"]
    numbers = [
        f"+1{area_codes[(i // 100) % 10]}555{100 + i % 100:04d}" for i in range(offset, offset + count)
    ]
    if count + offset > 1000:
        raise SystemExit("at most 1,000 distinct fictional numbers: pass --rows 1000 or fewer")
    return pd.DataFrame(
        {"to": numbers, "first_name": [f"Customer{i}" for i in range(count)], "order": range(count)}
    )


def set_connection(connection: dict[str, Any], **extras: Any) -> None:
    extra = {"retry_backoff": 0.05, "retry_backoff_max": 0.5, **extras}
    os.environ["AIRFLOW_CONN_SMSNEXUS_DEFAULT"] = json.dumps({**connection, "extra": extra})


def operator(rows, **kwargs):
    from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

    return SMSNexusBulkSendOperator(
        task_id="bench",
        recipients=rows,
        message_template=TEMPLATE,
        from_number=SENDER,
        honor_opt_outs=False,
        **kwargs,
    )


def context(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "ds": "2026-03-08", "params": {}}


# -- 1. client overhead ----------------------------------------------------------------------------------------


def overhead(rows: int) -> dict[str, float]:
    """Microseconds per row of planning (validate + render) and of the ledger's writes; the one-time cost."""
    import airflow_provider_smsnexus.operators.sms  # noqa: F401 - Airflow's own import is not ours to count
    from airflow_provider_smsnexus.campaign.ledger import SendLedger

    table = recipients(min(rows, 1000))
    began = time.perf_counter()
    operator(table.head(1)).plan_rows(context("warm-up"))  # once per process: phone metadata, Jinja
    figures = {"first_call_ms": (time.perf_counter() - began) * 1000}
    repeats = max(1, rows // len(table))
    began = time.perf_counter()
    for _ in range(repeats):
        planned = operator(table).plan_rows(context("plan"))
    figures["plan_us_per_row"] = (time.perf_counter() - began) / (repeats * len(table)) * 1e6
    assert sum(row.outcome is None for row in planned) == len(table)

    with (
        tempfile.TemporaryDirectory() as directory,
        SendLedger.sqlite(Path(directory) / "ledger.db") as ledger,
    ):
        figures["ledger_sqlite_us_per_row"] = _ledger_writes(ledger, planned)
        figures["ledger_sqlite_each_us_per_row"] = _ledger_writes_each(ledger, planned)
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        ledger = SendLedger(engine, table_name=f"bench_ledger_{os.getpid()}", owns_engine=True)
        try:
            figures["ledger_postgres_us_per_row"] = _ledger_writes(ledger, planned)
            figures["ledger_postgres_each_us_per_row"] = _ledger_writes_each(ledger, planned)
        finally:
            ledger.table.drop(engine, checkfirst=True)
            ledger.close()
    except Exception as exc:  # PostgreSQL is optional for the benchmark
        print(f"(PostgreSQL ledger skipped: {type(exc).__name__})", file=sys.stderr)
    return figures


def _ledger_writes(ledger, planned, batch: int = 100) -> float:
    """As the sender writes: claims in batches, a durable pending mark per row, ``sent`` marks in groups."""
    from airflow_provider_smsnexus.campaign.sender import CLAIM_BATCH, SENT_GROUP

    ledger.create_table()
    began = time.perf_counter()
    for start in range(0, len(planned), min(CLAIM_BATCH, SENT_GROUP)):
        chunk = planned[start : start + min(CLAIM_BATCH, SENT_GROUP)]
        items = [(row.recipient, row.message_hash, SENDER) for row in chunk]
        ledger.claim_many("bench-grouped", items, owner="bench", account="bench", lease_seconds=30)
        for row in chunk:
            ledger.mark_pending("bench-grouped", row.recipient, row.message_hash, owner="bench")
        marks = [(row.recipient, row.message_hash, start + i, 1) for i, row in enumerate(chunk)]
        ledger.mark_sent_many("bench-grouped", marks, owner="bench")
    return (time.perf_counter() - began) / len(planned) * 1e6


def _ledger_writes_each(ledger, planned) -> float:
    """One commit per write (claim, pending, sent): the path before grouped commits."""
    began = time.perf_counter()
    for index, row in enumerate(planned):
        key = ("bench-each", row.recipient, row.message_hash)
        ledger.claim(*key, owner="bench", from_number=SENDER, account="bench", lease_seconds=30)
        ledger.mark_pending(*key, owner="bench")
        ledger.mark_sent(*key, owner="bench", message_id=index, credits=1)
    return (time.perf_counter() - began) / len(planned) * 1e6


# -- 2. and 3. against the emulator -------------------------------------------------------------------------------


def campaign(admin, rows, run_id: str, **kwargs) -> dict[str, Any]:
    """Run one campaign with the operator; return its rate and the server's counts."""
    admin.reset()
    task = operator(rows, **kwargs)
    began, cpu = time.perf_counter(), client_cpu()
    summary = task.execute(context(run_id))
    elapsed, cpu = time.perf_counter() - began, client_cpu() - cpu
    stats = admin.stats()
    sent = admin.sent_messages()
    assert summary["sent"] == len(rows) == len({m["to"] for m in sent}) == len(sent), summary
    return {
        "sent": len(sent),
        "seconds": elapsed,
        "per_second": len(sent) / elapsed,
        "cpu_ms_per_row": cpu / len(rows) * 1000,
        "rate_limited": stats["rate_limited"]["send"],
        "max_in_window": stats["max_in_window"]["send"],
    }


def client_cpu() -> float:
    """CPU seconds of this process so far, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def naive_loop(admin, connection: dict[str, Any], rows) -> dict[str, Any]:
    """What a user would write without this provider: ``HttpHook.run`` per row, no limiter, no ledger."""
    from urllib.parse import urlsplit

    from airflow.providers.http.hooks.http import HttpHook

    admin.reset()
    base = urlsplit(connection["host"])
    http_conn = {"conn_type": "http", "host": base.hostname, "port": base.port, "schema": base.scheme}
    os.environ["AIRFLOW_CONN_NAIVE_SMSNEXUS_HTTP"] = json.dumps(http_conn)
    hook = HttpHook(method="POST", http_conn_id="naive_smsnexus_http")
    headers = {"Authorization": f"Bearer {connection['password']}", "Accept": "application/json"}
    refused = 0
    began, cpu = time.perf_counter(), client_cpu()
    for record in rows.to_dict("records"):
        body = f"Hi {record['first_name']}, your order {record['order']} ships on 2026-03-08. Reply STOP to opt out."
        response = hook.run(
            endpoint=f"{base.path.rstrip('/')}/sms/send",
            json={"from": SENDER, "to": record["to"], "message": body},
            headers=headers,
            extra_options={"check_response": False, "timeout": 30},
        )
        if response.status_code == 429:  # with check_response=True the task would die here instead
            refused += 1
    elapsed, cpu = time.perf_counter() - began, client_cpu() - cpu
    sent = len(admin.sent_messages())
    return {
        "sent": sent,
        "seconds": elapsed,
        "per_second": sent / elapsed,
        "cpu_ms_per_row": cpu / len(rows) * 1000,
        "rate_limited": refused,
        "max_in_window": admin.stats()["max_in_window"]["send"],
    }


#: The lifted-limit senders, in the order each round runs them (ours and the naive loop alternate).
LIFTED = {
    "operator, 1 in flight": "operator-1",
    "naive HttpHook.run loop": "naive",
    "operator, 4 in flight": "operator-4",
}


def child(kind: str, rows: int, connection: dict[str, Any], run_id: str) -> dict[str, Any]:
    """One lifted-limit run in this (fresh) process; the operator's run checks exactly once on the server."""
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    admin = EmulatorAdmin(connection["host"])
    set_connection(connection, send_rate_limit=1_000_000, read_rate_limit=1_000_000)
    table = recipients(rows)
    if kind == "naive":
        return naive_loop(admin, connection, table)
    return campaign(admin, table, run_id, max_concurrency=int(kind.split("-")[1]))


def lifted_rounds(connection: dict[str, Any], rows: int, rounds: int) -> dict[str, Any]:
    """Each sender ``rounds`` times, alternately, in fresh child processes; per sender the median run."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in LIFTED}
    for round_number in range(rounds):
        for name, kind in LIFTED.items():
            done = subprocess.run(
                [
                    sys.executable, __file__, "--child", kind, "--rows", str(rows),
                    "--connection", json.dumps(connection), "--run-id", f"lifted-{kind}-{round_number}",
                ],
                capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(),
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"{name} failed (a failure, not a figure):\n{done.stderr[-3000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {}
    for name, results in runs.items():
        median = dict(sorted(results, key=lambda r: r["per_second"])[len(results) // 2])
        median["all_per_second"] = [round(r["per_second"]) for r in results]
        median["cpu_ms_per_row"] = sorted(r["cpu_ms_per_row"] for r in results)[len(results) // 2]
        medians[name] = median
    return medians


def run(rows: int, paced_rows: int, limit: int, rounds: int = 3) -> dict[str, Any]:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-send-home-"))
    results: dict[str, Any] = {"rows": rows, "paced_rows": paced_rows, "limit_per_second": limit}
    results["rounds"] = rounds
    results["overhead"] = overhead(rows)
    paced = recipients(paced_rows)
    with emulator() as (connection, admin):
        results["lifted"] = lifted_rounds(connection, rows, rounds)
        # The announced limit: a one-second window; the client starts at its default (30 per period) and
        # adopts the server's X-RateLimit-Limit from the first answer.
        set_connection(connection, rate_limit_period=1)
        paced_results = {}
        for name, kwargs in (
            ("operator, 1 in flight", {}),
            ("operator, 4 in flight", {"max_concurrency": 4}),
        ):
            admin.reset()
            admin.set_limits(send_limit=limit, window_seconds=1)
            paced_results[name] = campaign_after_reset(admin, paced, f"paced-{name}", limit, **kwargs)
        admin.reset()
        admin.set_limits(send_limit=limit, window_seconds=1)
        paced_results["naive HttpHook.run loop"] = naive_after_reset(admin, connection, paced, limit)
        results["paced"] = paced_results
    return results


def campaign_after_reset(admin, rows, run_id: str, limit: int, **kwargs) -> dict[str, Any]:
    """Like :func:`campaign`, on an emulator already reset and limited (reset would lift the limit)."""
    task = operator(rows, **kwargs)
    began = time.perf_counter()
    summary = task.execute(context(run_id))
    elapsed = time.perf_counter() - began
    stats = admin.stats()
    assert summary["sent"] == len(rows), summary
    return {
        "sent": summary["sent"],
        "seconds": elapsed,
        "per_second": summary["sent"] / elapsed,
        "rate_limited": stats["rate_limited"]["send"],
        "max_in_window": stats["max_in_window"]["send"],
    }


def naive_after_reset(admin, connection: dict[str, Any], rows, limit: int) -> dict[str, Any]:
    real_reset = admin.reset
    admin.reset = lambda: None  # keep the limit just set
    try:
        result = naive_loop(admin, connection, rows)
    finally:
        admin.reset = real_reset
    return result


# -- output ------------------------------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()}; emulator in its own process on loopback; load average "
        f"{os.getloadavg()[0]:.1f} at the end (other work shares the machine: figures vary by tens of percent).",
        "",
        "**Client overhead per row (no HTTP)**",
        "",
        "| step | µs per row |",
        "|---|---:|",
    ]
    first_call = results["overhead"].pop("first_call_ms")
    names = {
        "plan_us_per_row": "validate + normalise + render + hash (`plan_rows`)",
        "ledger_sqlite_us_per_row": "ledger as the sender writes it: batched claims, a durable pending "
        "commit per row, grouped `sent` commits (SQLite, WAL, synchronous=FULL)",
        "ledger_sqlite_each_us_per_row": "ledger, one commit per write: claim, pending, sent (SQLite; before)",
        "ledger_postgres_us_per_row": "ledger as the sender writes it (PostgreSQL, local)",
        "ledger_postgres_each_us_per_row": "ledger, one commit per write (PostgreSQL, local; before)",
    }
    for key, value in results["overhead"].items():
        lines.append(f"| {names[key]} | {value:,.0f} |")
    lines += [
        "",
        f"Once per task process, the first row costs {first_call:,.0f} ms more (phone-number metadata and "
        "the Jinja environment load on first use).",
        "",
        f"**Throughput, limits lifted ({results['rows']:,} rows; {results['rounds']} rounds, the senders "
        "alternating, each run in a fresh process; the median run)**",
        "",
        "| sender | sent | seconds | messages/s (median) | every round | client CPU ms/row | 429s "
        "| exactly once, report, ledger |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, row in results["lifted"].items():
        safe = "no" if name.startswith("naive") else "yes (checked on the server)"
        lines.append(
            f"| {name} | {row['sent']:,} | {row['seconds']:.2f} | {row['per_second']:,.0f} | "
            f"{', '.join(map(str, row['all_per_second']))} | {row['cpu_ms_per_row']:.2f} | "
            f"{row['rate_limited']} | {safe} |"
        )
    lines += [
        "",
        f"**Against an announced limit of {results['limit_per_second']} sends per 1-second window "
        f"({results['paced_rows']:,} rows)**",
        "",
        "| sender | sent | seconds | messages/s | windows needed at the limit | most in one window | 429s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["paced"].items():
        needed = "—" if name.startswith("naive") else f"{-(-row['sent'] // results['limit_per_second'])}"
        lines.append(
            f"| {name} | {row['sent']:,} | {row['seconds']:.1f} | {row['per_second']:.1f} | "
            f"{needed} | {row['max_in_window']} | {row['rate_limited']} |"
        )
    lines += [
        "",
        "n sends at L per fixed window need ceil(n/L) windows; the first and last may be partial, so a run at "
        "the limit takes between ceil(n/L) - 2 and ceil(n/L) seconds. The naive loop has no limiter: every 429 "
        "is a message it did not send.",
    ]
    lifted = results["lifted"]
    ours, loop = lifted["operator, 1 in flight"], lifted["naive HttpHook.run loop"]
    naive = loop["per_second"]
    ratios = {name: lifted[name]["per_second"] / naive for name in lifted if not name.startswith("naive")}
    extra_ms = (1 / ours["per_second"] - 1 / naive) * 1000
    extra_cpu = ours["cpu_ms_per_row"] - loop["cpu_ms_per_row"]
    lines += [
        "",
        "Operator / naive loop, messages/s (medians): "
        + "; ".join(f"{name} {ratio:.0%}" for name, ratio in ratios.items())
        + ".",
        "",
        f"Per row, the operator (1 in flight) spends {extra_ms:.2f} ms more than the naive loop "
        f"({extra_cpu:+.2f} ms of client CPU): the ledger's one durable commit per row (the pending mark, "
        "before the request leaves: its fsync is waiting, not CPU), validation, rendering, the limiter and "
        "the lookup bookkeeping. Against SMS Nexus' default limit of 30 sends a minute (one send every "
        f"2,000 ms) that is {extra_ms / 2000:.2%} of the time a campaign takes.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1000, help="rows of the lifted-limit runs (at most 1,000)"
    )
    parser.add_argument("--paced-rows", type=int, default=1000, help="rows of the paced runs")
    parser.add_argument("--limit", type=int, default=50, help="the announced limit, sends per second")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the lifted-limit runs")
    parser.add_argument(
        "--write", action="store_true", help="record the figures in .readme-parts/bench-send.md"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one run in a fresh process (internal)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.rows, json.loads(args.connection), args.run_id)))
        return
    results = run(args.rows, args.paced_rows, args.limit, args.rounds)
    text = table(results)
    print(text)
    if args.write:
        target = ROOT / ".readme-parts" / "bench-send.md"
        target.write_text(
            "## Benchmark: campaign sending\n\n"
            f"`.venv/bin/python bench/bench_send.py --rows {args.rows} --paced-rows {args.paced_rows} "
            f"--limit {args.limit} --rounds {args.rounds} --write`\n\n{text}\n",
            encoding="utf-8",
        )
        print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
