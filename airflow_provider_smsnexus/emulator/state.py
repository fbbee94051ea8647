"""The emulated SMS Nexus service, without HTTP: :class:`Emulator`, the one object the HTTP layer and
tests talk to. It owns what spans the parts — start-up and reset, run-time settings, the inspection view
of messages — and composes the parts, each a class of its own module given only the shared pieces it
uses (:mod:`.core`): the accounts (:mod:`.accounts`), sending (:mod:`.sending`), texts from contacts
(:mod:`~airflow_provider_smsnexus.emulator.inbound`), the message lifecycle (:mod:`.lifecycle`), the
paged lists and their drift switches (:mod:`.listing`), seeded history and live traffic
(:mod:`.traffic`), webhooks (:mod:`.subscriptions`), and faults and rate limits (:mod:`.faults`).
Each operation below is one part's, passed on.

Every method is called from the server's event loop thread, one at a time, so there is no locking.
Validation follows the reference and Laravel's wording; a failure raises
:class:`~.validation.ValidationFailed` and changes nothing.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_smsnexus.emulator.accounts import AccountBook
from airflow_provider_smsnexus.emulator.core import Dice, IdCounters, ServerClock, SettingsInForce
from airflow_provider_smsnexus.emulator.faults import DRIFT_COUNTERS, Faults
from airflow_provider_smsnexus.emulator.inbound import InboundTexts
from airflow_provider_smsnexus.emulator.lifecycle import Lifecycle
from airflow_provider_smsnexus.emulator.listing import Listing
from airflow_provider_smsnexus.emulator.ratelimit import FixedWindowLimiter
from airflow_provider_smsnexus.emulator.sending import Sending
from airflow_provider_smsnexus.emulator.settings import LIFECYCLE_AUTO, EmulatorSettings
from airflow_provider_smsnexus.emulator.store import DIRECTION_CODES, ORIGIN_CODES, ORIGINS
from airflow_provider_smsnexus.emulator.subscriptions import WebhookRegistry
from airflow_provider_smsnexus.emulator.traffic import Traffic, seed_bodies
from airflow_provider_smsnexus.emulator.validation import ValidationFailed
from airflow_provider_smsnexus.emulator.webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.ratelimit import RateDecision

__all__ = ["Emulator"]

T = TypeVar("T")


class Emulator:
    """The whole emulated service: accounts, limits, faults, lifecycle, webhooks.

    Its parts, made anew by every :meth:`reset`: ``account_book`` (:class:`~.accounts.AccountBook`),
    ``webhook_registry`` (:class:`~.subscriptions.WebhookRegistry`), ``inbound``
    (:class:`~.inbound.InboundTexts`), ``lifecycle`` (:class:`~.lifecycle.Lifecycle`), ``sending``
    (:class:`~.sending.Sending`), ``traffic`` (:class:`~.traffic.Traffic`), ``listing``
    (:class:`~.listing.Listing`) and ``faults`` (:class:`~.faults.Faults`).

    :param settings: start-up settings; :meth:`reset` returns to them.
    :param dispatcher: webhook sender; a new one when None.
    :param clock: returns the machine's current epoch seconds (tests of the state may pass their own);
        the server's clock is this plus ``clock_offset_seconds``.
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        dispatcher: WebhookDispatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.initial_settings = (settings or EmulatorSettings()).copy()
        self.dispatcher = dispatcher or WebhookDispatcher()
        self._settings = SettingsInForce(self.initial_settings.copy())
        self.clock = ServerClock(self._settings, clock)
        # What outlives a reset: ids never go back, and the limiter and dispatcher are cleared in place.
        self._ids = IdCounters(self._settings, self.clock)
        self._dice = Dice(self._settings.current.random_seed)
        self._limiter = FixedWindowLimiter()
        # The texts of made-up traffic: the same every run (their own seed), so one list serves all resets.
        self._outbound_texts, self._inbound_texts = seed_bodies(random.Random(0))
        #: This run's name, sent with every answer: a client's record of another run (a send ledger) then
        #: never answers for this one, whose messages are new.
        self.run_id = secrets.token_hex(8)
        self.reset()

    def reset(self) -> None:
        """Return to the start-up settings: fresh accounts, no messages (unless seeding is set),
        no webhooks, counters cleared, pending webhook deliveries dropped. Message, conversation and
        webhook ids go on from a time-based base (see :func:`~.core.time_based_id_base`), never back."""
        self._settings.current = settings = self.initial_settings.copy()
        self._ids.restart()
        self._limiter.clear()
        self.dispatcher.clear()
        self._dice.reseed(settings.random_seed)
        self._build_parts()
        for token in settings.tokens:
            self.add_account(token)
        if settings.seed_messages:
            self.seed(1, settings.seed_messages, random_seed=settings.random_seed or 0)

    def _build_parts(self) -> None:
        """New parts, holding no accounts, messages, webhooks or counts, over the shared pieces."""
        settings, clock, ids, dice = self._settings, self.clock, self._ids, self._dice
        drift_counts = dict.fromkeys(DRIFT_COUNTERS, 0)  # the lists and the maintenance page both count
        replies = [text for text in self._inbound_texts if text != "STOP"]
        self.account_book = AccountBook(settings, clock, ids)
        self.webhook_registry = WebhookRegistry(settings, clock, ids, self.dispatcher)
        self.inbound = InboundTexts(clock, ids, self.webhook_registry)
        self.lifecycle = Lifecycle(
            settings, clock, dice.lifecycle, self.account_book, self.webhook_registry, self.inbound, replies
        )
        self.sending = Sending(settings, clock, ids, self.lifecycle)
        self.traffic = Traffic(
            clock, ids, self.account_book, dice.traffic, dice.drift, self._outbound_texts, self._inbound_texts
        )
        self.listing = Listing(settings, clock, ids, dice.drift, drift_counts, self.traffic, self.lifecycle)
        self.faults = Faults(settings, clock, self._limiter, dice.faults, dice.latency, drift_counts)

    @property
    def settings(self) -> EmulatorSettings:
        """The settings in force (replaced whole by :meth:`configure` and :meth:`reset`)."""
        return self._settings.current

    @property
    def accounts(self) -> dict[int, Account]:
        """Every account by id, in creation order."""
        return self.account_book.by_id

    @property
    def pending(self) -> dict[tuple[int, int], float]:
        """(account id, row) of each message not final yet -> machine time its current status began."""
        return self.lifecycle.pending

    def server_now(self) -> float:
        """The server's clock: the machine's clock moved by ``clock_offset_seconds``."""
        return self.clock.now()

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change run-time settings (limits, faults, drift switches, lifecycle, ...); unknown names
        and bad values are a 422 and change nothing.

        :param changes: setting name -> new value (see :class:`EmulatorSettings`).
        :return: the settings now in force, without tokens.
        """
        allowed = EmulatorSettings.runtime_fields()
        errors: dict[str, list[str]] = {}
        for name, value in changes.items():
            if name not in allowed:
                errors[name] = [f"The {name} setting does not exist."]
                continue
            problem = self.settings.problem(name, value)
            if problem:
                errors[name] = [problem]
        if errors:
            raise ValidationFailed(errors)
        if "lifecycle" in changes and changes["lifecycle"] == LIFECYCLE_AUTO:
            self.lifecycle.resume_auto()
        self._settings.current = self.settings.copy(**changes)
        if "random_seed" in changes:
            self._dice.reseed(changes["random_seed"])
        return self.settings.public_dict()

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

    # -- the parts' operations, as the routes and tests call them ---------------------------------------

    def add_account(self, token: str, **options: Any) -> Account:
        """Create an account for ``token``; ``options`` (``credits``, ``plan``, ``numbers``, ``suspended``) as
        :meth:`.AccountBook.add_account` takes them."""
        return self.account_book.add_account(token, **options)

    def account(self, account_id: int) -> Account:
        """The account with ``account_id``; a 404 when there is none (:meth:`.AccountBook.account`)."""
        return self.account_book.account(account_id)

    def account_at(self, account_id: str) -> Account:
        """The account a URL path segment names (:meth:`.AccountBook.account_at`)."""
        return self.account_book.account_at(account_id)

    def update_account(self, account_id: int, changes: dict[str, Any]) -> Account:
        """Change an account's fields (:meth:`.AccountBook.update_account`)."""
        return self.account_book.update_account(account_id, changes)

    def authenticate(self, token: str | None) -> Account | None:
        """The account of a Bearer token, or None (:meth:`.AccountBook.authenticate`)."""
        return self.account_book.authenticate(token)

    def balance(self, account: Account) -> dict[str, Any]:
        """``GET /api/balance`` data (:meth:`.AccountBook.balance`)."""
        return self.account_book.balance(account)

    def phone_numbers(self, account: Account) -> list[dict[str, Any]]:
        """``GET /api/phone-numbers`` data (:meth:`.AccountBook.phone_numbers`)."""
        return self.account_book.phone_numbers(account)

    def send(self, account: Account, payload: Any) -> dict[str, Any]:
        """``POST /api/sms/send`` (:meth:`.Sending.send`)."""
        return self.sending.send(account, payload)

    def receive(
        self, account: Account, from_number: Any, to_number: Any, body: Any, *, origin: str = "admin"
    ) -> dict[str, Any]:
        """Store a contact's text to the account (:meth:`.InboundTexts.receive`)."""
        return self.inbound.receive(account, from_number, to_number, body, origin=origin)

    def tick(self) -> None:
        """Move messages whose delay has passed (:meth:`.Lifecycle.tick`)."""
        self.lifecycle.tick()

    def advance_lifecycle(self) -> dict[str, int]:
        """Move every pending message on and deliver every reply now (:meth:`.Lifecycle.advance_lifecycle`)."""
        return self.lifecycle.advance_lifecycle()

    def move_status_on(self, account: Account, row: int) -> bool:
        """Give a message its next status now (:meth:`.Lifecycle.move_status_on`)."""
        return self.lifecycle.move_status_on(account, row)

    def message_page(self, account: Account, render: Callable[..., T], **query: Any) -> T:
        """``GET /api/messages``; ``query`` (``page``, ``per_page``, ``status``, ``direction``, ``start``,
        ``end``) as :meth:`.Listing.message_page` takes it."""
        return self.listing.message_page(account, render, **query)

    def list_conversations(
        self, account: Account, *, page: int, per_page: int
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """``GET /api/conversations`` (:meth:`.Listing.list_conversations`)."""
        return self.listing.list_conversations(account, page=page, per_page=per_page)

    def add_live_traffic(self, account: Account, count: int) -> None:
        """Add ``count`` messages created now (:meth:`.Traffic.add_live_traffic`)."""
        self.traffic.add_live_traffic(account, count)

    def seed(self, account_id: int, count: int, **options: Any) -> dict[str, Any]:
        """Add ``count`` messages of history to an account; ``options`` (``random_seed``, ``start``, ``end``)
        as :meth:`.Traffic.seed` takes them."""
        return self.traffic.seed(account_id, count, **options)

    def create_webhook(self, account: Account, payload: Any) -> dict[str, Any]:
        """``POST /api/webhooks`` (:meth:`.WebhookRegistry.create_webhook`)."""
        return self.webhook_registry.create_webhook(account, payload)

    def list_webhooks(self, account: Account) -> list[dict[str, Any]]:
        """``GET /api/webhooks`` data (:meth:`.WebhookRegistry.list_webhooks`)."""
        return self.webhook_registry.list_webhooks(account)

    def delete_webhook(self, account: Account, webhook_id: str) -> None:
        """``DELETE /api/webhooks/{id}`` (:meth:`.WebhookRegistry.delete_webhook`)."""
        self.webhook_registry.delete_webhook(account, webhook_id)

    def rate_limit(self, bucket: Any, endpoint_class: str) -> RateDecision:
        """Count a request and decide on it (:meth:`.Faults.rate_limit`)."""
        return self.faults.rate_limit(bucket, endpoint_class)

    def in_maintenance(self) -> bool:
        """Whether this ``/api`` request gets the maintenance page (:meth:`.Faults.in_maintenance`)."""
        return self.faults.in_maintenance()

    def roll_fail_before(self) -> int | None:
        """The status of a failure before processing, or None (:meth:`.Faults.roll_fail_before`)."""
        return self.faults.roll_fail_before()

    def request_delay(self) -> float:
        """Seconds to wait before handling an ``/api`` request (:meth:`.Faults.request_delay`)."""
        return self.faults.request_delay()

    def roll_after_send(self) -> str | None:
        """The fate of a processed send's answer (:meth:`.Faults.roll_after_send`)."""
        return self.faults.roll_after_send()

    def stats(self) -> dict[str, Any]:
        """The counters of requests, faults and drift, and the limits (:meth:`.Faults.stats`)."""
        return self.faults.stats()
