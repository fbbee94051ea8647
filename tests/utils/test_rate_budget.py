"""The shared window's rules, on a clock the test moves: limits, priorities, fair shares, the server's word."""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_smsnexus.utils.rate_budget import (
    BULK,
    INTERACTIVE,
    BudgetRules,
    SharedWindow,
)
from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo

RULES = BudgetRules(
    limit=10, period=1.0, reserve_share=0.1, request_seconds=20.0, adopt_announced_limit=False
)
_tickets = (f"t{n}" for n in itertools.count())


def reserve(window: SharedWindow, now: float, priority: str = BULK, claimant: str = "a") -> tuple[float, str]:
    ticket = next(_tickets)
    wait, _ = window.reserve(RULES, now=now, priority=priority, claimant=claimant, ticket=ticket)
    return wait, ticket


def fill(window: SharedWindow, now: float, priority: str = INTERACTIVE, claimant: str = "x") -> list[str]:
    """Reserve and answer at ``now`` until refused; the tickets reserved."""
    tickets = []
    while (result := reserve(window, now, priority, claimant))[0] == 0:
        window.answered(RULES, now=now, ticket=result[1], info=None)
        tickets.append(result[1])
    return tickets


def simulate(
    window: SharedWindow, callers: dict[str, tuple[str, float]], until: float, start: float = 0.0
) -> dict[str, list[tuple[float, float]]]:
    """
    Callers ask as they are told, on a 1 ms clock; each answer comes 3 ms after its reservation.

    :param callers: ``name -> (priority, every)``: a caller with ``every`` 0 asks again at once (bulk work),
        else it starts one call every ``every`` seconds (a poller).
    :return: per caller, each call's ``(reserved at, waited)``.
    """
    served: dict[str, list[tuple[float, float]]] = {name: [] for name in callers}
    asked_at = dict.fromkeys(callers, start)
    ask_next = dict.fromkeys(callers, start)
    answers: list[tuple[float, str]] = []
    now = start
    while now < until:
        for at, ticket in [a for a in answers if a[0] <= now]:
            window.answered(RULES, now=at, ticket=ticket, info=None)
            answers.remove((at, ticket))
        for name, (priority, every) in callers.items():
            if now < ask_next[name]:
                continue
            wait, ticket = reserve(window, now, priority, name)
            if wait > 0:
                ask_next[name] = now + wait
                continue
            answers.append((now + 0.003, ticket))
            served[name].append((now, now - asked_at[name]))
            asked_at[name] = ask_next[name] = (
                max(now + 0.003, asked_at[name] + every) if every else now + 0.003
            )
        assert len(window.slots) <= RULES.limit
        now = round(now + 0.001, 3)
    return served


def per_window(calls: list[tuple[float, float]], start: float, until: float) -> float:
    return sum(1 for at, _ in calls if start <= at < until) / ((until - start) / RULES.period)


def test_a_window_holds_no_more_than_the_limit_and_a_slot_frees_a_window_after_its_answer():
    window = SharedWindow()
    tickets = [reserve(window, 0.0, INTERACTIVE)[1] for _ in range(10)]
    wait, _ = reserve(window, 0.0, INTERACTIVE)
    assert wait >= 1.0  # every slot is pending: none frees before a window after its answer
    for ticket in tickets:
        window.answered(RULES, now=0.3, ticket=ticket, info=None)
    assert reserve(window, 0.5, INTERACTIVE)[0] == pytest.approx(0.8)  # 0.3 + 1.0 - 0.5
    assert reserve(window, 1.3, INTERACTIVE)[0] == 0


def test_a_lone_bulk_caller_uses_the_whole_limit_spread_over_the_window():
    served = simulate(SharedWindow(), {"export": (BULK, 0)}, until=10.0)
    assert per_window(served["export"], 1.0, 10.0) >= 0.97 * RULES.limit
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(served["export"])]
    assert min(gaps) >= 0.9 * RULES.period / RULES.limit  # one every tenth of a window, not all at once


def test_bulk_leaves_the_reserve_while_interactive_calls_were_seen_lately():
    window = SharedWindow()
    window.interactive_seen_at = 0.0
    served = simulate(window, {"export": (BULK, 0)}, until=5.0)
    assert per_window(served["export"], 1.0, 5.0) == pytest.approx(9, abs=0.3)  # one slot of ten kept
    window = SharedWindow()
    window.interactive_seen_at = -20.0  # seen 20 windows ago: no longer kept for
    served = simulate(window, {"export": (BULK, 0)}, until=5.0)
    assert per_window(served["export"], 1.0, 5.0) >= 9.7


def test_bulk_uses_all_that_interactive_calls_leave_once_they_exceed_the_reserve():
    callers = {"export": (BULK, 0), "sensor": (INTERACTIVE, 0.5), "trigger": (INTERACTIVE, 1.0)}
    served = simulate(SharedWindow(), callers, until=20.0)
    interactive = per_window(served["sensor"], 2.0, 20.0) + per_window(served["trigger"], 2.0, 20.0)
    assert interactive == pytest.approx(3, abs=0.2)
    assert per_window(served["export"], 2.0, 20.0) >= 0.95 * (RULES.limit - interactive)


def test_bulk_leaves_a_slot_to_each_interactive_caller_waiting_for_one():
    window = SharedWindow()
    fill(window, 0.0)
    wait, _ = reserve(window, 0.1, INTERACTIVE, "sensor")
    assert 0 < wait <= RULES.period
    # Slots free at 1.0: bulk (its spreading set aside here) leaves the reserve and a slot for each waiting
    # interactive caller: the sensor, and the caller that filled the window and was refused last.
    taken = 0
    while True:
        window.bulk_next_at = None
        if reserve(window, 1.0, BULK, "export")[0] > 0:
            break
        taken += 1
    assert taken == 10 - 1 - 2
    assert reserve(window, 1.0, INTERACTIVE, "sensor")[0] == 0


@pytest.mark.parametrize("exports", [1, 3])
def test_an_interactive_caller_behind_saturating_bulk_callers_is_served_within_one_window(exports):
    callers = {f"export{n}": (BULK, 0.0) for n in range(exports)}
    callers |= {"sensor": (INTERACTIVE, 0.35), "trigger": (INTERACTIVE, 1.0)}
    served = simulate(SharedWindow(), callers, until=20.0)
    for name in ("sensor", "trigger"):
        assert max(waited for _, waited in served[name]) <= RULES.period
        # Spread bulk calls free a slot every tenth of a window: most interactive calls wait far less.
        waits = sorted(waited for _, waited in served[name])
        assert waits[len(waits) // 2] <= 0.15 * RULES.period


def test_bulk_callers_share_fairly_and_a_lone_one_takes_what_the_other_leaves():
    served = simulate(SharedWindow(), {"a": (BULK, 0), "b": (BULK, 0)}, until=30.0)
    a, b = per_window(served["a"], 5.0, 30.0), per_window(served["b"], 5.0, 30.0)
    assert abs(a - b) <= 0.1 * (a + b)
    assert a + b >= 0.95 * RULES.limit


def test_the_servers_remaining_zero_holds_every_caller_until_its_reset():
    window = SharedWindow()
    _, ticket = reserve(window, 0.0, INTERACTIVE, "sensor")
    window.answered(RULES, now=0.1, ticket=ticket, info=RateLimitInfo(limit=10, remaining=0, reset_at=1.0))
    wait, _ = reserve(window, 0.2, INTERACTIVE, "sensor")
    assert wait == pytest.approx(0.85, abs=0.01)  # until the reset, plus its margin
    assert reserve(window, 1.06, INTERACTIVE, "sensor")[0] == 0  # a new server window: unknown, so allowed


def test_bulk_leaves_the_servers_last_requests_to_interactive_calls():
    window = SharedWindow()
    window.interactive_seen_at = 0.0
    _, ticket = reserve(window, 0.0)
    window.answered(RULES, now=0.1, ticket=ticket, info=RateLimitInfo(limit=10, remaining=1, reset_at=1.0))
    assert reserve(window, 0.2, BULK)[0] > 0.8
    assert reserve(window, 0.2, INTERACTIVE, "sensor")[0] == 0


def test_answers_overtaking_each_other_keep_the_smaller_remaining():
    window = SharedWindow()
    tickets = [reserve(window, 0.0)[1] for _ in range(3)]
    window.answered(RULES, now=0.1, ticket=tickets[1], info=RateLimitInfo(remaining=4, reset_at=1.0))
    window.answered(RULES, now=0.1, ticket=tickets[0], info=RateLimitInfo(remaining=5, reset_at=1.0))
    assert window.remaining == 4


def test_a_429_holds_everyone_until_the_reset_and_halves_the_pace_once_per_window():
    window = SharedWindow()
    for now in (0.0, 0.1):
        _, ticket = reserve(window, now)
        window.refused(RULES, now=now, ticket=ticket, info=RateLimitInfo(remaining=0, reset_at=1.0))
    assert window.allowed(RULES) == 5
    assert window.refusals == 2
    assert reserve(window, 0.5, INTERACTIVE, "sensor")[0] == pytest.approx(0.55, abs=0.01)
    # Answers with room grow the pace back to the limit.
    for n in range(200):
        _, ticket = reserve(window, 10.0 + n, INTERACTIVE)
        window.answered(
            RULES, now=10.0 + n, ticket=ticket, info=RateLimitInfo(remaining=5, reset_at=11.0 + n)
        )
    assert window.allowed(RULES) == 10


def test_a_larger_announced_limit_is_adopted_unless_the_limit_was_set_on_purpose():
    adopting = BudgetRules(limit=10, period=1.0)
    window = SharedWindow()
    _, ticket = reserve(window, 0.0)
    window.answered(
        adopting, now=0.0, ticket=ticket, info=RateLimitInfo(limit=50, remaining=49, reset_at=1.0)
    )
    assert window.allowed(adopting) == 50
    assert window.allowed(RULES) == 10


def test_a_slot_left_pending_by_a_process_that_died_frees_after_the_longest_request():
    window = SharedWindow()
    for _ in range(10):
        reserve(window, 0.0, INTERACTIVE)
    assert reserve(window, 15.0, INTERACTIVE)[0] > 0
    assert reserve(window, RULES.request_seconds + RULES.period + 0.01, INTERACTIVE)[0] == 0


def test_a_request_that_never_left_gives_its_slot_back():
    window = SharedWindow()
    tickets = [reserve(window, 0.0, INTERACTIVE)[1] for _ in range(10)]
    window.release(RULES, now=0.0, ticket=tickets[0])
    assert reserve(window, 0.0, INTERACTIVE)[0] == 0


def test_a_window_survives_its_json_and_an_unreadable_text_gives_a_fresh_one():
    window = SharedWindow()
    window.interactive_seen_at = 0.0
    fill(window, 0.0)
    reserve(window, 0.5, BULK, "export")
    again = SharedWindow.from_json(window.to_json())
    assert vars(again) == vars(window)
    for text in (b"", b"{not json", b"[1, 2]", b'{"slots": "x", "remaining": "7"}', None):
        assert vars(SharedWindow.from_json(text)) == vars(SharedWindow())
