"""What one scenario of the runner is: the campaign, the server's switches, the rounds of worker processes and
what is done to them; drawn from a seed, described in one line, and made smaller one ingredient at a time.

A scenario is plain frozen data: :func:`draw_scenario` makes one from a seed (the same seed, the same
scenario, as long as this module is unchanged), and a regression test writes one out by hand, so that it
survives changes of the generator.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: Where a worker can stop itself (see ``scenario_worker.STOP_POINTS``).
POINTS = ("preflight", "after_pending", "before_sent_mark", "lookup")
#: ``sends``: when the emulator's record holds ``count`` more sends than when the round began.
SENDS = "sends"
#: What the runner does at a trigger: SIGKILL the worker, or SIGSTOP it until the resume condition.
KILL, PAUSE = "kill", "pause"
#: When a paused worker gets SIGCONT: once the round's other worker has exited, or once every lease the paused
#: worker held has expired in the ledger (nobody renews them while it is stopped).
OTHER_EXITED, LEASES_EXPIRED = "other_exited", "leases_expired"
#: When a round's second worker starts: with the first, after ``count`` sends, or once the first is stopped
#: (paused or killed) at its trigger.
AT_ONCE, AFTER_SENDS, AFTER_FIRST_STOPPED = "at_once", "after_sends", "after_first_stopped"


@dataclass(frozen=True)
class Intervention:
    """What the runner does to one worker: ``action`` (kill / pause) at a trigger: a stop ``point`` (its
    ``count``-th pass) or, when ``point`` is ``"sends"``, the ``count``-th send of the round in the
    emulator's record; a pause ends as ``resume`` says."""

    action: str
    point: str
    count: int = 1
    resume: str | None = None

    def describe(self) -> str:
        where = f"{self.count} sends" if self.point == SENDS else f"{self.point}#{self.count}"
        tail = f", resumed when {self.resume}" if self.action == PAUSE else ""
        return f"{self.action} at {where}{tail}"


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process of a round: when it starts (``start``, with ``after`` sends for ``after_sends``),
    and what is done to it."""

    start: str = AT_ONCE
    after: int = 0
    intervention: Intervention | None = None

    def describe(self) -> str:
        start = {
            AT_ONCE: "",
            AFTER_SENDS: f"after {self.after} sends: ",
            AFTER_FIRST_STOPPED: "once stopped: ",
        }
        what = self.intervention.describe() if self.intervention else "runs to the end"
        return start[self.start] + what


@dataclass(frozen=True)
class Switches:
    """The emulator's behaviour during the faulty rounds. ``late_visibility_ms``, ``clock_offset_seconds``
    and ``list_order`` are the server's nature and stay for the recovery runs; the others are cleared.

    ``send_hold_ms`` above the client's timeout makes a read timeout after the server acted;
    ``send_limit`` / ``read_limit`` (one-second windows) make a 429 storm; ``tls_error_share`` puts a TLS
    proxy in front that corrupts that share of the send answers after the emulator stored the message;
    ``clock_step_seconds`` moves the server's clock by that much at the start of each later round and of the
    recovery runs (as an NTP correction would); with ``latency_ms`` (every request waits that long inside the
    server before it acts), a killed worker's last sends are still inside the server when the clock is set.
    """

    fail_before_share: float = 0.0
    latency_ms: float = 0.0
    fail_after_share: float = 0.0
    drop_after_share: float = 0.0
    send_hold_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    live_traffic_per_list: int = 0
    late_visibility_ms: float = 0.0
    clock_offset_seconds: float = 0.0
    clock_step_seconds: float = 0.0
    list_order: str = "newest_first"
    send_limit: int | None = None
    read_limit: int | None = None
    tls_error_share: float = 0.0

    def describe(self) -> str:
        default = Switches()
        return ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )


@dataclass(frozen=True)
class Scenario:
    """One scenario: a campaign of ``valid`` recipients (plus invalid, duplicate, suppressed and opted-out
    rows), the switches, and the rounds of workers; recovery runs follow until the campaign settles."""

    seed: int
    valid: int = 8
    invalid: int = 0
    duplicates: int = 0
    suppressed: int = 0
    opted_out: int = 0
    max_concurrency: int = 1
    switches: Switches = field(default_factory=Switches)
    rounds: tuple[tuple[WorkerPlan, ...], ...] = ((WorkerPlan(),),)

    def describe(self) -> str:
        """One line that says everything the scenario is (with the seed that replays it)."""
        rows = f"{self.valid} valid, {self.invalid} invalid, {self.duplicates} duplicate, "
        rows += f"{self.suppressed} suppressed, {self.opted_out} opted-out rows"
        rounds = " | ".join(" & ".join(w.describe() for w in workers) for workers in self.rounds)
        switches = self.switches.describe() or "no faults"
        return f"seed {self.seed}: {rows}; concurrency {self.max_concurrency}; {switches}; rounds: {rounds}"

    def smaller(self) -> list[Scenario]:
        """Scenarios with one ingredient fewer or smaller (for shrinking), simplest first."""
        out: list[Scenario] = []
        replace = dataclasses.replace
        if len(self.rounds) > 1:
            out += [
                replace(self, rounds=self.rounds[:i] + self.rounds[i + 1 :]) for i in range(len(self.rounds))
            ]
        for i, workers in enumerate(self.rounds):
            for j, worker in enumerate(workers):
                simpler = [w for w in _simpler_workers(worker, first=j == 0)]
                if len(workers) > 1:
                    simpler.append(None)
                for new in simpler:
                    kept = workers[:j] + ((new,) if new else ()) + workers[j + 1 :]
                    kept = tuple(_first_starts_at_once(kept))
                    out.append(replace(self, rounds=(*self.rounds[:i], kept, *self.rounds[i + 1 :])))
        default = Switches()
        for f in dataclasses.fields(Switches):
            if getattr(self.switches, f.name) != getattr(default, f.name):
                off = {f.name: getattr(default, f.name)}
                if f.name == "send_limit":
                    off["read_limit"] = None
                out.append(replace(self, switches=replace(self.switches, **off)))
        for name in ("invalid", "duplicates", "suppressed", "opted_out"):
            if getattr(self, name):
                out.append(replace(self, **{name: 0}))
        if self.max_concurrency > 1:
            out.append(replace(self, max_concurrency=1))
        if self.valid > 3:
            out.append(replace(self, valid=max(3, self.valid // 2)))
        return out


def _simpler_workers(worker: WorkerPlan, *, first: bool) -> list[WorkerPlan]:
    out = []
    if worker.intervention is not None:
        out.append(dataclasses.replace(worker, intervention=None))
        if worker.intervention.count > 1:
            smaller = dataclasses.replace(worker.intervention, count=1)
            out.append(dataclasses.replace(worker, intervention=smaller))
    if not first and worker.start != AT_ONCE:
        out.append(dataclasses.replace(worker, start=AT_ONCE, after=0))
    return out


def _first_starts_at_once(workers: tuple[WorkerPlan, ...]) -> list[WorkerPlan]:
    """The first worker of a round starts with it; "once stopped" needs a first worker that stops."""
    out = []
    for n, worker in enumerate(workers):
        if n == 0 and worker.start != AT_ONCE:
            worker = dataclasses.replace(worker, start=AT_ONCE, after=0)
        if n > 0 and worker.start == AFTER_FIRST_STOPPED and out[0].intervention is None:
            worker = dataclasses.replace(worker, start=AT_ONCE)
        out.append(worker)
    return out


# -- drawing a scenario from a seed -----------------------------------------------------------------------


def draw_scenario(seed: int) -> Scenario:
    """The scenario of ``seed``: a small campaign, a random mix of the switches, one to three rounds of one or
    two overlapping workers, each maybe killed or paused at a point or after some sends."""
    rng = random.Random(seed)
    valid = rng.randint(5, 16)
    switches = _draw_switches(rng)
    # Drawn from a stream of its own, so that the other ingredients of a seed stay what they were before it.
    late = random.Random(seed * 7919 + 1)
    switches = dataclasses.replace(
        switches, latency_ms=_maybe(late, 0.2, float(late.choice((300, 1000))), 0.0)
    )
    if switches.send_hold_ms or switches.latency_ms:
        valid = min(valid, 8)  # every send waits out the client's timeout: keep the campaign short
    count = rng.choice((1, 1, 2, 3))
    rounds = tuple(_draw_round(rng, valid, last=n == count - 1) for n in range(count))
    return Scenario(
        seed=seed,
        valid=valid,
        invalid=rng.choice((0, 0, 1, 2)),
        duplicates=rng.choice((0, 0, 1, 2)),
        suppressed=rng.choice((0, 1, 2)),
        opted_out=rng.choice((0, 1, 2)),
        max_concurrency=rng.choice((1, 1, 2, 3)),
        switches=switches,
        rounds=rounds,
    )


def _maybe(rng: random.Random, chance: float, value: Any, otherwise: Any) -> Any:
    return value if rng.random() < chance else otherwise


def _draw_switches(rng: random.Random) -> Switches:
    storm = rng.random() < 0.2
    return Switches(
        fail_before_share=_maybe(rng, 0.3, round(rng.uniform(0.1, 0.4), 2), 0.0),
        fail_after_share=_maybe(rng, 0.4, round(rng.uniform(0.1, 0.4), 2), 0.0),
        drop_after_share=_maybe(rng, 0.3, round(rng.uniform(0.1, 0.3), 2), 0.0),
        send_hold_ms=_maybe(rng, 0.15, 1.0, 0.0),  # scaled to the client's timeout by the runner
        latency_jitter_ms=_maybe(rng, 0.3, float(rng.randint(5, 150)), 0.0),
        live_traffic_per_list=_maybe(rng, 0.15, rng.randint(1, 4), 0),
        late_visibility_ms=_maybe(rng, 0.35, float(rng.choice((1500, 2500, 3000, 4000))), 0.0),
        clock_offset_seconds=_maybe(rng, 0.35, float(rng.choice((-600, -90, -7, 7, 90, 600))), 0.0),
        clock_step_seconds=_maybe(rng, 0.2, float(rng.choice((-120, -5, 5, 120))), 0.0),
        list_order=_maybe(rng, 0.3, "oldest_first", "newest_first"),
        send_limit=rng.randint(2, 4) if storm else None,
        read_limit=rng.randint(4, 10) if storm else None,
        tls_error_share=_maybe(rng, 0.15, round(rng.uniform(0.2, 0.4), 2), 0.0),
    )


#: Stop points and how often each is drawn; the n-th pass (``_POINT_PASSES``) is one a small campaign reaches.
_POINT_WEIGHTS = {"preflight": 1, "after_pending": 3, "before_sent_mark": 2, "lookup": 2}
_POINT_PASSES = {"preflight": 1, "after_pending": 3, "before_sent_mark": 2, "lookup": 1}


def _draw_intervention(rng: random.Random, budget: int, *, alone: bool, likely: bool) -> Intervention | None:
    """An intervention triggered within the first ``budget`` sends of its round (None: the worker runs on);
    ``likely`` when an uninterrupted worker would leave the rounds after it nothing to do."""
    actions = (KILL, PAUSE, PAUSE, None) if likely else (None, None, KILL, PAUSE, PAUSE)
    action = rng.choice(actions)
    if action is None:
        return None
    if rng.random() < 0.4:
        point, count = SENDS, rng.randint(1, max(1, budget))
    else:
        point = rng.choices(list(_POINT_WEIGHTS), weights=list(_POINT_WEIGHTS.values()))[0]
        count = rng.randint(1, min(_POINT_PASSES[point], max(1, budget)))
    resume = None
    if action == PAUSE:
        resume = LEASES_EXPIRED if alone else rng.choice((OTHER_EXITED, OTHER_EXITED, LEASES_EXPIRED))
    return Intervention(action, point, count, resume)


def _draw_round(rng: random.Random, valid: int, *, last: bool) -> tuple[WorkerPlan, ...]:
    """One round: one worker (maybe stopped), or two on the same campaign and ledger at once."""
    budget = max(1, valid // 3)  # the sends an earlier interrupted round is likely to leave to this one
    if rng.random() < 0.5:
        return (WorkerPlan(intervention=_draw_intervention(rng, budget, alone=True, likely=not last)),)
    first = WorkerPlan(intervention=_draw_intervention(rng, budget, alone=False, likely=True))
    start = rng.choice((AT_ONCE, AFTER_SENDS, AFTER_FIRST_STOPPED, AFTER_FIRST_STOPPED))
    if start == AFTER_FIRST_STOPPED and first.intervention is None:
        start = AT_ONCE
    # The second never waits for the first to exit (a pause of it ends when its leases expired): no deadlock.
    intervention = _draw_intervention(rng, budget, alone=True, likely=False)
    after = rng.randint(1, budget) if start == AFTER_SENDS else 0
    return first, WorkerPlan(start=start, after=after, intervention=intervention)


def shrink(scenario: Scenario, fails: Callable[[Scenario], bool], *, tries: int = 2) -> Scenario:
    """The smallest scenario reachable from ``scenario`` by taking one ingredient away at a time while it still
    fails (greedy: the first smaller scenario that fails in one of ``tries`` runs is kept; timing makes a
    failure intermittent, so each candidate gets more than one chance)."""
    current = scenario
    while True:
        for candidate in current.smaller():
            if any(fails(candidate) for _ in range(tries)):
                current = candidate
                break
        else:
            return current
