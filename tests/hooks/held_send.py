"""A send whose answer the emulator holds past the client's read timeout, checked to be that scenario.

The emulator stores the message, then waits ``send_hold_ms`` before answering; with a hold well above the
connection's ``timeout`` the client gives up on a send the server has processed. The scenario is checked,
not assumed: the test sees the message in the emulator's record while the sending call is still waiting.
If the call had already returned or raised (a loaded machine slow to even process the send), the check
fails loudly instead of silently testing something else.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

#: The connection's read timeout, and the emulator's hold after processing a send (well above it).
CLIENT_TIMEOUT_S = 4
SEND_HOLD_MS = 20_000


def held_send_connection(emulator) -> str:
    """A connection to the emulator with the short read timeout of this scenario."""
    return emulator.connection_json(timeout=CLIENT_TIMEOUT_S)


def run_with_held_answer(admin: EmulatorAdmin, call: Callable[[], Any]) -> dict[str, Any]:
    """Run ``call`` (one send) with the send's answer held; return ``{"result": ...}`` or ``{"error": ...}``.

    :raises AssertionError: the emulator never recorded the send, or ``call`` finished before it did.
    """
    before = len(admin.sent_messages())
    admin.set_faults(send_hold_ms=SEND_HOLD_MS)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = call()
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while len(admin.sent_messages()) == before:
        assert worker.is_alive(), f"the call finished before the emulator processed the send: {outcome}"
        assert time.monotonic() < deadline, "the emulator never recorded the send"
        time.sleep(0.02)
    assert worker.is_alive(), (
        "the call finished before the test saw the send processed: not a read timeout after processing"
    )
    # The hold stays until the call is over: it applies to sends only, and is read when the answer starts.
    worker.join(timeout=120)
    admin.set_faults()
    assert not worker.is_alive(), "the call never finished"
    return outcome
