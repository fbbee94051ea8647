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

NEWEST_FIRST = "newest_first"
OLDEST_FIRST = "oldest_first"


@dataclass
class EmulatorSettings:
    """Everything that shapes the emulator's behaviour; a reset returns to the settings it started with.

    :param tokens: API tokens; each one is its own account (the first is account 1).
    :param initial_credits: credits of each account after start or reset.
    :param plan: plan name reported by ``/api/balance``.
    :param send_limit: accepted ``POST /api/sms/send`` per account and window (reference: 30).
    :param read_limit: accepted other ``/api`` requests per account and window (reference: 60).
    :param window_seconds: length of the fixed rate-limit window in seconds (reference: 60).
    :param fail_before_share: share (0..1) of ``/api`` requests answered with ``fail_before_status``
        before any processing (nothing is stored or charged).
    :param fail_before_status: the status of those answers: 500 (the API's JSON ``Server Error``) or
        any other 4xx/5xx, e.g. 502 or 503, answered with a gateway's HTML page, as a proxy in front
        of the API would.
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
    :param maintenance_page: every ``/api`` request is answered 200 with an HTML maintenance page
        (``Content-Type: text/html``) instead of JSON, before authentication and rate limiting.

    The switches below break what a client might assume although the API reference does not promise it:

    :param list_order: ``"newest_first"`` (default) or ``"oldest_first"``: the order of
        ``/api/messages`` (by ``created_at``, then id) and of ``/api/conversations`` (by
        ``last_message_at``, then id).
    :param ignore_date_params: ``GET /api/messages`` ignores ``start_date`` and ``end_date``
        entirely (not even validated): every row of the other filters comes back.
    :param clock_offset_seconds: the server's clock runs this many seconds ahead of the machine's
        (negative: behind). It moves every timestamp the server writes (``created_at``,
        ``last_message_at``, numbers and webhooks, webhook ``occurred_at``), its ``Date`` header,
        its rate-limit windows and ``X-RateLimit-Reset`` (an epoch of the server's clock), its
        "today" of ``credits_used_today``, and the default end of seeded history. Date parameters
        are compared with the stored, server-time ``created_at``. Lifecycle delays are durations
        and do not move.
    :param reorder_conversations_per_list: on each ``GET /api/conversations``, this many old
        conversations get a new inbound message (origin ``live``, no webhooks) before the page is
        built, so they move to the top of the newest-first order, as when customers reply while a
        client pages. They are drawn from the conversations after the requested page (those a
        client walking forward has not read yet), else from those after page 1.
    :param status_changes_per_list: on each ``GET /api/messages``, this many messages of the
        filtered list move one status on (``queued`` to ``sent``, ``sent`` to ``delivered``,
        ``delivered`` to ``failed`` as a late delivery report; webhooks as the lifecycle sends
        them). They are drawn first from the pages before the requested one (already read by a
        client walking forward; changed before this page is built), then from the rows of this
        page (changed after it is built), so a status-filtered list shrinks under the client.
    :param late_visibility_ms: message ids stop becoming visible in increasing order: every other
        message created one at a time while the switch is on (the 1st, 3rd, ...; sent, received,
        replies, live traffic) stays out of ``GET /api/messages`` for this many
        milliseconds after it was created, while the messages after it, with greater ids, are
        listed at once (as with a replica that lags on some writes). The value in force when the
        list is asked for counts: lowering it releases held-back messages (0, the default, lists
        every message at once). The inspection API, the inbox page and ``/api/conversations`` are
        unaffected.
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
    :param allow_remote_inspection: serve the inspection API (``/_emulator``) and the inbox page (``/``) to
        clients at any address, not only to this machine's loopback: a browser on the host of a Docker
        container reaches it from the bridge's address. Whoever reaches the port can then read every
        message and reset the emulator. Off by default; set at start only (not a run-time setting).
    """

    tokens: list[str] = field(default_factory=lambda: [DEFAULT_TOKEN])
    initial_credits: int = 10000
    plan: str = "Professional"
    send_limit: int = 30
    read_limit: int = 60
    window_seconds: float = 60.0
    fail_before_share: float = 0.0
    fail_before_status: int = 500
    fail_after_share: float = 0.0
    drop_after_share: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    send_hold_ms: float = 0.0
    live_traffic_per_list: int = 0
    maintenance_page: bool = False
    list_order: str = NEWEST_FIRST
    ignore_date_params: bool = False
    clock_offset_seconds: float = 0.0
    reorder_conversations_per_list: int = 0
    status_changes_per_list: int = 0
    late_visibility_ms: float = 0.0
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
    allow_remote_inspection: bool = False

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
        return frozenset(f.name for f in dataclasses.fields(cls)) - START_ONLY_FIELDS

    def problem(self, name: str, value: Any) -> str | None:
        """What is wrong with ``value`` as the new value of run-time setting ``name`` (judged by its
        meaning and its current value's type), or None when it is acceptable.

        :param name: a name of :meth:`runtime_fields`.
        :param value: the proposed value (decoded JSON).
        """
        current = getattr(self, name)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        choices = _CHOICES.get(name)
        if choices is not None:
            return None if value in choices else f"The selected {name} is invalid."
        if name == "random_seed":
            valid = value is None or (isinstance(value, int) and not isinstance(value, bool))
            return None if valid else "The random_seed setting must be an integer or null."
        if isinstance(current, bool):
            return None if isinstance(value, bool) else f"The {name} setting must be true or false."
        if isinstance(current, str):
            return None if isinstance(value, str) and value else f"The {name} setting must be a string."
        if not is_number:
            return f"The {name} setting must be a number."
        if name in _INTEGERS and not isinstance(value, int):
            return f"The {name} setting must be an integer."
        if name == "fail_before_status" and not 400 <= value <= 599:
            return "The fail_before_status setting must be an HTTP error status (400 to 599)."
        if name.endswith("_share") and not 0 <= value <= 1:
            return f"The {name} setting must be between 0 and 1."
        if name in ("send_limit", "read_limit", "window_seconds") and value <= 0:
            return f"The {name} setting must be a positive number."
        if value < 0 and name != "clock_offset_seconds":
            return f"The {name} setting must not be negative."
        return None


#: Settings fixed when the emulator starts: the inspection API cannot change them (it is what one of them opens).
START_ONLY_FIELDS = frozenset({"tokens", "seed_messages", "allow_remote_inspection"})
#: Settings that take whole numbers only (older numeric settings accept any number, as before).
_INTEGERS = frozenset({"fail_before_status", "reorder_conversations_per_list", "status_changes_per_list"})
#: Settings whose value is one of a few words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "lifecycle": (LIFECYCLE_AUTO, LIFECYCLE_MANUAL),
    "list_order": (NEWEST_FIRST, OLDEST_FIRST),
}
