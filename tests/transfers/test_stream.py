"""Pages to batches (transfers/stream.py): bounded batches, one dedupe and one window check (the walker's)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa

from airflow_provider_smsnexus.hooks.message_columns import MessageColumns
from airflow_provider_smsnexus.hooks.pagination import PageWalk, PageWalker, message_walker
from airflow_provider_smsnexus.transfers.stream import ExportStats, iter_export_batches
from airflow_provider_smsnexus.transfers.window import ExportWindow
from tests.transfers.export_helpers import message_rows

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=timezone.utc)


class PagesHook:
    """A stand-in for the hook that serves fixed pages (with repeats) through a walk, as
    :meth:`SMSNexusHook.iter_message_pages` does."""

    def __init__(self, pages):
        self.pages = pages
        self.stats = {"requests": 0}

    def iter_message_pages(self, *, start_date=None, end_date=None, read_id=None, **kwargs):
        walker = PageWalker("/api/messages", start_date, end_date, read_id=read_id)
        return PageWalk(walker, self._pages(walker))

    def _pages(self, walker):
        for page in self.pages:
            self.stats["requests"] += 1
            rows = walker.take({"data": page})
            if rows:
                yield rows


def test_batches_are_bounded_and_each_id_comes_once():
    rows = message_rows(2_500, step=timedelta(minutes=1))
    pages = [rows[i : i + 100] for i in range(0, 2_500, 100)]
    pages.insert(5, rows[:100])  # a whole page again
    stats = ExportStats("messages", None, NOW, "test")
    hook = PagesHook(pages)
    batches = list(
        iter_export_batches(hook, "messages", stats, window=ExportWindow(None, NOW), batch_size=1_000)
    )
    ids = [i for batch in batches for i in batch.column("id").to_pylist()]
    assert sorted(ids) == list(range(1, 2_501))
    assert all(batch.num_rows <= 1_000 + 5_000 for batch in batches)
    assert stats.rows == 2_500
    assert stats.duplicates_dropped == 100
    assert stats.requests == 26


def test_rows_outside_the_window_are_dropped_and_counted():
    rows = message_rows(48)  # one per hour over two days
    stats = ExportStats("messages", None, NOW, "test")
    window = ExportWindow(
        datetime(2026, 3, 1, 12, tzinfo=timezone.utc), datetime(2026, 3, 2, tzinfo=timezone.utc)
    )
    batches = list(iter_export_batches(PagesHook([rows]), "messages", stats, window=window))
    assert sum(b.num_rows for b in batches) == 12
    assert stats.outside_window == 36


def test_ids_written_as_digit_strings_and_numbers_are_one_id():
    rows = message_rows(3)
    again = [{**rows[0], "id": str(rows[0]["id"])}, {**rows[1], "id": float(rows[1]["id"])}]
    stats = ExportStats("messages", None, NOW, "test")
    batches = list(
        iter_export_batches(PagesHook([rows, again]), "messages", stats, window=ExportWindow(None, NOW))
    )
    assert sorted(i for b in batches for i in b.column("id").to_pylist()) == [1, 2, 3]
    assert stats.duplicates_dropped == 2


class TextPagesHook(PagesHook):
    """Serves JSON texts, each decoded as the export's walk decodes it (into columns where it can be)."""

    def iter_message_pages(self, *, start_date=None, end_date=None, read_id=None, columns=False, **kwargs):
        walker = message_walker(None, None, start_date, end_date, read_id=read_id, columns=columns)
        return PageWalk(walker, self._pages(walker))

    def _pages(self, walker):
        for text in self.pages:
            self.stats["requests"] += 1
            rows = walker.take((walker.decode or json.loads)(text))
            if rows:
                yield rows


def test_pages_of_columns_and_of_dicts_in_one_export_make_the_table_dicts_alone_make():
    rows = message_rows(450, step=timedelta(minutes=1))
    rows[250] = {**rows[250], "credits_used": "1"}  # a digit string: this page is read as dicts
    texts = [json.dumps({"data": rows[i : i + 100]}) for i in range(0, 450, 100)]
    texts.insert(2, texts[0])  # drift: a whole page again
    kinds = [type(message_walker(None, None, None, None, columns=True).decode(t)["data"]) for t in texts]
    assert kinds == [MessageColumns, MessageColumns, MessageColumns, list, MessageColumns, MessageColumns]

    def export(columns: bool):
        stats = ExportStats("messages", None, NOW, "test")
        hook = TextPagesHook(texts)
        hook.iter_message_pages = functools.partial(hook.iter_message_pages, columns=columns)
        batches = iter_export_batches(hook, "messages", stats, window=ExportWindow(None, NOW), batch_size=150)
        return pa.concat_tables(list(batches)), stats

    mixed, stats = export(True)
    plain, _ = export(False)
    assert mixed.column("id").to_pylist() == list(range(1, 451))  # every row once, in listing order
    assert stats.duplicates_dropped == 100
    assert mixed.column("credits_used").to_pylist() == [1] * 450
    assert mixed.equals(plain)
