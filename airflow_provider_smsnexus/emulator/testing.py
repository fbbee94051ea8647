"""Client of the SMS Nexus emulator's inspection API, for tests and scripts (pytest not needed).

:class:`EmulatorAdmin` drives the inspection API (``/_emulator/``), inside pytest or outside it, against
``smsnexus-emulator`` running on this machine; :class:`EmulatorHandle` is what the pytest fixtures hand a test.

This module is also the name of the pytest plugin: ``pytest_plugins = ["airflow_provider_smsnexus.emulator.testing"]``
in a ``conftest.py`` loads the fixtures of :mod:`airflow_provider_smsnexus.emulator.pytest_plugin`
(``smsnexus_emulator``, ``smsnexus_conn``) without this module importing pytest.

.. seealso:: "Inspection API" in :doc:`/emulator`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from airflow_provider_smsnexus.emulator.server import EmulatorServer

#: Connection extras of ``smsnexus_conn``: quick retries so tests of back-off stay fast, and a listing delay of
#: 0, true of the emulator unless its ``late_visibility_ms`` switch is on (a test of that switch sets its own).
TEST_CONNECTION_EXTRAS: dict[str, Any] = {
    "retry_backoff": 0.01,
    "retry_backoff_max": 0.05,
    "timeout": 10,
    "listing_delay": 0,
}


class EmulatorAdminError(RuntimeError):
    """The inspection API refused a request.

    :param status_code: HTTP status.
    :param body: the decoded answer (``message``, ``errors``).
    """

    def __init__(self, status_code: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        errors = body.get("errors") if isinstance(body, dict) else None
        super().__init__(f"Emulator inspection API answered {status_code}: {message} {errors or ''}".strip())
        self.status_code = status_code
        self.body = body


def _moment(value: datetime | str | float | None) -> str | float | None:
    return value.isoformat() if isinstance(value, datetime) else value


class EmulatorAdmin:
    """Client of the emulator's inspection API (loopback only). Accounts are addressed by id;
    ``account=None`` means the default account (id 1). Tokens never go into URLs.

    :param url: the emulator's root URL (``http://127.0.0.1:8025``) or its API base URL (``.../api``).
    :param timeout: seconds per request (seeding a million messages takes a few seconds).
    """

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        url = url.rstrip("/")
        self.root_url = url[: -len("/api")] if url.endswith("/api") else url
        self.timeout = timeout
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"EmulatorAdmin({self.root_url!r})"

    @property
    def session(self) -> requests.Session:
        """The HTTP session (environment proxies ignored: the emulator is local)."""
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.trust_env = False
        return self._session

    def _call(self, method: str, path: str, *, body: Any = None, params: Any = None) -> Any:
        response = self.session.request(
            method, f"{self.root_url}/_emulator{path}", json=body, params=params, timeout=self.timeout
        )
        try:
            decoded = response.json()
        except ValueError:
            decoded = response.text
        if response.status_code >= 400:
            raise EmulatorAdminError(response.status_code, decoded)
        return decoded["data"]

    @staticmethod
    def _account(account: int | None) -> int:
        return 1 if account is None else int(account)

    # -- state ----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "accounts": n, "run": id}``: ``run`` names this emulator run, as every API
        answer's ``X-SMSNexus-Emulator-Run`` header does."""
        return self._call("GET", "/health")

    def ledger_campaign(self, campaign_id: str) -> str:
        """The send ledger's campaign of ``campaign_id`` sent through this emulator run: the campaign scoped
        to the run (a ledger's record of one run never answers for another)."""
        return f"{campaign_id}@emulator-run-{self.health()['run']}"

    def reset(self) -> None:
        """Return to the start-up settings: default account(s) only, no messages, no webhooks,
        counters cleared, faults and limits as at start-up."""
        self._call("POST", "/reset")

    def config(self) -> dict[str, Any]:
        """The settings in force (see :class:`~airflow_provider_smsnexus.emulator.settings.EmulatorSettings`)."""
        return self._call("GET", "/config")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change any run-time setting, e.g. ``configure(allow_http_webhooks=True, mms_cost=5)``.

        :param settings: field names of ``EmulatorSettings`` and their new values.
        :return: the settings now in force.
        """
        return self._call("POST", "/config", body=settings)

    def set_faults(
        self,
        fail_before_share: float = 0,
        fail_after_share: float = 0,
        drop_after_share: float = 0,
        latency_ms: float = 0,
        live_traffic_per_list: int = 0,
        random_seed: int | None = None,
        *,
        latency_jitter_ms: float = 0,
        send_hold_ms: float = 0,
    ) -> None:
        """Set every fault at once (those not given are switched off, including the ones this method
        has no parameter for: ``fail_before_status`` goes back to 500 and ``maintenance_page`` off;
        use :meth:`configure` to set those).

        :param fail_before_share: share of ``/api`` requests answered 500 before processing.
        :param fail_after_share: share of sends processed, then answered 500.
        :param drop_after_share: share of sends processed, then their connection closed unanswered.
        :param latency_ms: delay before each ``/api`` answer.
        :param live_traffic_per_list: messages added on each ``GET /api/messages``.
        :param random_seed: reseed the fault dice (None keeps the current sequence).
        :param latency_jitter_ms: a random extra delay of up to this many ms on each ``/api`` request.
        :param send_hold_ms: delay between processing a send and writing its answer.
        """
        changes: dict[str, Any] = {
            "fail_before_share": fail_before_share,
            "fail_after_share": fail_after_share,
            "drop_after_share": drop_after_share,
            "latency_ms": latency_ms,
            "live_traffic_per_list": live_traffic_per_list,
            "latency_jitter_ms": latency_jitter_ms,
            "send_hold_ms": send_hold_ms,
            "fail_before_status": 500,
            "maintenance_page": False,
        }
        if random_seed is not None:
            changes["random_seed"] = random_seed
        self.configure(**changes)

    def set_limits(
        self,
        send_limit: int | None = None,
        read_limit: int | None = None,
        window_seconds: float | None = None,
    ) -> None:
        """Change rate limits (those not given stay as they are).

        :param send_limit: accepted sends per account and window.
        :param read_limit: accepted other requests per account and window.
        :param window_seconds: window length in seconds.
        """
        changes = {"send_limit": send_limit, "read_limit": read_limit, "window_seconds": window_seconds}
        self.configure(**{name: value for name, value in changes.items() if value is not None})

    def set_lifecycle(
        self,
        mode: str | None = None,
        *,
        sent_delay: float | None = None,
        final_delay: float | None = None,
        failure_share: float | None = None,
        reply_share: float | None = None,
        stop_share: float | None = None,
        reply_delay: float | None = None,
    ) -> None:
        """Change the message lifecycle (arguments not given stay as they are).

        :param mode: ``"manual"`` or ``"auto"``.
        :param sent_delay: seconds from queued to sent (auto).
        :param final_delay: seconds from sent to delivered/failed (auto).
        :param failure_share: share of messages that end failed.
        :param reply_share: share of delivered messages answered with a text.
        :param stop_share: share of delivered messages answered ``STOP``.
        :param reply_delay: seconds from delivery to the reply (auto).
        """
        changes = {
            "lifecycle": mode,
            "sent_delay": sent_delay,
            "final_delay": final_delay,
            "failure_share": failure_share,
            "reply_share": reply_share,
            "stop_share": stop_share,
            "reply_delay": reply_delay,
        }
        self.configure(**{name: value for name, value in changes.items() if value is not None})

    def advance_lifecycle(self) -> dict[str, int]:
        """Move every pending message to delivered/failed now and deliver pending replies.

        :return: counts of messages that became ``sent``, ``delivered``, ``failed`` and replies ``received``.
        """
        return self._call("POST", "/lifecycle/advance")

    def stats(self) -> dict[str, Any]:
        """Request counters. Keys: ``requests``, ``accepted``, ``rate_limited`` (each
        ``{"send": n, "other": n}``), ``max_in_window`` and ``max_in_sliding_window`` (the most
        accepted requests of one account in one fixed window / any window-long span, per class),
        ``accounts`` (``{"1": {"send": {...same per account...}, "other": {...}}}``), ``faults``
        (``fail_before``, ``fail_after``, ``drop_after`` counts) and ``limits``."""
        return self._call("GET", "/stats")

    # -- accounts ---------------------------------------------------------------------------------------

    def add_account(
        self,
        token: str,
        credits: int | None = None,
        numbers: list[str | dict[str, Any]] | None = None,
        *,
        plan: str | None = None,
        suspended: bool = False,
    ) -> int:
        """Create an account for ``token`` and return its id.

        :param token: the Bearer token it answers to.
        :param credits: starting credits (default 10,000).
        :param numbers: E.164 strings (sms+mms, active) or dicts with ``number``, ``capabilities``
            and ``status``; default +12125550100 (sms, mms), +12125550101 (sms), +12125550102 (inactive).
        :param plan: plan name (default "Professional").
        :param suspended: the account answers 403 to everything.
        """
        body = {"token": token, "credits": credits, "numbers": numbers, "plan": plan, "suspended": suspended}
        return self._call("POST", "/accounts", body=body)["id"]

    def accounts(self) -> list[dict[str, Any]]:
        """Every account (id, credits, plan, numbers, suspended, message count; no tokens)."""
        return self._call("GET", "/accounts")

    def account(self, account: int | None = None) -> dict[str, Any]:
        """One account: ``id``, ``credits``, ``plan``, ``credits_used_today``, ``suspended``,
        ``numbers``, ``messages`` (count), ``opted_out`` (contacts that sent STOP).

        :param account: account id (default 1).
        """
        return self._call("GET", f"/accounts/{self._account(account)}")

    def update_account(self, account: int | None = None, **changes: Any) -> dict[str, Any]:
        """Change ``credits``, ``plan``, ``suspended`` or ``credits_used_today`` of an account.

        :param account: account id (default 1).
        :param changes: field -> value.
        """
        return self._call("PATCH", f"/accounts/{self._account(account)}", body=changes)

    def set_balance(self, credits: int, account: int | None = None) -> None:
        """Set an account's credits.

        :param credits: new balance.
        :param account: account id (default 1).
        """
        self.update_account(account, credits=credits)

    # -- messages ---------------------------------------------------------------------------------------

    def messages(
        self, account: int | None = None, *, direction: str | None = None, origin: str | None = None
    ) -> list[dict[str, Any]]:
        """Every message of an account in creation order (the ``/api/messages`` shape plus
        ``media_url`` and ``origin``: ``api``, ``seed``, ``live``, ``reply`` or ``admin``).

        :param account: account id (default 1).
        :param direction: only ``outbound`` or ``inbound``.
        :param origin: only one origin.
        """
        params = {"direction": direction, "origin": origin}
        params = {name: value for name, value in params.items() if value is not None}
        return self._call("GET", f"/accounts/{self._account(account)}/messages", params=params)

    def sent_messages(self, account: int | None = None) -> list[dict[str, Any]]:
        """Every message the account created through ``POST /api/sms/send``, in creation order,
        whatever answer the client got (use it to check exactly-once sending).

        :param account: account id (default 1).
        """
        return self.messages(account, origin="api")

    def add_inbound(
        self, from_number: str, to_number: str, body: str, account: int | None = None
    ) -> dict[str, Any]:
        """Simulate a text from a contact to one of the account's numbers (``STOP`` opts out).
        Sends ``message.received`` webhooks.

        :param from_number: the contact's E.164 number.
        :param to_number: the account's number.
        :param body: the text.
        :param account: account id (default 1).
        :return: the stored message.
        """
        payload = {"from": from_number, "to": to_number, "body": body}
        return self._call("POST", f"/accounts/{self._account(account)}/inbound", body=payload)

    def seed_messages(
        self,
        n: int,
        random_seed: int = 0,
        account: int | None = None,
        start: datetime | str | float | None = None,
        end: datetime | str | float | None = None,
    ) -> dict[str, Any]:
        """Add ``n`` messages of realistic history spread over ``[start, end)`` (default: the last 90 days).

        :param n: number of messages.
        :param random_seed: same seed, same history.
        :param account: account id (default 1).
        :param start: first moment (aware datetime, ISO 8601 string or epoch seconds).
        :param end: end of the span, excluded (default now).
        :return: ``{"seeded": n, "seconds": elapsed}``.
        """
        body = {"n": n, "random_seed": random_seed, "start": _moment(start), "end": _moment(end)}
        return self._call("POST", f"/accounts/{self._account(account)}/seed", body=body)

    # -- webhooks ---------------------------------------------------------------------------------------

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every webhook POST attempted so far: ``webhook_id``, ``url``, ``event``, ``status_code``
        (None without an answer), ``error``, ``payload``."""
        return self._call("GET", "/webhook-deliveries")

    def wait_for_webhook_deliveries(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` webhook POSTs were attempted, and return them all.

        :param count: attempts to wait for.
        :param timeout: seconds before giving up with :class:`TimeoutError`.
        """
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self.webhook_deliveries()
            if len(deliveries) >= count:
                return deliveries
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(deliveries)} of {count} webhook deliveries after {timeout} s")
            time.sleep(0.02)


@dataclass
class EmulatorHandle:
    """What the ``smsnexus_emulator`` fixture hands a test.

    :param base_url: API base URL, ``http://127.0.0.1:<port>/api``.
    :param token: the default account's token (contains ``SMSNEXUS-TEST-TOKEN``).
    :param admin: client of the inspection API.
    :param server: the in-process server.
    """

    base_url: str
    token: str = field(repr=False)
    admin: EmulatorAdmin
    server: EmulatorServer | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        # Written out: tools such as hypothesis print dataclass fields even when repr=False.
        return f"EmulatorHandle(base_url={self.base_url!r})"

    def connection_json(self, **extras: Any) -> str:
        """JSON for an ``AIRFLOW_CONN_*`` variable pointing at the emulator.

        :param extras: connection extras (``timeout``, ``max_retries``, ``send_rate_limit``, ...).
        """
        return json.dumps(
            {"conn_type": "smsnexus", "host": self.base_url, "password": self.token, "extra": extras}
        )


# pytest reads this list from any module it loads as a plugin: the fixtures live in a module of their own,
# so that importing this one never needs pytest.
pytest_plugins = ["airflow_provider_smsnexus.emulator.pytest_plugin"]
