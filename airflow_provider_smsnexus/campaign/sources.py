"""Reading recipients: a DataFrame, records, a callable, or a CSV / Parquet file, local or in object storage;
and suppression lists of numbers."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.utils.paths import local_path
from airflow_provider_smsnexus.utils.phone import normalise_phone

if TYPE_CHECKING:
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv")


def load_table(source: Any, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """
    Read a recipient table from any of the supported sources.

    :param source: a pandas DataFrame; a list of dicts (rows) or a dict of lists (columns); a callable
        taking no arguments that returns any of these; or a path to a CSV or Parquet file, local or an
        object-storage URL (``s3://...``, read through :class:`~airflow.sdk.ObjectStoragePath`).
    :param text_columns: columns a CSV file must read as text (phone numbers: never floats).
    :return: the table as a DataFrame.
    """
    import pandas as pd

    if callable(source) and not isinstance(source, pd.DataFrame):
        source = source()
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, os.PathLike)) or is_storage_path(source):
        return read_table_file(source, text_columns=text_columns)
    if isinstance(source, Mapping):
        return pd.DataFrame(dict(source))
    if isinstance(source, Iterable):
        rows = list(source)
        bad = next((row for row in rows if not isinstance(row, Mapping)), None)
        if bad is not None:
            raise SMSNexusCampaignError(
                f"recipients must be a list of dicts (one per row); found a {type(bad).__name__}"
            )
        return pd.DataFrame.from_records([dict(row) for row in rows])
    raise SMSNexusCampaignError(
        "recipients must be a DataFrame, a list of dicts, a callable returning one, or a path to a CSV or "
        f"Parquet file; got {type(source).__name__}"
    )


def read_table_file(path: Any, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """
    Read a CSV or Parquet file (by its suffix), local or in object storage.

    CSV columns named in ``text_columns`` are read as text, and only empty cells count as missing
    (``NA`` and ``Nan`` stay names, not missing values).

    :param path: a local path or a URL such as ``s3://bucket/key.parquet`` or ``file:///tmp/x.csv``.
    :param text_columns: columns to read as text.
    """
    import pandas as pd

    name = str(path)
    lowered = name.lower()
    try:
        with open_binary(name) as handle:
            if lowered.endswith(PARQUET_SUFFIXES):
                return pd.read_parquet(handle)
            if lowered.endswith(CSV_SUFFIXES):
                compression = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}.get(
                    os.path.splitext(lowered)[1]
                )
                return pd.read_csv(
                    handle,
                    sep="\t" if lowered.endswith(".tsv") else ",",
                    dtype={column: str for column in text_columns},
                    keep_default_na=False,
                    na_values=[""],
                    compression=compression,
                )
    except FileNotFoundError:
        raise SMSNexusCampaignError(f"The recipient file {name!r} does not exist") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise SMSNexusCampaignError(f"Cannot read {name!r}: {type(exc).__name__}: {exc}") from None
    raise SMSNexusCampaignError(
        f"Cannot tell the format of {name!r}: name CSV files *.csv (or .csv.gz) and Parquet files *.parquet"
    )


def load_numbers(source: Any, *, column: str, default_region: str | None) -> set[str]:
    """
    Read a list of phone numbers (a suppression list) and normalise it; unreadable entries are dropped.

    :param source: an iterable of numbers, a DataFrame, or a path (CSV, Parquet, or a text file with one
        number per line).
    :param column: the column to read from a table; its only column when it has no column of this name.
    :param default_region: see :func:`~airflow_provider_smsnexus.utils.phone.normalise_phone`.
    """
    import pandas as pd

    if source is None:
        return set()
    is_path = isinstance(source, (str, os.PathLike)) or is_storage_path(source)
    if is_path and not str(source).lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES):
        try:
            with open_binary(str(source)) as handle:
                text = handle.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SMSNexusCampaignError(f"Cannot read the suppression list {str(source)!r}: {exc}") from None
        values: Iterable[Any] = [line for line in text.splitlines() if line.strip()]
    elif is_path or isinstance(source, pd.DataFrame) or callable(source):
        frame = load_table(source, text_columns=[column])
        if column in frame.columns:
            values = frame[column]
        elif len(frame.columns) == 1:
            values = frame.iloc[:, 0]
        else:
            raise SMSNexusCampaignError(
                f"The suppression list has no column {column!r} and more than one column"
            )
    else:
        values = source
    numbers = set()
    for value in values:
        result = normalise_phone(value, default_region)
        if result.number:
            numbers.add(result.number)
    return numbers


def is_storage_path(value: Any) -> bool:
    """Whether ``value`` is an ObjectStoragePath (checked by name: importing it is slow at parse time)."""
    return any(klass.__name__ == "ObjectStoragePath" for klass in type(value).__mro__)


def open_binary(name: str) -> Any:
    """Open a local path, a ``file://`` URL or an object-storage URL for reading bytes."""
    local = local_path(name)
    if local is not None:
        return open(local, "rb")
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(name).open("rb")
