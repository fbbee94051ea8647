"""The export scenario runner: runs one :class:`~tests.hostile.export_scenario_model.ExportScenario` against the
emulator and judges it from the emulator's own record (``export_scenario_checks``): the destination holds
exactly the ids of the server's messages whose ``created_at`` lies in the union of the windows the runs
covered, none twice.

The union is known without the operator's word: the first window's start is the runner's
(``initial_window_start``, and the first data interval's start); each data interval is the runner's; and the
last run ends surely past every message (the runner waits until the server's clock, which it sets itself, has
passed the newest message by the listing delay and a margin, and nothing is created meanwhile), or is a data
interval into SQL, whose end is exact. A manual run's end is its ``run_after`` or the listed horizon, whichever
is earlier; the last one's therefore covers every message before its ``run_after``. A Parquet destination is
partitioned by day and rewrites whole days, so there the union is widened to whole UTC days. Everything waits
on the server's clock passing a moment, never on a fixed sleep.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from tests.hostile.export_scenario_checks import DAY, RUN_FAILED, Coverage, ExportViolation, check_export
from tests.hostile.export_scenario_model import (
    INTERVAL,
    MANUAL,
    PARQUET,
    RERUN,
    SQL,
    ends_past_every_message,
)
from tests.hostile.hostile_support import SENDER, valid_numbers
from tests.hostile.scenarios import ScenarioResult
from tests.transfers.export_helpers import api_time, parse_api_time

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin
    from tests.hostile.export_scenario_model import ExportScenario, RunPlan

#: Added to the listing delay when waiting for the last run's horizon to pass the newest message: the
#: operator's estimate of the server's clock is off by up to its uncertainty (half a second of ``Date``
#: resolution and the round trip, twice) and the horizon is cut to the whole second.
HORIZON_MARGIN = 2.5
#: Between two messages of the traffic thread.
TRAFFIC_PACE = 0.02
POLL = 0.02


def connection_extras(scenario: ExportScenario) -> dict[str, Any]:
    """The SMS Nexus connection's extras for a scenario: its listing delay, quick retries, and enough of them
    that read faults never exhaust them (0.25 ** 11: a run fails with 500s about once in 4 million)."""
    return {
        "listing_delay": scenario.listing_delay,
        "timeout": 10,
        "retry_backoff": 0.01,
        "retry_backoff_max": 0.05,
        "max_retries": 10,
    }


class ExportScenarioRunner:
    """Runs one export scenario against an emulator (reset first) and returns a
    :class:`~tests.hostile.scenarios.ScenarioResult` whose violations are :class:`ExportViolation`.

    The caller points ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` at the emulator with :func:`connection_extras`.

    :param scenario: what to run.
    :param admin: the emulator's inspection API.
    :param workdir: an empty directory of this scenario (the Parquet destination).
    :param table: the SQL destination's table in the embedded warehouse (dropped afterwards).
    """

    def __init__(self, scenario: ExportScenario, *, admin: EmulatorAdmin, workdir: Path, table: str) -> None:
        self.scenario = scenario
        self.admin = admin
        self.parquet = workdir / "messages"
        self.table = table
        self.result = ScenarioResult(scenario)  # type: ignore[arg-type]  # the same figures and failure text
        self.offset = scenario.clock_offset_seconds
        self.start = datetime.now(timezone.utc)
        self.edges: list[datetime] = []  # the data intervals' edges: [edges[k-1], edges[k]) is interval k
        self.last_run_after: datetime | None = None
        self._server_after_run = datetime.min.replace(tzinfo=timezone.utc)
        self._created_at = 0.0  # the machine's clock when the last message was created
        self._contacts = valid_numbers(8)[1:]  # the first is the account's own number
        self._sent = 0
        self._began = time.monotonic()

    def run(self) -> ScenarioResult:
        s = self.scenario
        self.admin.reset()
        self.start = _whole(min(self.server_now(), datetime.now(timezone.utc))) - timedelta(
            seconds=s.lead_seconds
        )
        self.edges = [self.start]
        self.note(f"scenario {s.describe()}")
        # History first: under late_visibility_ms the emulator holds back a message seeded alone, although it is
        # dated in the past (its listing lag would count from its insertion, not from its created_at).
        self._seed_history()
        self.admin.configure(
            clock_offset_seconds=self.offset,
            late_visibility_ms=s.late_visibility_ms,
            list_order=s.list_order,
            fail_before_share=s.fail_before_share,
            live_traffic_per_list=s.live_traffic_per_list,
            random_seed=s.seed,
        )
        try:
            for number, plan in enumerate(s.runs, 1):
                self._step(plan.step_seconds)
                self._create(plan.before)
                if number == len(s.runs) and ends_past_every_message(plan, s.destination):
                    self._until_the_newest_is_listed()
                self._run(number, plan)
            self._check()
        finally:
            self._drop_table()
        self.result.seconds = time.monotonic() - self._began
        return self.result

    def note(self, text: str) -> None:
        self.result.log.append(f"  {time.monotonic() - self._began:6.2f}s {text}")

    def server_now(self) -> datetime:
        """The server's present: the machine's clock moved by the offset this runner set (the in-process
        emulator's own definition of its clock)."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset)

    # -- messages ---------------------------------------------------------------------------------------------

    def _seed_history(self) -> None:
        """``history`` messages in each band: days before the first window, minutes before it, inside it."""
        count, seed, start = self.scenario.history, self.scenario.seed, self.start
        if not count:
            return
        bands = (
            (start - 2 * DAY, start - 2 * DAY + timedelta(hours=1)),
            (start - timedelta(minutes=5), start),
            (start, _whole(self.server_now()) - timedelta(seconds=1)),
        )
        for n, (first, end) in enumerate(bands):
            self.admin.seed_messages(count, random_seed=seed + n, start=first, end=end)

    def _create(self, count: int, stop: threading.Event | None = None) -> int:
        """Create up to ``count`` messages (sent through the API, or texts received) until ``stop`` is set;
        return how many the server stored."""
        from airflow_provider_smsnexus.exceptions import SMSNexusError
        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

        if not count:
            return 0
        hook = SMSNexusHook()
        made = 0
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            self._sent += 1
            contact = self._contacts[self._sent % len(self._contacts)]
            if self._sent % 2:
                try:
                    hook.send_sms(SENDER, contact, f"export scenario {self.scenario.seed} #{self._sent}")
                    made += 1
                except SMSNexusError:  # a read fault met the send: the server's record says what it holds
                    self.result.counts["traffic_sends_refused"] += 1
            else:
                self.admin.add_inbound(contact, SENDER, f"reply #{self._sent}")
                made += 1
            self._created_at = time.time()
            if stop is not None:
                stop.wait(TRAFFIC_PACE)
        return made

    # -- the server's clock ------------------------------------------------------------------------------------

    def _step(self, seconds: float) -> None:
        """Move the server's clock by ``seconds`` (as an NTP step would)."""
        if not seconds:
            return
        if seconds > 0 and self.scenario.late_visibility_ms:
            # A message still held back when the clock jumps ahead would be listed later than listing_delay
            # after its created_at, on the server's own clock: the server would break the bound, not the export.
            self._until(
                lambda: time.time() > self._created_at + self.scenario.late_visibility_ms / 1000 + 0.1
            )
        self.offset += seconds
        self.admin.configure(clock_offset_seconds=self.offset)
        self.result.counts["clock_steps"] += 1
        self.result.counts["clock_steps_back"] += seconds < 0
        self.note(f"server clock stepped {seconds:+.0f} s to {self.offset:+.0f} s")

    def _until_the_newest_is_listed(self) -> None:
        """Before the last run: no more traffic, and the server's clock past the newest message by the listing
        delay and a margin, so the last run's horizon is past every message."""
        if self.scenario.live_traffic_per_list:
            self.admin.configure(live_traffic_per_list=0)
        newest = max((parse_api_time(m["created_at"]) for m in self.admin.messages()), default=self.start)
        moment = newest + timedelta(seconds=1 + self.scenario.listing_delay + HORIZON_MARGIN)
        waited = time.monotonic()
        self._until(lambda: self.server_now() >= moment)
        self.note(
            f"waited {time.monotonic() - waited:.1f} s for the server's clock to pass {api_time(moment)}"
        )

    @staticmethod
    def _until(condition: Any, limit: float = 900.0) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the runner's wait never ended")
            threading.Event().wait(POLL)

    # -- runs -----------------------------------------------------------------------------------------------

    def _run(self, number: int, plan: RunPlan) -> None:
        context = self._context(number, plan)
        operator = self._operator()
        stop = threading.Event()
        during: list[int] = []
        feeder = threading.Thread(target=lambda: during.append(self._create(plan.during, stop)), daemon=True)
        if plan.during:
            feeder.start()
        began = time.monotonic()
        try:
            figures = operator.execute(context)
        except Exception as exc:
            self.result.violations.append(
                ExportViolation(
                    RUN_FAILED, None, f"run {number} ({plan.describe()}): {type(exc).__name__}: {exc}"
                )
            )
            self.note(f"run {number} failed: {type(exc).__name__}: {str(exc)[:300]}")
            figures = None
        finally:
            stop.set()
            if plan.during:
                feeder.join()
        self._server_after_run = self.server_now()
        self._created_at = time.time() if self.scenario.live_traffic_per_list else self._created_at
        self.result.counts["export_runs"] += 1
        self.result.counts["messages_created_during_runs"] += sum(during)
        if figures is not None:  # for the log only: the verdict is drawn from the emulator's record
            self.note(
                f"run {number} {plan.describe()}: {figures['window_rule']} [{figures['window_start']}, "
                f"{figures['window_end']}) {figures['rows']} rows, {figures['pages']} pages, "
                f"{time.monotonic() - began:.1f} s, {sum(during)} created meanwhile"
            )

    def _context(self, number: int, plan: RunPlan) -> dict[str, Any]:
        if plan.kind == MANUAL:
            self.last_run_after = datetime.now(timezone.utc)
            return {"run_id": f"manual__{number}", "run_after": self.last_run_after}
        if plan.kind == INTERVAL:
            # Ends at the server's present (the run waits about listing_delay for it to be listed), and after
            # every earlier run ended, so that it covers what a manual run before it exported.
            end = max(
                self.edges[-1] + timedelta(seconds=1), _ceil(self.server_now()), _ceil(self._server_after_run)
            )
            self.edges.append(end)
            interval = len(self.edges) - 1
        else:
            assert plan.kind == RERUN
            interval = plan.rerun_of
        return {
            "run_id": f"scheduled__{interval}",
            "data_interval_start": self.edges[interval - 1],
            "data_interval_end": self.edges[interval],
        }

    def _operator(self) -> Any:
        from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
        from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator

        s = self.scenario
        common = {"task_id": "export", "initial_window_start": self.start, "per_page": s.per_page}
        if s.lookback_seconds:
            common["lookback"] = timedelta(seconds=s.lookback_seconds)
        if s.destination == SQL:
            return SMSNexusToSqlOperator(table=self.table, mode=s.sql_mode, **common)
        return SMSNexusToParquetOperator(path=str(self.parquet), **common)

    # -- the verdict ------------------------------------------------------------------------------------------

    def coverage(self) -> Coverage:
        """The union of the windows the runs covered, from this runner's own record: from the first window's
        start (less the lookback) to the latest data interval's end or the last manual run's ``run_after``,
        whichever is later."""
        ends = self.edges[1:]
        if self.scenario.runs[-1].kind == MANUAL:
            assert self.last_run_after is not None
            ends.append(self.last_run_after)
        start = self.start - timedelta(seconds=self.scenario.lookback_seconds)
        return Coverage(((start, max(ends)),), whole_days=self.scenario.destination == PARQUET)

    def exported(self) -> list[int]:
        """The ids the destination holds, one per row."""
        if self.scenario.destination == PARQUET:
            from tests.transfers.export_helpers import read_dataset

            return read_dataset(self.parquet).column("id").to_pylist() if self.parquet.exists() else []
        import sqlalchemy as sa

        from airflow_provider_smsnexus.transfers.smsnexus_to_sql import default_warehouse_path
        from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine

        engine = sqlite_engine(default_warehouse_path())
        try:
            if not sa.inspect(engine).has_table(self.table):
                return []
            with engine.connect() as conn:
                return [row[0] for row in conn.execute(sa.text(f'SELECT id FROM "{self.table}"'))]
        finally:
            engine.dispose()

    def _check(self) -> None:
        messages = self.admin.messages()
        coverage = self.coverage()
        exported = self.exported()
        found = check_export(messages, exported, coverage)
        self.result.violations += found
        self.result.counts["messages_checked"] += len(messages)
        self.result.counts["messages_exported"] += len(exported)
        self.note(
            f"checked {len(messages)} messages against {len(exported)} rows; covered {coverage.describe()}"
        )
        if found:
            record = [
                {"id": m["id"], "created_at": m["created_at"], "origin": m.get("origin")} for m in messages
            ]
            self.note("the emulator's record: " + json.dumps(record))

    def _drop_table(self) -> None:
        if self.scenario.destination != SQL:
            return
        import sqlalchemy as sa

        from airflow_provider_smsnexus.transfers.smsnexus_to_sql import default_warehouse_path
        from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine

        engine = sqlite_engine(default_warehouse_path())
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{self.table}"')
                if sa.inspect(conn).has_table("smsnexus_export_runs"):
                    conn.execute(
                        sa.text("DELETE FROM smsnexus_export_runs WHERE exported_table = :t"),
                        {"t": self.table},
                    )
        finally:
            engine.dispose()


def _whole(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def _ceil(value: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(value.timestamp()), tz=timezone.utc)
