"""The worker processes of the scenario runner: start one campaign attempt, watch it, SIGKILL it, SIGSTOP and
SIGCONT it, and read what it printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("scenario_worker.py")
#: How long a nudged process runs before it is stopped again (as the worker script's own nudge).
NUDGE_SECONDS = 0.05


class ScenarioWorker:
    """One campaign attempt in its own interpreter, its output in files (a pipe nobody reads would block it).

    :param name: the attempt's name in the scenario's log (``r1w0``: round 1, worker 0; ``rec2``: recovery 2).
    :param spec: the worker's JSON spec (see ``scenario_worker``).
    :param env: the process environment (connection and ``AIRFLOW_HOME``).
    :param workdir: where its output files go.
    """

    def __init__(self, name: str, spec: dict[str, Any], *, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.spec = spec
        stop = spec.get("stop")
        #: The flag file a worker with a stop point writes there; ``<flag>.go`` lets it go on.
        self.stop_flag = Path(stop["flag"]) if stop else None
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT), json.dumps(spec)], env=env, stdout=out, stderr=err
            )
        self.killed = False
        self.paused = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def stopped(self) -> bool:
        """Whether the process is stopped (state ``T`` in ``/proc``): it reached its stop point."""
        if self.exited():
            return False
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[0] in ("T", "t")

    def kill(self) -> None:
        """SIGKILL (a stopped process dies too) and reap it."""
        if not self.exited():
            self.process.send_signal(signal.SIGKILL)
            self.killed = True
        self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: the whole process, its lease heartbeat included, stops where it is."""
        if not self.exited():
            self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT: the process goes on from where it stopped (past its stop point, if it stopped there)."""
        if self.stop_flag is not None:
            Path(f"{self.stop_flag}.go").touch()
        if not self.exited():
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def nudge(self) -> None:
        """Let a paused process run for a moment and stop it again, still paused (at its stop point if it
        stopped there: it stops itself again)."""
        if self.exited():
            return
        self.process.send_signal(signal.SIGCONT)
        if self.stop_flag is None or not self.stop_flag.exists():
            time.sleep(NUDGE_SECONDS)
            self.process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not self.stopped() and not self.exited() and time.monotonic() < deadline:
            time.sleep(0.005)

    def reached_stop(self) -> bool:
        """Whether the process stopped itself at its stop point."""
        return self.stop_flag is not None and self.stop_flag.exists() and self.stopped()

    def result(self) -> dict[str, Any] | None:
        """The JSON line the process printed last (None when killed, or when it printed none)."""
        lines = [line for line in self.output().splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    def output(self) -> str:
        """What the process printed (its log lines, then its JSON line)."""
        return self.stdout_path.read_text(errors="replace")

    def tail(self, size: int = 600) -> str:
        """The end of what the process printed and of its error output, for a failure message."""
        return (self.output()[-size:] + self.stderr_path.read_text(errors="replace")[-size:]).strip()

    def outcome(self) -> str:
        """One word for the log: ``ok``, the typed error's name, ``killed`` or ``crashed (rc)``."""
        if self.killed:
            return "killed"
        result = self.result()
        if result is None:
            return f"crashed (rc {self.process.returncode})"
        return "ok" if result["ok"] else result["error"]


def environment(connection_json: str, airflow_home: Path) -> dict[str, str]:
    """A worker's environment: this one, plus the connection and the ledger's ``AIRFLOW_HOME``."""
    env = {**os.environ, "AIRFLOW_CONN_SMSNEXUS_DEFAULT": connection_json, "AIRFLOW_HOME": str(airflow_home)}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env
