"""
Arrow arrays built straight from one column's Python values, without ``pa.array`` on a Python list.

``pa.array`` on a Python list imports pandas the first time (pyarrow's pandas shim looks at every input:
36 MB), and the round trip that avoided it (re-encode the rows as JSON lines, parse them with Arrow's JSON
reader) cost twice the CPU of these builders (bench/README.md). They fill Arrow's buffers with the standard
library's C loops (``str.join``, ``str.encode``, ``array.array``) and are strict: each returns None for any
value it does not take exactly as it is (a number where text is due, a bool or a float where an integer is
due, a lone surrogate ...), and the caller then applies the per-value rules of
:mod:`~airflow_provider_smsnexus.transfers.schema` to that column.
"""

from __future__ import annotations

from array import array
from datetime import datetime, timedelta, timezone
from itertools import accumulate, repeat
from operator import is_not, itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

#: Per-value errors that send a column to the per-value rules (OverflowError: past int64, or past the
#: 2 GiB an Arrow string column's int32 offsets address).
_REFUSED = (TypeError, ValueError, OverflowError)


def columns_of(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[Sequence[Any]]:
    """The values of each of ``fields`` in ``rows``, one sequence per field (None where a row lacks it)."""
    if len(fields) > 1 and rows and set(map(type, rows)) == {dict}:
        try:  # one pass, each row read once while it is in the cache: 15 % faster than a pass per field
            return list(zip(*map(itemgetter(*fields), rows)))
        except KeyError:  # some row lacks a field
            return [list(map(dict.get, rows, repeat(field))) for field in fields]  # type: ignore[arg-type]
    return [[row.get(field) for row in rows] for field in fields]


def _validity(values: Sequence[Any]) -> pa.Buffer:
    """The validity bitmap of ``values``: a bit per value, set when it is not None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    flags = bytes(map(is_not, values, repeat(None)))  # one byte per value: 1 when present
    present = pc.cast(pa.Array.from_buffers(pa.uint8(), len(flags), [None, pa.py_buffer(flags)]), pa.bool_())
    return present.buffers()[1]


def _offsets(lengths: Any) -> pa.Buffer:
    import pyarrow as pa

    # Through a list: array() fills itself from a list faster than from an iterator.
    return pa.py_buffer(array("i", list(accumulate(lengths, initial=0))))  # OverflowError past int32


def _utf8(values: Sequence[str]) -> tuple[pa.Buffer, pa.Buffer]:
    """The offsets and data buffers of str values (TypeError for any other value, ValueError for a lone
    surrogate)."""
    import pyarrow as pa

    joined = "".join(values)
    if joined.isascii():  # one character, one byte: the lengths are the offsets
        return _offsets(map(len, values)), pa.py_buffer(joined.encode("ascii"))
    encoded = list(map(str.encode, values))
    return _offsets(map(len, encoded)), pa.py_buffer(b"".join(encoded))


def string_array(values: Sequence[Any]) -> pa.Array | None:
    """``values`` (str or None) as an Arrow string array; None when any other value is among them."""
    import pyarrow as pa

    validity, nulls = None, 0
    try:
        try:
            offsets, data = _utf8(values)
        except TypeError:  # None among the texts (the join found it), or a value of another type
            nulls = values.count(None)
            if not nulls:
                return None
            validity = _validity(values)
            offsets, data = _utf8(["" if value is None else value for value in values])
    except _REFUSED:
        return None
    return pa.Array.from_buffers(pa.string(), len(values), [validity, offsets, data], null_count=nulls)


def int64_array(values: Sequence[Any]) -> pa.Array | None:
    """``values`` (int or None) as an Arrow int64 array; None for a bool, a float, a text or past int64."""
    import pyarrow as pa

    types = set(map(type, values))  # exact types: array("q") would take True as 1
    validity, nulls = None, 0
    if types - {int}:
        if types - {int, type(None)}:
            return None
        nulls = values.count(None)
        validity = _validity(values)
        values = [0 if value is None else value for value in values]
    try:
        data = array("q", values)
    except _REFUSED:
        return None
    return pa.Array.from_buffers(pa.int64(), len(values), [validity, pa.py_buffer(data)], null_count=nulls)


def timestamp_array(values: Sequence[Any], target: pa.DataType) -> pa.Array | None:
    """ISO 8601 texts (or None) as ``target`` timestamps, parsed by Arrow; None for any it cannot parse."""
    import pyarrow as pa

    texts = string_array(values)
    if texts is None:
        return None
    try:
        return texts.cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None


def datetime_array(values: Sequence[Any], target: pa.DataType) -> pa.Array | None:
    """Aware datetimes (or None) as ``target`` timestamps (microseconds, UTC); None for any other value."""
    if not set(map(type, values)) <= {datetime, type(None)}:
        return None
    try:  # a naive datetime cannot be subtracted from the aware epoch: TypeError
        micros = [None if value is None else (value - _EPOCH) // _MICROSECOND for value in values]
    except TypeError:
        return None
    array = int64_array(micros)
    return None if array is None else array.cast(target)


def string_list_array(values: Sequence[Any], target: pa.DataType) -> pa.Array | None:
    """Lists of str (or None) as a ``target`` (list of string) array; None for anything else."""
    import pyarrow as pa

    if not set(map(type, values)) <= {list, type(None)}:
        return None
    nulls = values.count(None)
    validity = _validity(values) if nulls else None
    lists = [() if value is None else value for value in values] if nulls else values
    strings = string_array([item for value in lists for item in value])
    if strings is None:
        return None
    try:
        offsets = _offsets(map(len, lists))
    except _REFUSED:
        return None
    return pa.Array.from_buffers(
        target, len(lists), [validity, offsets], null_count=nulls, children=[strings]
    )
