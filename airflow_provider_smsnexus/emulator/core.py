"""What the parts of the emulated service share, each as a small object a part is given when it needs
it: the settings in force (:class:`SettingsInForce`), the two clocks (:class:`ServerClock`: the
machine's, for delays, and the server's, which ``clock_offset_seconds`` moves, for everything the server
writes or reports), the id counters with the ids ``late_visibility_ms`` holds back (:class:`IdCounters`)
and the dice (:class:`Dice`). :class:`~.state.Emulator` makes one of each and hands them to its parts.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smsnexus.emulator.settings import EmulatorSettings

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


class SettingsInForce:
    """The settings in force. A run-time change or a reset replaces them whole (a refused change then
    leaves nothing half-applied), so the parts hold this and read :attr:`current` when they act.

    :param settings: the settings to start with.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self.current = settings


class ServerClock:
    """The machine's clock and the server's, which runs ``clock_offset_seconds`` ahead of it.

    :param settings: the settings in force (their ``clock_offset_seconds``).
    :param machine: returns the machine's current epoch seconds (tests of the state may pass their own).
    """

    def __init__(self, settings: SettingsInForce, machine: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self.machine = machine

    def now(self) -> float:
        """The server's clock: the machine's clock moved by ``clock_offset_seconds``."""
        return self.machine() + float(self._settings.current.clock_offset_seconds)

    def today(self) -> int:
        """The server's current day, counted from the epoch (daily usage rolls over with it)."""
        return int(self.now() // SECONDS_PER_DAY)


class IdCounters:
    """The public ids the emulator hands out, and the message ids ``late_visibility_ms`` holds back.

    Accounts and numbers count from 1 after every :meth:`restart`; messages, conversations and webhooks
    from a time-based base (see :func:`time_based_id_base`) that never goes back.

    :param settings: the settings in force (their ``late_visibility_ms``).
    :param clock: when a held-back id was taken (on the machine's clock: it is a delay).
    """

    def __init__(self, settings: SettingsInForce, clock: ServerClock) -> None:
        self._settings = settings
        self._clock = clock
        self._next: dict[str, int] = {}
        self._late_since: dict[int, float] = {}  # held-back message id -> machine time it was taken
        self._late_turn = 0
        self.restart()

    def restart(self) -> None:
        """Set the counters for a new start: accounts and numbers from 1, the others from a
        time-based base that is also above every id handed out before (a reset never goes back)."""
        base = time_based_id_base()
        previous = self._next
        self._next = {"account": 1, "number": 1}
        self._late_since = {}
        self._late_turn = 0
        for kind in TIME_BASED_IDS:
            self._next[kind] = max(base, previous.get(kind, 1))

    def take(self, kind: str, count: int = 1) -> int:
        """Hand out ``count`` consecutive ids of ``kind``; return the first.

        Under ``late_visibility_ms``, every other message id taken alone is held back from the lists.

        :param kind: ``account``, ``number``, ``message``, ``conversation`` or ``webhook``.
        :param count: how many.
        """
        first = self._next[kind]
        self._next[kind] = first + count
        if kind == "message" and count == 1 and self._settings.current.late_visibility_ms:
            turn, self._late_turn = self._late_turn, self._late_turn + 1
            if turn % 2 == 0:
                self._late_since[first] = self._clock.machine()
        return first

    def held_back(self) -> list[int]:
        """The message ids still kept out of the lists: those taken less than ``late_visibility_ms``
        ago (the setting in force now: lowering it releases them). Released ids are forgotten."""
        late = self._late_since
        if not late:
            return []
        released = self._clock.machine() - float(self._settings.current.late_visibility_ms) / 1000
        for message_id in [message_id for message_id, since in late.items() if since <= released]:
            del late[message_id]
        return list(late)


class Dice:
    """The emulator's random choices, one generator per concern, all from one seed (so that a fault
    roll never shifts the lifecycle's draws). Reseeding keeps the generators (the parts hold them).

    :param seed: the settings' ``random_seed``; None for fresh randomness.
    """

    def __init__(self, seed: int | None) -> None:
        self.faults = random.Random()
        self.lifecycle = random.Random()
        self.traffic = random.Random()
        self.latency = random.Random()
        self.drift = random.Random()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Start every generator again from ``seed``.

        :param seed: the new seed; None for fresh randomness.
        """
        generators = (self.faults, self.lifecycle, self.traffic, self.latency, self.drift)
        for offset, generator in enumerate(generators):
            generator.seed(None if seed is None else seed + offset)
