"""The emulated SMS Nexus service, without HTTP: :class:`Emulator` puts together the parts, each in
its own module (accounts and numbers, sending and validation, the message lifecycle, the paged
lists and their drift switches, seeded history and live traffic, webhooks, faults and rate limits)
and owns what spans them: start-up and reset, run-time settings and the inspection view of messages.

Every method is called from the server's event loop thread, one at a time, so there is no locking.
Validation follows the reference and Laravel's wording; a failure raises :class:`ValidationFailed`
and changes nothing. The names other modules import from here stay importable from here.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.accounts import DEFAULT_NUMBERS, Account, AccountsMixin, PhoneNumber
from airflow_provider_smsnexus.emulator.core import (
    ID_EPOCH,
    IDS_PER_SECOND,
    SECONDS_PER_DAY,
    time_based_id_base,
)
from airflow_provider_smsnexus.emulator.faults import DRIFT_COUNTERS, FAULT_COUNTERS, FaultsMixin
from airflow_provider_smsnexus.emulator.lifecycle import NEXT_STATUS, LifecycleMixin
from airflow_provider_smsnexus.emulator.listing import ListingMixin, page_meta
from airflow_provider_smsnexus.emulator.ratelimit import FixedWindowLimiter
from airflow_provider_smsnexus.emulator.sending import START_WORDS, STOP_WORDS, SendingMixin
from airflow_provider_smsnexus.emulator.settings import LIFECYCLE_AUTO, EmulatorSettings
from airflow_provider_smsnexus.emulator.store import DIRECTION_CODES, ORIGIN_CODES, ORIGINS, StringTable
from airflow_provider_smsnexus.emulator.subscriptions import SubscriptionsMixin, Webhook
from airflow_provider_smsnexus.emulator.traffic import CONTACT_AREA_CODES, TrafficMixin, seed_bodies
from airflow_provider_smsnexus.emulator.validation import (
    E164,
    MAX_MESSAGE_LENGTH,
    EmulatorHTTPError,
    ValidationFailed,
    parse_moment,
)
from airflow_provider_smsnexus.emulator.webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "CONTACT_AREA_CODES",
    "DEFAULT_NUMBERS",
    "DRIFT_COUNTERS",
    "E164",
    "FAULT_COUNTERS",
    "IDS_PER_SECOND",
    "ID_EPOCH",
    "MAX_MESSAGE_LENGTH",
    "NEXT_STATUS",
    "SECONDS_PER_DAY",
    "START_WORDS",
    "STOP_WORDS",
    "Account",
    "Emulator",
    "EmulatorHTTPError",
    "PhoneNumber",
    "ValidationFailed",
    "Webhook",
    "page_meta",
    "parse_moment",
    "time_based_id_base",
]


class Emulator(
    AccountsMixin,
    SendingMixin,
    LifecycleMixin,
    ListingMixin,
    TrafficMixin,
    SubscriptionsMixin,
    FaultsMixin,
):
    """The whole emulated service: accounts, limits, faults, lifecycle, webhooks.

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
        self.clock = clock
        self.limiter = FixedWindowLimiter()
        #: This run's name, sent with every answer: a client's record of another run (a send ledger) then
        #: never answers for this one, whose messages are new.
        self.run_id = secrets.token_hex(8)
        self.reset()

    def reset(self) -> None:
        """Return to the start-up settings: fresh accounts, no messages (unless seeding is set),
        no webhooks, counters cleared, pending webhook deliveries dropped. Message, conversation and
        webhook ids go on from a time-based base (see :func:`time_based_id_base`), never back."""
        self.settings = self.initial_settings.copy()
        self.numbers = StringTable()
        self.bodies = StringTable()
        self.accounts: dict[int, Account] = {}
        self._by_token: dict[str, Account] = {}
        self.webhooks: dict[int, Webhook] = {}
        self._reset_ids()
        self.pending: dict[tuple[int, int], float] = {}
        self.replies: list[tuple[float, int, str, str, str]] = []
        self.fault_counts = dict.fromkeys(FAULT_COUNTERS, 0)
        self.drift_counts = dict.fromkeys(DRIFT_COUNTERS, 0)
        self.limiter.clear()
        self.dispatcher.clear()
        self._seed_random(self.settings.random_seed)
        self._outbound_texts, self._inbound_texts = seed_bodies(random.Random(0))
        for token in self.settings.tokens:
            self.add_account(token)
        if self.settings.seed_messages:
            self.seed(1, self.settings.seed_messages, random_seed=self.settings.random_seed or 0)

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
            now = self.clock()
            self.pending = {key: max(since, now) for key, since in self.pending.items()}
        self.settings = self.settings.copy(**changes)
        if "random_seed" in changes:
            self._seed_random(changes["random_seed"])
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
