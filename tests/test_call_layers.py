"""The two walks through the layers, traced on a real run against the emulator: a campaign's send (from
``SMSNexusBulkSendOperator.execute`` to the socket) and an export's rows (from ``SMSNexusToParquetOperator.execute``
to the socket). Every call stack of the package's modules goes down: no module is re-entered after the stack has
left it for another (``A -> B -> A``), which is what a callback up into a caller or a helper living in the layer
above looks like."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
from tests.transfers.export_helpers import ids_created_in, run_export, seed_days

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

PACKAGE = "airflow_provider_smsnexus"
SENDER = "+12125550100"


def module_of(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name == PACKAGE or name.startswith(PACKAGE + ".") else None


class LayerTracer:
    """Record every chain of package modules in which a module comes back after another one (``A -> B -> A``)."""

    def __init__(self) -> None:
        self.returns: Counter[tuple[str, ...]] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or module_of(frame) is None:
            return
        chain: list[str] = []
        current: FrameType | None = frame
        while current is not None:
            module = module_of(current)
            if module is not None and (not chain or chain[-1] != module):
                chain.append(module)
            current = current.f_back
        chain.reverse()  # outermost first
        with self._lock:
            self.calls += 1
            if len(chain) != len(set(chain)):
                self.returns[tuple(name.removeprefix(PACKAGE + ".") for name in chain)] += 1

    def run(self, action: Callable[[], Any]) -> Any:
        threading.setprofile(self.profile)
        sys.setprofile(self.profile)
        try:
            return action()
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]


def fake_module(name: str, source: str) -> dict[str, Any]:
    """Functions compiled as if they lived in ``airflow_provider_smsnexus.<name>`` (for testing the tracer)."""
    namespace: dict[str, Any] = {"__name__": f"{PACKAGE}.{name}"}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace


def test_the_tracer_sees_a_module_entered_again_and_nothing_else():
    # a -> b -> a (a callback up into the caller) is seen; a -> b -> c is not
    upper = fake_module(
        "fake_upper", "def outer(middle):\n    return middle(inner)\n\ndef inner():\n    return 1\n"
    )
    lower = fake_module("fake_lower", "def middle(function):\n    return function()\n")
    lowest = fake_module("fake_lowest", "def leaf():\n    return 2\n")
    tracer = LayerTracer()

    tracer.run(lambda: upper["outer"](lower["middle"]))
    tracer.run(lambda: lower["middle"](lowest["leaf"]))

    assert dict(tracer.returns) == {("fake_upper", "fake_lower", "fake_upper"): 1}
    assert tracer.calls == 5


def test_a_campaign_send_goes_down_the_layers(smsnexus_emulator, smsnexus_conn, postgres_conn_id, tmp_path):
    rows = [{"to": f"+1212555010{n}", "name": f"n{n}"} for n in range(1, 4)]
    ledger = {
        "ledger_conn_id": postgres_conn_id,
        "ledger_table": f"layers_{tmp_path.name[-12:].replace('-', '_')}",
    }
    operator = SMSNexusBulkSendOperator(
        task_id="send", recipients=rows, message_template="Hi {{ row.name }}", from_number=SENDER, **ledger
    )
    tracer = LayerTracer()

    summary = tracer.run(lambda: operator.execute(context_of(run_id="manual__layers")))

    assert sorted(m["to"] for m in smsnexus_emulator.admin.sent_messages()) == [r["to"] for r in rows]
    assert summary["sent"] == 3
    assert tracer.calls > 100
    assert dict(tracer.returns) == {}


def test_an_exports_rows_go_down_the_layers(smsnexus_emulator, smsnexus_conn, tmp_path):
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 450, days=3)
    start, end = first, first + timedelta(days=2)
    operator = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "messages"))
    tracer = LayerTracer()

    result = tracer.run(lambda: run_export(operator, start, end))

    assert result["rows"] == len(ids_created_in(admin, start, end)) > 100  # several pages
    assert tracer.calls > 100
    assert dict(tracer.returns) == {}


def context_of(run_id: str) -> dict[str, Any]:
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="layers", task_id="send", run_id=run_id, map_index=-1)
    return {"ti": ti, "run_id": run_id, "ds": "2026-03-08", "params": {}}
