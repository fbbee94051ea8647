"""Benchmark the sync hook's transport: client CPU per page request, ``requests`` against the ``urllib3`` pool.

``SMSNexusHook.get_messages(per_page=100)`` is called ``--requests`` times against the emulator (a separate
process, limits lifted, seeded with ``--messages`` messages), in a fresh child process per run: CPU by
``getrusage`` around the calls (imports and a warm-up excluded). Two hooks run alternately, ``--rounds``
times each:

* ``requests``: the hook as it was before this change, its ``_request`` sending through a ``requests.Session``
  exactly as the old ``hooks/_transport.py:requests_send`` did (``verify`` passed per request);
* ``urllib3``: the hook as it is, through its ``urllib3`` pool.

Both go through the same retry driver, limiter and JSON decoding, so the difference is the transport. Every
answer is checked (100 rows, the page asked for) or the run fails. ``--walk`` also times a whole list walk
(``iter_message_pages``) against a loop of ``get_messages``, with ``--work-ms`` of waiting per page on the
caller's side (a destination that waits on its database), to show the read-ahead's overlap. Run::

    .venv/bin/python bench/bench_transport.py
    .venv/bin/python bench/bench_transport.py --requests 2000 --rounds 5 --walk

Only the standard library is imported at the top: the children import the hook.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
TRANSPORTS = ("requests", "urllib3")


# -- inside a child process -------------------------------------------------------------------------------


def requests_hook_class() -> type:
    """The hook with the transport it had before: a ``requests.Session``, ``verify`` per request."""
    import requests

    from airflow_provider_smsnexus.hooks._retry import blocking_steps
    from airflow_provider_smsnexus.hooks.outcomes import UNKNOWN, Answer, NoAnswer
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    class RequestsHook(SMSNexusHook):
        def _attempts(self, method, path, *, params=None, json_body=None, announce=False, stop=None):
            session, config = self.session, self.config

            def send() -> Answer | NoAnswer:
                try:
                    response = session.request(
                        method,
                        config.url(path),
                        params=params,
                        json=json_body,
                        timeout=config.timeout,
                        verify=config.verify,
                    )
                except requests.RequestException as exc:
                    return NoAnswer(type(exc).__name__, UNKNOWN)
                return Answer(response.status_code, response.headers, response.text)

            return blocking_steps(self._driver.steps(method, path, announce=announce), send, stop=stop)

    return RequestsHook


def child(spec: dict[str, Any]) -> dict[str, Any]:
    import resource

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    os.environ["AIRFLOW_CONN_SMSNEXUS_DEFAULT"] = spec["connection"]
    hook = requests_hook_class()() if spec["transport"] == "requests" else SMSNexusHook()
    pages = spec["pages"]

    def call(n: int) -> None:
        page = n % pages + 1
        answer = hook.get_messages(page=page, per_page=100)
        if len(answer["data"]) != 100 or answer["meta"]["current_page"] != page:
            raise SystemExit(f"page {page}: {len(answer['data'])} rows, meta {answer['meta']}")

    for n in range(50):  # warm-up: connections, caches
        call(n)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    for n in range(spec["requests"]):
        call(n)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    figures = {
        "cpu_ms_per_request": cpu * 1000 / spec["requests"],
        "wall_ms_per_request": wall * 1000 / spec["requests"],
    }
    if spec.get("walk"):
        figures.update(walk(hook, spec))
    return figures


def walk(hook: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """A whole walk read ahead, and the same pages one ``get_messages`` at a time, with the caller's wait."""
    work = spec["work_ms"] / 1000
    began = time.perf_counter()
    ahead = 0
    for page in hook.iter_message_pages(per_page=100, read_ahead=True):
        ahead += len(page)
        time.sleep(work)
    ahead_wall = time.perf_counter() - began
    began = time.perf_counter()
    one_by_one, page = 0, 1
    while True:
        answer = hook.get_messages(page=page, per_page=100)
        one_by_one += len(answer["data"])
        time.sleep(work)
        if page >= answer["meta"]["last_page"]:
            break
        page += 1
    plain_wall = time.perf_counter() - began
    if ahead != one_by_one or ahead != spec["messages"]:
        raise SystemExit(f"walks read {ahead} and {one_by_one} rows of {spec['messages']}")
    return {"walk_s_read_ahead": ahead_wall, "walk_s_page_by_page": plain_wall}


# -- the parent -------------------------------------------------------------------------------------------


def start_emulator(messages: int) -> tuple[subprocess.Popen, str]:
    """The export benchmark's emulator (limits lifted, ``messages`` seeded), with a connection for this one."""
    from _export_support import start_emulator as start_seeded_emulator

    process, connection, _ = start_seeded_emulator(messages)
    connection["extra"] = {**connection.get("extra", {}), "read_rate_limit": 100_000_000, "timeout": 60}
    return process, json.dumps(connection)


def run_child(spec: dict[str, Any], home: str) -> dict[str, Any]:
    completed = subprocess.run(
        [str(PYTHON), str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": home},
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = "\n".join((completed.stderr + completed.stdout).splitlines()[-40:])
        raise SystemExit(f"{spec['transport']} failed ({completed.returncode}):\n{tail}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="page requests per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each transport, alternately")
    parser.add_argument("--messages", type=int, default=10_000, help="messages seeded (100 per page)")
    parser.add_argument("--walk", action="store_true", help="also time a whole walk, read ahead or not")
    parser.add_argument("--work-ms", type=float, default=2.0, help="the caller's wait per page in --walk")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    process, connection = start_emulator(args.messages)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in TRANSPORTS}
    loads = [os.getloadavg()[0]]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-transport-") as home:
            for _ in range(args.rounds):
                for transport in TRANSPORTS:
                    spec = {
                        "transport": transport,
                        "connection": connection,
                        "requests": args.requests,
                        "pages": args.messages // 100,
                        "messages": args.messages,
                        "walk": args.walk,
                        "work_ms": args.work_ms,
                    }
                    results[transport].append(run_child(spec, home))
                    loads.append(os.getloadavg()[0])
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(f"\n{args.requests} x get_messages(per_page=100), {args.rounds} rounds alternately, medians")
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}\n")
    print("| transport | client CPU per request | wall per request | CPU per round |")
    print("|---|---:|---:|---|")
    medians = {}
    for transport in TRANSPORTS:
        cpu = [r["cpu_ms_per_request"] for r in results[transport]]
        wall = [r["wall_ms_per_request"] for r in results[transport]]
        medians[transport] = statistics.median(cpu)
        rounds = ", ".join(f"{c:.3f}" for c in cpu)
        print(f"| {transport} | {medians[transport]:.3f} ms | {statistics.median(wall):.3f} ms | {rounds} |")
    saved = medians["requests"] - medians["urllib3"]
    print(
        f"\nurllib3 / requests: {medians['urllib3'] / medians['requests']:.2f} (-{saved:.3f} ms per request)"
    )
    if args.walk:
        print(
            f"\nwalk of {args.messages} messages, {args.work_ms:g} ms waited by the caller per page (medians):"
        )
        for transport in TRANSPORTS:
            ahead = statistics.median(r["walk_s_read_ahead"] for r in results[transport])
            plain = statistics.median(r["walk_s_page_by_page"] for r in results[transport])
            print(f"- {transport}: read ahead {ahead:.2f} s, page by page {plain:.2f} s")


if __name__ == "__main__":
    main()
