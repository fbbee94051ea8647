"""The list walker (hooks/pagination.py): order proven before an early stop, filters that rows can leave
applied on the client, and lists whose rows move read until their count proves them complete.

Mocked pages for the cases a test must shape exactly; the emulator's switches (oldest-first order, date
parameters ignored, statuses and conversations changing while paged) for the same guarantees over HTTP.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from airflow_provider_smsnexus.exceptions import SMSNexusAuthError, SMSNexusResponseError
from airflow_provider_smsnexus.hooks import message_columns
from airflow_provider_smsnexus.hooks.pagination import MAX_PASSES, PageWalker
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

BASE = "http://smsnexus.test/api"
TOKEN = "tok-SMSNEXUS-MOCK-SECRET-pages"
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


#: Every message walk runs on both paths: pages of dicts, and pages decoded into columns (the export's).
COLUMNS = pytest.mark.parametrize("columns", [False, True], ids=["dicts", "columns"])


@pytest.fixture(autouse=True)
def _columns_never_fall_back(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # A column-path test whose pages quietly fell back to dicts would test the other path twice.
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("columns"):

        def refuse(text: str) -> None:
            raise AssertionError(f"a page left the column path: {text[:300]}")

        monkeypatch.setattr(message_columns, "decode_body", refuse)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def row(id_: int, created: datetime, **fields) -> dict:
    return {"id": id_, "created_at": iso(created), "direction": "outbound", "status": "queued", **fields}


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> SMSNexusHook:
    extra = {"retry_backoff": 0.01, "retry_backoff_max": 0.02, "max_retries": 0}
    conn = {"conn_type": "smsnexus", "host": BASE, "password": TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_PAGES", json.dumps(conn))
    return SMSNexusHook(smsnexus_conn_id="smsnexus_pages")


def serve(rows: list[dict], path: str = "messages", total: bool = True):
    """Serve ``rows`` (in the given order) page by page, whatever the other query parameters say."""

    def answer(request):
        query = parse_qs(urlsplit(request.url).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        last = max(1, -(-len(rows) // per_page))
        meta = {"current_page": page, "last_page": last, "per_page": per_page}
        if total:
            meta["total"] = len(rows)
        data = rows[(page - 1) * per_page : page * per_page]
        return 200, {}, json.dumps({"success": True, "data": data, "meta": meta})

    responses.add_callback("GET", f"{BASE}/{path}", callback=answer)


def pages_read() -> list[int]:
    return [int(parse_qs(urlsplit(c.request.url).query)["page"][0]) for c in responses.calls]


# -- order is proven, never assumed ----------------------------------------------------------------


@COLUMNS
@responses.activate
def test_an_oldest_first_list_whose_first_page_holds_one_timestamp_is_read_to_its_last_page(columns, hook):
    # A bulk import: the first 100 rows share one second, long before the window; the window's rows follow.
    bulk = [row(n, T0) for n in range(1, 101)]
    recent = [row(100 + n, T0 + timedelta(days=2, minutes=n)) for n in range(1, 51)]
    serve(bulk + recent)  # oldest first, date parameters ignored
    got = [m["id"] for m in hook.iter_messages(columns=columns, start_date=T0 + timedelta(days=1))]
    assert got == [r["id"] for r in recent]
    assert pages_read() == [1, 2]


@COLUMNS
@responses.activate
def test_an_oldest_first_list_read_one_row_per_page_is_read_to_its_last_page(columns, hook):
    rows = [row(n, T0 + timedelta(hours=n)) for n in range(1, 8)]
    serve(rows)
    got = [
        m["id"] for m in hook.iter_messages(columns=columns, start_date=T0 + timedelta(hours=3), per_page=1)
    ]
    assert got == [3, 4, 5, 6, 7]
    assert pages_read() == list(range(1, 8))


@COLUMNS
@responses.activate
def test_a_newest_first_list_stops_early_only_after_a_fall_across_a_page_boundary(columns, hook):
    # One timestamp across the whole first page proves nothing; page 2's older rows do.
    rows = [row(n, T0 + timedelta(days=5)) for n in range(100, 90, -1)]
    rows += [row(n, T0 + timedelta(minutes=n)) for n in range(90, 0, -1)]
    serve(rows)
    start = T0 + timedelta(days=5)
    got = [m["id"] for m in hook.iter_messages(columns=columns, start_date=start, per_page=10)]
    assert got == list(range(100, 90, -1))
    assert pages_read() == [1, 2]  # page 2 fell below the start, after the first page: proven, stop


@COLUMNS
@responses.activate
def test_drift_repeating_the_last_row_at_the_next_pages_head_still_proves_newest_first(columns, hook):
    def answer(request):
        page = int(parse_qs(urlsplit(request.url).query)["page"][0])
        data = {
            1: [row(9, T0 + timedelta(hours=9)), row(8, T0 + timedelta(hours=8))],
            2: [row(8, T0 + timedelta(hours=8)), row(7, T0 + timedelta(hours=7))],  # 8 pushed down
            3: [row(6, T0 + timedelta(hours=6)), row(5, T0 + timedelta(hours=5))],
        }.get(page, [])
        meta = {"current_page": page, "last_page": 5, "per_page": 2, "total": 10}
        return 200, {}, json.dumps({"success": True, "data": data, "meta": meta})

    responses.add_callback("GET", f"{BASE}/messages", callback=answer)
    walk = hook.iter_message_pages(
        columns=columns, start_date=T0 + timedelta(hours=6, minutes=30), per_page=2
    )
    got = [m["id"] for page in walk for m in page]
    assert got == [9, 8, 7]
    assert walk.stats.newest_first_proven
    assert walk.stats.duplicates == 1
    assert pages_read() == [1, 2, 3]


def test_a_rise_anywhere_withdraws_the_proof_for_the_rest_of_the_walk():
    walker = PageWalker("/api/messages", start=T0 + timedelta(hours=5))
    walker.take({"data": [row(3, T0 + timedelta(hours=3)), row(2, T0 + timedelta(hours=2))]})
    walker.take({"data": [row(1, T0 + timedelta(hours=1)), row(4, T0 + timedelta(hours=4))]})
    assert not walker.newest_first_proven
    assert not walker.is_done({"data": [{}], "meta": {"last_page": 9}}, 2)


# -- filters a row can leave are applied on the client ---------------------------------------------


@COLUMNS
@responses.activate
def test_a_status_filter_is_applied_on_the_client_and_never_sent(columns, hook):
    rows = [row(n, T0 - timedelta(minutes=n), status="queued" if n % 2 else "sent") for n in range(1, 11)]
    serve(rows)
    got = [m["id"] for m in hook.iter_messages(columns=columns, status="queued", direction="outbound")]
    assert got == [1, 3, 5, 7, 9]
    params = responses.calls[0].request.params
    assert "status" not in params
    assert params["direction"] == "outbound"  # a row never leaves its direction: sent to save pages


# -- lists whose rows move: read until the count proves them complete ------------------------------


@responses.activate
def test_a_conversation_that_moves_to_the_top_mid_walk_is_found_by_a_reread(hook):
    threads = [{"id": n, "last_message_at": iso(T0 - timedelta(minutes=n))} for n in range(1, 251)]
    served = {"count": 0}

    def answer(request):
        served["count"] += 1
        page = int(parse_qs(urlsplit(request.url).query)["page"][0])
        if served["count"] == 2:  # a reply on thread 240 between page 1 and page 2: it jumps to the top
            moved = next(t for t in threads if t["id"] == 240)
            threads.remove(moved)
            threads.insert(0, moved)
        data = threads[(page - 1) * 100 : page * 100]
        meta = {"current_page": page, "last_page": 3, "per_page": 100, "total": len(threads)}
        return 200, {}, json.dumps({"success": True, "data": data, "meta": meta})

    responses.add_callback("GET", f"{BASE}/conversations", callback=answer)
    walk = hook.iter_conversation_pages()
    ids = [c["id"] for page in walk for c in page]
    assert sorted(ids) == list(range(1, 251))
    assert walk.stats.reread_rows == 1
    assert walk.stats.passes == 2
    assert pages_read() == [1, 2, 3, 1]  # the re-read stopped as soon as the count matched


@responses.activate
def test_a_conversation_list_without_a_total_fails_rather_than_claim_completeness(hook):
    serve([{"id": n} for n in range(1, 6)], path="conversations", total=False)
    with pytest.raises(SMSNexusResponseError, match=r"without meta\.total"):
        list(hook.iter_conversations())


@responses.activate
def test_a_conversation_list_that_never_reaches_its_count_fails_after_the_last_pass(hook):
    def answer(request):
        meta = {"current_page": 1, "last_page": 1, "per_page": 100, "total": 3}
        return 200, {}, json.dumps({"success": True, "data": [{"id": 1}, {"id": 2}], "meta": meta})

    responses.add_callback("GET", f"{BASE}/conversations", callback=answer)
    with pytest.raises(SMSNexusResponseError, match=f"after {MAX_PASSES} passes"):
        list(hook.iter_conversations())
    assert len(responses.calls) == MAX_PASSES


@responses.activate
def test_more_distinct_conversations_than_the_count_is_an_error(hook):
    def answer(request):
        meta = {"current_page": 1, "last_page": 1, "per_page": 100, "total": 1}
        return 200, {}, json.dumps({"success": True, "data": [{"id": 1}, {"id": 2}], "meta": meta})

    responses.add_callback("GET", f"{BASE}/conversations", callback=answer)
    with pytest.raises(SMSNexusResponseError, match="more than the 1 the list counts"):
        list(hook.iter_conversations())


def test_the_walker_reads_ids_with_the_reader_it_is_given_and_leaves_rows_unchanged():
    walker = PageWalker("/api/messages", read_id=int)
    first = walker.take({"data": [{"id": "7"}, {"id": 8}]})
    again = walker.take({"data": [{"id": 7}, {"id": "8"}, {"id": "9"}]})
    assert [r["id"] for r in first] == ["7", 8]
    assert [r["id"] for r in again] == ["9"]
    assert walker.duplicates == 2
    with pytest.raises(SMSNexusResponseError, match="id is not a number"):
        walker.take({"data": [{"id": "x"}]})


# -- the same over HTTP, under the emulator's switches ---------------------------------------------


def created(message: dict) -> datetime:
    return datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))


@COLUMNS
@pytest.mark.parametrize("per_page", [1, 100])
def test_oldest_first_and_ignored_dates_give_every_row_of_the_window_over_http(
    columns, smsnexus_emulator, smsnexus_conn, per_page
):
    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc).replace(microsecond=0)
    bulk_at = now - timedelta(days=3)
    admin.seed_messages(150, start=bulk_at, end=bulk_at + timedelta(seconds=1))  # one timestamp
    recent = 40 if per_page == 1 else 250
    admin.seed_messages(recent, random_seed=1, start=now - timedelta(days=1), end=now - timedelta(minutes=1))
    admin.configure(list_order="oldest_first", ignore_date_params=True)
    start = now - timedelta(days=2)
    expected = sorted(m["id"] for m in admin.messages() if created(m) >= start)
    assert expected

    hook = SMSNexusHook()
    got = sorted(m["id"] for m in hook.iter_messages(columns=columns, start_date=start, per_page=per_page))
    assert got == expected


@COLUMNS
def test_the_send_lookup_reads_an_oldest_first_list_to_its_end(columns, smsnexus_emulator, smsnexus_conn):
    # What the bulk operator's lookup calls: outbound messages since a moment, on a server that lists
    # oldest first, ignores the dates, and whose first page is one bulk-imported second.
    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc).replace(microsecond=0)
    admin.seed_messages(
        300, start=now - timedelta(days=2), end=now - timedelta(days=2) + timedelta(seconds=1)
    )
    hook = SMSNexusHook()
    sent = {hook.send_sms("+12125550100", f"+1212555015{n}", f"order {n}")["id"] for n in range(5)}
    admin.configure(list_order="oldest_first", ignore_date_params=True)
    start = now - timedelta(hours=1)
    found = {m["id"] for m in hook.iter_messages(columns=columns, direction="outbound", start_date=start)}
    expected = {m["id"] for m in admin.messages(direction="outbound") if created(m) >= start}
    assert found == expected
    assert sent <= found


@COLUMNS
def test_messages_leaving_a_status_while_paged_do_not_hide_those_that_stay(
    columns, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    for n in range(250):
        hook.send_sms("+12125550100", f"+1212555{n // 100 + 1:01d}1{n % 100:02d}", f"hi {n}")
    queued_before = {m["id"] for m in admin.messages() if m["status"] == "queued"}
    assert len(queued_before) == 250
    admin.configure(status_changes_per_list=20)  # 20 rows of the list move on at every page read

    got = [m["id"] for m in hook.iter_messages(columns=columns, status="queued")]

    queued_after = {m["id"] for m in admin.messages() if m["status"] == "queued"}
    assert len(queued_after) < 250  # statuses did change while the list was paged
    assert len(got) == len(set(got))
    assert queued_after <= set(got) <= queued_before  # every still-queued message, nothing else


def test_conversations_moving_to_the_top_while_paged_are_all_read(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin
    admin.seed_messages(12_000, random_seed=5)
    admin.configure(reorder_conversations_per_list=1)
    hook = SMSNexusHook()
    walk = hook.iter_conversation_pages()
    threads = [c for page in walk for c in page]

    numbers = {n["number"] for n in hook.get_phone_numbers()}
    pairs = {(m["from"], m["to"]) if m["from"] in numbers else (m["to"], m["from"]) for m in admin.messages()}
    assert len(pairs) > 2_000
    assert len(threads) == len({t["id"] for t in threads})
    assert {(t["phone_number"], t["contact_number"]) for t in threads} == pairs
    assert walk.stats.reread_rows > 0  # some had moved past the first pass


# -- read-ahead: the next page is fetched while the caller works on this one -------------------------------


def read_requests(admin) -> int:
    """The list and other non-send requests the emulator counted (its own record)."""
    return admin.stats()["requests"]["other"]


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("smsnexus-read-ahead")]


def until(condition, what: str, seconds: float = 30) -> None:
    """Wait for something the test can observe (polled), failing loudly when it never happens."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


@COLUMNS
@pytest.mark.parametrize("read_ahead", [False, True], ids=["page_by_page", "read_ahead"])
@pytest.mark.parametrize("list_order", ["newest_first", "oldest_first"])
def test_a_full_walk_makes_one_request_per_page_and_yields_every_id_once_in_the_lists_order(
    columns, smsnexus_emulator, smsnexus_conn, list_order, read_ahead
):
    admin = smsnexus_emulator.admin
    admin.seed_messages(1234, random_seed=3)
    admin.configure(list_order=list_order)
    # The order the emulator documents: created_at, then id (descending when newest first).
    listed = sorted(
        admin.messages(), key=lambda m: (created(m), m["id"]), reverse=list_order == "newest_first"
    )
    hook = SMSNexusHook()
    before = read_requests(admin)

    got = [
        m["id"]
        for page in hook.iter_message_pages(columns=columns, per_page=100, read_ahead=read_ahead)
        for m in page
    ]

    assert got == [m["id"] for m in listed]
    assert read_requests(admin) - before == math.ceil(len(listed) / 100) == 13
    assert read_ahead_threads() == []


def test_a_walk_stopped_after_its_first_page_costs_one_request(smsnexus_emulator, smsnexus_conn):
    # What any(...) over a list pays on every check: a walk that stops early costs only the pages it used.
    admin = smsnexus_emulator.admin
    admin.seed_messages(1000, random_seed=4)
    newest = max(admin.messages(), key=lambda m: (created(m), m["id"]))
    hook = SMSNexusHook()
    before = read_requests(admin)

    for _page in hook.iter_message_pages(per_page=100):
        break
    after_break = read_requests(admin)
    found = any(m["id"] == newest["id"] for m in hook.iter_messages(per_page=100))

    assert found
    assert after_break - before == 1
    assert read_requests(admin) - after_break == 1
    assert read_ahead_threads() == []


def test_the_next_page_is_requested_while_the_caller_holds_this_one(smsnexus_emulator, smsnexus_conn):
    # Read-ahead is for a walk whose caller reads every page (an export): it says so.
    admin = smsnexus_emulator.admin
    admin.seed_messages(300, random_seed=4)
    hook = SMSNexusHook()
    before = read_requests(admin)
    pages = hook.iter_message_pages(per_page=100, read_ahead=True)

    first = next(pages)
    # The caller holds page 1; the emulator's record shows page 2 requested meanwhile, and nothing more.
    until(lambda: read_requests(admin) - before == 2, "page 2 requested while page 1 was held")
    rest = [row for page in pages for row in page]

    assert len({m["id"] for m in first + rest}) == 300
    assert read_requests(admin) - before == 3


def test_a_walk_closed_early_ends_its_thread_and_reads_no_page_further(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin
    admin.seed_messages(1000, random_seed=5)
    hook = SMSNexusHook()
    before = read_requests(admin)
    pages = hook.iter_message_pages(per_page=100, read_ahead=True)
    next(pages)
    until(lambda: read_requests(admin) - before == 2, "page 2 requested ahead")
    assert read_ahead_threads()  # the scenario: a thread holds page 2 when the caller stops

    pages.close()

    assert read_ahead_threads() == []
    assert read_requests(admin) - before == 2  # page 2 was dropped, page 3 never asked for


def test_closing_a_walk_stops_a_read_ahead_waiting_for_the_limiter(smsnexus_emulator, monkeypatch):
    admin = smsnexus_emulator.admin
    admin.seed_messages(500, random_seed=6)
    # Two reads a minute: the ahead request for page 3 waits about a minute for the read budget.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_SLOW",
        smsnexus_emulator.connection_json(read_rate_limit=2, rate_limit_period=60),
    )
    hook = SMSNexusHook(smsnexus_conn_id="smsnexus_slow")
    before = read_requests(admin)
    pages = hook.iter_message_pages(per_page=100, read_ahead=True)
    next(pages)
    next(pages)
    until(lambda: hook.stats["waited_seconds"] > 0, "the request for page 3 waiting for the limiter")

    pages.close()  # returns at once: a wait that ran out instead would send page 3 before it returned

    assert read_ahead_threads() == []
    assert read_requests(admin) - before == 2


@responses.activate
def test_an_error_of_a_page_read_ahead_is_raised_when_that_page_is_reached(hook):
    def answer(request):
        page = int(parse_qs(urlsplit(request.url).query)["page"][0])
        if page == 2:
            return 401, {}, json.dumps({"success": False, "message": "Unauthenticated."})
        meta = {"current_page": page, "last_page": 3, "per_page": 1}
        return 200, {}, json.dumps({"success": True, "data": [row(10 - page, T0)], "meta": meta})

    responses.add_callback("GET", f"{BASE}/messages", callback=answer)
    pages = hook.iter_message_pages(per_page=1, read_ahead=True)
    assert [m["id"] for m in next(pages)] == [9]  # page 1 comes, though page 2 may have failed already
    with pytest.raises(SMSNexusAuthError):
        next(pages)
    assert pages_read() == [1, 2]


@responses.activate
def test_a_walk_that_cannot_prove_its_count_still_yields_the_page_before_raising(hook):
    serve([{"id": n} for n in range(1, 6)], path="conversations", total=False)
    pages = hook.iter_conversation_pages()
    assert [c["id"] for c in next(pages)] == [1, 2, 3, 4, 5]
    with pytest.raises(SMSNexusResponseError, match=r"without meta\.total"):
        next(pages)
