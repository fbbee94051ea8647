"""Tests of the emulator's server: a free port, real HTTP while started, the port released on stop."""

from __future__ import annotations

import socket

import pytest
import requests

from airflow_provider_smsnexus.emulator.server import EmulatorServer, bind_socket
from airflow_provider_smsnexus.emulator.settings import DEFAULT_TOKEN, EmulatorSettings


def test_bind_socket_on_port_zero_listens_on_a_free_port() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert port > 0
        with socket.create_connection((host, port), timeout=5):
            pass
    finally:
        sock.close()


def test_a_started_server_answers_the_api_and_stop_releases_the_port() -> None:
    settings = EmulatorSettings.for_tests()
    with EmulatorServer(settings) as server:
        assert server.started
        assert server.base_url == f"http://127.0.0.1:{server.port}/api"
        answer = requests.get(
            f"{server.base_url}/balance", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}, timeout=10
        )
        assert answer.status_code == 200
        assert answer.json()["data"]["credits"] == 10_000
    assert server.stopping
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.base_url}/balance", timeout=5)


def test_root_url_brackets_an_ipv6_host() -> None:
    try:
        server = EmulatorServer(EmulatorSettings.for_tests(), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert server.root_url == f"http://[::1]:{server.port}"
    finally:
        server.socket.close()
