"""``smsnexus-emulator`` as a user runs it: a subprocess that serves seeded data and stops on SIGTERM."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import time

import pytest
import requests

from airflow_provider_smsnexus.emulator.cli import build_parser, settings_from_args


def read_line(process: subprocess.Popen, timeout: float = 30.0) -> str:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=0.1):
            return process.stdout.readline()
        assert process.poll() is None, "the emulator exited early"
    raise AssertionError("no start-up line")


def test_cli_serves_seeded_messages_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--port", "0", "--seed-messages", "1000",
         "--random-seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = read_line(process)
        assert line.startswith("SMS Nexus emulator on http://127.0.0.1:")
        connection = json.loads(re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", line).group(1))
        assert connection["conn_type"] == "smsnexus"
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {connection['password']}"
        body = session.get(f"{connection['host']}/messages", params={"per_page": 100}, timeout=10).json()
        assert body["meta"]["total"] == 1000
        assert len(body["data"]) == 100
        assert session.get(f"{connection['host']}/balance", timeout=10).json()["data"]["credits"] == 10000
        sent = session.post(
            f"{connection['host']}/sms/send",
            json={"from": "+12125550100", "to": "+12125550150", "message": "hi"},
            timeout=10,
        )
        assert sent.status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "SMS Nexus emulator stopped" in out
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_command_line_options_become_settings():
    args = build_parser().parse_args(
        ["--token", "A", "--token", "B", "--token", "A", "--send-limit", "5", "--read-limit", "7",
         "--window-seconds", "1", "--drop-after-share", "0.25", "--lifecycle", "manual", "--mms-cost", "4",
         "--allow-http-webhooks", "--seed-messages", "10", "--initial-credits", "99", "--stop-share", "0.5"]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert settings.tokens == ["A", "B"]
    assert (settings.send_limit, settings.read_limit, settings.window_seconds) == (5, 7, 1.0)
    assert (settings.drop_after_share, settings.lifecycle, settings.mms_cost) == (0.25, "manual", 4)
    assert (settings.allow_http_webhooks, settings.seed_messages, settings.initial_credits) == (True, 10, 99)
    assert settings.stop_share == 0.5


def test_defaults_follow_the_reference_limits():
    settings = settings_from_args(build_parser().parse_args([]))
    assert (settings.send_limit, settings.read_limit, settings.window_seconds) == (30, 60, 60.0)
    assert settings.lifecycle == "auto"
    assert settings.allow_http_webhooks is False
    assert len(settings.tokens) == 1


def test_command_line_options_set_the_drift_switches():
    args = build_parser().parse_args(
        ["--list-order", "oldest_first", "--ignore-date-params", "--clock-offset-seconds", "-300",
         "--reorder-conversations-per-list", "2", "--status-changes-per-list", "3",
         "--fail-before-status", "502", "--maintenance-page"]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert (settings.list_order, settings.ignore_date_params, settings.clock_offset_seconds) == (
        "oldest_first", True, -300.0,
    )  # fmt: skip
    assert (settings.reorder_conversations_per_list, settings.status_changes_per_list) == (2, 3)
    assert (settings.fail_before_status, settings.maintenance_page) == (502, True)
    defaults = settings_from_args(build_parser().parse_args([]))
    assert (defaults.list_order, defaults.ignore_date_params, defaults.clock_offset_seconds) == (
        "newest_first", False, 0.0,
    )  # fmt: skip


def test_allow_remote_inspection_is_off_unless_asked_for():
    assert settings_from_args(build_parser().parse_args([])).allow_remote_inspection is False
    asked = build_parser().parse_args(["--allow-remote-inspection"])
    assert settings_from_args(asked).allow_remote_inspection is True


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words
    token_help = text[text.index("--token TOKEN API token") : text.index("--allow-remote-inspection serve")]
    assert token_help.count("(default:") == 1
    assert "(default: SMSNEXUS-TEST-TOKEN-default)" in token_help
