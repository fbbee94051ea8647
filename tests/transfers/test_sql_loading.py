"""The SQL destination on local data: table creation, modes, one transaction, COPY, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
import sqlalchemy as sa

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.schema import arrow_schema, rows_to_table
from airflow_provider_smsnexus.transfers.sql_loading import (
    ArrowSpool,
    SqlTableLoader,
    dedup_last_wins,
    sqlite_engine,
)
from tests.transfers.export_helpers import message_rows, table_ids

LOG = logging.getLogger(__name__)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    """The same tests on the embedded SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "warehouse.db")
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("pg_engine")


@pytest.fixture
def table(engine, table_name):
    yield table_name
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table_name}"')


def messages(first_id, count, status="queued"):
    rows = message_rows(count, first_id=first_id, step=timedelta(minutes=1))
    for row in rows:
        row["status"] = status
    return rows_to_table("messages", rows)


def statuses(engine, table):
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f'SELECT id, status FROM "{table}"')).all())


def load(engine, table, batches, mode="upsert", resource="messages", **options):
    return SqlTableLoader(engine, resource, table, schema=None, mode=mode, log=LOG, **options).load(batches)


def test_the_table_is_created_with_real_types_and_id_as_primary_key(engine, table):
    load(
        engine,
        table,
        [rows_to_table("phone_numbers", [{"id": 1, "capabilities": ["sms", "mms"]}])],
        resource="phone_numbers",
    )
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint(table)["constrained_columns"] == ["id"]
    types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
    assert isinstance(types["id"], sa.BigInteger)
    assert isinstance(types["created_at"], sa.DateTime)
    assert isinstance(types["number"], sa.Text)
    if engine.dialect.name == "postgresql":
        assert types["created_at"].timezone
        assert type(types["capabilities"]).__name__ == "JSONB"
    with engine.connect() as conn:
        capabilities = conn.execute(sa.text(f'SELECT capabilities FROM "{table}"')).scalar_one()
    if isinstance(capabilities, str):  # SQLite keeps JSON as text
        capabilities = json.loads(capabilities)
    assert capabilities == ["sms", "mms"]


def test_upsert_inserts_new_ids_and_updates_changed_rows(engine, table):
    assert load(engine, table, [messages(1, 10)]) == 10
    assert load(engine, table, [messages(6, 10, status="delivered")]) == 10
    assert statuses(engine, table) == {
        **{i: "queued" for i in range(1, 6)},
        **{i: "delivered" for i in range(6, 16)},
    }


@pytest.mark.parametrize("use_copy", [True, False])
def test_duplicate_ids_within_a_batch_never_break_an_upsert_and_the_last_row_wins(engine, table, use_copy):
    batch = pa.concat_tables([messages(1, 5), messages(3, 5, status="failed")])
    load(engine, table, [batch], use_copy=use_copy)
    load(engine, table, [batch], use_copy=use_copy)
    assert statuses(engine, table) == {1: "queued", 2: "queued", **{i: "failed" for i in range(3, 8)}}


@pytest.mark.parametrize("existing", [False, True], ids=["new table", "existing table"])
@pytest.mark.parametrize("use_copy", [True, False])
def test_an_id_repeated_in_a_later_batch_of_one_run_is_upserted_and_the_last_row_wins(
    engine, table, use_copy, existing
):
    # COPY goes straight into a table the run created, and through one merge of the stage into an existing
    # one: either way a repeat across batches must end as its last row.
    if existing:
        load(engine, table, [messages(20, 2, status="sent")], use_copy=use_copy)
    load(engine, table, [messages(1, 5), messages(10, 3), messages(4, 3, status="failed")], use_copy=use_copy)
    assert statuses(engine, table) == {
        **{i: "queued" for i in (1, 2, 3, 10, 11, 12)},
        **{i: "failed" for i in (4, 5, 6)},
        **({20: "sent", 21: "sent"} if existing else {}),
    }


def test_append_inserts_rows_and_an_id_already_there_fails_the_run_leaving_the_table_unchanged(engine, table):
    load(engine, table, [messages(1, 5)], mode="append")
    load(engine, table, [messages(6, 5)], mode="append")
    assert table_ids(engine, table) == list(range(1, 11))
    with pytest.raises(SMSNexusError, match=r"already in .* Use mode='upsert'"):
        load(engine, table, [messages(11, 5), messages(10, 1, status="sent")], mode="append")
    assert table_ids(engine, table) == list(range(1, 11))
    assert set(statuses(engine, table).values()) == {"queued"}


def test_append_that_fails_to_record_its_run_says_so_and_does_not_blame_the_ids(tmp_path, table_name):
    from airflow_provider_smsnexus.transfers.sql_records import RECORDS_TABLE, write_sql_record
    from airflow_provider_smsnexus.transfers.window import ExportRun

    engine = sqlite_engine(tmp_path / "warehouse.db")
    end = datetime(2026, 3, 2, tzinfo=timezone.utc)
    with engine.begin() as conn:  # the records table exists; a trigger makes its insert fail as a race would
        write_sql_record(conn, None, "other", ExportRun("d.o", "r0", None, end, rows=0))
        conn.exec_driver_sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {RECORDS_TABLE} BEGIN SELECT RAISE(ABORT, 'taken'); END"
        )
    loader = SqlTableLoader(engine, "messages", table_name, schema=None, mode="append", log=LOG)
    with pytest.raises(SMSNexusError, match=r"The run 'r1' of d\.t could not be recorded") as caught:
        loader.load([messages(1, 5)], record=ExportRun("d.t", "r1", None, end, rows=5))
    assert "already in" not in str(caught.value)
    with engine.connect() as conn:  # one transaction: no rows without their record
        assert not sa.inspect(conn).has_table(table_name)
    engine.dispose()


def test_replace_leaves_exactly_the_rows_of_the_run(engine, table):
    load(engine, table, [messages(1, 10)])
    load(engine, table, [messages(20, 3), messages(30, 2)], mode="replace")
    assert table_ids(engine, table) == [20, 21, 22, 30, 31]


def test_a_run_that_fails_midway_leaves_the_table_exactly_as_it_was(engine, table):
    load(engine, table, [messages(1, 10)])

    def batches_then_failure(mode):
        if mode != "append":
            yield messages(1, 10, status="delivered")
        yield messages(11, 10)
        raise SMSNexusError("the API failed after two batches")

    for mode in ("upsert", "append", "replace"):
        with pytest.raises(SMSNexusError, match="after two batches"):
            load(engine, table, batches_then_failure(mode), mode=mode)
        assert statuses(engine, table) == {i: "queued" for i in range(1, 11)}


def test_a_failed_first_run_leaves_no_table_behind(engine, table):
    def failing():
        yield messages(1, 10)
        raise SMSNexusError("boom")

    with pytest.raises(SMSNexusError):
        load(engine, table, failing())
    assert not sa.inspect(engine).has_table(table)


def test_databases_without_native_upsert_delete_then_insert_in_the_same_transaction(
    engine, table, monkeypatch
):
    monkeypatch.setattr(SqlTableLoader, "native_upsert_dialects", ())
    load(engine, table, [messages(1, 10)], use_copy=False)
    load(engine, table, [messages(6, 10, status="sent")], use_copy=False)
    assert statuses(engine, table) == {
        **{i: "queued" for i in range(1, 6)},
        **{i: "sent" for i in range(6, 16)},
    }


def test_timestamps_and_awkward_text_survive_the_round_trip(engine, table):
    rows = message_rows(3)
    rows[0]["body"] = 'quotes " and , commas\nnew lines\r\n and emoji 🎉 and RTL שלום'
    rows[1]["body"] = "nul\x00character"
    rows[2]["body"] = ""
    rows[2]["to"] = None
    rows[0]["created_at"] = "2026-03-08T23:59:59.123456+02:00"
    load(engine, table, [rows_to_table("messages", rows)])
    with engine.connect() as conn:
        got = {
            r.id: r for r in conn.execute(sa.text(f'SELECT id, body, to_number, created_at FROM "{table}"'))
        }
    assert got[1].body == rows[0]["body"]
    assert got[2].body in ("nul\ufffdcharacter", "nul\x00character")
    assert got[3].body == ""
    assert got[3].to_number is None
    created = got[1].created_at
    if isinstance(created, str):  # SQLite keeps text
        created = datetime.fromisoformat(created)
    if created.tzinfo is None:  # SQLite: naive UTC
        created = created.replace(tzinfo=timezone.utc)
    assert created == datetime(2026, 3, 8, 21, 59, 59, 123456, tzinfo=timezone.utc)


def test_timestamps_at_the_calendars_edges_come_back_as_the_same_instants(engine, table):
    # The COPY path writes UTC timestamps as text of its own (bench/README.md): the edges of years 1-9999,
    # before the epoch with microseconds, and a missing time, checked against hand-written instants.
    instants = {
        1: "0001-01-01T00:00:00Z",
        2: "9999-12-31T23:59:59.999999Z",
        3: "1969-12-31T23:59:59.000001Z",
        4: "2026-03-08T00:00:00.5+05:30",
        5: None,
    }
    rows = message_rows(5)
    for row in rows:
        row["created_at"] = instants[row["id"]]
    loading = engine
    if engine.dialect.name == "postgresql":  # a session far from UTC: the text must say its zone itself
        loading = sa.create_engine(engine.url, connect_args={"options": "-c TimeZone=Asia/Kolkata"})
    load(loading, table, [rows_to_table("messages", rows)])
    loading.dispose()
    with engine.connect() as conn:  # read in UTC: year 9999's last microsecond is year 10000 in Kolkata
        got = dict(conn.execute(sa.text(f'SELECT id, created_at FROM "{table}"')).all())
    for key, value in got.items():
        if isinstance(value, str):  # SQLite keeps text
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:  # SQLite: naive UTC
            value = value.replace(tzinfo=timezone.utc)
        got[key] = value
    utc = timezone.utc
    assert got == {
        1: datetime(1, 1, 1, tzinfo=utc),
        2: datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=utc),
        3: datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=utc),
        4: datetime(2026, 3, 7, 18, 30, 0, 500000, tzinfo=utc),
        5: None,
    }


def test_upsert_into_a_table_without_a_unique_id_is_refused_with_advice(engine, table):
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f'CREATE TABLE "{table}" (id BIGINT, from_number TEXT, to_number TEXT, body TEXT, direction TEXT, '
            "status TEXT, credits_used BIGINT, created_at TIMESTAMP)"
        )
    with pytest.raises(SMSNexusError, match="no primary key or unique constraint on id"):
        load(engine, table, [messages(1, 3)])
    load(engine, table, [messages(1, 3), messages(1, 3)], mode="append")
    assert table_ids(engine, table) == [1, 1, 2, 2, 3, 3]


def test_an_existing_table_without_the_exports_columns_is_refused(engine, table):
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE "{table}" (id BIGINT PRIMARY KEY, body TEXT)')
    with pytest.raises(SMSNexusError, match="lacks the columns from_number"):
        load(engine, table, [messages(1, 3)])


@pytest.mark.postgres
def test_postgres_copy_works_with_psycopg2_too(postgres_url, table_name):
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        load(engine, table_name, [messages(1, 50)])
        load(engine, table_name, [messages(25, 50, status="delivered")])
        assert len(statuses(engine, table_name)) == 74
        assert statuses(engine, table_name)[25] == "delivered"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table_name}"')
        engine.dispose()


def test_dedup_last_wins_keeps_order_of_last_occurrences():
    table = pa.concat_tables([messages(1, 3), messages(2, 1, status="sent")])
    kept = dedup_last_wins(table)
    assert kept.column("id").to_pylist() == [1, 3, 2]
    assert kept.column("status").to_pylist() == ["queued", "queued", "sent"]


def test_the_spool_gives_back_its_batches_and_deletes_its_file(tmp_path):
    spool = ArrowSpool(arrow_schema("messages"), directory=str(tmp_path))
    spool.write(messages(1, 10))
    spool.write(messages(11, 5))
    assert [t.num_rows for t in spool.tables()] == [10, 5]
    spool.discard()
    assert list(tmp_path.iterdir()) == []
