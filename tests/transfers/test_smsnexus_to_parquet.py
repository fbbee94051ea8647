"""SMSNexusToParquetOperator against the emulator: exact ids, live traffic, faults, reruns, schema."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from airflow.sdk import Asset

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError, SMSNexusServerError
from airflow_provider_smsnexus.transfers.parquet_files import ParquetExportWriter
from airflow_provider_smsnexus.transfers.schema import arrow_schema
from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
from tests.transfers.export_helpers import (
    fail_after_pages,
    ids_created_in,
    read_dataset,
    run_export,
    seed_days,
)


def snapshot(root):
    return {
        os.path.relpath(os.path.join(folder, name), root): open(os.path.join(folder, name), "rb").read()
        for folder, _, names in os.walk(root)
        for name in names
    }


def wait_for_the_next_second():
    time.sleep(1.01 - datetime.now(timezone.utc).microsecond / 1e6)


def exported_ids(path):
    ids = read_dataset(path).column("id").to_pylist()
    assert len(ids) == len(set(ids)), "an id was exported twice"
    return sorted(ids)


def test_a_multi_page_export_writes_exactly_the_windows_ids_into_day_partitions(
    smsnexus_emulator, smsnexus_conn, tmp_path
):
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_500, days=8)
    start, end = first + timedelta(days=2), first + timedelta(days=5)
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "messages"))
    result = run_export(op, start, end)

    expected = ids_created_in(admin, start, end)
    assert len(expected) > 300  # several pages
    assert exported_ids(tmp_path / "messages") == expected
    assert sorted(os.listdir(tmp_path / "messages")) == [
        f"created_date={(start + timedelta(days=n)).date().isoformat()}" for n in range(3)
    ]
    assert result == {
        "resource": "messages",
        "rows": len(expected),
        "pages": result["pages"],
        "requests": result["requests"],
        "duplicates_dropped": 0,
        "outside_window": 0,
        "filtered_out": 0,
        "reread_rows": 0,
        "passes": 1,
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "window_end": end.isoformat().replace("+00:00", "Z"),
        "window_rule": "data_interval",
        "destination": (tmp_path / "messages").as_uri(),
    }
    assert result["pages"] >= len(expected) / 100
    assert result["requests"] == result["pages"]
    json.dumps(result)  # XCom-ready


@pytest.mark.parametrize("server_filters_dates", [True, False])
def test_new_messages_arriving_during_the_export_neither_hide_nor_repeat_window_rows(
    smsnexus_emulator, monkeypatch, tmp_path, server_filters_dates
):
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_200, days=3)  # seeded up to a minute ago
    # The window ends before the export starts, so every message created during it lies outside: the
    # expected ids are known before the run, from the emulator's record.
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=30)
    expected = ids_created_in(admin, first, end)
    admin.set_faults(live_traffic_per_list=7)
    extras = {"retry_backoff": 0.01, "retry_backoff_max": 0.05}
    if not server_filters_dates:  # the server lists everything, new messages on top: pages drift
        extras.update(date_from_param="since", date_to_param="until")
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(**extras))
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"), per_page=50)
    result = run_export(op, first, end)

    assert exported_ids(tmp_path / "m") == expected == ids_created_in(admin, first, end)
    assert len(admin.messages(origin="live")) > 7 * 20  # live traffic did arrive during the export
    if not server_filters_dates:
        assert result["duplicates_dropped"] > 0  # rows pushed onto the next page came twice, and were dropped


def test_a_window_ending_in_the_future_is_cut_to_the_listed_horizon(smsnexus_emulator, monkeypatch, tmp_path):
    # The horizon: the server's present, minus the clock estimate's uncertainty and listing_delay (3 s here).
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(listing_delay=3, timeout=10)
    )
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 300, days=2)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = run_export(
        SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m")),
        first,
        before + timedelta(days=1),
    )
    after = datetime.now(timezone.utc)
    end = datetime.fromisoformat(result["window_end"].replace("Z", "+00:00"))
    # The emulator's clock is the machine's; a Date header has whole seconds: at most 1 s of uncertainty.
    assert before - timedelta(seconds=3 + 2) <= end <= after - timedelta(seconds=3)
    # Every message created before the window's end, and no more, is in the files.
    assert exported_ids(tmp_path / "m") == ids_created_in(admin, first, end)


def test_a_server_that_ignores_the_date_parameters_still_yields_exactly_the_window(
    smsnexus_emulator, monkeypatch, tmp_path
):
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_000, days=6)
    # Renamed parameters: the emulator does not know them, so it lists every message.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            date_from_param="created_from",
            date_to_param="created_to",
            retry_backoff=0.01,
            retry_backoff_max=0.05,
        ),
    )
    start, end = first + timedelta(days=1), first + timedelta(days=3)
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"))
    run_export(op, start, end)
    assert exported_ids(tmp_path / "m") == ids_created_in(admin, start, end)


def test_500s_and_429s_on_some_pages_still_give_the_exact_window(
    smsnexus_emulator, smsnexus_conn, monkeypatch, tmp_path
):
    import requests

    admin = smsnexus_emulator.admin
    first = seed_days(admin, 800, days=4)
    admin.set_faults(fail_before_share=0.25, random_seed=3)
    admin.set_limits(read_limit=5, window_seconds=1)
    original = ParquetExportWriter.heartbeat

    def another_client_uses_up_the_window(self):  # every other page: the hook's view of the quota goes stale
        original(self)
        another_client_uses_up_the_window.pages += 1
        if another_client_uses_up_the_window.pages % 2 == 0:
            for _ in range(
                20
            ):  # until the server refuses it: the window is used up, however slow this machine
                answer = requests.get(
                    f"{smsnexus_emulator.base_url}/balance",
                    headers={"Authorization": f"Bearer {smsnexus_emulator.token}"},
                    timeout=5,
                )
                if answer.status_code == 429:
                    break

    another_client_uses_up_the_window.pages = 0
    monkeypatch.setattr(ParquetExportWriter, "heartbeat", another_client_uses_up_the_window)
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"))
    result = run_export(op, first, first + timedelta(days=4))
    stats = admin.stats()
    assert stats["faults"]["fail_before"] > 0
    assert op.hook.stats["rate_limited"] > 0
    assert exported_ids(tmp_path / "m") == ids_created_in(admin, first, first + timedelta(days=4))
    assert result["requests"] > result["pages"]  # the retries are counted


def test_at_the_accounts_read_limit_the_export_makes_only_the_requests_it_needs_and_gets_no_429(
    smsnexus_emulator, monkeypatch, tmp_path
):
    admin = smsnexus_emulator.admin
    seed_days(admin, 650, days=2)
    admin.set_limits(read_limit=3, window_seconds=1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(read_rate_limit=3, rate_limit_period=1, retry_backoff=0.01),
    )
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"))
    result = run_export(op)
    stats = admin.stats()
    assert stats["rate_limited"]["other"] == 0
    assert stats["max_in_window"]["other"] <= 3
    assert exported_ids(tmp_path / "m") == sorted(m["id"] for m in admin.messages())
    assert len(admin.messages()) == 650
    # ceil(650 / 100) pages, plus one read of the server's clock for the window's listed horizon.
    assert (result["requests"], stats["requests"]["other"]) == (7, 8)


def test_a_rerun_with_lookback_picks_up_status_changes(smsnexus_emulator, smsnexus_conn, tmp_path):
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    sent = [hook.send_sms("+12125550100", f"+121255501{n:02d}", f"order {n}")["id"] for n in range(10, 30)]
    wait_for_the_next_second()  # rows of the second the export starts in are left to the next run
    now = datetime.now(timezone.utc)
    first = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"))
    run_export(first, now - timedelta(hours=1), now + timedelta(hours=1))
    assert set(read_dataset(tmp_path / "m").column("status").to_pylist()) == {"queued"}

    admin.advance_lifecycle()
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    rerun = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"), lookback=timedelta(days=1))
    run_export(rerun, later, later + timedelta(days=1))  # the next interval: only the lookback covers them

    table = read_dataset(tmp_path / "m")
    assert sorted(table.column("id").to_pylist()) == sorted(sent)
    assert set(table.column("status").to_pylist()) <= {"delivered", "failed"}


def test_rerunning_a_window_gives_the_same_partitions(smsnexus_emulator, smsnexus_conn, tmp_path):
    first = seed_days(smsnexus_emulator.admin, 600, days=4)
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"))
    run_export(op, first, first + timedelta(days=2))
    once = {k: pq.read_table(tmp_path / "m" / k).sort_by("id") for k in snapshot(tmp_path / "m")}
    run_export(op, first, first + timedelta(days=2))
    twice = {k: pq.read_table(tmp_path / "m" / k).sort_by("id") for k in snapshot(tmp_path / "m")}
    assert once.keys() == twice.keys()
    assert all(once[k].equals(twice[k]) for k in once)
    assert sorted(os.listdir(tmp_path)) == ["m"]


@pytest.mark.parametrize("previous_export", [True, False])
def test_a_run_failing_midway_leaves_the_destination_as_it_was(
    smsnexus_emulator, smsnexus_conn, tmp_path, monkeypatch, previous_export
):
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_000, days=4)
    if previous_export:
        run_export(
            SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m")),
            first,
            first + timedelta(days=4),
        )
    before = snapshot(tmp_path)
    admin.advance_lifecycle()

    fail_after_pages(monkeypatch, admin, ParquetExportWriter, pages=6)
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"), batch_size=100)
    with pytest.raises(SMSNexusServerError):
        run_export(op, first, first + timedelta(days=4))
    assert op._stats.rows >= 500  # batches had been staged when it failed
    assert snapshot(tmp_path) == before  # same files, same bytes, no staging left


def test_files_have_the_documented_schema_for_every_resource(smsnexus_emulator, smsnexus_conn, tmp_path):
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    seed_days(smsnexus_emulator.admin, 300, days=2)
    SMSNexusHook().send_sms("+12125550100", "+12125550150", "hello")
    for resource in ("messages", "conversations", "phone_numbers"):
        op = SMSNexusToParquetOperator(
            task_id=f"export_{resource}", resource=resource, path=str(tmp_path / resource)
        )
        result = run_export(op)
        files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / resource) for f in fs]
        schema = pq.read_schema(files[0])
        assert schema.equals(arrow_schema(resource), check_metadata=False), resource
        assert result["rows"] == sum(pq.read_metadata(f).num_rows for f in files)
    numbers = pq.read_table(tmp_path / "phone_numbers" / "data.parquet").sort_by("id")
    assert numbers.column("capabilities").to_pylist()[:2] == [["sms", "mms"], ["sms"]]
    assert pq.read_table(tmp_path / "conversations" / "data.parquet").num_rows > 0


def test_outlets_and_lineage_name_the_api_and_the_destination(smsnexus_emulator, smsnexus_conn, tmp_path):
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m"))
    assert op.outlets == [Asset(uri=(tmp_path / "m").as_uri())]
    templated = SMSNexusToParquetOperator(task_id="t", path="/data/{{ ds }}")
    assert templated.outlets == []
    run_export(op)
    lineage = op.lineage_datasets()
    assert lineage["input"] == (smsnexus_emulator.base_url.rsplit("/api", 1)[0], "/api/messages")
    assert lineage["output"] == ("file", str(tmp_path / "m"))
    assert ("created_at", "timestamp[us, tz=UTC]") in lineage["schema"]
    facets = op.get_openlineage_facets_on_complete(None)  # the OpenLineage provider is a dev dependency
    assert (facets.inputs[0].namespace, facets.inputs[0].name) == lineage["input"]
    assert (facets.outputs[0].namespace, facets.outputs[0].name) == ("file", str(tmp_path / "m"))
    schema = {f.name: f.type for f in facets.outputs[0].facets["schema"].fields}
    assert schema["id"] == "int64"
    assert schema["created_at"] == "timestamp[us, tz=UTC]"


def test_filters_and_parameters_are_checked_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="exported whole"):
        SMSNexusToParquetOperator(task_id="t", path="/x", resource="conversations", status="queued")
    with pytest.raises(ValueError, match="resource must be one of"):
        SMSNexusToParquetOperator(task_id="t", path="/x", resource="webhooks")
    with pytest.raises(ValueError, match="per_page"):
        SMSNexusToParquetOperator(task_id="t", path="/x", per_page=500)
    with pytest.raises(TypeError, match="timedelta"):
        SMSNexusToParquetOperator(task_id="t", path="/x", lookback=2)
    with pytest.raises(ValueError, match="status must be one of"):
        SMSNexusToParquetOperator(task_id="t", path="/x", status="read")
    SMSNexusToParquetOperator(task_id="t", path="/x", status="{{ params.status }}")  # checked when rendered


def test_status_and_direction_filters_export_only_matching_messages(
    smsnexus_emulator, smsnexus_conn, tmp_path
):
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 700, days=3)
    op = SMSNexusToParquetOperator(
        task_id="export", path=str(tmp_path / "m"), status="delivered", direction="outbound"
    )
    result = run_export(op, first, first + timedelta(days=3))
    expected = ids_created_in(
        admin, first, first + timedelta(days=3), status="delivered", direction="outbound"
    )
    assert expected
    assert exported_ids(tmp_path / "m") == expected
    assert result["rows"] == len(expected)


def test_an_id_that_is_not_a_number_is_a_typed_error_that_leaves_the_destination(monkeypatch, tmp_path):
    import responses

    base = "https://smsnexus.invalid/api"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        json.dumps(
            {
                "conn_type": "smsnexus",
                "host": base,
                "password": "SMSNEXUS-TEST-TOKEN-x",
                "extra": {"max_retries": 0},
            }
        ),
    )
    rows = [{"id": [1], "created_at": "2026-03-08T12:00:00Z"}]  # no real server answers this
    with responses.RequestsMock() as mock:
        mock.get(
            f"{base}/balance", json={"success": True, "data": {"credits": 1}}
        )  # the horizon's clock read
        mock.get(f"{base}/messages", json={"success": True, "data": rows, "meta": {"last_page": 1}})
        with pytest.raises(SMSNexusResponseError, match="not a whole number"):
            run_export(SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "m")))
    assert sorted(os.listdir(tmp_path)) == []


# -- a path that cannot take the export --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "path", "partition_by", "names", "says"),
    [
        # a partitioned export writes folders: `path` is a file
        ({"messages": "file"}, "messages", "auto", "messages", "is a file, where the export needs a folder"),
        # a parent of `path` is a file
        ({"exports": "file"}, "exports/messages", "auto", "exports", "is a file, where the export needs"),
        # an unpartitioned export to a name ending in .parquet writes one file: `path` is a folder
        ({"messages.parquet": "folder"}, "messages.parquet", None, "messages.parquet", "is a folder"),
    ],
    ids=["path-is-a-file", "parent-is-a-file", "file-path-is-a-folder"],
)
def test_a_path_that_cannot_take_the_files_fails_before_reading_naming_path(
    smsnexus_emulator, smsnexus_conn, tmp_path, layout, path, partition_by, names, says
):
    from airflow_provider_smsnexus.exceptions import SMSNexusDestinationError

    seed_days(smsnexus_emulator.admin, 50, days=2)
    for name, kind in layout.items():
        (tmp_path / name).mkdir() if kind == "folder" else (tmp_path / name).write_text("keep me")
    before = snapshot(tmp_path)
    op = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / path), partition_by=partition_by)

    with pytest.raises(SMSNexusDestinationError) as caught:
        run_export(op)

    error = caught.value
    assert (error.parameter, error.path) == ("path", str(tmp_path / path))
    assert f"path={str(tmp_path / path)!r}" in str(error)
    assert f"{tmp_path / names} {says}" in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__
    # Checked before the first page: the emulator saw no request, and the files are as they were.
    assert smsnexus_emulator.admin.stats()["requests"]["other"] == 0
    assert snapshot(tmp_path) == before
    # The same export to a free path next to it exports the whole history: the check refuses only the path.
    run_export(SMSNexusToParquetOperator(task_id="export", path=str(tmp_path / "free")))
    assert exported_ids(tmp_path / "free") == sorted(m["id"] for m in smsnexus_emulator.admin.messages())
