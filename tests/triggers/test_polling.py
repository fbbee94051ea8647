"""Tests of the shared polling loop and trigger base: payloads for success, errors and the deadline."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from airflow_provider_smsnexus.exceptions import SMSNexusAuthError, SMSNexusServerError
from airflow_provider_smsnexus.triggers.base import PollingTrigger, error_payload, poll_until

LOG = logging.getLogger(__name__)


def _checks(*results: Any):
    """A check that returns (or raises) each of ``results`` in turn, and the count of calls made."""
    calls = []

    async def check() -> dict[str, Any] | None:
        result = results[len(calls)]
        calls.append(result)
        if isinstance(result, BaseException):
            raise result
        return result

    return check, calls


def test_poll_until_checks_again_after_none_and_a_transient_error() -> None:
    check, calls = _checks(None, SMSNexusServerError("502", status_code=502), {"status": "success"})
    payload = asyncio.run(poll_until(check, interval=0, deadline=None, log=LOG, what="x"))
    assert payload == {"status": "success"}
    assert len(calls) == 3


def test_poll_until_returns_an_error_payload_for_an_error_waiting_cannot_fix() -> None:
    error = SMSNexusAuthError("bad token", status_code=401, server_message="Unauthenticated.")
    check, calls = _checks(error)
    payload = asyncio.run(poll_until(check, interval=0, deadline=None, log=LOG, what="x"))
    assert payload == {
        "status": "error",
        "status_code": 401,
        "message": "SMSNexusAuthError: bad token",
        "server_message": "Unauthenticated.",
    }
    assert payload == error_payload(error)
    assert len(calls) == 1


def test_poll_until_past_the_deadline_checks_once_then_times_out() -> None:
    check, calls = _checks(None)
    payload = asyncio.run(poll_until(check, interval=0, deadline=time.time() - 1, log=LOG, what="a reply"))
    assert payload == {"status": "timeout", "message": "No a reply before the deadline"}
    assert len(calls) == 1


class _Trigger(PollingTrigger):
    def arguments(self) -> dict[str, Any]:
        return {"x": 1}

    async def run(self):  # pragma: no cover - never run
        yield None


def test_serialize_adds_the_shared_arguments_to_the_subclass_arguments() -> None:
    trigger = _Trigger(smsnexus_conn_id="c", poke_interval=5, deadline=10)
    assert trigger.serialize() == (
        f"{__name__}._Trigger",
        {"x": 1, "smsnexus_conn_id": "c", "poke_interval": 5.0, "deadline": 10.0},
    )
