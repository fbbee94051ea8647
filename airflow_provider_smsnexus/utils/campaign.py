"""Pure helpers of a bulk SMS campaign: the recipient table, the message template, opt-outs, partitions
and the report.

Nothing here talks to SMS Nexus; :mod:`airflow_provider_smsnexus.operators.sms` does, and calls these.

.. seealso:: The "SMSNexusBulkSendOperator" section of the README.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.utils.phone import is_missing, normalise_phone

if TYPE_CHECKING:
    import pandas as pd

#: Inbound texts that opt a number out, compared after trimming spaces and ignoring case.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
#: Inbound texts that opt a number back in (the carriers' standard keywords); the latest keyword wins.
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
#: The longest text SMS Nexus accepts, in characters.
MAX_MESSAGE_LENGTH = 1600
#: Longest raw value copied into a report (a phone cell could hold anything).
MAX_RAW_LENGTH = 100

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv")
#: Control characters allowed in a text: line feed, carriage return, tab, and form feed (a GSM-7 character).
_ALLOWED_CONTROLS = frozenset("\n\r\t\f")


# -- the recipient table --------------------------------------------------------------------------------


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
        with _open_binary(name) as handle:
            if lowered.endswith(_PARQUET_SUFFIXES):
                return pd.read_parquet(handle)
            if lowered.endswith(_CSV_SUFFIXES):
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
    if is_path and not str(source).lower().endswith(_PARQUET_SUFFIXES + _CSV_SUFFIXES):
        try:
            with _open_binary(str(source)) as handle:
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


# -- opt-outs -----------------------------------------------------------------------------------------------


def parse_created_at(message: Mapping[str, Any]) -> datetime | None:
    """A message's ``created_at`` as an aware UTC datetime, or None when it is missing or unreadable."""
    value = message.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def opted_out_numbers(inbound_messages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """
    The numbers that opted out by texting a stop keyword, each with the reason to report.

    Keywords are compared after trimming spaces and ignoring case. A number that later texted ``START``
    or ``UNSTOP`` opted back in: its latest keyword (by ``created_at``, then id) wins.

    :param inbound_messages: inbound message dicts of ``/api/messages`` (``from``, ``body``, ``created_at``).
    :return: normalised number -> reason (``"opted out: STOP at 2026-03-08T12:00:00Z"``).
    """
    latest: dict[str, tuple[datetime, int, str, str]] = {}
    for message in inbound_messages:
        body = message.get("body")
        if not isinstance(body, str):
            continue
        keyword = body.strip().upper()
        if keyword not in OPT_OUT_KEYWORDS and keyword not in OPT_IN_KEYWORDS:
            continue
        number = normalise_phone(message.get("from")).number
        if number is None:
            continue
        message_id = message.get("id")
        order = (
            parse_created_at(message) or _EARLIEST,
            message_id if isinstance(message_id, int) else 0,
            keyword,
            str(message.get("created_at") or "unknown time"),
        )
        if number not in latest or order[:2] >= latest[number][:2]:
            latest[number] = order
    return {
        number: f"opted out: {keyword} at {when}"
        for number, (_, _, keyword, when) in latest.items()
        if keyword in OPT_OUT_KEYWORDS
    }


# -- texts ------------------------------------------------------------------------------------------------------


def normalise_body(text: str) -> str:
    """The canonical form of a text, to compare what was sent with what SMS Nexus lists (NFC, LF, trimmed)."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def message_hash(from_number: str, body: str) -> str:
    """The ledger's hash of a message: SHA-256 of the sender and the canonical text."""
    return hashlib.sha256(
        f"{from_number}\x1f{normalise_body(body)}".encode("utf-8", "surrogatepass")
    ).hexdigest()


def message_problem(body: str) -> str | None:
    """Why a rendered text cannot be sent, or None when it can."""
    if not body:
        return "empty message"
    if len(body) > MAX_MESSAGE_LENGTH:
        return f"message too long: {len(body)} characters (at most {MAX_MESSAGE_LENGTH})"
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        return "message is not valid Unicode text (lone surrogate)"
    if any(unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS for char in body):
        return "message contains control characters"
    return None


def media_url_problem(url: str) -> str | None:
    """Why a media URL cannot be sent, or None when it looks like an http(s) URL."""
    if not url.lower().startswith(("https://", "http://")) or any(char.isspace() for char in url):
        return "invalid media_url: not an http(s) URL"
    return None


class TemplateRow:
    """
    One row of the recipient table as the template sees it: ``row.first_name`` or ``row["first name"]``.

    Missing values (NaN, None) are None, so ``{{ row.name or "there" }}`` works, and print as an empty
    string. Unlike a dict, no column name is shadowed by a method (a column may be called ``items``).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[Any, Any]) -> None:
        self._values = {str(key): (None if is_missing(value) else value) for key, value in values.items()}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"TemplateRow(columns={list(self._values)})"


class MessageTemplate:
    """
    A per-row message template: sandboxed Jinja with StrictUndefined.

    Rendered with the task context (``{{ ds }}``, ``{{ params.x }}``) and the row as ``row``. The text is
    trimmed of surrounding whitespace. ``None`` prints as an empty string.

    :param source: the template text.
    :param macros: extra globals (the DAG's ``user_defined_macros``).
    :param filters: extra filters (the DAG's ``user_defined_filters``).
    """

    def __init__(
        self,
        source: str,
        *,
        macros: Mapping[str, Any] | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> None:
        from jinja2 import StrictUndefined, TemplateSyntaxError
        from jinja2.sandbox import SandboxedEnvironment

        if not isinstance(source, str) or not source.strip():
            raise SMSNexusCampaignError("message_template must be a non-empty string")
        self.source = source
        self.env = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, finalize=_none_as_empty, cache_size=0
        )
        self.env.globals.update(macros or {})
        self.env.filters.update(filters or {})
        try:
            self.row_columns = _row_references(self.env.parse(source))
            self.template = self.env.from_string(source)
        except TemplateSyntaxError as exc:
            raise SMSNexusCampaignError(
                f"message_template is not valid Jinja: {exc.message} (line {exc.lineno})"
            ) from None

    def missing_columns(self, columns: Iterable[Any]) -> list[str]:
        """The columns the template names (``row.x``, ``row["x"]``) that are not in ``columns``."""
        present = {str(column) for column in columns}
        return sorted(column for column in self.row_columns if column not in present)

    def render(self, context: Mapping[str, Any], row: TemplateRow) -> str:
        """
        Render the text of one row, trimmed.

        :raises SMSNexusCampaignError: when the template names something that does not exist (the same for
            every row: a template error, not a row error) or breaks the sandbox's rules.
        :raises Exception: whatever a row's values make the template raise (reported as the row's reason).
        """
        from jinja2.exceptions import SecurityError, UndefinedError

        try:
            return self.template.render({**context, "row": row}).strip()
        except UndefinedError as exc:
            raise SMSNexusCampaignError(f"message_template uses something undefined: {exc.message}") from None
        except SecurityError as exc:
            raise SMSNexusCampaignError(f"message_template breaks the sandbox: {exc}") from None


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


def _row_references(ast: Any) -> set[str]:
    """The column names a parsed template reads from ``row`` by a constant name."""
    from jinja2 import nodes

    names = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "row"):
            continue
        if isinstance(node, nodes.Getattr):
            names.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.add(node.arg.value)
    return names


# -- partitions and the report -------------------------------------------------------------------------------


def partition_of(key: str, num_partitions: int) -> int:
    """The partition of a row: SHA-256 of its key (the normalised number) modulo ``num_partitions``.

    Stable across processes and Python versions (unlike ``hash()``), so every worker splits alike.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % num_partitions


def raw_text(value: Any) -> str | None:
    """A raw cell as short, printable text for the report (None for missing values)."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_RAW_LENGTH else text[:MAX_RAW_LENGTH] + "..."


#: The report's columns, in order, with their Arrow types.
REPORT_COLUMNS = (
    ("row_number", "int64"),
    ("recipient", "string"),
    ("outcome", "string"),
    ("message_id", "string"),
    ("credits", "int64"),
    ("reason", "string"),
)


def write_report(rows: Sequence[Mapping[str, Any]], destination: Any) -> str:
    """
    Write the campaign report: one Parquet row per input row, columns :data:`REPORT_COLUMNS`.

    A local file is written beside its destination and renamed into place, so that a reader never sees a
    half-written report; an object-storage URL is written through ObjectStoragePath.

    :param rows: dicts with the report's columns.
    :param destination: a local path or an object-storage URL.
    :return: the destination as a string.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in REPORT_COLUMNS])
    columns = {name: [_clean(row.get(name)) for row in rows] for name, _ in REPORT_COLUMNS}
    table = pa.Table.from_pydict(columns, schema=schema)
    name = str(destination)
    local = _local_path(name)
    if local is None:
        from airflow.sdk import ObjectStoragePath

        with ObjectStoragePath(name).open("wb") as handle:
            pq.write_table(table, handle)
        return name
    directory = os.path.dirname(os.path.abspath(local))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(local)}.{os.getpid()}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, local)
    return local


def is_storage_path(value: Any) -> bool:
    """Whether ``value`` is an ObjectStoragePath (checked by name: importing it is slow at parse time)."""
    return any(klass.__name__ == "ObjectStoragePath" for klass in type(value).__mro__)


def _open_binary(name: str) -> Any:
    """Open a local path, a ``file://`` URL or an object-storage URL for reading bytes."""
    local = _local_path(name)
    if local is not None:
        return open(local, "rb")
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(name).open("rb")


def _local_path(name: str) -> str | None:
    """The local file a path or ``file://`` URL names, or None for an object-storage URL (``s3://...``)."""
    if name.lower().startswith("file://"):
        return name[len("file://") :]
    return None if "://" in name else name


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
