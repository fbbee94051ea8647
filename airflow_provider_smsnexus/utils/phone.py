"""E.164 normalisation of phone numbers, with a reason for every value that is not one.

Campaign data comes from spreadsheets and databases, where phone numbers arrive as text, as integers,
as floats (pandas reads ``+12125550100`` as ``12125550100`` and, beside a missing value, as
``12125550100.0``), in national format (``(212) 555-0100``) or not at all (``NaN``, ``None``, ``""``).
:func:`normalise_phone` turns each of them into an E.164 string or gives the reason it cannot.

Rules, in order:

* missing values (``None``, ``NaN``, ``pd.NA``, ``NaT``) and empty or blank strings give a reason;
* numbers (``int``, and ``float`` holding a whole number) are written as their digits: they have lost their
  ``+`` and any leading zero, so they are read as a national number of ``default_region`` when one is given
  and that reading is valid, otherwise as an international number (``+`` and the digits);
* text may hold digits, spaces, ``+ - ( ) . /`` only: letters (``1-800-FLOWERS``), extensions and control
  characters are refused rather than guessed; text that starts with ``+`` (or an international prefix such
  as ``00`` with ``default_region``) is international, other text is national and needs ``default_region``;
  text of digits only that is not valid as a national number is also tried as an international number
  that lost its ``+`` (a spreadsheet export of ``12125550100``);
* the result must be a valid number according to ``phonenumbers`` (right length and prefix for its country).
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Characters that may appear in a phone number written as text, besides (Unicode) digits.
_PUNCTUATION = frozenset(" \u00a0\t+-().\u2010\u2011\u2012\u2013\u2212/")
_FLOAT_TEXT = re.compile(r"^\+?\d+\.0+$")
#: A number in E.164 form: ``+``, a country code not starting with 0, 7 to 15 digits in all.
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
#: Longest text worth parsing (E.164 has at most 15 digits; allow generous punctuation).
_MAX_TEXT_LENGTH = 64


class PhoneResult(NamedTuple):
    """The outcome of normalising one value: exactly one of ``number`` and ``reason`` is set.

    :param number: the E.164 form (``+12125550100``), or None when the value is not a usable number
    :param reason: why the value is not a usable number, or None when it is
    """

    number: str | None
    reason: str | None

    @property
    def ok(self) -> bool:
        """Whether the value normalised to a valid E.164 number."""
        return self.number is not None


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing value: None, a float NaN, ``pd.NA`` or ``pd.NaT``."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    # pandas' NA and NaT without importing pandas: both are singletons with these class names.
    return type(value).__name__ in {"NAType", "NaTType"}


def normalise_phone(value: Any, default_region: str | None = None) -> PhoneResult:
    """Normalise one phone number to E.164.

    :param value: the raw value: text, an integer, a float holding a whole number, or a missing value
    :param default_region: ISO 3166 region code (``"US"``, ``"GB"``) used to read national numbers;
        without it only international numbers (``+...``) are accepted
    :return: a :class:`PhoneResult` with the E.164 number or the reason it is not one
    """
    if is_missing(value):
        return PhoneResult(None, "missing phone number")
    region = default_region.upper() if default_region else None
    if isinstance(value, bool):
        return PhoneResult(None, "not a phone number: a boolean")
    if isinstance(value, (numbers.Real, Decimal)):
        return _normalise_digits(_number_digits(value), region)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return PhoneResult(None, "not a phone number: bytes that are not UTF-8 text")
    if not isinstance(value, str):
        return PhoneResult(None, f"not a phone number: a value of type {type(value).__name__}")
    return _normalise_text(value, region)


def normalise_phones(values: Iterable[Any], default_region: str | None = None) -> list[PhoneResult]:
    """Normalise many values, reusing the result for repeated raw text.

    :param values: the raw values, e.g. a pandas Series or a list
    :param default_region: see :func:`normalise_phone`
    :return: one :class:`PhoneResult` per value, in order
    """
    cache: dict[str, PhoneResult] = {}
    results = []
    for value in values:
        if isinstance(value, str):
            result = cache.get(value)
            if result is None:
                result = cache[value] = normalise_phone(value, default_region)
        else:
            result = normalise_phone(value, default_region)
        results.append(result)
    return results


def _number_digits(value: numbers.Real | Decimal) -> str | PhoneResult:
    """The digits of a numeric value, or a reason when it is not a whole positive number."""
    try:
        if not isinstance(value, numbers.Integral):
            if isinstance(value, Decimal):
                whole = value.is_finite() and value == value.to_integral_value()
            else:
                number = float(value)
                whole = math.isfinite(number) and number.is_integer()
                if whole and abs(number) >= 2**53:
                    return PhoneResult(None, "not a phone number: a number too large to be exact")
            if not whole:
                return PhoneResult(None, "not a phone number: not a whole number")
        integer = int(value)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return PhoneResult(None, "not a phone number: an unreadable number")
    if integer <= 0:
        return PhoneResult(None, "not a phone number: zero or negative")
    return str(integer)


def _normalise_digits(digits: str | PhoneResult, region: str | None) -> PhoneResult:
    """Read the digits of a number that lost its ``+``: national first (with a region), then international."""
    if isinstance(digits, PhoneResult):
        return digits
    if len(digits) > 15:
        return PhoneResult(None, "invalid phone number: more than 15 digits")
    if region:
        national = _parse(digits, region)
        if national.ok:
            return national
    return _parse("+" + digits, None)


def _normalise_text(text: str, region: str | None) -> PhoneResult:
    """Normalise a phone number written as text."""
    text = text.strip()
    if not text:
        return PhoneResult(None, "empty phone number")
    if len(text) > _MAX_TEXT_LENGTH:
        return PhoneResult(None, "not a phone number: text too long")
    if E164_PATTERN.match(text):
        return _parse(text, None)
    if _FLOAT_TEXT.match(text):
        # A float written out as text ("12125550100.0"), typically a CSV saved from a float column.
        text = text.split(".", 1)[0]
    if any(not (char in _PUNCTUATION or unicodedata.category(char) == "Nd") for char in text):
        return PhoneResult(None, "not a phone number: contains letters or symbols")
    if "+" in text[1:] or not any(unicodedata.category(char) == "Nd" for char in text):
        return PhoneResult(None, "not a phone number: misplaced '+' or no digits")
    if text.startswith("+"):
        return _parse(text, None)
    digits = "".join(str(unicodedata.decimal(char)) for char in text if unicodedata.category(char) == "Nd")
    if not region:
        if digits == text and not digits.startswith("0"):
            return _normalise_digits(digits, None)
        return PhoneResult(None, "national number: set default_region or write it with +country code")
    national = _parse(text, region)
    if national.ok or digits != text or digits.startswith("0"):
        return national
    international = _parse("+" + digits, None)
    return international if international.ok else national


def _parse(text: str, region: str | None) -> PhoneResult:
    """Parse with phonenumbers and require a valid number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return PhoneResult(None, f"not a phone number: {_PARSE_ERRORS.get(exc.error_type, 'unreadable')}")
    if not phonenumbers.is_valid_number(number):
        if phonenumbers.is_possible_number(number):
            where = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
            return PhoneResult(None, f"invalid phone number: not a number in use in {where}")
        return PhoneResult(None, "invalid phone number: wrong length or country code")
    return PhoneResult(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None)


_PARSE_ERRORS = {
    0: "unknown country code",  # INVALID_COUNTRY_CODE
    1: "not a number",  # NOT_A_NUMBER
    2: "too short after the international prefix",  # TOO_SHORT_AFTER_IDD
    3: "too short",  # TOO_SHORT_NSN
    4: "too long",  # TOO_LONG
}
