"""One campaign attempt of the scenario runner, as its own task process: ``python scenario_worker.py SPEC``.

SPEC is JSON: the bulk operator's keyword arguments, plus ``run_id`` and an optional ``stop`` point
(``{"point": name, "nth": n, "flag": path}``). At the n-th pass through the point the process writes the
flag file and stops itself with SIGSTOP, exactly there (its lease heartbeat stops with it); the runner then
kills it or, later, writes ``<flag>.go`` and lets it go on with SIGCONT. The process prints one JSON line: ``{"ok": true, "result":
summary}`` or ``{"ok": false, "error": name, "text": message}`` (exit 3 for the provider's typed errors).
It reads its connection from ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` and its ledger from ``AIRFLOW_HOME``.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from typing import Any

#: How long a nudged worker runs before it stops again (see :func:`stop_at`).
NUDGE_SECONDS = 0.05

#: The points a worker can stop at: (module, class, method, stop before the call (True) or after it).
STOP_POINTS: dict[str, tuple[str, str, str, bool]] = {
    # planned, ledger read, suppression listed; nothing claimed or sent yet
    "preflight": ("airflow_provider_smsnexus.campaign.bulk", "BulkCampaign", "preflight", True),
    # the pending mark is committed; the request has not left
    "after_pending": ("airflow_provider_smsnexus.campaign.ledger", "SendLedger", "mark_pending", False),
    # answers received; their grouped ``sent`` commit has not happened
    "before_sent_mark": ("airflow_provider_smsnexus.campaign.ledger", "SendLedger", "mark_sent_many", True),
    # about to look up sends whose answer was lost, or rows an earlier attempt left pending
    "lookup": ("airflow_provider_smsnexus.campaign.reconcile", "Reconciler", "lookup", True),
}


def stop_at(point: str, nth: int, flag: str) -> None:
    """Wrap the point's method so that its ``nth`` call writes ``flag`` and stops this process there."""
    import importlib
    import threading

    module, owner_name, name, before = STOP_POINTS[point]
    owner = getattr(importlib.import_module(module), owner_name)
    original = getattr(owner, name)
    lock = threading.Lock()
    calls = [0]

    def stop_if_due() -> None:
        with lock:
            calls[0] += 1
            due = calls[0] == nth
        if due:
            with open(flag, "w") as handle:
                handle.write(str(os.getpid()))
            # Stopped until the runner writes the go file. Continued without it (a nudge), this thread waits a
            # moment, in which the others may finish a ledger transaction they hold, and stops the process again.
            while not os.path.exists(f"{flag}.go"):
                os.kill(os.getpid(), signal.SIGSTOP)
                time.sleep(NUDGE_SECONDS)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before:
            stop_if_due()
        result = original(*args, **kwargs)
        if not before:
            stop_if_due()
        return result

    setattr(owner, name, wrapper)


def main(argv: list[str]) -> int:
    """Run one attempt from the JSON spec in ``argv[1]``; print its outcome as one JSON line."""
    spec = json.loads(argv[1])
    run_id = spec.pop("run_id")
    stop = spec.pop("stop", None)
    from airflow_provider_smsnexus.exceptions import SMSNexusError
    from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

    if stop:
        stop_at(stop["point"], int(stop["nth"]), stop["flag"])
    try:
        result = SMSNexusBulkSendOperator(task_id="send", **spec).execute({"run_id": run_id})
    except SMSNexusError as exc:
        print(json.dumps({"ok": False, "error": type(exc).__name__, "text": str(exc)}), flush=True)
        return 3
    print(json.dumps({"ok": True, "result": result}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
