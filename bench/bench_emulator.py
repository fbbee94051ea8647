"""Benchmark the SMS Nexus emulator at export scale: seed 1,000,000 messages, report the seed time,
the server's memory, the latency and server CPU of 100-row pages over real HTTP, and a walk of
every page by one client.

Runs ``smsnexus-emulator`` as a subprocess (so its memory and CPU are measured alone) on a free
loopback port. ``--baseline REV`` also runs the emulator of an older commit (extracted with
``git archive`` into a temporary folder; the working tree is not touched), alternately with this
one, with the same data and client, and prints both side by side::

    .venv/bin/python bench/bench_emulator.py                      # 1,000,000 messages
    .venv/bin/python bench/bench_emulator.py --baseline ab6f631 --rounds 3
    .venv/bin/python bench/bench_emulator.py --messages 200000 --no-walk
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
PER_PAGE = 100


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MB (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(call: Callable[[], requests.Response], repeat: int, server_pid: int) -> dict[str, float]:
    """Median, p95 and max of ``repeat`` calls in milliseconds, and the server's CPU per call
    (asserting 200 answers)."""
    samples = []
    cpu_before = cpu_seconds(server_pid)
    for _ in range(repeat):
        began = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    server_cpu = cpu_seconds(server_pid) - cpu_before
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
        "max_ms": round(samples[-1], 2),
        "server_cpu_ms": round(server_cpu / repeat * 1000, 2),
    }


def extract_revision(revision: str, into: Path) -> Path:
    """The package as of ``revision`` in ``into`` (``git archive``: read-only on the repository),
    plus the files of this tree that the revision lacks (a module added since, which it may import)."""
    archive = subprocess.run(
        ["git", "archive", revision, "airflow_provider_smsnexus"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for path in (ROOT / "airflow_provider_smsnexus").rglob("*"):
        target = into / path.relative_to(ROOT)
        if path.is_file() and "__pycache__" not in path.parts and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return into


def start_emulator(source: Path) -> tuple[subprocess.Popen, dict]:
    """Start the emulator whose package lives under ``source``; return it and its connection."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--port", "0", "--lifecycle", "manual",
            "--send-limit", "1000000", "--read-limit", "1000000", "--log-level", "warning",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", line)
    if not match:
        process.kill()
        raise SystemExit("the emulator did not start")
    return process, json.loads(match.group(1))


def walk(session: requests.Session, base_url: str, last_page: int, messages: int, server_pid: int) -> dict:
    """Read every page once, newest first; check every message came exactly once."""
    ids: set[int] = set()
    rows = 0
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    began = time.perf_counter()
    for page in range(1, last_page + 1):
        answer = session.get(f"{base_url}/messages", params={"per_page": PER_PAGE, "page": page}).json()
        rows += len(answer["data"])
        ids.update(item["id"] for item in answer["data"])
    elapsed = time.perf_counter() - began
    if rows != messages or len(ids) != messages:
        raise SystemExit(f"walk broken: {rows} rows, {len(ids)} distinct ids, {messages} seeded")
    return {
        "walk_all_pages_s": round(elapsed, 1),
        "walk_rows_per_s": round(rows / elapsed),
        "walk_server_cpu_s": round(cpu_seconds(server_pid) - server_before, 1),
        "walk_client_cpu_s": round(time.process_time() - client_before, 1),
    }


def run(source: Path, messages: int, repeat: int, with_walk: bool) -> dict:
    """Every measurement against one emulator (the package under ``source``)."""
    process, connection = start_emulator(source)
    try:
        base_url = connection["host"]
        admin = EmulatorAdmin(base_url, timeout=600)
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {connection['password']}"
        results: dict[str, Any] = {
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

        last_page = -(-messages // PER_PAGE)
        rng = random.Random(0)
        pid = process.pid
        results["latency"] = {
            "first page (per_page=100)": timed(get("/messages", per_page=PER_PAGE), repeat, pid),
            "random deep page": timed(
                lambda: session.get(
                    f"{base_url}/messages",
                    params={"per_page": PER_PAGE, "page": rng.randint(1, last_page)},
                    timeout=30,
                ),
                repeat,
                pid,
            ),
            "status=failed, page 3": timed(
                get("/messages", per_page=PER_PAGE, status="failed", page=3), repeat, pid
            ),
            "direction=inbound + 7-day window, page 5": timed(
                get(
                    "/messages",
                    per_page=PER_PAGE,
                    direction="inbound",
                    start_date="2026-01-01T00:00:00Z",
                    end_date="2026-01-08T00:00:00Z",
                    page=5,
                ),
                repeat,
                pid,
            ),
            "conversations (per_page=100)": timed(get("/conversations", per_page=PER_PAGE), repeat, pid),
            "balance": timed(get("/balance"), repeat, pid),
        }
        if with_walk:
            results.update(walk(session, base_url, last_page, messages, pid))
        results["rss_after_reads_mb"] = round(memory_mb(pid)["VmRSS"], 1)
        return results
    finally:
        process.terminate()
        process.wait(timeout=30)


def median_of(runs: list[dict]) -> dict:
    """Per figure, the median over rounds (the machine is shared: single runs vary by tens of %)."""

    def merge(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            return {key: merge([value[key] for value in values]) for key in values[0]}
        if isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
            return round(statistics.median(values), 2)
        return values[0]

    return merge(runs)


def _summary_rows(results: dict) -> list[tuple[str, str]]:
    rows = [
        (
            "seed time (server / wall incl. HTTP)",
            f"{results['seed_server_s']} s / {results['seed_wall_s']} s",
        ),
        ("RSS empty", f"{results['rss_empty_mb']} MB"),
        (
            "RSS after seeding (peak during seeding)",
            f"{results['rss_seeded_mb']} MB ({results['rss_peak_mb']} MB)",
        ),
        ("RSS after the reads below", f"{results['rss_after_reads_mb']} MB"),
    ]
    if "walk_all_pages_s" in results:
        rows.append(
            (
                "walk every page, per_page=100, one client",
                f"{results['walk_all_pages_s']} s ({results['walk_rows_per_s']:,.0f} rows/s)",
            )
        )
        rows.append(
            (
                "walk: CPU seconds, server / client",
                f"{results['walk_server_cpu_s']} s / {results['walk_client_cpu_s']} s",
            )
        )
    return rows


def _latency_cell(figures: dict) -> str:
    return (
        f"{figures['median_ms']} / {figures['p95_ms']} / {figures['max_ms']} ms"
        f" (server CPU {figures['server_cpu_ms']} ms)"
    )


def to_markdown(current: dict, baseline: dict | None = None, baseline_name: str = "baseline") -> str:
    """The tables of bench/README.md: one column per emulator."""
    names = ["this tree"] if baseline is None else [baseline_name, "this tree"]
    runs = [current] if baseline is None else [baseline, current]
    lines = [
        f"Seeded messages: {current['messages']:,} (Python {current['python']}, {current['machine']}; "
        f"load average at the end {os.getloadavg()[0]:.1f})",
        "",
        "| measure | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    summaries = [_summary_rows(results) for results in runs]
    for index, (label, _) in enumerate(summaries[-1]):
        lines.append(f"| {label} | " + " | ".join(summary[index][1] for summary in summaries) + " |")
    lines += [
        "",
        "| request (over HTTP, keep-alive): median / p95 / max | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for name in current["latency"]:
        lines.append(
            f"| {name} | " + " | ".join(_latency_cell(results["latency"][name]) for results in runs) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="requests per latency figure")
    parser.add_argument("--no-walk", dest="walk", action="store_false", help="skip paging through everything")
    parser.add_argument("--baseline", metavar="REV", help="also run the emulator of this git revision")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each emulator (figures: medians)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    current_runs: list[dict] = []
    baseline_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as folder:
        baseline_source = extract_revision(args.baseline, Path(folder)) if args.baseline else None
        for _ in range(args.rounds):  # alternately, so both meet the same load
            if baseline_source is not None:
                baseline_runs.append(run(baseline_source, args.messages, args.repeat, args.walk))
            current_runs.append(run(ROOT, args.messages, args.repeat, args.walk))
    current = median_of(current_runs)
    baseline = median_of(baseline_runs) if baseline_runs else None
    if args.json:
        print(json.dumps({"current": current, "baseline": baseline}, indent=2))
    else:
        print(to_markdown(current, baseline, f"baseline {args.baseline}"))


if __name__ == "__main__":
    main()
