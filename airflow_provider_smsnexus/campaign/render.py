"""Rendering and validating texts: the per-row Jinja template, the row it sees (missing values included), the
checks a text and a media URL must pass, the ledger's hash of a message, and raw cells as short printable text.

.. seealso:: "The message template" in the sending guide (``docs/guides/sending.md``): the rules for missing
    values that :class:`MissingValue` and :class:`AbsentValue` implement.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Undefined

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusMissingValueError
from airflow_provider_smsnexus.utils.phone import is_missing
from airflow_provider_smsnexus.utils.segments import MAX_MESSAGE_LENGTH

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

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


class _RowField:
    """What both kinds of absent row values share: the field they stand for, and reaching further in."""

    __slots__ = ()

    def __init__(self, field: str) -> None:
        super().__init__(hint=field, name=field, exc=SMSNexusMissingValueError)  # type: ignore[call-arg]

    def __getattr__(self, name: str) -> AbsentValue:
        # Python's protocol probes (copy, pickle) stay AttributeErrors, as in Jinja's own Undefined.
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return AbsentValue(_child(self._undefined_name, name))  # type: ignore[attr-defined]

    def __getitem__(self, key: Any) -> AbsentValue:
        return AbsentValue(_child(self._undefined_name, key))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._undefined_name!r})"  # type: ignore[attr-defined]


class MissingValue(_RowField, Undefined):
    """
    A missing value of a row (None, NaN, ``pd.NA``, NaT) as the template sees it.

    It prints as an empty string whatever filters follow (``{{ row.name | title }}`` gives ``""``, never
    ``"None"``), is false (``{{ row.name or "there" }}``), is replaced by ``{{ row.name | default("there") }}``,
    passes ``is none`` and fails ``is defined``. Reaching into it (``row.meta.tier``) gives an
    :class:`AbsentValue`; arithmetic or an order comparison with it raises
    :class:`~airflow_provider_smsnexus.exceptions.SMSNexusMissingValueError` (the row is invalid).

    :param field: the value as the template names it below ``row`` (``name``, ``meta.tier``).
    """

    __slots__ = ()


class AbsentValue(_RowField, StrictUndefined):
    """
    A value a row does not have: a key or index its value lacks (``row.meta.tier`` on ``{"plan": "basic"}``), or
    anything below a missing value.

    ``| default(...)`` and ``is defined`` accept it, and reaching further in gives another; any other use
    (printing, a filter, a test of truth) raises
    :class:`~airflow_provider_smsnexus.exceptions.SMSNexusMissingValueError`: the row is invalid, the others
    are sent.

    :param field: the value as the template names it below ``row`` (``meta.tier``).
    """

    __slots__ = ()


class _RowMapping(dict):  # type: ignore[type-arg]
    """A mapping inside a row's value: a key it lacks is an :class:`AbsentValue`, a missing value a
    :class:`MissingValue`. Iterated, printed or dumped as JSON it is the plain dict it copies."""

    __slots__ = ("_field",)

    def __init__(self, field: str, values: Mapping[Any, Any]) -> None:
        super().__init__(values)
        self._field = field

    def __getitem__(self, key: Any) -> Any:
        try:
            value = dict.__getitem__(self, key)
        except KeyError:
            return AbsentValue(_child(self._field, key))
        return _template_value(value, _child(self._field, key))


class _RowList(list):  # type: ignore[type-arg]
    """A list inside a row's value: an index it lacks is an :class:`AbsentValue`; its items, indexed or
    iterated, are seen as the template sees a row's values."""

    __slots__ = ("_field",)

    def __init__(self, field: str, values: Iterable[Any]) -> None:
        super().__init__(values)
        self._field = field

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list.__getitem__(self, index)
        try:
            value = list.__getitem__(self, index)
        except IndexError:
            return AbsentValue(_child(self._field, index))
        return _template_value(value, _child(self._field, index))

    def __iter__(self) -> Iterator[Any]:
        for index, value in enumerate(list.__iter__(self)):
            yield _template_value(value, _child(self._field, index))


def _child(field: str, key: Any) -> str:
    """The name of a value below ``field``: ``meta.tier`` for a text key, ``items[0]`` for any other."""
    return f"{field}.{key}" if isinstance(key, str) else f"{field}[{key!r}]"


def _template_value(value: Any, field: str) -> Any:
    """A row's value as the template sees it: a missing value as :class:`MissingValue`, a mapping or a list
    as one that tells a key or index it lacks; anything else as it is."""
    if is_missing(value):
        return MissingValue(field)
    if isinstance(value, Mapping):
        return _RowMapping(field, value)
    if isinstance(value, (list, tuple)):
        return _RowList(field, value)
    return value


def _is_none(value: Any) -> bool:
    """Jinja's ``none`` test, true for a row's missing value as well."""
    return value is None or isinstance(value, MissingValue)


def _json_default(value: Any) -> Any:
    """``| tojson`` of a row's value: a missing value is ``null``."""
    if isinstance(value, MissingValue):
        return None
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class TemplateRow:
    """
    One row of the recipient table as the template sees it: ``row.first_name`` or ``row["first name"]``.

    A missing value (None, NaN, ``pd.NA``, NaT) is a :class:`MissingValue`: it prints as an empty string
    whatever filters follow, is false, and ``| default(...)`` replaces it. A key or index a nested value lacks
    is an :class:`AbsentValue`. Unlike a dict, no column name is shadowed by a method (a column may be called
    ``items``).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[Any, Any]) -> None:
        self._values = {str(key): value for key, value in values.items()}

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._values[name]
        except KeyError:
            raise AttributeError(name) from None
        return _template_value(value, name)

    def __getitem__(self, name: str) -> Any:
        return _template_value(self._values[name], name)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"TemplateRow(columns={list(self._values)})"


class MessageTemplate:
    """
    A per-row message template: sandboxed Jinja with StrictUndefined.

    Rendered with the task context (``{{ ds }}``, ``{{ params.x }}``) and the row as ``row`` (a
    :class:`TemplateRow`). The text is trimmed of surrounding whitespace. ``None`` prints as an empty string;
    so does a row's missing value, whatever filters follow. Rendering is deterministic: the same row and
    context give the same text.

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
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import SandboxedEnvironment

        if not isinstance(source, str) or not source.strip():
            raise SMSNexusCampaignError("message_template must be a non-empty string")
        self.source = source
        self.env = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, finalize=_none_as_empty, cache_size=0
        )
        self.env.tests["none"] = _is_none
        self.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
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
        :raises SMSNexusMissingValueError: when the text needs a value this row lacks (a row error: see
            :class:`AbsentValue`).
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
