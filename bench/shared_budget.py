"""Benchmark the rate budget one account's processes share: an export, a campaign, a sensor and a trigger at once.

The scenario of issue 24, against the emulator at the real limits scaled up 10x (10 reads and 5 sends per
one-second window), once per ``rate_budget`` kind (``process``: each process told the account's limit, as
before; ``host``; ``sql`` on PostgreSQL; ``redis`` on a fresh ``redis-server``), each role a separate process:

* **export** (bulk): walks the 20,000 seeded messages page by page (100 a page), again and again;
* **campaign 1/2, 2/2** (bulk): two partitions sending texts as fast as their budget lets them;
* **sensor** (interactive): reads the balance every 0.5 s, as ``SMSNexusBalanceSensor`` in poke mode;
* **trigger** (interactive): reads the inbound messages every second on the async hook, as the inbound trigger.

It prints, per kind: the 429s the emulator counted (reads, sends), the longest wait of a call of each role in
windows (a call's time from its start to its answer; each process's first call, which also sets the process up,
apart), and the bulk work's share of the budget the interactive calls leave (reads: the export's accepted reads / (10 a window - the interactive reads); sends: both
partitions' accepted sends / 5 a window, and how evenly they split them). Run::

    .venv/bin/python bench/shared_budget.py                 # 30 s per kind
    .venv/bin/python bench/shared_budget.py --seconds 60 --kinds host sql

The emulator runs as a separate process on a free loopback port; kinds whose store is missing (no PostgreSQL at
``SMSNEXUS_TEST_POSTGRES_URL``, no ``redis-server``) are skipped with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("SMSNEXUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
READS, SENDS, WINDOW = 10, 5, 1.0
MESSAGES = 20_000
KINDS = ("process", "host", "sql", "redis")
#: role, priority, seconds between a poller's calls (0: as fast as the budget allows).
ROLES = [
    ("export", "bulk", 0.0),
    ("campaign", "bulk", 0.0),
    ("campaign", "bulk", 0.0),
    ("sensor", "interactive", 0.5),
    ("trigger", "interactive", 1.0),
]


# -- one process of the scenario ---------------------------------------------------------------------------


def worker(role: str, priority: str, every: float, partition: int) -> None:
    """Run one role until the moment the parent sends; print its calls and stats as one JSON line."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Airflow's output to stderr, the protocol alone on stdout
    from airflow_provider_smsnexus.exceptions import SMSNexusError
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook

    hook: Any = SMSNexusAsyncHook(priority=priority) if role == "trigger" else SMSNexusHook(priority=priority)
    if role != "trigger":
        _ = hook.pool, hook.limiters
    print("READY", file=protocol, flush=True)
    _, start, seconds = sys.stdin.readline().split()
    end = float(start) + float(seconds)
    time.sleep(max(0.0, float(start) - time.time()))
    calls: list[float] = []  # each call's seconds, from its start to its answer
    errors: list[str] = []

    def timed(call: Any) -> None:
        began = time.time()
        try:
            call()
        except SMSNexusError as exc:
            errors.append(type(exc).__name__)
        calls.append(time.time() - began)

    if role == "export":
        while time.time() < end:
            began = time.time()
            for _ in hook.iter_message_pages(per_page=100):
                calls.append(time.time() - began)
                if time.time() >= end:
                    break
                began = time.time()
    elif role == "campaign":
        sent = 0
        while time.time() < end:
            to, text = (
                f"+1{('212', '312')[partition % 2]}55501{sent % 100:02d}",
                f"Partition {partition}: {sent}",
            )
            timed(lambda to=to, text=text: hook.send_sms("+12125550100", to, text))
            sent += 1
    elif role == "sensor":
        while (now := time.time()) < end:
            timed(hook.get_balance)
            time.sleep(max(0.0, now + every - time.time()))
    else:

        async def poll() -> None:
            while (now := time.time()) < end:
                began = time.time()
                try:
                    await hook.get_messages(direction="inbound", per_page=10)
                except SMSNexusError as exc:
                    errors.append(type(exc).__name__)
                calls.append(time.time() - began)
                await asyncio.sleep(max(0.0, now + every - time.time()))

        asyncio.run(poll())
    report = {"role": role, "priority": priority, "calls": calls, "errors": errors, "stats": hook.stats}
    print(json.dumps(report), file=protocol, flush=True)


# -- the parent: servers, runs, the table ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def emulator() -> Iterator[tuple[dict[str, Any], Any]]:
    """The emulator at 10 reads and 5 sends per one-second window, seeded with the export's messages."""
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    process = subprocess.Popen(
        [
            sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--port", "0", "--lifecycle", "manual",
            "--read-limit", str(READS), "--send-limit", str(SENDS), "--window-seconds", str(WINDOW),
            "--log-level", "warning", "--initial-credits", "100000000",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        match = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", process.stdout.readline())
        if not match:
            raise SystemExit("the emulator did not start")
        connection = json.loads(match.group(1))
        admin = EmulatorAdmin(connection["host"], timeout=600)
        admin.seed_messages(MESSAGES, random_seed=1)
        yield connection, admin
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A fresh ``redis-server`` on a free port (its URL), or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)


def postgres_store() -> str | None:
    """The PostgreSQL URL, or None when it does not answer. Its budget rows are keyed by this run's emulator
    (a fresh port), so the table is left as it is: others may be using it."""
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()
    return POSTGRES_URL


def run_kind(kind: str, store: str | None, connection: dict[str, Any], admin: Any, seconds: float) -> dict:
    """Run every role for ``seconds`` with ``rate_budget=kind``; the emulator's counters and each report."""
    extra = {"read_rate_limit": READS, "send_rate_limit": SENDS, "rate_limit_period": WINDOW, "timeout": 10}
    if kind != "process":
        extra |= {"rate_budget": kind, "rate_budget_store": store}
    env = {
        **os.environ,
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT": json.dumps({**connection, "extra": extra}),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    admin.configure(read_limit=10**9, send_limit=10**9)  # let the previous kind's windows pass unnoticed
    time.sleep(WINDOW * 2)
    workers, logs = [], []
    partition = 0
    log_directory = Path(tempfile.mkdtemp(prefix=f"smsnexus-budget-bench-{kind}-"))
    for role, priority, every in ROLES:
        partition += role == "campaign"
        args = ["--worker", role, priority, str(every), str(partition)]
        logs.append(log_directory / f"{len(logs)}-{role}.log")
        workers.append(
            subprocess.Popen(
                [sys.executable, __file__, *args],
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1].open("w"),
                text=True,
            )
        )
    try:
        for process in workers:
            if process.stdout.readline().strip() != "READY":
                raise SystemExit(f"a {kind} worker did not start")
        admin.configure(read_limit=READS, send_limit=SENDS, window_seconds=WINDOW)
        before = admin.stats()
        start = float(int(time.time() + 1.0) + 1)  # at a window's start: the run spans whole server windows
        for process in workers:
            process.stdin.write(f"GO {start} {seconds}\n")
            process.stdin.flush()
        reports = [json.loads(process.stdout.readline()) for process in workers]
        after = admin.stats()
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
            process.wait()
    counted = {
        name: {cls: after[name][cls] - before[name][cls] for cls in ("send", "other")}
        for name in ("accepted", "rate_limited")
    }
    # A store that did not answer in time sent its hook back to per-process pacing for that request.
    fallbacks = sum(log.read_text().count("The shared rate budget cannot be reached") for log in logs)
    return {"kind": kind, "counted": counted, "reports": reports, "seconds": seconds, "fallbacks": fallbacks}


def figures(run: dict) -> dict[str, Any]:
    """The table's row of one kind."""
    reports, seconds = run["reports"], run["seconds"]

    def accepted(report: dict) -> float:
        return report["stats"]["requests"] - report["stats"]["rate_limited"]

    def longest(role: str) -> float:
        # A process's first call also opens its connection pool and store, imports, and (async) looks the
        # connection up: it is counted apart, as setup.
        waits = [wait for r in reports if r["role"] == role for wait in r["calls"][1:]]
        return max(waits, default=0.0) / WINDOW

    interactive = sum(accepted(r) for r in reports if r["priority"] == "interactive")
    export = sum(accepted(r) for r in reports if r["role"] == "export")
    partitions = [accepted(r) for r in reports if r["role"] == "campaign"]
    left = READS * seconds / WINDOW - interactive
    return {
        "429 reads": run["counted"]["rate_limited"]["other"],
        "429 sends": run["counted"]["rate_limited"]["send"],
        "sensor longest wait (windows)": longest("sensor"),
        "trigger longest wait (windows)": longest("trigger"),
        "export longest wait (windows)": longest("export"),
        "campaign longest wait (windows)": longest("campaign"),
        "slowest first call of a process (windows)": max(r["calls"][0] for r in reports if r["calls"])
        / WINDOW,
        "interactive reads/window": interactive / seconds * WINDOW,
        "export share of reads left": export / left,
        "campaign share of sends": sum(partitions) / (SENDS * seconds / WINDOW),
        "partitions' split (min/max)": min(partitions) / max(partitions) if max(partitions) else 0.0,
        "errors": sum(len(r["errors"]) for r in reports),
        "store unreachable (warnings)": run["fallbacks"],
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        role, priority, every, partition = sys.argv[2:6]
        worker(role, priority, float(every), int(partition))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each kind's run")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args, _ = parser.parse_known_args()  # run_all.py hands every benchmark the same arguments
    rows: dict[str, dict[str, Any]] = {}
    with emulator() as (connection, admin), redis_server() as redis_url:
        host_directory = tempfile.mkdtemp(prefix="smsnexus-budget-bench-")
        for kind in args.kinds:
            store = {"process": None, "host": host_directory, "redis": redis_url}.get(kind)
            if kind == "sql":
                store = postgres_store()
            if kind != "process" and store is None:
                print(f"{kind}: skipped (its store is not available here)", flush=True)
                continue
            print(f"{kind}: running {args.seconds:g} s ...", flush=True)
            rows[kind] = figures(run_kind(kind, store, connection, admin, args.seconds))
    names = list(next(iter(rows.values()))) if rows else []
    print(f"\n{args.seconds:g} s per kind; limits {READS} reads and {SENDS} sends per {WINDOW:g} s window\n")
    print("| | " + " | ".join(rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for name in names:
        cells = [
            f"{row[name]:.0%}"
            if "share" in name or "split" in name
            else f"{row[name]:.2f}".rstrip("0").rstrip(".")
            for row in rows.values()
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
