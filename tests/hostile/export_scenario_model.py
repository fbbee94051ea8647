"""What one export scenario is: the server's clock (offset and steps between runs), listing lag, list order, read
faults, live traffic before, between and during the runs, the schedule of runs (a chain of manual runs, data
intervals, a rerun, or a mix) and the destination; drawn from a seed, described in one line, made smaller one
ingredient at a time.

A scenario is plain frozen data: :func:`draw_export_scenario` makes one from a seed (the same seed, the same
scenario, as long as this module is unchanged), and a regression test writes one out by hand, so that it
survives changes of the generator. ``export_scenarios`` runs it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

#: Kinds of run: a manual run without a data interval (it chains through the destination's record), the next
#: data interval of the schedule, or a rerun (same run id, same interval) of an earlier one.
MANUAL, INTERVAL, RERUN = "manual", "interval", "rerun"
SQL, PARQUET = "sql", "parquet"
NEWEST_FIRST, OLDEST_FIRST = "newest_first", "oldest_first"

#: The server's clock against the machine's, at the start.
OFFSETS = (30.0, -30.0, 120.0, -120.0, 600.0, -600.0)
#: Steps of the server's clock before a run (NTP corrections). A step back costs its length in waiting (a data
#: interval ends on the server's present; the last run waits for the clock to pass the newest message), so the
#: largest step back is drawn for manual runs only.
STEPS = (2.0, -2.0, 10.0, -10.0, 30.0, -30.0, 120.0)
_STEPS_BEFORE_AN_INTERVAL = (2.0, -2.0, 10.0, -10.0, 30.0, 120.0)
#: Before the last run the runner waits for the server's clock to pass the newest message: no step back there.
_STEPS_BEFORE_THE_LAST = (2.0, 10.0, 30.0, 120.0)


@dataclass(frozen=True)
class RunPlan:
    """One export run: its ``kind`` (for a rerun, ``rerun_of``: the 1-based number of the data interval it
    repeats); the step of the server's clock just before it (``step_seconds``); messages created after the run
    before it (``before``) and from a background thread while it runs (``during``)."""

    kind: str = MANUAL
    rerun_of: int = 0
    step_seconds: float = 0.0
    before: int = 0
    during: int = 0

    def describe(self) -> str:
        what = f"rerun of interval {self.rerun_of}" if self.kind == RERUN else self.kind
        extras = [f"clock {self.step_seconds:+.0f} s"] if self.step_seconds else []
        extras += [f"{self.before} before"] if self.before else []
        extras += [f"{self.during} during"] if self.during else []
        return what + (f" ({', '.join(extras)})" if extras else "")


@dataclass(frozen=True)
class ExportScenario:
    """One scenario: the emulator's switches, the history seeded before the first window (``history`` messages
    in each of three bands: days before it, minutes before it, inside it), where the first window starts
    (``lead_seconds`` before the earlier of the two clocks' present), the runs, the destination (for SQL its
    ``sql_mode``), the page size and the operators' ``lookback`` (``lookback_seconds``)."""

    seed: int
    destination: str = SQL
    sql_mode: str = "upsert"
    per_page: int = 100
    clock_offset_seconds: float = 0.0
    late_visibility_ms: float = 0.0
    list_order: str = NEWEST_FIRST
    fail_before_share: float = 0.0
    live_traffic_per_list: int = 0
    history: int = 0
    lead_seconds: float = 60.0
    lookback_seconds: float = 0.0
    runs: tuple[RunPlan, ...] = (RunPlan(), RunPlan())

    @property
    def listing_delay(self) -> float:
        """The connection's ``listing_delay``: above the server's listing lag, so that the bound holds."""
        return max(1.0, self.late_visibility_ms / 1000 + 0.5)

    def describe(self) -> str:
        """One line that says everything the scenario is (with the seed that replays it)."""
        where = f"sql ({self.sql_mode})" if self.destination == SQL else "parquet"
        switches = [f"{where}, {self.per_page} per page", f"server clock {self.clock_offset_seconds:+.0f} s"]
        if self.late_visibility_ms:
            switches.append(
                f"listed {self.late_visibility_ms:.0f} ms late (listing_delay {self.listing_delay} s)"
            )
        if self.list_order != NEWEST_FIRST:
            switches.append(self.list_order)
        if self.fail_before_share:
            switches.append(f"{self.fail_before_share:.0%} of requests 500")
        if self.live_traffic_per_list:
            switches.append(f"{self.live_traffic_per_list} live messages per list")
        switches.append(f"history {self.history} x 3, first window {self.lead_seconds:.0f} s back")
        if self.lookback_seconds:
            switches.append(f"lookback {self.lookback_seconds:.0f} s")
        runs = " | ".join(run.describe() for run in self.runs)
        return f"seed {self.seed}: {', '.join(switches)}; runs: {runs}"

    def smaller(self) -> list[ExportScenario]:
        """Scenarios with one ingredient fewer or smaller (for shrinking), simplest first."""
        out: list[ExportScenario] = []
        replace = dataclasses.replace
        if len(self.runs) > 1:
            for n in range(len(self.runs)):
                runs = self.runs[:n] + self.runs[n + 1 :]
                out.append(replace(self, runs=valid_runs(runs, self.destination)))
        for n, run in enumerate(self.runs):
            for change in ({"step_seconds": 0.0}, {"before": 0}, {"during": 0}):
                if getattr(run, next(iter(change))):
                    runs = (*self.runs[:n], replace(run, **change), *self.runs[n + 1 :])
                    out.append(replace(self, runs=runs))
        default = ExportScenario(seed=self.seed)
        for name in (
            "clock_offset_seconds", "late_visibility_ms", "list_order", "fail_before_share",
            "live_traffic_per_list", "per_page", "history", "lookback_seconds",
        ):  # fmt: skip
            if getattr(self, name) != getattr(default, name):
                out.append(replace(self, **{name: getattr(default, name)}))
        return [s for s in out if s.runs and s != self]


def valid_runs(runs: tuple[RunPlan, ...], destination: str) -> tuple[RunPlan, ...]:
    """``runs`` made into a schedule the runner can judge: a rerun repeats an interval run before it and is
    not the last run; the last run takes no step back and, unless it is a data interval into SQL (whose end is
    exact), meets no traffic while it runs (its end is then surely past every message)."""
    out: list[RunPlan] = []
    intervals = 0
    for run in runs:
        if run.kind == RERUN and not 1 <= run.rerun_of <= intervals:
            continue
        intervals += run.kind == INTERVAL
        out.append(run)
    while out and out[-1].kind == RERUN:
        out.pop()
    if out:
        last = out[-1]
        out[-1] = dataclasses.replace(
            last,
            step_seconds=max(last.step_seconds, 0.0),
            during=0 if ends_past_every_message(last, destination) else last.during,
        )
    return tuple(out)


def ends_past_every_message(last: RunPlan, destination: str) -> bool:
    """Whether the last run must end past every message for the union to be known: all but a data interval
    into SQL (exact); a manual run ends at its horizon, and a Parquet export rewrites whole days up to it."""
    return not (last.kind == INTERVAL and destination == SQL)


def overlapping(runs: tuple[RunPlan, ...], lookback_seconds: float) -> bool:
    """Whether two runs may export one message: a lookback, a rerun, manual runs mixed with data intervals (a
    manual run starts at the latest recorded end before its own), or a chain whose server clock steps back (a
    run whose end is before the last recorded end starts at an earlier one). ``mode="append"`` fails such a
    run."""
    kinds = {run.kind for run in runs}
    steps_back = any(run.step_seconds < 0 for run in runs)
    return bool(lookback_seconds) or RERUN in kinds or kinds == {MANUAL, INTERVAL} or steps_back


# -- drawing a scenario from a seed -----------------------------------------------------------------------


def _maybe(rng: random.Random, chance: float, value: Any, otherwise: Any) -> Any:
    return value if rng.random() < chance else otherwise


def draw_export_scenario(seed: int) -> ExportScenario:
    """The scenario of ``seed``: a chain of manual runs, consecutive data intervals (maybe with a rerun) or a mix
    of both, two to five runs, into SQL or Parquet, under a random mix of the server's switches."""
    rng = random.Random(seed)
    destination = rng.choice((SQL, PARQUET))
    schedule = rng.choice(((MANUAL,), (MANUAL,), (INTERVAL,), (INTERVAL,), (MANUAL, INTERVAL)))
    count = rng.randint(2, 4)
    runs = []
    for n in range(count):
        kind = rng.choice(schedule)
        last = n == count - 1
        steps = _STEPS_BEFORE_THE_LAST if last else _STEPS_BEFORE_AN_INTERVAL if kind == INTERVAL else STEPS
        runs.append(
            RunPlan(
                kind=kind,
                step_seconds=_maybe(rng, 0.25, rng.choice(steps), 0.0) if n else 0.0,
                before=rng.randint(0, 4),
                during=_maybe(rng, 0.6, rng.randint(1, 6), 0),
            )
        )
    intervals = [n for n, run in enumerate(runs) if run.kind == INTERVAL]
    if intervals and intervals[0] < len(runs) - 1 and rng.random() < 0.4:
        at = rng.randint(intervals[0] + 1, len(runs) - 1)  # after the interval it repeats, before the last
        rerun_of = rng.randint(1, sum(n < at for n in intervals))
        runs.insert(at, RunPlan(kind=RERUN, rerun_of=rerun_of, during=_maybe(rng, 0.5, rng.randint(1, 4), 0)))
    valid = valid_runs(tuple(runs), destination)
    # A chained run whose window would end before the first window's start fails: keep the server's clock,
    # stepped back, after it.
    back = -sum(run.step_seconds for run in valid if run.step_seconds < 0)
    # A step back dates new messages into windows already exported: the next run reaches back to them (once
    # lost: see the regression tests of test_hostile_export_scenarios.py), with or without a lookback.
    lookback = _maybe(rng, 0.15, 60.0, 0.0)
    return ExportScenario(
        seed=seed,
        destination=destination,
        sql_mode="upsert" if overlapping(valid, lookback) else rng.choice(("append", "upsert")),
        per_page=rng.choice((100, 100, 7, 3)),
        clock_offset_seconds=_maybe(rng, 0.6, rng.choice(OFFSETS), 0.0),
        late_visibility_ms=_maybe(rng, 0.4, float(rng.choice((1500, 2500, 4000))), 0.0),
        list_order=_maybe(rng, 0.4, OLDEST_FIRST, NEWEST_FIRST),
        fail_before_share=_maybe(rng, 0.3, round(rng.uniform(0.05, 0.25), 2), 0.0),
        live_traffic_per_list=_maybe(rng, 0.25, rng.randint(1, 3), 0),
        history=rng.randint(0, 5),
        lead_seconds=max(float(rng.choice((20, 90, 600))), back + 20),
        lookback_seconds=lookback,
        runs=valid,
    )
