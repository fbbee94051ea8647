"""The emulator's accounts, messages, webhooks, lifecycle and counters; no HTTP in here.

Every method is called from the server's event loop thread, one at a time, so there is no locking.
Validation follows the reference and Laravel's wording; a failure raises :class:`ValidationFailed`
and changes nothing.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_smsnexus.emulator.ratelimit import OTHER, SEND, FixedWindowLimiter, RateDecision
from airflow_provider_smsnexus.emulator.settings import LIFECYCLE_AUTO, LIFECYCLE_MANUAL, EmulatorSettings
from airflow_provider_smsnexus.emulator.store import (
    DELIVERED,
    DIRECTION_CODES,
    FAILED,
    INBOUND,
    ORIGIN_CODES,
    ORIGINS,
    OUTBOUND,
    QUEUED,
    RECEIVED,
    SENT,
    STATUS_CODES,
    MessageStore,
    StringTable,
    iso_utc,
)
from airflow_provider_smsnexus.emulator.webhooks import EVENTS, WebhookDispatcher
from airflow_provider_smsnexus.utils.segments import estimate_segments

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_MESSAGE_LENGTH = 1600
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})

#: Numbers of a new account unless others are given: (number, capabilities, status).
DEFAULT_NUMBERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("+12125550100", ("sms", "mms"), "active"),
    ("+12125550101", ("sms",), "active"),
    ("+12125550102", ("sms",), "inactive"),
)
#: Area codes of the fictional contacts of seeded history and live traffic (+1 NXX 555-01XX).
CONTACT_AREA_CODES = (
    "919", "213", "206", "214", "267", "303", "305", "312", "404", "415",
    "503", "512", "602", "617", "702", "713", "718", "720", "801", "808",
)  # fmt: skip
SECONDS_PER_DAY = 86400
_CONTACTS = [f"+1{area}555{number:04d}" for area in CONTACT_AREA_CODES for number in range(100, 200)]


class ValidationFailed(Exception):
    """A request that fails validation (HTTP 422); nothing was changed.

    :param errors: field -> messages, Laravel style.
    :param message: top-level message.
    """

    def __init__(self, errors: dict[str, list[str]], message: str = "Validation failed") -> None:
        super().__init__(message)
        self.errors = errors
        self.message = message


class EmulatorHTTPError(Exception):
    """An error answer other than 422.

    :param status_code: HTTP status.
    :param message: the ``message`` of the body.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass
class PhoneNumber:
    """A number of an account.

    :param id: public id.
    :param number: E.164 number.
    :param capabilities: ``sms`` and/or ``mms``.
    :param status: ``active`` or another word (then it cannot send).
    :param created_at: epoch seconds.
    """

    id: int
    number: str
    capabilities: list[str]
    status: str
    created_at: float
    carrier: str = "bulkvs"

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "id": self.id,
            "number": self.number,
            "carrier": self.carrier,
            "capabilities": list(self.capabilities),
            "status": self.status,
            "created_at": iso_utc(self.created_at),
        }


@dataclass
class Webhook:
    """A registered webhook.

    :param id: public id.
    :param account_id: owner.
    :param url: where events are POSTed.
    :param events: subscribed events.
    :param created_at: epoch seconds.
    """

    id: int
    account_id: int
    url: str
    events: list[str]
    created_at: float
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "created_at": iso_utc(self.created_at),
        }


@dataclass
class Account:
    """One API token's tenant.

    :param id: account id (used by the inspection API; tokens never appear in URLs).
    :param token: the Bearer token (never logged, never returned).
    """

    id: int
    token: str = field(repr=False)
    credits: int
    plan: str
    numbers: list[PhoneNumber]
    store: MessageStore
    suspended: bool = False
    credits_used_today: int = 0
    usage_day: int = 0
    opted_out: set[str] = field(default_factory=set)

    def number(self, value: str) -> PhoneNumber | None:
        """The account's number ``value``, or None.

        :param value: E.164 number.
        """
        return next((item for item in self.numbers if item.number == value), None)

    def summary(self) -> dict[str, Any]:
        """Inspection view of the account (without its token)."""
        return {
            "id": self.id,
            "credits": self.credits,
            "plan": self.plan,
            "credits_used_today": self.credits_used_today,
            "suspended": self.suspended,
            "numbers": [item.to_dict() for item in self.numbers],
            "messages": len(self.store),
            "opted_out": sorted(self.opted_out),
        }


def _seed_bodies(rng: random.Random) -> tuple[list[str], list[str]]:
    """Distinct outbound and inbound texts for seeded history and live traffic: a realistic mix of
    short GSM-7, multi-part, UCS-2 (accents, curly quotes, emoji) texts."""
    names = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemi", "Luca"]
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "tomorrow"]
    outbound_templates = [
        "Hi {name}, your order #{num} has shipped and arrives {day}.",
        "Your verification code is {code}. It expires in 10 minutes.",
        "Reminder: your appointment with Dr. {surname} is on {day} at {hour}:00. Reply C to confirm.",
        "{name}, your table is ready. Please come to the host stand.",
        "Flash sale! {pct}% off everything until midnight: https://example.com/s/{code} Reply STOP to opt out.",
        "Payment of ${amount}.00 received. Thank you, {name}!",
        "Hola {name}, tu pedido #{num} está en camino. ¡Gracias por tu compra!",
        "Don\u2019t forget: {day} is the last day to renew your membership, {name}.",
        "Thanks for visiting, {name}! 😊 Rate us: https://example.com/r/{code}",
        "Dear {name}, this is a notice about your account. Your statement for order #{num} is ready and "
        "a payment of ${amount}.00 is due on {day}. To pay, visit https://example.com/pay/{code} or call "
        "us during opening hours. Reply HELP for help or STOP to opt out of these messages.",
        "Your ride is arriving in {hour} minutes. Driver: {name}, plate {code}. Use code [{code}] at pickup.",
    ]
    inbound_templates = [
        "Yes", "C", "Thanks!", "What time do you open {day}?", "Can I reschedule to {day}?",
        "ok 👍", "Who is this?", "Confirmed", "No thanks", "I\u2019ll be there at {hour}", "Is order #{num} late?",
    ]  # fmt: skip

    def fill(template: str) -> str:
        return template.format(
            name=rng.choice(names),
            surname=rng.choice(["Patel", "Nguyen", "Smith", "Okafor", "Rossi"]),
            day=rng.choice(days),
            hour=rng.randint(1, 12),
            num=rng.randint(10000, 99999),
            code=rng.randint(100000, 999999),
            pct=rng.choice([10, 15, 20, 25, 30, 50]),
            amount=rng.randint(5, 500),
        )

    outbound = sorted({fill(rng.choice(outbound_templates)) for _ in range(600)})
    inbound = sorted({fill(rng.choice(inbound_templates)) for _ in range(150)} | {"STOP"})
    return outbound, inbound


class Emulator:
    """The whole emulated service: accounts, limits, faults, lifecycle, webhooks.

    :param settings: start-up settings; :meth:`reset` returns to them.
    :param dispatcher: webhook sender; a new one when None.
    :param clock: returns the current epoch seconds (tests of the state may pass their own).
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        dispatcher: WebhookDispatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.initial_settings = (settings or EmulatorSettings()).copy()
        self.dispatcher = dispatcher or WebhookDispatcher()
        self.clock = clock
        self.limiter = FixedWindowLimiter()
        self.reset()

    # -- setup ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Return to the start-up settings: fresh accounts, no messages (unless seeding is set),
        no webhooks, counters cleared, pending webhook deliveries dropped."""
        self.settings = self.initial_settings.copy()
        self.numbers = StringTable()
        self.bodies = StringTable()
        self.accounts: dict[int, Account] = {}
        self._by_token: dict[str, Account] = {}
        self.webhooks: dict[int, Webhook] = {}
        self._next: dict[str, int] = {
            "message": 1,
            "account": 1,
            "number": 1,
            "conversation": 1,
            "webhook": 1,
        }
        self.pending: dict[tuple[int, int], float] = {}
        self.replies: list[tuple[float, int, str, str, str]] = []
        self.fault_counts = {"fail_before": 0, "fail_after": 0, "drop_after": 0}
        self.limiter.clear()
        self.dispatcher.clear()
        self._seed_random(self.settings.random_seed)
        self._outbound_texts, self._inbound_texts = _seed_bodies(random.Random(0))
        for token in self.settings.tokens:
            self.add_account(token)
        if self.settings.seed_messages:
            self.seed(1, self.settings.seed_messages, random_seed=self.settings.random_seed or 0)

    def _seed_random(self, seed: int | None) -> None:
        self.fault_rng = random.Random(seed)
        self.lifecycle_rng = random.Random(None if seed is None else seed + 1)
        self.traffic_rng = random.Random(None if seed is None else seed + 2)
        self.latency_rng = random.Random(None if seed is None else seed + 3)

    def _take_id(self, kind: str, count: int = 1) -> int:
        first = self._next[kind]
        self._next[kind] = first + count
        return first

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change run-time settings (limits, faults, lifecycle, ...); unknown names are a 422.

        :param changes: setting name -> new value (see :class:`EmulatorSettings`).
        :return: the settings now in force, without tokens.
        """
        allowed = EmulatorSettings.runtime_fields()
        errors: dict[str, list[str]] = {}
        for name, value in changes.items():
            if name not in allowed:
                errors[name] = [f"The {name} setting does not exist."]
                continue
            problem = _setting_problem(name, value, getattr(self.settings, name))
            if problem:
                errors[name] = [problem]
        if errors:
            raise ValidationFailed(errors)
        if "lifecycle" in changes and changes["lifecycle"] == LIFECYCLE_AUTO:
            now = self.clock()
            self.pending = {key: max(since, now) for key, since in self.pending.items()}
        self.settings = self.settings.copy(**changes)
        if "random_seed" in changes:
            self._seed_random(changes["random_seed"])
        return self.settings.public_dict()

    def add_account(
        self,
        token: str,
        *,
        credits: int | None = None,
        plan: str | None = None,
        numbers: Iterable[str | dict[str, Any]] | None = None,
        suspended: bool = False,
    ) -> Account:
        """Create an account for ``token``.

        :param token: its Bearer token (must be new).
        :param credits: starting credits (default: the settings' ``initial_credits``).
        :param plan: plan name (default: the settings' ``plan``).
        :param numbers: E.164 strings (sms+mms, active) or dicts with ``number``, ``capabilities``,
            ``status``; default the three numbers of :data:`DEFAULT_NUMBERS`.
        :param suspended: answer 403 to everything.
        """
        if not isinstance(token, str) or not token:
            raise ValidationFailed({"token": ["The token field is required."]})
        if token in self._by_token:
            raise ValidationFailed({"token": ["The token has already been taken."]})
        now = self.clock()
        specs: list[dict[str, Any]] = []
        if numbers is None:
            specs = [{"number": n, "capabilities": list(c), "status": s} for n, c, s in DEFAULT_NUMBERS]
        else:
            for item in numbers:
                specs.append({"number": item} if isinstance(item, str) else dict(item))
        phone_numbers = []
        for spec in specs:
            if not isinstance(spec.get("number"), str) or not E164.match(spec["number"]):
                raise ValidationFailed({"numbers": [f"{spec.get('number')!r} is not an E.164 number."]})
            phone_numbers.append(
                PhoneNumber(
                    id=self._take_id("number"),
                    number=spec["number"],
                    capabilities=list(spec.get("capabilities", ["sms", "mms"])),
                    status=spec.get("status", "active"),
                    created_at=now,
                )
            )
        account = Account(
            id=self._take_id("account"),
            token=token,
            credits=self.settings.initial_credits if credits is None else int(credits),
            plan=plan or self.settings.plan,
            numbers=phone_numbers,
            store=MessageStore(self.numbers, self.bodies, lambda: self._take_id("conversation")),
            suspended=suspended,
            usage_day=int(now // SECONDS_PER_DAY),
        )
        self.accounts[account.id] = account
        self._by_token[token] = account
        return account

    def account(self, account_id: int) -> Account:
        """The account with ``account_id``; a 404 when there is none.

        :param account_id: account id.
        """
        account = self.accounts.get(account_id)
        if account is None:
            raise EmulatorHTTPError(404, f"Account {account_id} not found")
        return account

    def update_account(self, account_id: int, changes: dict[str, Any]) -> Account:
        """Change an account's ``credits``, ``plan``, ``suspended`` or ``credits_used_today``.

        :param account_id: account id.
        :param changes: field -> value.
        """
        account = self.account(account_id)
        kinds: dict[str, type] = {"credits": int, "credits_used_today": int, "plan": str, "suspended": bool}
        errors: dict[str, list[str]] = {}
        for name, value in changes.items():
            if name not in kinds:
                errors[name] = [f"The {name} field cannot be changed."]
            elif not isinstance(value, kinds[name]) or (kinds[name] is int and isinstance(value, bool)):
                errors[name] = [f"The {name} field must be of type {kinds[name].__name__}."]
        if errors:
            raise ValidationFailed(errors)
        for name, value in changes.items():
            setattr(account, name, value)
        return account

    def authenticate(self, token: str | None) -> Account | None:
        """The account of a Bearer token, or None.

        :param token: the token from the Authorization header.
        """
        return self._by_token.get(token) if token else None

    # -- rate limits and faults -------------------------------------------------------------------

    def rate_limit(self, bucket: Any, endpoint_class: str) -> RateDecision:
        """Count a request of ``endpoint_class`` for ``bucket`` and decide on it.

        :param bucket: account id, or a client address for requests without a valid token.
        :param endpoint_class: ``send`` or ``other``.
        """
        limit = self.settings.send_limit if endpoint_class == SEND else self.settings.read_limit
        return self.limiter.hit(
            bucket, endpoint_class, int(limit), self.settings.window_seconds, self.clock()
        )

    def roll_fail_before(self) -> bool:
        """Decide whether this request is answered 500 before processing."""
        if self.settings.fail_before_share > 0 and self.fault_rng.random() < self.settings.fail_before_share:
            self.fault_counts["fail_before"] += 1
            return True
        return False

    def request_delay(self) -> float:
        """Seconds to wait before handling an ``/api`` request: ``latency_ms`` plus a random share of
        ``latency_jitter_ms``."""
        jitter = self.settings.latency_jitter_ms
        extra = self.latency_rng.uniform(0, jitter) if jitter > 0 else 0.0
        return (self.settings.latency_ms + extra) / 1000

    def roll_after_send(self) -> str | None:
        """Decide the fate of a processed send's answer: None (answer it), ``"fail"`` or ``"drop"``."""
        fail, drop = self.settings.fail_after_share, self.settings.drop_after_share
        if fail <= 0 and drop <= 0:
            return None
        roll = self.fault_rng.random()
        if roll < fail:
            self.fault_counts["fail_after"] += 1
            return "fail"
        if roll < fail + drop:
            self.fault_counts["drop_after"] += 1
            return "drop"
        return None

    def stats(self) -> dict[str, Any]:
        """Counters: requests, accepted requests and 429s per endpoint class; per account (key: id;
        ``anon:<address>`` for requests without a valid token) and class the most accepted requests
        in one fixed window and in any sliding window; injected faults; the limits in force."""
        result = self.limiter.stats(self.settings.window_seconds)
        result["faults"] = dict(self.fault_counts)
        result["limits"] = {
            SEND: self.settings.send_limit,
            OTHER: self.settings.read_limit,
            "window_seconds": self.settings.window_seconds,
        }
        return result

    # -- balance and numbers ----------------------------------------------------------------------

    def _roll_day(self, account: Account) -> None:
        today = int(self.clock() // SECONDS_PER_DAY)
        if today != account.usage_day:
            account.usage_day = today
            account.credits_used_today = 0

    def balance(self, account: Account) -> dict[str, Any]:
        """``GET /api/balance`` data.

        :param account: the caller.
        """
        self._roll_day(account)
        return {
            "credits": account.credits,
            "currency": "credits",
            "plan": account.plan,
            "credits_used_today": account.credits_used_today,
        }

    def phone_numbers(self, account: Account) -> list[dict[str, Any]]:
        """``GET /api/phone-numbers`` data.

        :param account: the caller.
        """
        return [item.to_dict() for item in account.numbers]

    # -- sending ----------------------------------------------------------------------------------

    def send(self, account: Account, payload: Any) -> dict[str, Any]:
        """``POST /api/sms/send``: validate, charge per segment (or the MMS cost), store ``queued``.

        :param account: the caller.
        :param payload: the decoded JSON body.
        :return: the message in the reference's send-answer shape.
        """
        data = payload if isinstance(payload, dict) else {}
        errors: dict[str, list[str]] = {}
        sender = _required_string(data, "from", errors)
        recipient = _required_string(data, "to", errors)
        text = _required_string(data, "message", errors)
        media_url = _optional_url(data, "media_url", errors)
        number = None
        if sender is not None:
            number = account.number(sender)
            if not E164.match(sender):
                errors["from"] = ["The from field must be a phone number in E.164 format."]
            elif number is None:
                errors["from"] = ["The from number is not a phone number of your account."]
            elif number.status != "active":
                errors["from"] = ["The from number is not active."]
            elif media_url is not None and "mms" not in number.capabilities:
                errors["media_url"] = ["The from number cannot send MMS."]
            elif "sms" not in number.capabilities:
                errors["from"] = ["The from number cannot send SMS."]
        if recipient is not None and not E164.match(recipient):
            errors["to"] = ["The to field must be a phone number in E.164 format."]
        if text is not None and len(text) > MAX_MESSAGE_LENGTH:
            errors["message"] = [
                f"The message field must not be greater than {MAX_MESSAGE_LENGTH} characters."
            ]
        if errors:
            raise ValidationFailed(errors)
        assert sender is not None
        assert recipient is not None
        assert text is not None
        cost = int(self.settings.mms_cost) if media_url else estimate_segments(text).segments
        self._roll_day(account)
        if account.credits < cost:
            raise ValidationFailed(
                {
                    "credits": [
                        f"Insufficient credits: this message needs {cost} and the balance is "
                        f"{account.credits}."
                    ]
                }
            )
        account.credits -= cost
        account.credits_used_today += cost
        now = self.clock()
        row = account.store.append(
            message_id=self._take_id("message"),
            created=int(now),
            direction=OUTBOUND,
            status=QUEUED,
            credits=cost,
            number=sender,
            contact=recipient,
            body=text,
            origin=ORIGIN_CODES["api"],
            media_url=media_url,
        )
        self.pending[account.id, row] = now
        return account.store.message_dict(row, with_direction=False)

    # -- lifecycle --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Move messages whose delay has passed (auto lifecycle); called a few times a second."""
        if self.settings.lifecycle != LIFECYCLE_AUTO or not (self.pending or self.replies):
            return
        now = self.clock()
        for key, since in list(self.pending.items()):
            self._advance(key, since, now, force=False)
        due = [reply for reply in self.replies if reply[0] <= now]
        if due:
            self.replies = [reply for reply in self.replies if reply[0] > now]
            for reply in due:
                self._deliver_reply(reply)

    def advance_lifecycle(self) -> dict[str, int]:
        """Move every pending message to its final status now, and deliver every pending reply.

        :return: how many messages became ``sent``, ``delivered``, ``failed``, and replies ``received``.
        """
        counts = {"sent": 0, "delivered": 0, "failed": 0, "received": 0}
        now = self.clock()
        for key, since in list(self.pending.items()):
            for status in self._advance(key, since, now, force=True):
                counts[status] += 1
        replies, self.replies = self.replies, []
        for reply in replies:
            self._deliver_reply(reply)
            counts["received"] += 1
        return counts

    def _advance(self, key: tuple[int, int], since: float, now: float, *, force: bool) -> list[str]:
        account_id, row = key
        account = self.accounts.get(account_id)
        if account is None:
            self.pending.pop(key, None)
            return []
        store = account.store
        changed: list[str] = []
        if store.status[row] == QUEUED and (force or now - since >= self.settings.sent_delay):
            store.set_status(row, SENT)
            since = now if force else since + self.settings.sent_delay
            self.pending[key] = since
            changed.append("sent")
        if store.status[row] == SENT and (force or now - since >= self.settings.final_delay):
            del self.pending[key]
            changed.append(self._finish(account, row, now, immediate=force))
        return changed

    def _finish(self, account: Account, row: int, now: float, *, immediate: bool) -> str:
        store = account.store
        contact = store.numbers[store.contact[row]]
        failed = contact in account.opted_out or self.lifecycle_rng.random() < self.settings.failure_share
        store.set_status(row, FAILED if failed else DELIVERED)
        self._emit(account, "message.failed" if failed else "message.delivered", row)
        if failed:
            return "failed"
        roll = self.lifecycle_rng.random()
        reply = None
        if roll < self.settings.stop_share:
            reply = "STOP"
        elif roll < self.settings.stop_share + self.settings.reply_share:
            reply = self.lifecycle_rng.choice([text for text in self._inbound_texts if text != "STOP"])
        if reply is not None:
            due = now if immediate else now + self.settings.reply_delay
            self.replies.append((due, account.id, store.numbers[store.number[row]], contact, reply))
        return "delivered"

    def _deliver_reply(self, reply: tuple[float, int, str, str, str]) -> None:
        _, account_id, number, contact, body = reply
        account = self.accounts.get(account_id)
        if account is not None:
            self.receive(account, contact, number, body, origin="reply")

    # -- inbound ----------------------------------------------------------------------------------

    def receive(
        self, account: Account, from_number: Any, to_number: Any, body: Any, *, origin: str = "admin"
    ) -> dict[str, Any]:
        """Store an inbound message (a reply from ``from_number`` to the account's ``to_number``),
        apply STOP / START keywords and send ``message.received`` webhooks.

        :param account: the receiving account.
        :param from_number: the contact's E.164 number.
        :param to_number: one of the account's numbers.
        :param body: the text.
        :param origin: ``admin`` or ``reply`` (shown by the inspection API).
        :return: the message as ``GET /api/messages`` shows it.
        """
        errors: dict[str, list[str]] = {}
        data = {"from": from_number, "to": to_number, "body": body}
        sender = _required_string(data, "from", errors)
        recipient = _required_string(data, "to", errors)
        text = _required_string(data, "body", errors)
        if sender is not None and not E164.match(sender):
            errors["from"] = ["The from field must be a phone number in E.164 format."]
        if recipient is not None and account.number(recipient) is None:
            errors["to"] = ["The to number is not a phone number of the account."]
        if errors:
            raise ValidationFailed(errors)
        assert sender is not None
        assert recipient is not None
        assert text is not None
        row = account.store.append(
            message_id=self._take_id("message"),
            created=int(self.clock()),
            direction=INBOUND,
            status=RECEIVED,
            credits=0,
            number=recipient,
            contact=sender,
            body=text,
            origin=ORIGIN_CODES[origin],
        )
        keyword = text.strip().upper()
        if keyword in STOP_WORDS:
            account.opted_out.add(sender)
        elif keyword in START_WORDS:
            account.opted_out.discard(sender)
        self._emit(account, "message.received", row)
        return account.store.message_dict(row)

    # -- webhooks ---------------------------------------------------------------------------------

    def _emit(self, account: Account, event: str, row: int) -> None:
        hooks = [
            hook
            for hook in self.webhooks.values()
            if hook.account_id == account.id and hook.active and event in hook.events
        ]
        if hooks:
            message = account.store.message_dict(row)
            for hook in hooks:
                self.dispatcher.submit(hook.id, hook.url, event, message)

    def create_webhook(self, account: Account, payload: Any) -> dict[str, Any]:
        """``POST /api/webhooks``: an HTTPS URL (http too with ``allow_http_webhooks``) and events.

        :param account: the caller.
        :param payload: the decoded JSON body.
        """
        data = payload if isinstance(payload, dict) else {}
        errors: dict[str, list[str]] = {}
        url = _required_string(data, "url", errors)
        if url is not None:
            parts = urlsplit(url)
            schemes = ("https", "http") if self.settings.allow_http_webhooks else ("https",)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors["url"] = ["The url field must be a valid URL."]
            elif parts.scheme not in schemes:
                errors["url"] = ["The url field must start with one of the following: https://."]
        events = data.get("events")
        if events is None or events == [] or events == "":
            errors["events"] = ["The events field is required."]
        elif not isinstance(events, list):
            errors["events"] = ["The events field must be an array."]
        else:
            for position, event in enumerate(events):
                if event not in EVENTS:
                    errors[f"events.{position}"] = [f"The selected events.{position} is invalid."]
        if errors:
            raise ValidationFailed(errors)
        assert url is not None
        assert isinstance(events, list)
        hook = Webhook(
            id=self._take_id("webhook"),
            account_id=account.id,
            url=url,
            events=list(dict.fromkeys(events)),
            created_at=self.clock(),
        )
        self.webhooks[hook.id] = hook
        return hook.to_dict()

    def list_webhooks(self, account: Account) -> list[dict[str, Any]]:
        """``GET /api/webhooks`` data, oldest first.

        :param account: the caller.
        """
        return [hook.to_dict() for hook in self.webhooks.values() if hook.account_id == account.id]

    def delete_webhook(self, account: Account, webhook_id: str) -> None:
        """``DELETE /api/webhooks/{id}``: 404 when unknown, 403 when another account's.

        :param account: the caller.
        :param webhook_id: the id from the path.
        """
        hook = self.webhooks.get(int(webhook_id)) if webhook_id.isdigit() else None
        if hook is None:
            raise EmulatorHTTPError(404, "Webhook not found.")
        if hook.account_id != account.id:
            raise EmulatorHTTPError(403, "This action is unauthorized.")
        del self.webhooks[hook.id]

    # -- lists ------------------------------------------------------------------------------------

    def list_messages(
        self,
        account: Account,
        *,
        page: int,
        per_page: int,
        status: str | None = None,
        direction: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """``GET /api/messages``: newest first (created_at, then id, descending).

        :param account: the caller.
        :param page: 1-based page.
        :param per_page: rows per page.
        :param status: status filter.
        :param direction: direction filter.
        :param start: created_at lower bound, included (epoch seconds).
        :param end: created_at upper bound, excluded (epoch seconds).
        :return: ``(data, meta)``.
        """
        if self.settings.live_traffic_per_list:
            self.add_live_traffic(account, int(self.settings.live_traffic_per_list))
        store = account.store
        index, lo, hi = store.select(
            status=None if status is None else STATUS_CODES[status],
            direction=None if direction is None else DIRECTION_CODES[direction],
            start=None if start is None else math.ceil(start),
            end=None if end is None else math.ceil(end),
        )
        rows = store.newest_first(index, lo, hi, (page - 1) * per_page, per_page)
        return [store.message_dict(row) for row in rows], _meta(page, per_page, hi - lo)

    def list_conversations(
        self, account: Account, *, page: int, per_page: int
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """``GET /api/conversations``: newest last message first.

        :param account: the caller.
        :param page: 1-based page.
        :param per_page: rows per page.
        """
        store = account.store
        ordered = store.conversations_newest_first()
        chosen = ordered[(page - 1) * per_page : page * per_page]
        return [store.conversation_dict(item) for item in chosen], _meta(page, per_page, len(ordered))

    # -- history and traffic ----------------------------------------------------------------------

    def _contact_pool(self, size: int) -> list[str]:
        return _CONTACTS[:size]

    def add_live_traffic(self, account: Account, count: int) -> None:
        """Add ``count`` new messages (created now) as if other traffic happened; no webhooks.

        :param account: the account.
        :param count: number of messages.
        """
        rng = self.traffic_rng
        numbers = [item.number for item in account.numbers if item.status == "active"] or [
            account.numbers[0].number
        ]
        contacts = self._contact_pool(2000)
        now = int(self.clock())
        for _ in range(count):
            inbound = rng.random() < 0.3
            text = rng.choice(self._inbound_texts if inbound else self._outbound_texts)
            account.store.append(
                message_id=self._take_id("message"),
                created=now,
                direction=INBOUND if inbound else OUTBOUND,
                status=RECEIVED if inbound else DELIVERED,
                credits=0 if inbound else estimate_segments(text).segments,
                number=rng.choice(numbers),
                contact=rng.choice(contacts),
                body=text,
                origin=ORIGIN_CODES["live"],
            )

    def seed(
        self,
        account_id: int,
        count: int,
        *,
        random_seed: int = 0,
        start: float | None = None,
        end: float | None = None,
    ) -> dict[str, Any]:
        """Add ``count`` messages of history spread uniformly over ``[start, end)``.

        About 75 % outbound (93 % delivered, 5 % failed, the rest sent or queued) and 25 % inbound
        replies, between the account's numbers and 2,000 fictional contacts, with a mix of short,
        multi-part and UCS-2 texts charged per segment. Ids follow created_at. No webhooks, no
        credits deducted, no STOP processing.

        :param account_id: account id.
        :param count: number of messages.
        :param random_seed: seed of the generated history (same seed, same history).
        :param start: first moment (epoch seconds); default 90 days before ``end``.
        :param end: end of the span (epoch seconds, excluded); default now.
        :return: ``{"seeded": count, "seconds": elapsed}``.
        """
        import numpy as np

        began = time.perf_counter()
        account = self.account(account_id)
        if count < 0:
            raise ValidationFailed({"n": ["The n field must be at least 0."]})
        end = float(self.clock() if end is None else end)
        start = float(end - 90 * SECONDS_PER_DAY if start is None else start)
        if start >= end:
            raise ValidationFailed({"end": ["The end field must be a date after start."]})
        rng = np.random.default_rng(random_seed)
        numbers = [item.number for item in account.numbers if "sms" in item.capabilities] or [
            account.numbers[0].number
        ]
        number_codes = np.array([self.numbers.code(value) for value in numbers], dtype=np.int32)
        contact_codes = np.array(
            [self.numbers.code(value) for value in self._contact_pool(2000)], dtype=np.int32
        )
        outbound_codes = np.array([self.bodies.code(text) for text in self._outbound_texts], dtype=np.int32)
        outbound_credits = np.array(
            [estimate_segments(text).segments for text in self._outbound_texts], dtype=np.int32
        )
        inbound_codes = np.array([self.bodies.code(text) for text in self._inbound_texts], dtype=np.int32)

        created = np.sort(rng.integers(math.ceil(start), math.ceil(end), size=count, dtype=np.int64))
        inbound = rng.random(count) < 0.25
        direction = inbound.astype(np.int8)
        body_pick = rng.integers(0, len(outbound_codes), size=count)
        body = np.where(inbound, inbound_codes[rng.integers(0, len(inbound_codes), size=count)],
                        outbound_codes[body_pick])  # fmt: skip
        credits = np.where(inbound, 0, outbound_credits[body_pick])
        outcome = rng.choice(
            np.array([DELIVERED, FAILED, SENT, QUEUED], dtype=np.int8),
            size=count,
            p=[0.93, 0.05, 0.015, 0.005],
        )
        status = np.where(inbound, np.int8(RECEIVED), outcome).astype(np.int8)
        first_id = self._take_id("message", count)
        account.store.extend(
            ids=np.arange(first_id, first_id + count, dtype=np.int64),
            created=created,
            direction=direction,
            status=status,
            credits=credits,
            number=number_codes[rng.integers(0, len(number_codes), size=count)],
            contact=contact_codes[rng.integers(0, len(contact_codes), size=count)],
            body=body,
            origin=ORIGIN_CODES["seed"],
        )
        elapsed = time.perf_counter() - began
        log.info("Seeded %d messages into account %d in %.2f s", count, account.id, elapsed)
        return {"seeded": count, "seconds": round(elapsed, 3)}

    # -- inspection -------------------------------------------------------------------------------

    def inspect_messages(
        self, account: Account, *, origins: Iterable[str] | None = None, direction: str | None = None
    ) -> list[dict[str, Any]]:
        """Messages in creation order with ``media_url`` and ``origin`` added.

        :param account: the account.
        :param origins: keep only these origins (``api``, ``seed``, ``live``, ``reply``, ``admin``).
        :param direction: keep only ``outbound`` or ``inbound``.
        """
        store = account.store
        rows = store.rows_in_insertion_order(
            origins=None if origins is None else [ORIGIN_CODES[name] for name in origins],
            direction=None if direction is None else DIRECTION_CODES[direction],
        )
        result = []
        for row in rows:
            item = store.message_dict(row)
            item["media_url"] = store.media.get(row)
            item["origin"] = ORIGINS[store.origin[row]]
            result.append(item)
        return result


def _setting_problem(name: str, value: Any, current: Any) -> str | None:
    """What is wrong with a new value of a setting (judged by its meaning and its current value's
    type), or None."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "lifecycle":
        return None if value in (LIFECYCLE_AUTO, LIFECYCLE_MANUAL) else "The selected lifecycle is invalid."
    if name == "random_seed":
        valid = value is None or (isinstance(value, int) and not isinstance(value, bool))
        return None if valid else "The random_seed setting must be an integer or null."
    if isinstance(current, bool):
        return None if isinstance(value, bool) else f"The {name} setting must be true or false."
    if isinstance(current, str):
        return None if isinstance(value, str) and value else f"The {name} setting must be a string."
    if not is_number:
        return f"The {name} setting must be a number."
    if name.endswith("_share") and not 0 <= value <= 1:
        return f"The {name} setting must be between 0 and 1."
    if name in ("send_limit", "read_limit", "window_seconds") and value <= 0:
        return f"The {name} setting must be a positive number."
    if value < 0:
        return f"The {name} setting must not be negative."
    return None


def _meta(page: int, per_page: int, total: int) -> dict[str, int]:
    """Pagination ``meta`` exactly as the reference (Laravel's length-aware paginator)."""
    return {
        "current_page": page,
        "last_page": max(1, math.ceil(total / per_page)),
        "per_page": per_page,
        "total": total,
    }


def _required_string(data: dict[str, Any], name: str, errors: dict[str, list[str]]) -> str | None:
    """Laravel's ``required|string``: a missing, null or blank value is 'required'."""
    label = name.replace("_", " ")
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[name] = [f"The {label} field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = [f"The {label} field must be a string."]
        return None
    return value


def _optional_url(data: dict[str, Any], name: str, errors: dict[str, list[str]]) -> str | None:
    """Laravel's ``nullable|url`` limited to http(s)."""
    value = data.get(name)
    if value is None or value == "":
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        errors[name] = [f"The {name.replace('_', ' ')} field must be a valid URL."]
        return None
    return value


def parse_moment(value: str | float | datetime | None) -> float | None:
    """Epoch seconds from an ISO 8601 string (``Z`` or an offset; naive means UTC; a bare date is
    midnight), a number, or a datetime; None when it cannot be read.

    :param value: the value to read.
    """
    from datetime import datetime, timezone

    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        # An unencoded "+" in a query string arrives as a space: "...T12:00:00 00:00".
        text = re.sub(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", text)
        # Python 3.10's fromisoformat wants exactly 3 or 6 digits of fraction.
        text = re.sub(r"(T\d{2}:\d{2}:\d{2})\.(\d+)", lambda m: f"{m[1]}.{(m[2] + '000000')[:6]}", text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
