"""Run-time settings of the SMS Nexus emulator: limits, faults, lifecycle and accounts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: The token of the default account when none is given (recognisable in tests and logs of tests).
DEFAULT_TOKEN = "SMSNEXUS-TEST-TOKEN-default"

#: Limits used by the test fixture: high enough that no test meets them unless it sets its own.
LIFTED_LIMIT = 1_000_000

LIFECYCLE_MANUAL = "manual"
LIFECYCLE_AUTO = "auto"


@dataclass
class EmulatorSettings:
    """Everything that shapes the emulator's behaviour; a reset returns to the settings it started with.

    :param tokens: API tokens; each one is its own account (the first is account 1).
    :param initial_credits: credits of each account after start or reset.
    :param plan: plan name reported by ``/api/balance``.
    :param send_limit: accepted ``POST /api/sms/send`` per account and window (reference: 30).
    :param read_limit: accepted other ``/api`` requests per account and window (reference: 60).
    :param window_seconds: length of the fixed rate-limit window in seconds (reference: 60).
    :param fail_before_share: share (0..1) of ``/api`` requests answered 500 before any processing.
    :param fail_after_share: share of sends that are processed (message created, credits charged)
        and then answered 500.
    :param drop_after_share: share of sends that are processed and then see their connection closed
        without any answer.
    :param latency_ms: delay added before every ``/api`` answer, in milliseconds.
    :param latency_jitter_ms: a random extra delay of 0 to this many milliseconds on top of
        ``latency_ms``, drawn anew for every ``/api`` request.
    :param send_hold_ms: delay between processing a send (message stored, credits charged) and
        writing its answer: a client killed during it dies after the server acted and before it
        heard (and recorded) the answer.
    :param live_traffic_per_list: messages added to the account on each ``GET /api/messages``,
        as if other traffic arrived while a client pages through the list.
    :param lifecycle: ``"auto"`` (messages move on after the delays below) or ``"manual"``
        (they stay queued until the inspection API advances them).
    :param sent_delay: seconds from ``queued`` to ``sent`` (auto lifecycle).
    :param final_delay: seconds from ``sent`` to ``delivered`` / ``failed`` (auto lifecycle).
    :param failure_share: share of outbound messages that end ``failed``.
    :param reply_share: share of delivered messages whose recipient replies with a text.
    :param stop_share: share of delivered messages whose recipient replies ``STOP``.
    :param reply_delay: seconds from delivery to the reply (auto lifecycle).
    :param mms_cost: credits charged for a message with ``media_url``, whatever its length.
    :param allow_http_webhooks: accept ``http://`` webhook URLs (local development); else HTTPS only.
    :param random_seed: seed of the random choices (faults, lifecycle, live traffic); None for fresh.
    :param seed_messages: messages of history seeded into account 1 at start and after each reset.
    """

    tokens: list[str] = field(default_factory=lambda: [DEFAULT_TOKEN])
    initial_credits: int = 10000
    plan: str = "Professional"
    send_limit: int = 30
    read_limit: int = 60
    window_seconds: float = 60.0
    fail_before_share: float = 0.0
    fail_after_share: float = 0.0
    drop_after_share: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    send_hold_ms: float = 0.0
    live_traffic_per_list: int = 0
    lifecycle: str = LIFECYCLE_AUTO
    sent_delay: float = 1.0
    final_delay: float = 2.0
    failure_share: float = 0.05
    reply_share: float = 0.05
    stop_share: float = 0.02
    reply_delay: float = 2.0
    mms_cost: int = 3
    allow_http_webhooks: bool = False
    random_seed: int | None = None
    seed_messages: int = 0

    @classmethod
    def for_tests(cls, **overrides: Any) -> EmulatorSettings:
        """Settings for the pytest fixture: limits lifted, manual lifecycle, no random outcomes.

        :param overrides: fields to change from those test defaults.
        """
        base: dict[str, Any] = {
            "send_limit": LIFTED_LIMIT,
            "read_limit": LIFTED_LIMIT,
            "lifecycle": LIFECYCLE_MANUAL,
            "failure_share": 0.0,
            "reply_share": 0.0,
            "stop_share": 0.0,
            "random_seed": 0,
        }
        base.update(overrides)
        return cls(**base)

    def copy(self, **changes: Any) -> EmulatorSettings:
        """Return a copy with ``changes`` applied (list fields are copied too).

        :param changes: fields to change.
        """
        values = dataclasses.asdict(self)
        values.update(changes)
        return EmulatorSettings(**values)

    def public_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values, without the tokens (they are secrets)."""
        values = dataclasses.asdict(self)
        values.pop("tokens")
        values["accounts"] = len(self.tokens)
        return values

    @classmethod
    def runtime_fields(cls) -> frozenset[str]:
        """Names of the fields the inspection API may change while running."""
        return frozenset(f.name for f in dataclasses.fields(cls)) - {"tokens", "seed_messages"}
