"""Run processes of :mod:`tests.hooks.budget_worker` together against the emulator, and a Redis server for them.

:func:`run_workers` starts each worker, waits until all are imported and connected, starts them at one moment
and returns their reports. :func:`redis_server` starts Debian's ``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a worker may take to import Airflow and connect, on a loaded machine.
READY_TIMEOUT = 90


#: What a hook logs when its shared budget's store did not answer (it then paced itself alone).
STORE_UNREACHABLE = "The shared rate budget cannot be reached"


def run_workers(
    roles: list[list[str]], env: dict[str, str], seconds: float, logs: Path
) -> list[dict[str, Any]]:
    """
    Run one worker per ``roles`` entry (its command-line arguments) for ``seconds``, all starting together.

    :param env: variables added to this process's environment (the connections).
    :param logs: a directory for the workers' own output (Airflow's logs).
    :return: each worker's report, in the order of ``roles``, with ``store_unreachable``: how often its hook
        found the shared budget's store unreachable.
    """
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    logs.mkdir(parents=True, exist_ok=True)
    log_files = [logs / f"{n}-{args[0]}.log" for n, args in enumerate(roles)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.hooks.budget_worker", *args],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        for args, log in zip(roles, log_files, strict=True)
    ]
    try:
        for worker in workers:
            line = _read_line(worker, READY_TIMEOUT)
            assert line == "READY", f"a worker did not start: {line!r}"
        start = time.time() + 0.5
        for worker in workers:
            worker.stdin.write(f"GO {start} {seconds}\n")
            worker.stdin.flush()
        reports = [json.loads(_read_line(worker, seconds + 120)) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    for report, log in zip(reports, log_files, strict=True):
        report["store_unreachable"] = log.read_text().count(STORE_UNREACHABLE)
    return reports


def _read_line(worker: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(worker.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no line from a worker within {timeout} s")
    return worker.stdout.readline().strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A fresh ``redis-server`` on a free loopback port, without persistence; yields its ``redis://`` URL.

    :raises FileNotFoundError: ``redis-server`` is not installed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
