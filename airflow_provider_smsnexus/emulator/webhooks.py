"""Delivery of webhook events: a background thread POSTs each event's JSON to its URL.

Payload (the reference leaves it open; this is the emulator's choice)::

    {"event": "message.delivered", "webhook_id": 5, "occurred_at": "2026-03-08T12:00:03Z",
     "data": {"id": 12345, "from": "+12125550100", "to": "+12125550142", "body": "Hello!",
              "direction": "outbound", "status": "delivered", "credits_used": 1,
              "created_at": "2026-03-08T12:00:00Z"}}

``data`` is the message exactly as ``GET /api/messages`` shows it. Headers: ``Content-Type:
application/json``, ``User-Agent: smsnexus-emulator``, ``X-SMSNexus-Event: <event>``. No
signature. One attempt per event, 5-second timeout; each attempt is recorded for the inspection API.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)

EVENTS = ("message.received", "message.delivered", "message.failed")


class WebhookDispatcher:
    """Sends queued webhook events from a daemon thread and keeps a log of the attempts.

    :param timeout: seconds to wait for a receiver.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._queue: queue.Queue[tuple[int, dict[str, Any]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._deliveries: list[dict[str, Any]] = []
        self._generation = 0
        self._thread: threading.Thread | None = None
        # Receivers are local: never route deliveries through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> None:
        """Start the delivery thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="smsnexus-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the delivery thread after the event being sent."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None

    def clear(self) -> None:
        """Drop undelivered events and forget past deliveries (a reset)."""
        with self._lock:
            self._generation += 1
            self._deliveries = []

    def submit(
        self,
        webhook_id: int,
        url: str,
        event: str,
        message: dict[str, Any],
        *,
        occurred_at: float | None = None,
    ) -> None:
        """Queue one event for one webhook.

        :param webhook_id: id of the registered webhook.
        :param url: its URL.
        :param event: one of :data:`EVENTS`.
        :param message: the message in its public JSON shape.
        :param occurred_at: epoch seconds on the server's clock (default: the machine's clock now).
        """
        moment = time.time() if occurred_at is None else occurred_at
        payload = {
            "event": event,
            "webhook_id": webhook_id,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(moment))),
            "data": message,
        }
        with self._lock:
            generation = self._generation
        self._queue.put((generation, {"url": url, "payload": payload}))

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt so far: ``webhook_id``, ``url``, ``event``, ``status_code`` (None when no
        answer), ``error`` and ``payload``."""
        with self._lock:
            return list(self._deliveries)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            generation, job = item
            with self._lock:
                if generation != self._generation:
                    continue
            result = self._post(job["url"], job["payload"])
            with self._lock:
                if generation == self._generation:
                    self._deliveries.append(result)

    def _post(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "smsnexus-emulator",
                "X-SMSNexus-Event": payload["event"],
            },
        )
        status: int | None = None
        error: str | None = None
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("Webhook %s to %s failed: %s", payload["event"], url, error)
        return {
            "webhook_id": payload["webhook_id"],
            "url": url,
            "event": payload["event"],
            "status_code": status,
            "error": error,
            "payload": payload,
        }
