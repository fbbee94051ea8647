"""One process of a shared-budget scenario: reads the balance as bulk work, as an interactive poller, or outside.

Run as ``python -m tests.hooks.budget_worker ROLE`` with the connection in ``AIRFLOW_CONN_SMSNEXUS_DEFAULT``
(``AIRFLOW_CONN_SMSNEXUS_OUTSIDE`` for ``outsider``). It prints ``READY`` once imported and connected, waits
for ``GO <start epoch> <seconds>`` on stdin, runs until then, and prints one JSON line: every call's start and
duration, the hook's stats and the errors met. Airflow's own output goes to stderr.

Roles: ``bulk`` (a bulk hook reading as fast as its budget allows: an export's pages), ``poller`` (an
interactive hook reading every ``--every`` seconds: a sensor in poke mode), ``async-poller`` (the same on the
async hook: a trigger), ``outsider`` (a hook of a connection without the shared budget: someone's script).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("bulk", "poller", "async-poller", "outsider"))
    parser.add_argument("--every", type=float, default=0.0, help="seconds between a poller's calls")
    args = parser.parse_args()

    from airflow_provider_smsnexus.exceptions import SMSNexusError
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook

    conn_id = "smsnexus_outside" if args.role == "outsider" else "smsnexus_default"
    priority = "bulk" if args.role == "bulk" else "interactive"
    if args.role == "async-poller":
        hook: SMSNexusHook | SMSNexusAsyncHook = SMSNexusAsyncHook(conn_id, priority=priority)
    else:
        hook = SMSNexusHook(conn_id, priority=priority)
        _ = hook.pool, hook.limiters
    print("READY", file=protocol, flush=True)
    _, start, seconds = sys.stdin.readline().split()
    start, end = float(start), float(start) + float(seconds)
    time.sleep(max(0.0, start - time.time()))
    calls: list[list[float]] = []
    errors: list[str] = []

    async def poll_async() -> None:
        next_at = start
        while (now := time.time()) < end:
            await asyncio.sleep(max(0.0, next_at - now))
            began = time.time()
            try:
                await hook.get_balance()
            except SMSNexusError as exc:
                errors.append(type(exc).__name__)
            calls.append([began, time.time() - began])
            next_at = began + args.every

    if args.role == "async-poller":
        asyncio.run(poll_async())
    else:
        next_at = start
        while (now := time.time()) < end:
            time.sleep(max(0.0, next_at - now))
            began = time.time()
            try:
                hook.get_balance()
            except SMSNexusError as exc:
                errors.append(type(exc).__name__)
            calls.append([began, time.time() - began])
            next_at = began + args.every
    report = {"role": args.role, "calls": calls, "errors": errors, "stats": hook.stats}
    print(json.dumps(report), file=protocol, flush=True)


if __name__ == "__main__":
    main()
