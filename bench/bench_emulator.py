"""Benchmark the SMS Nexus emulator at export scale: seed 1,000,000 messages, report the seed time,
the server's memory, and the latency of 100-row pages over real HTTP.

Runs ``smsnexus-emulator`` as a subprocess (so its memory is measured alone) on a free loopback port::

    .venv/bin/python bench/bench_emulator.py            # 1,000,000 messages
    .venv/bin/python bench/bench_emulator.py --messages 200000 --no-walk
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MB (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def timed(call: Callable[[], requests.Response], repeat: int) -> dict[str, float]:
    """Median, p95 and max of ``repeat`` calls, in milliseconds (asserting 200 answers)."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
        "max_ms": round(samples[-1], 2),
    }


def start_emulator() -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--port", "0", "--lifecycle", "manual",
            "--send-limit", "1000000", "--read-limit", "1000000", "--log-level", "warning",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", line)
    if not match:
        process.kill()
        raise SystemExit("the emulator did not start")
    return process, json.loads(match.group(1))


def run(messages: int, repeat: int, walk: bool) -> dict:
    process, connection = start_emulator()
    try:
        base_url = connection["host"]
        admin = EmulatorAdmin(base_url, timeout=600)
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {connection['password']}"
        results: dict = {
            "messages": messages,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }
        results["rss_empty_mb"] = round(memory_mb(process.pid)["VmRSS"], 1)

        began = time.perf_counter()
        seeded = admin.seed_messages(
            messages, random_seed=1, start="2026-01-01T00:00:00Z", end="2026-04-01T00:00:00Z"
        )
        results["seed_wall_s"] = round(time.perf_counter() - began, 2)
        results["seed_server_s"] = seeded["seconds"]
        memory = memory_mb(process.pid)
        results["rss_seeded_mb"] = round(memory["VmRSS"], 1)
        results["rss_peak_mb"] = round(memory["VmHWM"], 1)

        def get(path: str, **params) -> Callable[[], requests.Response]:
            return lambda: session.get(f"{base_url}{path}", params=params, timeout=30)

        last_page = -(-messages // 100)
        rng = random.Random(0)
        results["latency"] = {
            "first page (per_page=100)": timed(get("/messages", per_page=100), repeat),
            "random deep page": timed(
                lambda: session.get(
                    f"{base_url}/messages",
                    params={"per_page": 100, "page": rng.randint(1, last_page)},
                    timeout=30,
                ),
                repeat,
            ),
            "status=failed, page 3": timed(get("/messages", per_page=100, status="failed", page=3), repeat),
            "direction=inbound + 7-day window, page 5": timed(
                get(
                    "/messages",
                    per_page=100,
                    direction="inbound",
                    start_date="2026-01-01T00:00:00Z",
                    end_date="2026-01-08T00:00:00Z",
                    page=5,
                ),
                repeat,
            ),
            "conversations (per_page=100)": timed(get("/conversations", per_page=100), repeat),
            "balance": timed(get("/balance"), repeat),
        }
        if walk:
            began = time.perf_counter()
            seen = 0
            for page in range(1, last_page + 1):
                seen += len(
                    session.get(f"{base_url}/messages", params={"per_page": 100, "page": page}).json()["data"]
                )
            elapsed = time.perf_counter() - began
            results["walk_all_pages_s"] = round(elapsed, 1)
            results["walk_rows_per_s"] = round(seen / elapsed)
        results["rss_after_reads_mb"] = round(memory_mb(process.pid)["VmRSS"], 1)
        return results
    finally:
        process.terminate()
        process.wait(timeout=30)


def to_markdown(results: dict) -> str:
    lines = [
        f"Seeded messages: {results['messages']:,} (Python {results['python']}, {results['machine']})",
        "",
        "| measure | value |",
        "|---|---|",
        f"| seed time (server / wall incl. HTTP) | {results['seed_server_s']} s / {results['seed_wall_s']} s |",
        f"| RSS empty | {results['rss_empty_mb']} MB |",
        f"| RSS after seeding (peak during seeding) | {results['rss_seeded_mb']} MB ({results['rss_peak_mb']} MB) |",
        f"| RSS after the reads below | {results['rss_after_reads_mb']} MB |",
    ]
    if "walk_all_pages_s" in results:
        lines.append(
            f"| walk every page, per_page=100, one client | {results['walk_all_pages_s']} s "
            f"({results['walk_rows_per_s']:,} rows/s) |"
        )
    lines += ["", "| request (over HTTP, keep-alive) | median | p95 | max |", "|---|---|---|---|"]
    for name, figures in results["latency"].items():
        lines.append(
            f"| {name} | {figures['median_ms']} ms | {figures['p95_ms']} ms | {figures['max_ms']} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="requests per latency figure")
    parser.add_argument("--no-walk", dest="walk", action="store_false", help="skip paging through everything")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    results = run(args.messages, args.repeat, args.walk)
    print(json.dumps(results, indent=2) if args.json else to_markdown(results))


if __name__ == "__main__":
    main()
