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
so that the project's pinned environment stays as it is; and as an Airflow task runs it (``dlt-task``: a
venv with Airflow and dlt, ``airflow.sdk`` imported before the export), when ``.venv-bench-airflow`` exists::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install "dlt[parquet,postgres,sqlalchemy]==1.31.0"
    python3 -m venv .venv-bench-airflow
    .venv-bench-airflow/bin/pip install -c constraints-3.11.txt apache-airflow==3.3.2 \
        "dlt[parquet,postgres,sqlalchemy]==1.31.0"

The emulator runs as a separate process (``smsnexus-emulator``), and every export runs in a fresh child
process, so each figure is the client's alone. Run::

    .venv/bin/python bench/bench_export.py                 # 1,000,000 messages, all destinations, with dlt
    .venv/bin/python bench/bench_export.py --messages 200000 --small 20000 --no-dlt
    .venv/bin/python bench/bench_export.py --quick         # ours only: Parquet, 200,000 messages, one run each
    .venv/bin/python bench/bench_export.py --quick --profile /tmp/prof   # and a cProfile file per export
    .venv/bin/python bench/bench_export.py --write         # and record the figures in .readme-parts/bench-export.md

Each (destination, window) runs ours and dlt alternately, ``--repeat`` times, each export in a fresh child
process: CPU by ``getrusage`` around the export call, peak RSS by the kernel's high-water mark of the child
(``VmHWM``: ``ru_maxrss`` would carry over the forking parent's); the tables show medians and the ratios
ours / dlt. Every export's id set is compared with the emulator's own record (its inspection API): a run that differs is reported as a failure, not a figure,
and the benchmark exits non-zero. ``--imports`` measures the baseline RSS (``import airflow.sdk``, with
pyarrow) and the import time of every operator in a DAG file against ``import airflow.sdk`` alone.

The child processes, the emulator and the id checks are in ``_export_support.py``; only the standard library
is imported at the top of either module: the child processes run under either environment.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _export_support import (
    DEFAULT_POSTGRES,
    ENTRY,
    ROOT,
    SPAN_END,
    TOOLS,
    child_dlt,
    child_imports,
    child_ours,
    drop_postgres,
    emulator_ids,
    exported_ids,
    id_problem,
    measure_imports,
    postgres_reachable,
    start_emulator,
    versions,
    window_of_about,
)

# --------------------------------------------------------------------------------------------------
# The orchestrator (project environment)
# --------------------------------------------------------------------------------------------------


def run_child(tool: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one export in a fresh process; return its figures (the last stdout line is JSON)."""
    python, child = TOOLS[tool]
    spec = {**spec, "as_task": tool == "dlt-task"}
    completed = subprocess.run(
        [str(python), str(ENTRY), f"--child-{child}", json.dumps(spec)],
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


def one_run(
    tool: str, destination: str, size: str, window: tuple[str | None, str | None], ctx: dict[str, Any]
) -> dict[str, Any]:
    """One export in a fresh child, its figures, and the check of its ids against the emulator's."""
    admin, scratch = ctx["admin"], ctx["scratch"]
    name = f"bench_{tool.replace('-', '_')}_{size}"
    target = {
        "parquet": str(scratch / f"{name}_parquet"),
        "sqlite": str(scratch / f"{name}.db") if tool != "ours" else name,
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
    if ctx.get("profile") and tool == "ours":
        spec["profile"] = str(
            Path(ctx["profile"]) / f"{tool}_{destination}_{size}_{len(ctx['results'])}.prof"
        )
    before = admin.stats()
    try:
        figures = run_child(tool, spec)
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
        "| destination | window | CPU ours / dlt | peak RSS ours / dlt | peak RSS ours / dlt as a task "
        "| rows/s ours / dlt | rows/s ours / dlt as a task |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def ratio(ours: dict[str, Any], other: dict[str, Any] | None, what: str) -> str:
        if other is None:
            return "-"
        if what == "rows/s":
            return f"{(ours['rows'] / ours['wall_s']) / (other['rows'] / other['wall_s']):.1f}x"
        return f"{ours[what] / other[what]:.2f}"

    for (tool, destination, size), ours in medians.items():
        dlt, task = medians.get(("dlt", destination, size)), medians.get(("dlt-task", destination, size))
        if tool != "ours" or ours is None or (dlt is None and task is None):
            continue
        lines.append(
            f"| {destination} | {size} | {ratio(ours, dlt, 'cpu_s')} | {ratio(ours, dlt, 'rss_peak_mb')} | "
            f"{ratio(ours, task, 'rss_peak_mb')} | {ratio(ours, dlt, 'rows/s')} | {ratio(ours, task, 'rows/s')} |"
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
    figures = run_child(tool, spec)
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


def parse_args() -> argparse.Namespace:
    """The command line, with ``--quick``'s defaults applied where no flag was given."""
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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="ours only, Parquet, 200,000 messages (small window 20,000), one run, no pace or import rows "
        "(flags given as well still count)",
    )
    parser.add_argument(
        "--profile", help="a folder: each of our exports writes its cProfile statistics there"
    )
    parser.add_argument("--child-ours")
    parser.add_argument("--child-dlt")
    parser.add_argument("--child-imports")
    args = parser.parse_args()
    if args.quick:  # defaults of a quick iteration; what the command line says explicitly wins
        given = set(sys.argv[1:])
        quick = {"--messages": ("messages", 200_000), "--small": ("small", 20_000), "--repeat": ("repeat", 1),
                 "--destinations": ("destinations", "parquet"), "--imports": ("imports", 0)}  # fmt: skip
        for flag, (name, value) in quick.items():
            if not any(g == flag or g.startswith(flag + "=") for g in given):
                setattr(args, name, value)
        args.dlt = args.pace = False
    return args


def run_exports(
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[str], tuple[float, ...]]:
    """Seed the emulator and run every export: the runs, the paced runs, the window sizes, the import rows and
    the load averages at the start and the end."""
    destinations = args.destinations.split(",")
    if "postgres" in destinations and not postgres_reachable(args.postgres_url):
        print(f"PostgreSQL not reachable at {args.postgres_url}: skipped")
        destinations.remove("postgres")
    tools = ["ours"] + [t for t in ("dlt", "dlt-task") if args.dlt and TOOLS[t][0].exists()]
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
        "profile": args.profile,
    }
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    ctx["results"] = results
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
            for tool in tools[:2]:  # dlt paces the same in or out of a task
                pace.append(pace_run(tool, ctx, args.pace_limit, (pace_start, SPAN_END)))
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)
    return results, pace, sizes, imports, (*load, *os.getloadavg())


def main() -> None:
    args = parse_args()
    for flag, child in (
        (args.child_ours, child_ours),
        (args.child_dlt, child_dlt),
        (args.child_imports, None),
    ):
        if flag:
            print(json.dumps(child(json.loads(flag)) if child else child_imports(flag)))
            return

    results, pace, sizes, imports, load = run_exports(args)
    medians = {
        key: median_figures([r for r in results if (r["tool"], r["destination"], r["size"]) == key])
        for key in dict.fromkeys((r["tool"], r["destination"], r["size"]) for r in results)
    }
    ratios = ratio_lines(medians, sizes)
    ours = [r for r in results if r["tool"] == "ours" and not r.get("problem")]
    with_pandas = [f"{r['destination']} {r['size']}" for r in ours if r.get("pandas_loaded")]
    ratios += ["", f"pandas imported by our exports: {', '.join(with_pandas) or 'never'} ({len(ours)} runs)."]
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
    "Arrow rows, 1,000 API rows as columns) does not grow with the history. *dlt as a task* (`dlt-task`) is "
    "dlt in a venv with Airflow, `airflow.sdk` imported before it, as an Airflow task's process holds it.",
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
