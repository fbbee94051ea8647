"""Rendering and validating texts: the per-row Jinja template, the row it sees, the checks a text and a
media URL must pass, the ledger's hash of a message, and raw cells as short printable text."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.utils.phone import is_missing
from airflow_provider_smsnexus.utils.segments import MAX_MESSAGE_LENGTH

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

#: Longest raw value copied into a report (a phone cell could hold anything).
MAX_RAW_LENGTH = 100
#: Control characters allowed in a text: line feed, carriage return, tab, and form feed (a GSM-7 character).
_ALLOWED_CONTROLS = frozenset("\n\r\t\f")


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


def raw_text(value: Any) -> str | None:
    """A raw cell as short, printable text for the report (None for missing values)."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_RAW_LENGTH else text[:MAX_RAW_LENGTH] + "..."
