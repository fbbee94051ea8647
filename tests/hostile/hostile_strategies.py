"""Hypothesis strategies of the hostile suite: what a broken or malicious server answers."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.one_of(
    st.just("2026-03-08T12:00:00Z"),
    st.just("2026-03-08T12:00:00+05:00"),
    st.just("2026-03-08"),
    st.just("0001-01-01T00:00:00+01:00"),
    st.just("9999-12-31T23:59:59-01:00"),
    st.just("yesterday"),
    st.datetimes().map(lambda d: d.isoformat()),
    scalars,
)
ids = st.one_of(
    st.integers(min_value=-5, max_value=2**64),
    st.text(max_size=6),
    st.floats(),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
message_rows = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "from": scalars,
        "to": scalars,
        "body": scalars,
        "direction": scalars,
        "status": scalars,
        "credits_used": scalars,
        "created_at": timestamps,
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "success": st.one_of(st.booleans(), scalars),
        "data": st.one_of(json_values, st.lists(message_rows, max_size=5), message_rows),
        "meta": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {}, optional={"last_page": scalars, "current_page": scalars, "total": scalars}
            ),
        ),
        "message": st.one_of(scalars, json_values),
        "errors": st.one_of(
            json_values, st.dictionaries(st.text(max_size=6), st.lists(scalars, max_size=3), max_size=3)
        ),
    },
)

#: Timestamps an export meets: mostly readable ones of the last weeks, sometimes broken or extreme.
export_timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2026, 3, 1),
        timezones=st.sampled_from([timezone.utc, None]),
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    timestamps,
)
#: Message rows an export meets: mostly well-formed ids, any junk in the other fields.
export_rows = st.fixed_dictionaries(
    {
        "id": st.one_of(
            st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=40).map(str), ids
        ),
        "created_at": export_timestamps,
    },
    optional={
        "from": st.one_of(scalars, json_values),
        "to": st.one_of(scalars, json_values),
        "body": st.one_of(scalars, json_values, st.text(alphabet="\x00\u202e😀\n\t,\"'\\", max_size=8)),
        "direction": scalars,
        "status": scalars,
        "credits_used": st.one_of(st.integers(min_value=0, max_value=5), scalars),
        "extra_field": json_values,
    },
)
