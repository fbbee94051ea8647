"""The scenario runner of issue 22: faults that combine, against the emulator, with worker processes that are
killed and paused at chosen moments; every scenario ends with the properties of ``scenario_checks`` judged
from the emulator's own record.

One scenario (see ``scenario_model``): the emulator is reset and given the scenario's switches; each round
starts one or two worker processes on the same campaign and ledger, and the runner kills or pauses them when
their trigger is observed (a stop point's flag file and the process stopped there, or k sends in the
emulator's record), resumes a paused one when the round's other worker has exited or when the ledger shows
its leases expired; nothing waits on a sleep. Then the transient faults are cleared (the server's clock, list
order and listing lag stay) and recovery runs follow, as Airflow's retries would, until the campaign
succeeds or stops changing. The engine's timing settings are passed in one place, :class:`EngineSettings`.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.hostile.hostile_support import INVALID_VALUES, SENDER, national, valid_numbers
from tests.hostile.scenario_checks import HANG, LedgerRow, Violation, check_campaign
from tests.hostile.scenario_ledger import LedgerView
from tests.hostile.scenario_model import (
    AFTER_FIRST_STOPPED,
    AFTER_SENDS,
    KILL,
    LEASES_EXPIRED,
    OTHER_EXITED,
    SENDS,
    Scenario,
    WorkerPlan,
)
from tests.hostile.scenario_processes import ScenarioWorker, environment
from tests.hostile.scenario_settings import ENGINE, EngineSettings

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

#: Recovery runs after the faulty rounds (Airflow's retries): until one succeeds or two end alike.
RECOVERY_RUNS = 4
#: The longest a worker may take (a hang is a violation); well inside pytest's timeout of the test.
WORKER_DEADLINE = 150.0
POLL = 0.02
#: Nudges of a worker paused inside a ledger transaction before the pause is given up.
NUDGES = 20
LIFTED = 1_000_000


class ScenarioFailed(AssertionError):
    """A scenario broke a property (an ``xfail(raises=...)`` tells it from a scenario that did not happen)."""


@dataclass
class ScenarioResult:
    """What one scenario did and broke: its violations, its log, and counters for the figures."""

    scenario: Scenario
    violations: list[Violation] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def raise_for_violations(self) -> None:
        """Raise :class:`ScenarioFailed` with the replayable description when a property was broken."""
        if self.violations:
            raise ScenarioFailed(self.failure_text())

    def failure_text(self) -> str:
        lines = [
            f"Scenario {self.scenario.describe()}",
            "Replay: SMSNEXUS_SCENARIO_SEED=" + str(self.scenario.seed),
        ]
        lines += ["Violations:", *(f"  {v}" for v in self.violations), "What happened:", *self.log]
        return "\n".join(lines)


class ScenarioRunner:
    """Runs one scenario against an emulator (reset first) and returns a :class:`ScenarioResult`.

    :param scenario: what to run.
    :param admin: the emulator's inspection API.
    :param base_url: the emulator's API base URL.
    :param token: its token.
    :param workdir: an empty directory of this scenario (recipients, reports, worker output).
    :param airflow_home: the workers' ``AIRFLOW_HOME``: its embedded ledger is the campaign's.
    :param engine: the engine's timing settings.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        admin: EmulatorAdmin,
        base_url: str,
        token: str,
        workdir: Path,
        airflow_home: Path,
        engine: EngineSettings = ENGINE,
    ) -> None:
        self.scenario = scenario
        self.admin = admin
        self.base_url = base_url
        self.token = token
        self.workdir = workdir
        self.airflow_home = airflow_home
        self.engine = engine
        self.campaign = f"scenario-{scenario.seed}"
        self.ledger = LedgerView(airflow_home / "smsnexus" / "send_ledger.db", self.campaign)
        self.result = ScenarioResult(scenario)
        self.reports: dict[str, Path] = {}
        self.suppression: list[str] = []
        self._started = time.monotonic()
        self._tls_dice = random.Random(scenario.seed)
        self._tls_lock = threading.Lock()
        self._proxy: Any = None
        self._certificate: Any = None
        self._workers: list[ScenarioWorker] = []

    # -- the whole scenario ---------------------------------------------------------------------------------

    def run(self) -> ScenarioResult:
        self.admin.reset()
        expected, forbidden = self._prepare()
        try:
            try:
                self._set_faults()
                for number, workers in enumerate(self.scenario.rounds, 1):
                    self._run_round(number, workers)
            finally:
                self._calm()
            self._recover()
            self._check(expected, forbidden)
        finally:
            for worker in self._workers:  # none is left behind, whatever went wrong
                if not worker.exited():
                    worker.resume()
                    worker.kill()
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def note(self, text: str) -> None:
        self.result.log.append(f"  {time.monotonic() - self._started:6.2f}s {text}")

    def _prepare(self) -> tuple[set[str], dict[str, str]]:
        """The recipient table, the suppression list and the STOP texts; return the valid and forbidden numbers."""
        import pandas as pd

        s = self.scenario
        rng = random.Random(s.seed)
        # the first fictional number is the account's own sender: not a recipient
        numbers = valid_numbers(s.valid + s.suppressed + s.opted_out + 1)[1:]
        valid, suppressed, opted = (
            numbers[: s.valid],
            numbers[s.valid : s.valid + s.suppressed],
            numbers[s.valid + s.suppressed :],
        )
        rows = [(national(n) if i % 3 == 0 else n, f"N{i}") for i, n in enumerate(valid + suppressed + opted)]
        rows += [(INVALID_VALUES[i % len(INVALID_VALUES)], f"bad{i}") for i in range(s.invalid)]
        rows += [
            (national(n), f"dup{i}") for i, n in enumerate(rng.sample(valid, min(s.duplicates, len(valid))))
        ]
        rng.shuffle(rows)
        pd.DataFrame(rows, columns=["to", "name"], dtype=object).to_csv(
            self.workdir / "recipients.csv", index=False
        )
        for number in opted:  # before the switches: the STOP texts are old news when the campaign starts
            self.admin.add_inbound(number, SENDER, "STOP")
        self.suppression = [national(n) for n in suppressed]
        forbidden = {n: "suppressed" for n in suppressed} | {n: "opted out by STOP" for n in opted}
        return set(valid), forbidden

    # -- the emulator's switches -----------------------------------------------------------------------------

    def _set_faults(self) -> None:
        sw = self.scenario.switches
        self.admin.configure(
            fail_before_share=sw.fail_before_share,
            fail_before_status=500,
            fail_after_share=sw.fail_after_share,
            drop_after_share=sw.drop_after_share,
            send_hold_ms=self.engine.send_hold_ms() if sw.send_hold_ms else 0,
            latency_ms=sw.latency_ms,
            latency_jitter_ms=sw.latency_jitter_ms,
            live_traffic_per_list=sw.live_traffic_per_list,
            late_visibility_ms=sw.late_visibility_ms,
            clock_offset_seconds=sw.clock_offset_seconds,
            list_order=sw.list_order,
            random_seed=self.scenario.seed,
        )
        if sw.send_limit:
            self.admin.set_limits(send_limit=sw.send_limit, read_limit=sw.read_limit, window_seconds=1)
        if sw.tls_error_share:
            self._start_proxy()
        self.note(f"switches on: {sw.describe() or 'none'}")

    def _calm(self) -> None:
        """Clear the transient faults; the server's clock, list order and listing lag stay as they are."""
        stats = self.admin.stats()
        self.result.counts["faults_injected"] += sum(stats["faults"].values())
        self.result.counts["rate_limited_429s"] += sum(stats["rate_limited"].values())
        self.admin.configure(
            fail_before_share=0, fail_after_share=0, drop_after_share=0, send_hold_ms=0,
            latency_ms=0, latency_jitter_ms=0, live_traffic_per_list=0,
        )  # fmt: skip
        self.admin.set_limits(send_limit=LIFTED, read_limit=LIFTED, window_seconds=60)
        if self._proxy is not None:
            self.result.counts["tls_errors_after_send"] += len(self._proxy.corrupted)
            self._proxy.__exit__(None, None, None)
            self._proxy = None
        self.note(f"faults off (emulator counted {stats['faults']}, 429s {stats['rate_limited']})")

    def _start_proxy(self) -> None:
        from tests.campaign.tls_proxy import CorruptingTLSProxy, is_send
        from tests.hooks.tls_servers import self_signed_certificate

        share = self.scenario.switches.tls_error_share

        def corrupt(request: bytes) -> bool:
            with self._tls_lock:
                return is_send(request) and self._tls_dice.random() < share

        self._certificate = self_signed_certificate(self.workdir)
        self._proxy = CorruptingTLSProxy(self._certificate, self.base_url, corrupt).__enter__()

    def _connection(self, *, faulty: bool) -> str:
        extras = self.engine.connection_extras(self.scenario, faulty=faulty)
        host = self.base_url
        if faulty and self._proxy is not None:
            host = self._proxy.url
            extras["verify"] = str(self._certificate.cert_path)
        return json.dumps({"conn_type": "smsnexus", "host": host, "password": self.token, "extra": extras})

    # -- workers ---------------------------------------------------------------------------------------------

    def _spec(self, name: str) -> dict[str, Any]:
        report = self.workdir / f"{name}.parquet"
        self.reports[name] = report
        return {
            "run_id": f"scenario__{self.scenario.seed}",
            "recipients": str(self.workdir / "recipients.csv"),
            "message_template": "Hi {{ row.name }}",
            "from_number": SENDER,
            "default_region": "US",
            "suppression_list": self.suppression,
            "honor_opt_outs": True,
            "campaign_id": self.campaign,
            "max_concurrency": self.scenario.max_concurrency,
            "max_failure_rate": 0,
            "report_path": str(report),
            **self.engine.operator_kwargs(self.scenario),
        }

    def _start(self, name: str, plan: WorkerPlan | None, *, faulty: bool) -> ScenarioWorker:
        spec = self._spec(name)
        intervention = plan.intervention if plan else None
        if intervention is not None and intervention.point != SENDS:
            spec["stop"] = {
                "point": intervention.point,
                "nth": intervention.count,
                "flag": str(self.workdir / f"{name}.flag"),
            }
        env = environment(self._connection(faulty=faulty), self.airflow_home)
        worker = ScenarioWorker(name, spec, env=env, workdir=self.workdir)
        self._workers.append(worker)
        self.result.counts["worker_runs"] += 1
        self.note(f"{name} started (pid {worker.pid})" + (f": {plan.describe()}" if plan else ""))
        return worker

    def sends(self) -> int:
        """Sends in the emulator's record."""
        return len(self.admin.sent_messages())

    def _step_clock(self, steps: int) -> None:
        """Move the server's clock ``steps`` clock steps away from the scenario's offset."""
        sw = self.scenario.switches
        if sw.clock_step_seconds and steps:
            offset = sw.clock_offset_seconds + steps * sw.clock_step_seconds
            self.admin.configure(clock_offset_seconds=offset)
            self.note(f"server clock stepped to {offset:+.0f} s")

    def _run_round(self, number: int, plans: tuple[WorkerPlan, ...]) -> None:
        self._step_clock(number - 1)
        base = self.sends()
        names = [f"r{number}w{n}" for n in range(len(plans))]
        workers: list[ScenarioWorker | None] = [None] * len(plans)
        workers[0] = self._start(names[0], plans[0], faulty=True)
        fired = [False] * len(plans)
        deadline = time.monotonic() + WORKER_DEADLINE * len(plans)
        while True:
            sent = self.sends() - base
            for n, plan in enumerate(plans):
                worker = workers[n]
                if worker is None:
                    if self._may_start(plan, workers[0], sent):
                        workers[n] = self._start(names[n], plan, faulty=True)
                    continue
                if not fired[n] and plan.intervention is not None:
                    fired[n] = self._maybe_fire(worker, plan, sent)
                if worker.paused and self._may_resume(worker, plan, workers, n):
                    worker.resume()
                    self.note(f"{worker.name} resumed (SIGCONT) after {sent} sends of the round")
            if all(w is not None and w.exited() for w in workers):
                break
            if time.monotonic() > deadline:
                self._hang([w for w in workers if w is not None and not w.exited()])
                break
            time.sleep(POLL)
        for n, worker in enumerate(workers):
            assert worker is not None
            if plans[n].intervention is not None and not fired[n]:
                self.result.counts["interventions_missed"] += 1
                self.note(f"{worker.name}: its trigger never came ({plans[n].intervention.describe()})")
            self.note(f"{worker.name} ended: {worker.outcome()}")
        self.note(f"round {number}: {self.sends() - base} sends")

    def _may_start(self, plan: WorkerPlan, first: ScenarioWorker | None, sent: int) -> bool:
        assert first is not None
        first_gone = first.exited() or first.stopped()
        if plan.start == AFTER_SENDS:
            return sent >= plan.after or first_gone
        if plan.start == AFTER_FIRST_STOPPED:
            return first_gone
        return True

    def _maybe_fire(self, worker: ScenarioWorker, plan: WorkerPlan, sent: int) -> bool:
        intervention = plan.intervention
        assert intervention is not None
        if worker.exited():
            return False
        if intervention.point == SENDS:
            if sent < intervention.count:
                return False
        elif not worker.reached_stop():
            return False
        where = intervention.describe().split(" at ", 1)[1].split(",")[0]
        if intervention.action == KILL:
            worker.kill()
            self.result.counts["kills"] += 1
            self.note(f"{worker.name} SIGKILLed at {where} ({sent} sends of the round)")
        else:
            worker.pause()
            self.result.counts["pauses"] += 1
            self.note(f"{worker.name} SIGSTOPped at {where} ({sent} sends of the round)")
            self._out_of_ledger_transaction(worker)
        return True

    def _out_of_ledger_transaction(self, worker: ScenarioWorker) -> None:
        """A worker stopped inside a ledger transaction (another of its threads was committing) holds the write
        lock every other attempt needs (their writes fail after the busy timeout): nudge it until it holds none,
        else let it go on."""
        for nudge in range(NUDGES):
            if not self.ledger.locked():
                if nudge:
                    self.result.counts["pauses_nudged_out_of_a_ledger_transaction"] += 1
                    self.note(f"{worker.name} nudged {nudge} times until it held no ledger transaction")
                return
            worker.nudge()
        worker.resume()
        self.result.counts["pauses_ended_holding_the_ledger_lock"] += 1
        self.note(f"{worker.name} resumed at once: it kept holding the ledger's write lock")

    def _may_resume(
        self, worker: ScenarioWorker, plan: WorkerPlan, workers: list[ScenarioWorker | None], n: int
    ) -> bool:
        assert plan.intervention is not None
        others = [w for i, w in enumerate(workers) if i != n]
        if plan.intervention.resume == OTHER_EXITED and others:
            return all(w is not None and w.exited() for w in others)
        assert plan.intervention.resume in (LEASES_EXPIRED, OTHER_EXITED)
        return not self.ledger.live_leases(worker.pid)

    def _hang(self, workers: list[ScenarioWorker]) -> None:
        for worker in workers:
            self.result.violations.append(
                Violation(
                    HANG, None, f"{worker.name} still ran after {WORKER_DEADLINE:.0f} s: {worker.tail()}"
                )
            )
            worker.resume()
            worker.kill()

    # -- recovery and the verdict ------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Rerun the campaign until a run succeeds, or two runs in a row end with the same outcomes."""
        previous = None
        self._step_clock(len(self.scenario.rounds))
        for number in range(1, RECOVERY_RUNS + 1):
            worker = self._start(f"rec{number}", None, faulty=False)
            try:
                worker.process.wait(timeout=WORKER_DEADLINE)
            except subprocess.TimeoutExpired:
                self._hang([worker])
                return
            outcomes = self._report_counts(worker.name)
            self.note(f"{worker.name} ended: {worker.outcome()} {dict(outcomes)}")
            result = worker.result()
            if result is not None and result["ok"]:
                return
            if outcomes and outcomes == previous:
                return
            previous = outcomes

    def _report_counts(self, name: str) -> Counter[str]:
        import pandas as pd

        path = self.reports[name]
        return Counter(pd.read_parquet(path)["outcome"]) if path.exists() else Counter()

    def _check(self, expected: set[str], forbidden: dict[str, str]) -> None:
        import pandas as pd

        ledger = [
            LedgerRow(row["recipient"], row["state"], row["message_id"], row["reason"])
            for row in self.ledger.rows()
        ]
        reports = {
            name: pd.read_parquet(path).to_dict("records")
            for name, path in self.reports.items()
            if path.exists()
        }
        sent = self.admin.sent_messages()
        self.result.counts["messages_checked"] += len(sent)
        self.result.counts["rows_left_unknown"] += sum(row.state == "unknown" for row in ledger)
        self.result.violations += check_campaign(
            sent, expected=expected, forbidden=forbidden, ledger=ledger, reports=reports
        )
        self.note(f"checked: {len(sent)} messages, {len(ledger)} ledger rows, {len(reports)} reports")
