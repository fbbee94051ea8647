"""The column store directly: ordering with out-of-order times, status moves, bounds."""

from __future__ import annotations

import itertools

from airflow_provider_smsnexus.emulator.store import (
    DELIVERED,
    INBOUND,
    OUTBOUND,
    QUEUED,
    RECEIVED,
    SENT,
    MessageStore,
    StringTable,
    iso_utc,
)


def make_store() -> MessageStore:
    counter = itertools.count(1)
    return MessageStore(StringTable(), StringTable(), lambda: next(counter))


def add(
    store: MessageStore, message_id: int, created: int, status: int = QUEUED, direction: int = OUTBOUND
) -> int:
    return store.append(
        message_id=message_id, created=created, direction=direction, status=status, credits=1,
        number="+12125550100", contact="+12125550150", body=f"m{message_id}", origin=0,
    )  # fmt: skip


def page(store: MessageStore, **filters) -> list[int]:
    index, lo, hi = store.select(**filters)
    return [store.ids[row] for row in store.newest_first(index, lo, hi, 0, 100)]


def test_rows_are_ordered_by_created_at_then_id_whatever_the_insertion_order():
    store = make_store()
    for message_id, created in [(1, 100), (2, 50), (3, 100), (4, 75), (5, 50)]:
        add(store, message_id, created)
    assert page(store) == [3, 1, 4, 5, 2]


def test_status_changes_move_rows_between_indexes():
    store = make_store()
    rows = [add(store, i, 100 + i) for i in range(1, 6)]
    store.set_status(rows[1], SENT)
    store.set_status(rows[3], DELIVERED)
    assert page(store, status=QUEUED) == [5, 3, 1]
    assert page(store, status=DELIVERED) == [4]
    assert page(store, status=SENT, direction=OUTBOUND) == [2]
    store.set_status(rows[1], DELIVERED)
    assert page(store, status=DELIVERED) == [4, 2]
    assert page(store, status=SENT) == []


def test_select_bounds_are_start_inclusive_end_exclusive():
    store = make_store()
    for i, created in enumerate([10, 20, 20, 30, 40], start=1):
        add(store, i, created, status=RECEIVED, direction=INBOUND)
    assert page(store, start=20, end=40) == [4, 3, 2]
    assert page(store, start=21) == [5, 4]
    assert page(store, end=20) == [1]
    assert page(store, direction=OUTBOUND) == []


def test_newest_first_slices_pages():
    store = make_store()
    for i in range(1, 11):
        add(store, i, i)
    index, lo, hi = store.select()
    assert [store.ids[r] for r in store.newest_first(index, lo, hi, 3, 3)] == [7, 6, 5]
    assert [store.ids[r] for r in store.newest_first(index, lo, hi, 9, 3)] == [1]
    assert store.newest_first(index, lo, hi, 10, 3) == []


def test_row_of_finds_ids_and_iso_format_matches_the_reference():
    store = make_store()
    add(store, 7, 1709899200)
    assert store.row_of(7) == 0
    assert store.row_of(8) is None
    assert store.message_dict(0)["created_at"] == "2024-03-08T12:00:00Z"
    assert iso_utc(1709892000.9) == "2024-03-08T10:00:00Z"
