"""E.164 normalisation of phone numbers, with a reason for every value that is not one.

Campaign data comes from spreadsheets and databases, where phone numbers arrive as text, as integers,
as floats (pandas reads ``+12125550100`` as ``12125550100`` and, beside a missing value, as
``12125550100.0``), in national format (``(212) 555-0100``) or not at all (``NaN``, ``None``, ``""``).
:func:`normalise_phone` turns each of them into an E.164 string or gives the reason it cannot.

Never guess a person: a number is read in exactly one way, or refused with the reason and the fix. Rules,
in order:

* missing values (``None``, ``NaN``, ``pd.NA``, ``NaT``) and empty or blank strings give a reason;
* text may hold digits, spaces, ``+ - ( ) . /`` only: letters (``1-800-FLOWERS``), extensions and control
  characters are refused rather than guessed;
* text that starts with ``+`` is international; any other text is a national number of ``default_region``
  (``phonenumbers`` also reads that region's international prefix, ``00`` or ``011``, and a number that
  starts with the region's own country code, ``12125550100`` for ``"US"``). Without ``default_region`` it is
  refused: ``2015550142`` could be +1 201 555 0142 (New Jersey) or +20 155 501 42 (Egypt), and which one
  is not ours to guess. A national reading that is not valid is refused too, never retried as foreign;
* numbers (``int``, ``float`` holding a whole number, ``Decimal``, and text such as ``12125550100.0``) have
  lost their ``+`` and any leading zero: the same rule, read as national numbers of ``default_region``, and
  refused without it (keep such a column as text with ``+``);
* Excel's scientific notation (``1.2125550153E10``) is the number it writes when every digit is there, and
  is refused as "lost digits" when the mantissa is shorter than the number (``1.21256E+10``);
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
#: Excel's scientific notation of a whole number, as a CSV export writes a narrow number column.
_SCIENTIFIC = re.compile(r"^\d+(?:\.\d+)?[eE]\+?\d+$")
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


def normalise_phone(
    value: Any, default_region: str | None = None, *, suggest_region: bool = True
) -> PhoneResult:
    """Normalise one phone number to E.164.

    :param value: the raw value: text, an integer, a float holding a whole number, or a missing value
    :param default_region: ISO 3166 region code (``"US"``, ``"GB"``) used to read national numbers;
        without it only international numbers (``+...``) are accepted
    :param suggest_region: whether a refusal for lack of a country suggests setting ``default_region``
        (False where the caller has no such setting, e.g. a sensor's ``from_number``)
    :return: a :class:`PhoneResult` with the E.164 number or the reason it is not one
    """
    if is_missing(value):
        return PhoneResult(None, "missing phone number")
    region = default_region.upper() if default_region else None
    if isinstance(value, bool):
        return PhoneResult(None, "not a phone number: a boolean")
    if isinstance(value, (numbers.Real, Decimal)):
        return _normalise_digits(_number_digits(value), region, _NUMBER, suggest_region)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return PhoneResult(None, "not a phone number: bytes that are not UTF-8 text")
    if not isinstance(value, str):
        return PhoneResult(None, f"not a phone number: a value of type {type(value).__name__}")
    return _normalise_text(value, region, suggest_region)


def phone_argument(
    value: Any, parameter: str, default_region: str | None = None, *, suggest_region: bool = True
) -> str:
    """
    The E.164 form of a number given as a task argument, or an error naming the argument.

    :param value: the argument's value.
    :param parameter: the argument's name, for the error (``"from_number"``).
    :param default_region: see :func:`normalise_phone`.
    :param suggest_region: see :func:`normalise_phone`.
    :raises SMSNexusInvalidNumberError: when the value is not a usable number; nothing has been sent.
    """
    from airflow_provider_smsnexus.exceptions import SMSNexusInvalidNumberError

    result = normalise_phone(value, default_region, suggest_region=suggest_region)
    if result.number is None:
        shown = value if isinstance(value, str) else repr(value)
        shown = shown if len(shown) <= _MAX_TEXT_LENGTH else shown[:_MAX_TEXT_LENGTH] + "..."
        raise SMSNexusInvalidNumberError(
            f"{parameter}={shown!r} is not a usable phone number: {result.reason}", parameter=parameter
        )
    return result.number


def listed_number(value: Any) -> str | None:
    """
    A number as SMS Nexus lists it (``from``, ``to``, an account's ``number``) in E.164, or None.

    The API reference documents E.164 for these fields, so a value of bare digits is taken as E.164 that
    lost its ``+``: the server's numbers are international, never national. Only numbers from the server's
    answers are read this way (matching a STOP reply to a recipient, a sender to the account's numbers),
    never numbers a user wrote.

    :param value: the field's value.
    """
    if isinstance(value, str) and E164_PATTERN.match(value):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = "+" + value.strip()
    return normalise_phone(value).number


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


#: What a value without ``+`` was, for the reason that refuses it without a region.
_TEXT = "no country code"
_NUMBER = "a number that lost its '+' (a numeric column of a spreadsheet or pandas drops it)"
_EXCEL = "Excel scientific notation of a number without '+'"


def _normalise_digits(digits: str | PhoneResult, region: str | None, what: str, suggest: bool) -> PhoneResult:
    """Read the digits of a number that lost its ``+``: a national number of ``region``, or refused."""
    if isinstance(digits, PhoneResult):
        return digits
    if len(digits) > 15:
        return PhoneResult(None, "invalid phone number: more than 15 digits")
    return _national(digits, digits, region, what, suggest)


def _national(text: str, digits: str, region: str | None, what: str, suggest: bool) -> PhoneResult:
    """A number without ``+`` read as a national number of ``region``; without a region, the fix."""
    if not region:
        if len(digits) == 10 and digits[0] in "23456789":
            example = f"'+1{digits}' if it is a US or Canadian number"
        elif len(digits) == 11 and digits[0] == "1":
            example = f"'+{digits}' if it is a US or Canadian number"
        else:
            example = "e.g. '+44 20 7946 0000' for a UK number"
        fix = (
            "keep the column as text with '+'" if what != _TEXT else "write it with '+' and its country code"
        )
        region_fix = ", or set default_region to the country of national numbers" if suggest else ""
        return PhoneResult(None, f"{what}: {fix} ({example}){region_fix}")
    national = _parse(text, region)
    if national.ok:
        return national
    return PhoneResult(
        None,
        f"{national.reason} (read as a national number of {region}; write other countries' numbers with '+')",
    )


def _scientific_digits(text: str) -> str | PhoneResult:
    """The digits of Excel's scientific notation, or the reason when it is not a whole number or lost digits."""
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        kept = len(value.as_tuple().digits)
        return PhoneResult(
            None,
            f"Excel scientific notation that lost digits: {text!r} keeps {kept} of the number's {kept + exponent} "
            "digits; format the column as text in Excel and export it again",
        )
    if value != value.to_integral_value():
        return PhoneResult(None, "not a phone number: not a whole number")
    return _number_digits(value)


def _normalise_text(text: str, region: str | None, suggest: bool) -> PhoneResult:
    """Normalise a phone number written as text."""
    text = text.strip()
    if not text:
        return PhoneResult(None, "empty phone number")
    if len(text) > _MAX_TEXT_LENGTH:
        return PhoneResult(None, "not a phone number: text too long")
    if E164_PATTERN.match(text):
        return _parse(text, None)
    if _SCIENTIFIC.match(text):
        return _normalise_digits(_scientific_digits(text), region, _EXCEL, suggest)
    if _FLOAT_TEXT.match(text):
        # A float written out as text ("12125550100.0"), typically a CSV saved from a float column.
        text = text.split(".", 1)[0]
        if not text.startswith("+"):
            return _normalise_digits(text, region, _NUMBER, suggest)
    if any(not (char in _PUNCTUATION or unicodedata.category(char) == "Nd") for char in text):
        return PhoneResult(None, "not a phone number: contains letters or symbols")
    if "+" in text[1:] or not any(unicodedata.category(char) == "Nd" for char in text):
        return PhoneResult(None, "not a phone number: misplaced '+' or no digits")
    if text.startswith("+"):
        return _parse(text, None)
    digits = "".join(str(unicodedata.decimal(char)) for char in text if unicodedata.category(char) == "Nd")
    return _national(text, digits, region, _TEXT, suggest)


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
