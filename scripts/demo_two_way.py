"""The demo's inbound step: hand a customer's reply to ``smsnexus_inbound_replies`` the way Airflow would,
without a running triggerer or scheduler.

Run by ``scripts/demo.py`` in the demo's Airflow environment, with the id of the reply to wait for:

1. the DAG's own asset watcher trigger (``SMSNexusInboundMessageTrigger``) polls the inbound messages in
   this process, until it has handed on that reply (its position in memory: the asset state store exists
   only inside a triggerer);
2. each event is recorded as an asset event by Airflow's ``AssetManager``, as ``Trigger.submit_event`` does
   in a triggerer;
3. ``dag.test()`` runs the DAG without a logical date, the events linked to the run as the scheduler
   would link them.

Prints one JSON line: ``{"events": [message ids], "state": "...", "run_id": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "smsnexus_inbound_replies"


def poll_until(trigger: Any, last_id: int) -> list[dict[str, Any]]:
    """The trigger's event payloads up to and including message ``last_id``."""

    async def take() -> list[dict[str, Any]]:
        events = trigger.run()
        payloads: list[dict[str, Any]] = []
        try:
            while not payloads or payloads[-1]["message"]["id"] != last_id:
                payloads.append((await asyncio.wait_for(anext(events), 60)).payload)
        finally:
            await events.aclose()
        return payloads

    return asyncio.run(take())


def main(reply_id: int) -> int:
    from unittest import mock

    from airflow.assets.manager import AssetManager
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import dagrun
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey

    from airflow_provider_smsnexus.triggers import inbound

    dag = DagBag(dag_folder=str(REPO / "dags" / "inbound_replies.py")).dags[DAG_ID]
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    _, kwargs = watcher.trigger.serialize()
    position = inbound.MemoryPositionStore()
    inbound.open_position_store = lambda asset_name: position
    payloads = poll_until(inbound.SMSNexusInboundMessageTrigger(**{**kwargs, "poll_interval": 0.2}), reply_id)

    real = dagrun.get_or_create_dagrun

    def with_asset_events(*args: Any, session: Any, **options: Any) -> Any:
        run = real(*args, session=session, **options)
        for payload in payloads:
            event = AssetManager.register_asset_change(
                asset=SerializedAssetUniqueKey(name=asset.name, uri=asset.uri),
                extra={"from_trigger": True, "payload": payload},
                session=session,
            )
            run.consumed_asset_events.append(event)
        session.commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", with_asset_events):
        run = dag.test(logical_date=None)
    result = {"events": [p["message"]["id"] for p in payloads], "state": str(run.state), "run_id": run.run_id}
    print(json.dumps(result))
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
