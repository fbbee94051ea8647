"""What every part of the emulated service shares: the settings in force, the two clocks (the
machine's, for delays, and the server's, which ``clock_offset_seconds`` moves, for everything the
server writes or reports), the id counters, and the dice. The parts (:mod:`.accounts`,
:mod:`.sending`, :mod:`.lifecycle`, :mod:`.listing`, :mod:`.traffic`, :mod:`.subscriptions`,
:mod:`.faults`) are mixins over this base; :class:`~.state.Emulator` puts them together.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
    from airflow_provider_smsnexus.emulator.store import StringTable
    from airflow_provider_smsnexus.emulator.subscriptions import Webhook
    from airflow_provider_smsnexus.emulator.webhooks import WebhookDispatcher

#: Start of the time-based id bases: 2020-01-01T00:00:00Z.
ID_EPOCH = 1_577_836_800
#: Ids handed out per second of wall time since :data:`ID_EPOCH`: a run's first message id is the
#: microseconds since 2020 at its start (about 2e14 in 2026; JSON-safe, below ``2**53``, until 2305).
IDS_PER_SECOND = 1_000_000
#: Counters whose ids must never repeat across emulator runs (a ledger or a client may outlive a run).
TIME_BASED_IDS = ("message", "conversation", "webhook")
SECONDS_PER_DAY = 86400


def time_based_id_base(now: float | None = None) -> int:
    """The first id of a run started at ``now`` (the machine's epoch seconds; default: now).

    Ids of one run grow by one from there, so two runs never share an id unless a run hands out more
    than :data:`IDS_PER_SECOND` ids per second it has been running, or the machine's clock goes back.

    :param now: epoch seconds.
    """
    moment = time.time() if now is None else now
    return max(1, int((moment - ID_EPOCH) * IDS_PER_SECOND))


class EmulatorCore:
    """The shared state of the emulated service; see the module docstring."""

    settings: EmulatorSettings
    clock: Callable[[], float]
    dispatcher: WebhookDispatcher
    accounts: dict[int, Account]
    webhooks: dict[int, Webhook]
    numbers: StringTable
    bodies: StringTable
    pending: dict[tuple[int, int], float]
    replies: list[tuple[float, int, str, str, str]]
    fault_counts: dict[str, int]
    drift_counts: dict[str, int]
    _next: dict[str, int]
    _outbound_texts: list[str]
    _inbound_texts: list[str]

    def server_now(self) -> float:
        """The server's clock: the machine's clock moved by ``clock_offset_seconds``."""
        return self.clock() + float(self.settings.clock_offset_seconds)

    def _reset_ids(self) -> None:
        """Set the counters for a new start: accounts and numbers from 1, the others from a
        time-based base that is also above every id handed out before (a reset never goes back)."""
        base = time_based_id_base()
        previous = getattr(self, "_next", {})
        self._next = {"account": 1, "number": 1}
        self.late_since: dict[int, float] = {}  # held-back message id -> machine time it was created
        self.late_turn = 0
        for kind in TIME_BASED_IDS:
            self._next[kind] = max(base, previous.get(kind, 1))

    def _take_id(self, kind: str, count: int = 1) -> int:
        first = self._next[kind]
        self._next[kind] = first + count
        if kind == "message" and count == 1 and self.settings.late_visibility_ms:
            self._hold_back(first)
        return first

    def _seed_random(self, seed: int | None) -> None:
        self.fault_rng = random.Random(seed)
        self.lifecycle_rng = random.Random(None if seed is None else seed + 1)
        self.traffic_rng = random.Random(None if seed is None else seed + 2)
        self.latency_rng = random.Random(None if seed is None else seed + 3)
        self.drift_rng = random.Random(None if seed is None else seed + 4)

    if TYPE_CHECKING:  # provided by the mixins, used across them

        def _emit(self, account: Account, event: str, row: int) -> None: ...

        def _hold_back(self, message_id: int) -> None: ...

        def _roll_day(self, account: Account) -> None: ...

        def receive(
            self, account: Account, from_number: Any, to_number: Any, body: Any, *, origin: str = "admin"
        ) -> dict[str, Any]: ...

        def add_live_traffic(self, account: Account, count: int) -> None: ...

        def add_reply(self, account: Account, number: int, contact: int, created: int) -> int: ...

        def move_status_on(self, account: Account, row: int) -> bool: ...

        def account(self, account_id: int) -> Account: ...

        def seed(self, account_id: int, count: int, **options: Any) -> dict[str, Any]: ...
