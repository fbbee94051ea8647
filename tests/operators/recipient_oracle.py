"""An oracle for recipient tables that does not use the provider's code: which rows must be texted, with what.

Phone values are drawn from a hand-checked table of forms built around known numbers, so each value's
validity is known by construction rather than asked of the production ``normalise_phone``:

* pool A (``+1 212 555 0110..0149``, valid per ``phonenumbers``) carries the forms whose reading the
  documented rules fix (``utils/phone.py``): E.164 text, national text and whole numbers as int or float
  (each valid only with ``default_region``: without it they have no country), Unicode digits, and the
  refused forms (letters, symbols, control and bidi characters, extensions);
* pool B (``0150..0189``) carries forms the rules leave open (bytes, ``"<digits>.0"`` text, ``Decimal``, fullwidth
  digits, an ``00`` prefix): a row of pool B may be texted or refused, but only ever to its own number, once;
* invalid values with no number at all: too short, an unassigned ``+1 555`` area code, too long, letters, a
  lone ``+``, missing values, booleans, containers, text without digits, fractional floats.

Texts are rendered here from the templates' Jinja meaning (``None`` prints empty, ``~`` and ``| string``
print ``None``), and checked against the documented limits (1 to 1600 characters, valid Unicode, no control
characters but ``\\n \\r \\t \\f``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from hypothesis import strategies as st

POOL_A = [f"+1212555{n:04d}" for n in range(110, 150)]
POOL_B = [f"+1212555{n:04d}" for n in range(150, 190)]
REGIONS = (None, "US")
FULLWIDTH = str.maketrans("+0123456789", "\uff0b" + "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
ALLOWED_CONTROLS = frozenset("\n\r\t\f")
MAX_LENGTH = 1600


@dataclass(frozen=True)
class Phone:
    """A drawn phone value and what it must read as: ``number`` per region (None: refused), or, when
    ``open_form``, a form the rules leave open (texted as ``base`` or refused)."""

    raw: Any
    base: str | None
    national: bool = False  # valid only with default_region="US"
    refused: bool = False
    open_form: bool = False

    def number(self, region: str | None) -> str | None:
        if self.refused or self.base is None or self.open_form:
            return None
        return self.base if (region == "US" or not self.national) else None


def _forms(pool: list[str], build: Any, **kind: bool) -> st.SearchStrategy[Phone]:
    return st.sampled_from(pool).map(lambda n: Phone(build(n), n, **kind))


#: Forms of pool A that the documented rules read as the number (``national``: only with a region).
valid_forms = st.one_of(
    _forms(POOL_A, lambda n: n),
    _forms(POOL_A, lambda n: f"+1 {n[2:5]} {n[5:8]} {n[8:]}"),
    _forms(POOL_A, lambda n: f"({n[2:5]}) {n[5:8]}-{n[8:]}", national=True),
    _forms(POOL_A, lambda n: f"{n[2:5]}.{n[5:8]}.{n[8:]}", national=True),
    _forms(POOL_A, lambda n: f"{n[2:5]}-{n[5:8]}-{n[8:]}", national=True),
    _forms(POOL_A, lambda n: float(n[1:]), national=True),  # pandas' float column: the "+" is lost
    _forms(POOL_A, lambda n: int(n[1:]), national=True),
    _forms(POOL_A, lambda n: n.translate(ARABIC_INDIC)),  # Unicode digits
)
#: Forms of pool A the rules refuse: letters, symbols, control and bidi characters, an extension.
refused_forms = st.one_of(
    _forms(POOL_A, lambda n: n + "\u202e", refused=True),  # right-to-left override
    _forms(POOL_A, lambda n: "\u200f" + n, refused=True),  # right-to-left mark
    _forms(POOL_A, lambda n: n + "\x00", refused=True),
    _forms(POOL_A, lambda n: "📞" + n, refused=True),
    _forms(POOL_A, lambda n: n + " ext 5", refused=True),
    _forms(POOL_A, lambda n: [n], refused=True),
)
#: Forms of pool B the rules leave open.
open_forms = st.one_of(
    _forms(POOL_B, lambda n: n.encode(), open_form=True),
    _forms(POOL_B, lambda n: n[1:] + ".0", open_form=True),
    _forms(POOL_B, lambda n: Decimal(n[1:]), open_form=True),
    _forms(POOL_B, lambda n: n.translate(FULLWIDTH), open_form=True),
    _forms(POOL_B, lambda n: "00" + n[1:], open_form=True),
)
_not_numbers = st.one_of(
    st.sampled_from(
        [
            "+15550100",  # too short
            "+15555550123",  # +1 555: an area code phonenumbers does not accept
            "+1212555014299",  # too long
            "1-800-FLOWERS",
            "+",
            "++",
            "",
            " ",
            "\t",
            "N/A",
            "NaN",
            "None",
            "null",
            "0",
            "-1",
            "9" * 10_000,
        ]
    ),
    st.none(),
    st.just(float("nan")),
    st.just(pd.NA),
    st.just(pd.NaT),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=99_999),  # at most five digits, or negative
    st.integers(min_value=10**16, max_value=2**70),  # more digits than E.164 allows
    st.floats().filter(lambda f: not f.is_integer()),
    st.text(alphabet=st.characters(exclude_categories=["Nd", "Nl", "No", "Cs"]), max_size=20),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
invalid_values = _not_numbers.map(lambda v: Phone(v, None, refused=True))
phones = st.one_of(valid_forms, valid_forms, refused_forms, open_forms, invalid_values)


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _printed(value: Any) -> str:
    """How a row's value prints, whatever filters follow: a missing value as an empty string (the sending
    guide's rule; never ``"None"``), anything else as ``str``."""
    return "" if is_missing(value) else str(value)


#: The templates the properties use, with their meaning written out: ``name -> text`` (``KeyError``-free).
RENDERINGS = {
    "{{ row.name }}": lambda name: _printed(name),
    "Hi {{ row.name }}!": lambda name: f"Hi {_printed(name)}!",
    "Hi {{ row.name }}": lambda name: f"Hi {_printed(name)}",
    "{{ row['name'] }}{{ row.name }}": lambda name: _printed(name) * 2,
    "{{ row.name | string | upper }} on {{ ds }}": lambda name: f"{_printed(name).upper()} on 2026-03-08",
    "Hello {{ row.name or 'there' }} 👋": lambda name: (
        f"Hello {_printed(name) if not is_missing(name) and name else 'there'} 👋"
    ),
    "{{ row.name ~ row.name ~ row.name }}": lambda name: _printed(name) * 3,
}


def expected_text(template: str, name: Any) -> str | None:
    """The text a row must get (trimmed), or None when the text cannot be sent."""
    text = RENDERINGS[template](name).strip()
    if not text or len(text) > MAX_LENGTH:
        return None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return None
    if any(unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROLS for c in text):
        return None
    return text


def canonical(text: str) -> str:
    """Texts compared as SMS Nexus may store them: NFC, LF line ends."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def expected_sends(
    phones_and_names: list[tuple[Phone, Any]], template: str, region: str | None
) -> dict[str, str]:
    """Pool-A recipient -> the text it must get exactly once: the first sendable row of each number."""
    expected: dict[str, str] = {}
    for phone, name in phones_and_names:
        number = phone.number(region)
        text = expected_text(template, name) if number else None
        if number and text is not None and number not in expected:
            expected[number] = text
    return expected
