"""Shared pieces of the hostile-conditions suite: figures, token checks, recipients and worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

#: The token markers of the suite (tests/conftest.py watches the same ones).
TOKEN_MARKERS = ("SMSNEXUS-TEST-TOKEN", "SMSNEXUS-MOCK-SECRET")

SENDER = "+12125550100"

#: Area codes whose 555-0100..0199 numbers ``phonenumbers`` takes as valid (fictional, never assigned).
AREA_CODES = (
    "212", "213", "206", "214", "267", "303", "305", "312", "404", "415",
    "503", "512", "602", "617", "702", "713", "718", "720", "801", "808",
    "919", "202", "215", "216", "310", "347", "412", "469", "510", "614",
)  # fmt: skip


# -- figures -------------------------------------------------------------------------------------------


class Figures:
    """Counters of one run of the suite; written to ``hostile-figures.json`` at the end of the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: Counter[str] = Counter()
        self.notes: dict[str, Any] = {}

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self.values[key] += amount

    def note(self, key: str, value: Any) -> None:
        with self._lock:
            self.notes[key] = value

    def check_texts(self, *texts: Any) -> list[str]:
        """Count the texts checked for a token and the leaks found; return the markers found."""
        found = []
        for text in texts:
            if text is None:
                continue
            text = text if isinstance(text, str) else json.dumps(text, default=repr)
            self.add("texts_checked_for_tokens")
            found += [marker for marker in TOKEN_MARKERS if marker in text]
        self.add("tokens_leaked", len(found))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {**dict(sorted(self.values.items())), "notes": self.notes}


def no_token(figures: Figures, *texts: Any) -> bool:
    """True when none of ``texts`` (strings, or anything JSON can show) holds a token marker."""
    return not figures.check_texts(*texts)


def task_context(run_id: str = "manual__hostile", map_index: int = -1) -> dict[str, Any]:
    """A minimal task context (``ti``, ``run_id``, ``ds``, ``params``) for DAG-less operator runs."""
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="hostile", task_id="send", run_id=run_id, map_index=map_index)
    return {"ti": ti, "run_id": run_id, "ds": "2026-03-08", "params": {}}


def attempt(call: Callable[[], Any]) -> tuple[Any, Exception | None]:
    """Run ``call``: ``(result, None)``, or ``(None, error)`` when it raised an SMSNexusError (anything else
    propagates, and fails the test with its traceback)."""
    from airflow_provider_smsnexus.exceptions import SMSNexusError

    try:
        return call(), None
    except SMSNexusError as exc:
        return None, exc


# -- recipients ------------------------------------------------------------------------------------------


def valid_numbers(count: int) -> list[str]:
    """``count`` distinct valid fictional numbers in E.164 (at most 3,000)."""
    import phonenumbers

    numbers = [f"+1{area}555{n:04d}" for area in AREA_CODES for n in range(100, 200)]
    numbers = [n for n in numbers if phonenumbers.is_valid_number(phonenumbers.parse(n))]
    if count > len(numbers):
        raise ValueError(f"only {len(numbers)} fictional numbers available")
    return numbers[:count]


def national(number: str) -> str:
    """The US national format of an E.164 +1 number: ``(212) 555-0134``."""
    return f"({number[2:5]}) {number[5:8]}-{number[8:]}"


INVALID_VALUES = (
    "not a number",
    "+1555",
    "+15550100",
    "12",
    "+1212555010",
    "1-800-FLOWERS",
    "+44 20 7946 0958 ext 12",
    "",
    None,
    "☎ +12125550100",
)


def campaign_table(valid: list[str], *, invalid: int, duplicates: int, seed: int = 0) -> Any:
    """
    A recipient table: every number of ``valid`` once (some in national format), ``invalid`` rows that no
    normaliser can read, and ``duplicates`` rows repeating a valid number (in the other format); shuffled.
    """
    import random

    import pandas as pd

    rng = random.Random(seed)
    rows = [(n if i % 7 else national(n), f"N{i}") for i, n in enumerate(valid)]
    rows += [(INVALID_VALUES[i % len(INVALID_VALUES)], f"bad{i}") for i in range(invalid)]
    rows += [(national(n) if i % 2 else n, f"dup{i}") for i, n in enumerate(rng.sample(valid, duplicates))]
    rng.shuffle(rows)
    return pd.DataFrame(rows, columns=["to", "name"], dtype=object)


def exactly_once(figures: Figures, texted: Iterable[str], valid: Iterable[str]) -> tuple[int, int, int]:
    """Count duplicates, lost recipients and unexpected recipients; add them to the figures."""
    counts = Counter(texted)
    wanted = set(valid)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    lost = len(wanted - set(counts))
    unexpected = len(set(counts) - wanted)
    figures.add("duplicates_found", duplicates)
    figures.add("messages_lost", lost)
    figures.add("invalid_or_unexpected_texted", unexpected)
    return duplicates, lost, unexpected


# -- worker processes ------------------------------------------------------------------------------------

#: The script a worker process runs: one operator's ``execute`` from a JSON spec. A pause point (``at``: the
#: step; ``after``: on its n-th call; ``caller``: only calls from this function; ``sleep``: False to only mark
#: the moment; ``method``: only HTTP requests of this method) writes a flag file, then sleeps, so that the test
#: kills the process exactly there.
WORKER = r"""
import json, os, sys, time

spec = json.loads(sys.argv[1])
kind = spec.pop("kind")
pause = spec.pop("pause", None)  # {"at": name, "flag": path, "after": n}
run_id = spec.pop("run_id", "manual__hostile")


def pause_here():
    open(pause["flag"], "w").close()
    if pause.get("sleep", True):  # else: only mark the moment, and go on
        time.sleep(120)


def pause_on(owner, name, *, before=True):
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        caller = sys._getframe(1).f_code.co_name
        if pause.get("method") and (len(args) < 2 or args[1] != pause["method"]):
            return original(*args, **kwargs)  # only requests of this HTTP method count
        if pause.get("caller") in (None, caller):
            calls["n"] += 1
        hit = calls["n"] == pause.get("after", 1) and pause.get("caller") in (None, caller)
        if before and hit:
            pause_here()
        result = original(*args, **kwargs)
        if not before and hit:
            pause_here()
        return result

    setattr(owner, name, wrapper)


from airflow_provider_smsnexus.exceptions import SMSNexusError

try:
    if kind == "campaign":
        import urllib3.connection

        from airflow_provider_smsnexus.campaign.bulk import BulkCampaign
        from airflow_provider_smsnexus.campaign.ledger import SendLedger
        from airflow_provider_smsnexus.campaign.reconcile import Reconciler
        from airflow_provider_smsnexus.campaign.settle import RowSettler
        from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

        if pause:
            owner, name, before = {
                "preflight": (BulkCampaign, "preflight", True),
                # the pending mark is committed; the request has not left yet
                "before_request": (SendLedger, "mark_pending", False),
                # the request's bytes are written to the socket (use with "method": "POST")
                "request_written": (urllib3.connection.HTTPConnection, "request", False),
                # answers received; their group commit of 'sent' has not happened
                "before_ledger_sent": (SendLedger, "mark_sent_many", True),
                "settle_unknown": (RowSettler, "settle_unknown", True),
                "lookup": (Reconciler, "lookup", True),
            }[pause["at"]]
            pause_on(owner, name, before=before)
        operator = SMSNexusBulkSendOperator(task_id="send", **spec)
        result = operator.execute({"run_id": run_id})
    else:
        from datetime import datetime

        if kind == "parquet":
            from airflow_provider_smsnexus.transfers.parquet_files import ParquetExportWriter as Writer
            from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import (
                SMSNexusToParquetOperator as Operator,
            )
        else:
            from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator as Operator
            from airflow_provider_smsnexus.transfers.sql_loading import SqlTableLoader as Writer
        if pause:
            if pause["at"] == "sql_load":
                original_writer = Writer._batch_writer

                def batch_writer(self, conn):
                    write = original_writer(self, conn)

                    def write_then_pause(batch):
                        write(batch)
                        pause_here()

                    return write_then_pause

                Writer._batch_writer = batch_writer
            elif pause["at"] == "parquet_publish":
                pause_on(Writer, "_publish", before=False)
            elif pause["at"] == "page":
                from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

                pause_on(SMSNexusHook, "_request", before=True)
        start = spec.pop("start", None)
        end = spec.pop("end", None)
        operator = Operator(task_id="export", **spec)
        result = operator.execute(
            {
                "data_interval_start": start and datetime.fromisoformat(start),
                "data_interval_end": end and datetime.fromisoformat(end),
            }
        )
    print(json.dumps({"ok": True, "result": result}), flush=True)
except SMSNexusError as exc:
    print(json.dumps({"ok": False, "typed": True, "error": type(exc).__name__, "text": str(exc)}), flush=True)
    sys.exit(3)
"""


class Worker:
    """One operator run in its own interpreter: a task process that a test can kill at will."""

    def __init__(self, spec: dict[str, Any], *, airflow_home: Path) -> None:
        self.spec = spec
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(spec)],
            env={**os.environ, "AIRFLOW_HOME": str(airflow_home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.killed = False
        self.stdout = ""
        self.stderr = ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL the process if it still runs; return whether it did."""
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.killed = True
        self.finish()
        return True

    def finish(self, timeout: float = 240) -> dict[str, Any] | None:
        """Wait for the process; return its last JSON line (None when it printed none)."""
        self.stdout, self.stderr = self.process.communicate(timeout=timeout)
        lines = [line for line in self.stdout.strip().splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    def wait_until(self, condition: Callable[[], bool], timeout: float = 120, step: float = 0.01) -> bool:
        """Poll ``condition`` until it holds (True), or the process ended or time ran out (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if not self.alive():
                return condition()
            time.sleep(step)
        return False


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def wait_for_file(worker: Worker, flag: Path, timeout: float = 120) -> bool:
    """Wait until ``worker`` created ``flag`` (it reached its pause point)."""
    return worker.wait_until(flag.exists, timeout=timeout)
