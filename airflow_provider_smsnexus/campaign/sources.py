"""Reading recipients: a DataFrame, records, a callable, or a CSV / Parquet file, local or in object storage,
with where each row is (the line of a CSV file a person sees); and suppression lists of numbers."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusSuppressionListError
from airflow_provider_smsnexus.utils.paths import local_path
from airflow_provider_smsnexus.utils.phone import is_missing, normalise_phone

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv")
#: Compressed files by suffix, with pandas' name of the compression.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}
#: How many bad entries of a suppression list its error quotes.
MAX_QUOTED_PROBLEMS = 10


class RowPlaces:
    """
    Where a row of an input is, as a person finds it: ``line 7 of recipients.csv`` (a CSV file: the line its
    record starts on, the header being line 1), ``row 6 of recipients.parquet``, ``row 6 (1-based) of the
    recipient DataFrame`` (the position in the order given, not the DataFrame's index).

    :param what: what the input is, named in places of inputs that are not files (``"recipient list"``).
    :param path: the file the rows come from, or None.
    :param csv_rows: for a CSV file, how many data rows pandas read (its lines are counted when first asked
        for; a file read differently, e.g. changed meanwhile, falls back to row numbers).
    """

    def __init__(self, what: str, path: str | None = None, *, csv_rows: int | None = None) -> None:
        self.what, self.path, self.csv_rows = what, path, csv_rows
        self._lines: list[int] | None = None

    def __call__(self, row_number: int) -> str:
        """The place of the row at ``row_number`` (its position, from 1)."""
        if self.path is None:
            return f"row {row_number} (1-based) of the {self.what}"
        lines = self._csv_lines()
        if 0 < row_number <= len(lines):
            return f"line {lines[row_number - 1]} of {self.path}"
        return f"row {row_number} of {self.path}"

    def _csv_lines(self) -> list[int]:
        if self._lines is None:
            self._lines = []
            if self.csv_rows is not None and self.path is not None:
                try:
                    lines = [line for line, _ in iter_csv_records(self.path, errors="replace")][1:]
                except (OSError, ValueError, csv.Error):
                    lines = []
                self._lines = lines if len(lines) == self.csv_rows else []
        return self._lines


def load_rows(source: Any, *, what: str, text_columns: Sequence[str] = ()) -> tuple[pd.DataFrame, RowPlaces]:
    """
    Read a table from any of the supported sources, with the place of each row.

    :param source: a pandas DataFrame; a list of dicts (rows) or a dict of lists (columns); a callable
        taking no arguments that returns any of these; or a path to a CSV or Parquet file, local or an
        object-storage URL (``s3://...``, read through :class:`~airflow.sdk.ObjectStoragePath`).
    :param what: what the table is, for messages (``"recipient"``).
    :param text_columns: columns a CSV file must read as text (phone numbers: never floats).
    :return: the table as a DataFrame, and where each of its rows is.
    """
    import pandas as pd

    if callable(source) and not isinstance(source, pd.DataFrame):
        source = source()
    if isinstance(source, pd.DataFrame):
        return source, RowPlaces(f"{what} DataFrame")
    if isinstance(source, (str, os.PathLike)) or is_storage_path(source):
        frame = read_table_file(source, text_columns=text_columns)
        is_csv = str(source).lower().endswith(CSV_SUFFIXES)
        return frame, RowPlaces(what, str(source), csv_rows=len(frame) if is_csv else None)
    if isinstance(source, Mapping):
        return pd.DataFrame(dict(source)), RowPlaces(f"{what} columns")
    if isinstance(source, Iterable):
        rows = list(source)
        bad = next((row for row in rows if not isinstance(row, Mapping)), None)
        if bad is not None:
            raise SMSNexusCampaignError(
                f"{what}s must be a list of dicts (one per row); found a {type(bad).__name__}"
            )
        return pd.DataFrame.from_records([dict(row) for row in rows]), RowPlaces(f"{what} list")
    raise SMSNexusCampaignError(
        f"{what}s must be a DataFrame, a list of dicts, a callable returning one, or a path to a CSV or "
        f"Parquet file; got {type(source).__name__}"
    )


def load_table(source: Any, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """
    Read a recipient table from any of the supported sources (see :func:`load_rows`).

    :param source: see :func:`load_rows`.
    :param text_columns: columns a CSV file must read as text (phone numbers: never floats).
    :return: the table as a DataFrame.
    """
    return load_rows(source, what="recipient", text_columns=text_columns)[0]


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
                return pd.read_csv(
                    handle,
                    sep=csv_delimiter(name),
                    dtype={column: str for column in text_columns},
                    keep_default_na=False,
                    na_values=[""],
                    compression=COMPRESSIONS.get(os.path.splitext(lowered)[1]),
                )
    except FileNotFoundError:
        raise SMSNexusCampaignError(f"The recipient file {name!r} does not exist") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise SMSNexusCampaignError(f"Cannot read {name!r}: {type(exc).__name__}: {exc}") from None
    raise SMSNexusCampaignError(
        f"Cannot tell the format of {name!r}: name CSV files *.csv (or .csv.gz) and Parquet files *.parquet"
    )


@dataclass(frozen=True)
class SuppressionList:
    """
    The numbers of a suppression list, each with where it is listed.

    :param source: the list as messages name it (its path, or ``"the suppression_list argument"``).
    :param numbers: E.164 number -> where it is first listed (``"line 3 of stop.csv"``).
    """

    source: str
    numbers: dict[str, str]


def read_suppression_list(source: Any, *, column: str, default_region: str | None) -> SuppressionList:
    """
    Read a suppression list, every entry a number: the campaign must not guess which numbers it holds.

    Text and CSV files are read as UTF-8 with or without a byte-order mark. The first line of a text file or
    a one-column CSV is a header only when it holds no digit (``phone``); otherwise it is the first number.
    A CSV of several columns needs a header naming ``column``. Blank lines and cells are not entries.

    :param source: an iterable of numbers, a DataFrame (column ``column``, or its only column), a callable
        returning either, or a path (CSV, Parquet, or a text file with one number per line).
    :param column: the column of numbers in a table.
    :param default_region: see :func:`~airflow_provider_smsnexus.utils.phone.normalise_phone`.
    :raises SMSNexusSuppressionListError: naming the list and the line (or row) of every entry that is not
        a usable number, a national number without ``default_region`` included.
    """
    import pandas as pd

    if source is None:
        return SuppressionList("no suppression list", {})
    if callable(source) and not isinstance(source, pd.DataFrame):
        source = source()
    name = (
        "the suppression_list DataFrame"
        if isinstance(source, pd.DataFrame)
        else "the suppression_list argument"
    )
    try:
        if isinstance(source, (str, os.PathLike)) or is_storage_path(source):
            name = str(source)
            entries = _file_entries(name, column)
        elif isinstance(source, (pd.DataFrame, Mapping)):
            frame = source if isinstance(source, pd.DataFrame) else pd.DataFrame(dict(source))
            entries = _column_entries(frame, column, lambda n: f"row {n} (1-based) of {name}")
        elif isinstance(source, Iterable) and not isinstance(source, (str, bytes)):
            entries = [(f"entry {n} (1-based) of {name}", value) for n, value in enumerate(source, 1)]
        else:
            raise SMSNexusCampaignError(
                "suppression_list must be a list of numbers, a DataFrame, a callable returning one, or a path; "
                f"got {type(source).__name__}"
            )
    except FileNotFoundError:
        raise SMSNexusCampaignError(f"The suppression list {name!r} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise SMSNexusCampaignError(
            f"Cannot read the suppression list {name!r}: {type(exc).__name__}: {exc}"
        ) from None
    numbers: dict[str, str] = {}
    problems: list[str] = []
    for place, value in entries:
        if is_missing(value) or (isinstance(value, str) and not value.strip()):
            continue
        result = normalise_phone(value, default_region)
        if result.number is None:
            shown = value.strip() if isinstance(value, str) else repr(value)
            problems.append(f"{place}: {shown[:100]!r}: {result.reason}")
        else:
            numbers.setdefault(result.number, place)
    if problems:
        quoted = "; ".join(problems[:MAX_QUOTED_PROBLEMS])
        more = (
            f"; and {len(problems) - MAX_QUOTED_PROBLEMS} more" if len(problems) > MAX_QUOTED_PROBLEMS else ""
        )
        raise SMSNexusSuppressionListError(
            f"The suppression list has {len(problems)} entr{'y' if len(problems) == 1 else 'ies'} that "
            f"{'is' if len(problems) == 1 else 'are'} not a usable phone number, and a number meant to be "
            f"suppressed must not be texted: nothing was sent. {quoted}{more}. Fix or remove them.",
            source=name,
            places=[problem.split(": ", 1)[0] for problem in problems],
        )
    return SuppressionList(name, numbers)


def load_numbers(source: Any, *, column: str, default_region: str | None) -> set[str]:
    """
    The E.164 numbers of a suppression list (see :func:`read_suppression_list`, which also says where each is).

    :raises SMSNexusSuppressionListError: when an entry is not a usable number.
    """
    return set(read_suppression_list(source, column=column, default_region=default_region).numbers)


def _file_entries(name: str, column: str) -> list[tuple[str, Any]]:
    """``(place, value)`` of each entry of a suppression file."""
    lowered = name.lower()
    if lowered.endswith(PARQUET_SUFFIXES):
        return _column_entries(read_table_file(name), column, lambda n: f"row {n} of {name}")
    if lowered.endswith(CSV_SUFFIXES):
        records = [(f"line {line} of {name}", fields) for line, fields in iter_csv_records(name)]
    else:
        with open_text(name) as stream:
            lines = [(f"line {n} of {name}", line.strip()) for n, line in enumerate(stream, 1)]
        records = [(place, [line]) for place, line in lines if line]
    if not records:
        return []
    header = [field.strip().casefold() for field in records[0][1]]
    if column.strip().casefold() in header:
        index = header.index(column.strip().casefold())
        records = records[1:]
    elif len(header) > 1:
        raise SMSNexusCampaignError(
            f"The suppression list {name} has several columns and none named {column!r} in its first line "
            f"({', '.join(map(repr, records[0][1]))}): name the column of numbers {column!r}, or keep one column"
        )
    else:
        index = 0
        if not any(char.isdecimal() for char in records[0][1][0]):
            records = records[1:]  # a header: no number has no digit
    return [(place, fields[index] if index < len(fields) else None) for place, fields in records]


def _column_entries(frame: pd.DataFrame, column: str, place: Any) -> list[tuple[str, Any]]:
    """``(place, value)`` of each cell of a table's column of numbers (``column``, or its only column)."""
    if column in frame.columns:
        values = frame[column]
    elif len(frame.columns) == 1:
        values = frame.iloc[:, 0]
    else:
        raise SMSNexusCampaignError(f"The suppression list has no column {column!r} and more than one column")
    return [(place(number), value) for number, value in enumerate(values, 1)]


def csv_delimiter(name: str) -> str:
    """The field separator of a CSV file by its name: a tab for ``*.tsv``, else a comma."""
    return "\t" if name.lower().endswith(".tsv") else ","


def iter_csv_records(name: str, *, errors: str = "strict") -> Iterator[tuple[int, list[str]]]:
    """
    The records of a CSV file with the line each starts on (a quoted cell may span lines), skipping blank
    lines as pandas does; the header is the first record.

    :param name: a local path or URL, compressed by suffix like :func:`read_table_file`.
    :param errors: how to decode bytes that are not UTF-8 (``"strict"`` raises).
    """
    with open_text(name, newline="", errors=errors) as stream:
        reader = csv.reader(stream, delimiter=csv_delimiter(name))
        start = 1
        for record in reader:
            if len(record) > 1 or (record and record[0].strip()):
                yield start, record
            start = reader.line_num + 1


@contextmanager
def open_text(name: str, *, newline: str | None = None, errors: str = "strict") -> Iterator[IO[str]]:
    """Open a file as UTF-8 text (a byte-order mark dropped), decompressed by its suffix like pandas does."""
    suffix = os.path.splitext(name.lower())[1]
    with ExitStack() as stack:
        handle = stack.enter_context(open_binary(name))
        if suffix == ".gz":
            import gzip

            handle = stack.enter_context(gzip.open(handle))
        elif suffix == ".bz2":
            import bz2

            handle = stack.enter_context(bz2.open(handle))
        elif suffix == ".xz":
            import lzma

            handle = stack.enter_context(lzma.open(handle))
        elif suffix == ".zip":
            import zipfile

            archive = stack.enter_context(zipfile.ZipFile(handle))
            members = [member for member in archive.namelist() if not member.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"a .zip file must hold exactly one file, not {len(members)}")
            handle = stack.enter_context(archive.open(members[0]))
        yield stack.enter_context(
            io.TextIOWrapper(handle, encoding="utf-8-sig", errors=errors, newline=newline)
        )


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
