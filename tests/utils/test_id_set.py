"""The id set of walks and upserts (utils/id_set.py) against a plain set: every answer, page after page."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.utils.id_set import IdSet
from tests._hypothesis import deep_examples

ORIGIN = 10**12
SPAN = IdSet.MAX_SPAN

_id = st.one_of(
    st.integers(ORIGIN - 30, ORIGIN + 30),  # both sides of the first id, densely
    st.sampled_from([ORIGIN - SPAN - 1, ORIGIN - SPAN, ORIGIN + SPAN - 1, ORIGIN + SPAN, 0, -5, 2**70]),
    st.sampled_from(["7", "x"]),  # what the readers give: ints and texts (no bools, no floats)
)
# A run of consecutive ids, descending (a newest-first page of a dense history) or ascending.
_run = st.builds(
    lambda start, size, down: (
        list(range(start, start - size, -1)) if down else list(range(start, start + size))
    ),
    st.integers(ORIGIN - 60, ORIGIN + 60),
    st.integers(1, 40),
    st.booleans(),
)
_page = st.one_of(st.lists(_id, max_size=12), _run)


@settings(max_examples=deep_examples(300), deadline=None)
@given(first=st.integers(ORIGIN - 5, ORIGIN + 5), pages=st.lists(_page, max_size=8))
def test_each_answer_is_what_a_plain_set_says(first, pages):
    ids, oracle = IdSet(), {first}
    assert ids.add(first) is True
    for page in pages:
        expected = []
        for value in page:
            expected.append(value not in oracle)
            oracle.add(value)
        assert ids.add_many(page) == expected, page
        assert ids.size == len(oracle)


def test_a_page_spanning_as_many_ids_as_it_holds_may_still_repeat_one():
    ids = IdSet()
    ids.add(ORIGIN)
    # Three ids over a span of three, but 99 twice and 98 never: not a run.
    assert ids.add_many([ORIGIN - 1, ORIGIN - 1, ORIGIN - 3]) == [True, False, True]
    assert ids.add_many([ORIGIN - 2, ORIGIN - 3]) == [True, False]
    assert ids.size == 4
