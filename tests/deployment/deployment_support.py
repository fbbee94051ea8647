"""A real Airflow deployment for tests: its processes, its PostgreSQL database, the emulator, the REST API.

Every process is started in a process group of its own and stopped by PID (SIGTERM to the group, then
SIGKILL to the group and to every descendant seen), also when a test fails. Waits poll the REST API or the
emulator for an event, each with its own bound; none is a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")
EMULATOR = str(BIN / "smsnexus-emulator")
POSTGRES_ADMIN_URL = os.environ.get(
    "SMSNEXUS_DEPLOY_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TERMINAL_RUN_STATES = {"success", "failed"}


class DeploymentError(AssertionError):
    """The deployment did not reach the state a test waited for; the message says what and shows the logs."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    what: str, check: Callable[[], Any], *, timeout: float, interval: float = 0.5, logs: Any = None
) -> Any:
    """Poll ``check`` until it returns something truthy and return that; raise after ``timeout`` seconds.

    :param what: the event waited for, for the error message.
    :param logs: an object with ``tails()`` (a :class:`ProcessGroup`) whose log tails go into the error.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError) as error:  # not up yet, or an answer without the field yet
            last_error = error
        else:
            if result:
                return result
        time.sleep(interval)
    detail = f" (last error: {last_error!r})" if last_error else ""
    tails = logs.tails() if logs is not None else ""
    raise DeploymentError(f"Timed out after {timeout:.0f} s waiting for {what}{detail}\n{tails}")


class ProcessGroup:
    """The processes a test started, each in a session of its own, with its output in a log file."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.seen: dict[str, set[int]] = {}
        #: Output kept in memory (lines), by process name.
        self.memory_logs: dict[str, list[str]] = {}

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, pipe: bool = False
    ) -> subprocess.Popen:
        """Start ``argv`` as ``name``: its output in ``<log_dir>/<name>.log``, or a pipe the caller reads."""
        log = subprocess.PIPE if pipe else (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not pipe:
            log.close()
        self.processes[name] = process
        return process

    def log_text(self, name: str) -> str:
        if name in self.memory_logs:
            return "".join(self.memory_logs[name])
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self, lines: int = 25) -> str:
        """The last lines of every log, to show why a wait failed."""
        parts = []
        for name in self.processes:
            tail = "\n".join(self.log_text(name).splitlines()[-lines:])
            parts.append(f"--- {name} (exit {self.processes[name].poll()}) ---\n{tail}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        """Fail when a component exited."""
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise DeploymentError(f"Components exited: {dead}\n{self.tails()}")

    def _descendants(self, process: subprocess.Popen) -> set[int]:
        import psutil

        try:
            return {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    def stop(self, *names: str, grace: float = 15.0) -> None:
        """Stop processes and everything they started: SIGTERM to each group, SIGKILL to what is left after
        ``grace`` seconds (to the group and to every descendant seen, also those that left the group)."""
        import psutil

        stopping = {name: self.processes.pop(name) for name in names}
        pids = set()
        for name, process in stopping.items():
            pids |= self._descendants(process) | self.seen.pop(name, set())
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in stopping.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for process in stopping.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        for process in stopping.values():
            process.wait(10)

    def remember_descendants(self) -> None:
        """Note the PIDs below every process now, so that :meth:`stop` also ends those that move away."""
        for name, process in self.processes.items():
            self.seen.setdefault(name, set()).update(self._descendants(process))

    def stop_all(self) -> None:
        """Stop every process at once."""
        self.stop(*self.processes)


class PostgresDatabase:
    """A database of its own on the local PostgreSQL, created for one deployment and dropped after it."""

    def __init__(self, name: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
        self.name = name
        self.admin_url = admin_url
        base = admin_url.rsplit("/", 1)[0]
        #: ``postgresql://user@host:port/name``.
        self.url = f"{base}/{name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create(self) -> PostgresDatabase:
        self.drop()
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def postgres_unavailable(admin_url: str = POSTGRES_ADMIN_URL) -> str | None:
    """None when databases can be created at ``admin_url``, else why not."""
    try:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            if not conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()[0]:
                return f"the PostgreSQL user of {admin_url} may not create databases"
    except Exception as error:
        return f"PostgreSQL not reachable at {admin_url}: {type(error).__name__}"
    return None


#: The emulator's lifecycle in these tests: every text delivered within seconds (the campaign DAG waits for
#: its delivery report), no failures and no replies (an inbound text is not part of any expectation).
QUICK_LIFECYCLE = (
    "--lifecycle",
    "auto",
    "--sent-delay",
    "0.2",
    "--final-delay",
    "0.5",
    "--failure-share",
    "0",
    "--reply-share",
    "0",
    "--stop-share",
    "0",
)


class EmulatorProcess:
    """``smsnexus-emulator`` run as users run it: a console script in a process of its own.

    Its start-up line holds the token (it prints the connection to export): its output is read through a
    pipe and kept in memory with the token masked, never written to a file.
    """

    def __init__(self, processes: ProcessGroup, *args: str) -> None:
        from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

        self.lines: list[str] = []
        processes.memory_logs["emulator"] = self.lines
        self._connection: dict[str, Any] | None = None
        process = processes.start("emulator", [EMULATOR, "--port", "0", *args], os.environ, pipe=True)
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()
        wait_for(
            "the emulator's start-up line", lambda: self._connection, timeout=30, interval=0.1, logs=processes
        )
        self.connection: dict[str, Any] = self._connection
        self.base_url = self.connection["host"]
        self.admin = EmulatorAdmin(self.base_url)

    def _read(self, stream: Any) -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            found = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.+)'", line)
            if found and self._connection is None:
                self._connection = json.loads(found.group(1))
            self.lines.append(re.sub(r'"password": "[^"]*"', '"password": "***"', line))

    def connection_json(self, **extras: Any) -> str:
        """The ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` value the emulator printed, with connection extras."""
        return json.dumps({**self.connection, "extra": extras})


class Airflow:
    """One Airflow deployment: its environment, its components, its CLI and its REST API."""

    def __init__(
        self, home: Path, processes: ProcessGroup, database: PostgresDatabase, settings: Mapping[str, str]
    ):
        self.home = home
        self.processes = processes
        self.database = database
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}/api/v2"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database.url.replace(
                    "postgresql://", "postgresql+psycopg2://", 1
                ),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # New DAGs start paused; a test unpauses those it runs (other example DAGs would text too).
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API_AUTH__JWT_SECRET": "smsnexus-deployment-test-jwt-secret",
                "AIRFLOW__API__SECRET_KEY": "smsnexus-deployment-test-api-secret",
                "AIRFLOW__CORE__PARALLELISM": "6",
                # The example campaign's send window off: these tests run at any hour of New York's night (the
                # window itself is tested on the emulator's clock: tests/operators/test_send_windows.py).
                "SMSNEXUS_SEND_WINDOW": "",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                # A killed task is retried after seconds, not the default five minutes.
                "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(settings)
        self.env = env
        import requests

        self.session = requests.Session()
        self.session.trust_env = False

    # -- components -------------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 180) -> str:
        """Run ``airflow ARGS`` as a user would and return its output; fail with it on a non-zero exit."""
        result = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise DeploymentError(
                f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self, *components: str) -> None:
        """Migrate the metadata database, start the components, wait until the API answers and the DAGs are parsed."""
        self.cli("db", "migrate", timeout=300)
        for component in components:
            argv = {"api-server": [AIRFLOW, "api-server", "--workers", "1"]}.get(
                component, [AIRFLOW, *component.split()]
            )
            self.processes.start(component.replace(" ", "-"), argv, self.env)
        wait_for("the API server", lambda: self.get("/version"), timeout=120, logs=self.processes)

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 120) -> None:
        def parsed() -> bool:
            self.processes.check_alive()
            errors = self.get("/importErrors")["import_errors"]
            if errors:
                raise DeploymentError(f"DAG import errors: {errors}")
            return dag_ids <= {d["dag_id"] for d in self.get("/dags", limit=100)["dags"]}

        wait_for(f"the DAGs {sorted(dag_ids)} to be parsed", parsed, timeout=timeout, logs=self.processes)

    # -- REST API ---------------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(self.api + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """``airflow dags trigger DAG_ID`` (no logical date, as users trigger); return the new run's id."""
        args = ["dags", "trigger", dag_id, "-o", "json"]
        if conf:
            args += ["-c", json.dumps(conf)]
        output = self.cli(*args)
        start = output.index("[{")
        (run,) = json.loads(output[start : output.rindex("}]") + 2])
        return run["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """A task's return value (its XCom), as the REST API shows it."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.get(path, map_index=map_index, deserialize=True)["value"]
        return json.loads(value) if isinstance(value, str) else value

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait until the run ends (success or failed) and return it."""

        def ended() -> dict[str, Any] | None:
            self.processes.check_alive()
            run = self.run(dag_id, run_id)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_for(f"{dag_id} run {run_id} to end", ended, timeout=timeout, logs=self.processes)

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: set[str],
        *,
        map_index: int = -1,
        timeout: float = 180,
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            self.processes.check_alive()
            for ti in self.task_instances(dag_id, run_id):
                if ti["task_id"] == task_id and ti["map_index"] == map_index and ti["state"] in states:
                    return ti
            return None

        return wait_for(
            f"{dag_id}.{task_id}[{map_index}] of {run_id} to be {sorted(states)}",
            reached,
            timeout=timeout,
            interval=0.2,
            logs=self.processes,
        )

    def task_log_text(self) -> str:
        """Every task log written under AIRFLOW_HOME/logs."""
        logs = self.home / "logs"
        return (
            "\n".join(p.read_text(errors="replace") for p in sorted(logs.rglob("*.log")))
            if logs.exists()
            else ""
        )


def task_process(ti_id: str) -> Any:
    """The process that runs a task instance: the task SDK titles it ``airflow worker -- <ti id>``."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(process.info["cmdline"] or []):
            return process
    return None


def require(reason: str | None, required: bool, what: str) -> None:
    """Skip with ``reason`` (or fail where the deployment tests are required) when a prerequisite is missing."""
    import pytest

    if reason:
        if required:
            pytest.fail(f"{reason} ({what} is required here: SMSNEXUS_REQUIRE_DEPLOYMENT=1)")
        pytest.skip(reason)


def binary_missing(name: str) -> str | None:
    return None if shutil.which(name) else f"{name} is not installed"
