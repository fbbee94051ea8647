"""The client's estimate of the SMS segments (billing parts) a text needs, as SMS Nexus bills them.

An SMS carries 140 bytes. A text that fits the GSM 03.38 default alphabet is sent in GSM-7:
160 characters in a single message, or 153 per part when it has to be split (each part keeps
7 bytes for the concatenation header). The extension characters ``^ { } \\ [ ~ ] | €`` and the form
feed are sent as an escape plus a character, so they take two units. Any other character (a curly
quote, an emoji, most accented letters) switches the whole text to UCS-2: 70 UTF-16 code units
alone or 67 per part, where characters outside the Basic Multilingual Plane (emoji) take two units.

A character is never split between two parts, as handsets do: an escape pair or a surrogate pair
that would straddle a boundary moves to the next part. For texts without two-unit characters
this is exactly ``1`` when the text fits one message, else ``ceil(units / per_part)``.

This module is pure (no I/O, no imports beyond the standard library) and belongs to the client: the campaign
planner estimates each row's credits with it before sending. The emulator does not use it. It charges by its
own count, :mod:`airflow_provider_smsnexus.emulator.segments`, written separately from 3GPP TS 23.038 as the
server counts, so the suite's credit checks compare this estimate with an independent count of what is
charged, not with itself.
"""

from __future__ import annotations

from typing import NamedTuple

#: The longest text SMS Nexus accepts, in characters (the client's one definition; the emulator keeps
#: its own, as the server would).
MAX_MESSAGE_LENGTH = 1600

ENCODING_GSM7 = "GSM-7"
ENCODING_UCS2 = "UCS-2"

#: Units in a single, unsplit message, by encoding.
SINGLE_LIMIT = {ENCODING_GSM7: 160, ENCODING_UCS2: 70}
#: Units per part of a concatenated (multi-part) message, by encoding.
PART_LIMIT = {ENCODING_GSM7: 153, ENCODING_UCS2: 67}

#: The GSM 03.38 default alphabet (without the escape code itself).
GSM7_BASIC_CHARS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the GSM 03.38 extension table: each is sent as escape + character (two units).
GSM7_EXTENSION_CHARS = frozenset("^{}\\[~]|€\f")


class SegmentEstimate(NamedTuple):
    """How a text will be sent.

    :param encoding: ``"GSM-7"`` or ``"UCS-2"``.
    :param units: length in the encoding's units: septets for GSM-7 (extension characters count 2),
        UTF-16 code units for UCS-2 (emoji and other non-BMP characters count 2).
    :param segments: number of SMS parts, which is what SMS Nexus charges in credits
        (at least 1, also for an empty text).
    """

    encoding: str
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    """Tell whether every character of ``text`` can be sent in GSM-7.

    :param text: the message text.
    """
    return all(ch in GSM7_BASIC_CHARS or ch in GSM7_EXTENSION_CHARS for ch in text)


def _unit_widths(text: str, encoding: str) -> list[int]:
    """Return the width in units of each character of ``text`` in ``encoding``."""
    if encoding == ENCODING_GSM7:
        return [2 if ch in GSM7_EXTENSION_CHARS else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(widths: list[int], part_limit: int) -> int:
    """Count the parts needed when characters of ``widths`` are packed without splitting one."""
    parts, used = 1, 0
    for width in widths:
        if used + width > part_limit:
            parts += 1
            used = 0
        used += width
    return parts


def estimate_segments(text: str) -> SegmentEstimate:
    """Estimate the encoding, length in units and number of segments of an SMS text.

    >>> estimate_segments("Hello")
    SegmentEstimate(encoding='GSM-7', units=5, segments=1)
    >>> estimate_segments("x" * 161).segments
    2
    >>> estimate_segments("Don\u2019t").encoding
    'UCS-2'

    :param text: the message text, as the user wrote it.
    :return: a :class:`SegmentEstimate`; ``segments`` is the number of credits SMS Nexus charges
        for the text as an SMS.
    """
    encoding = ENCODING_GSM7 if is_gsm7(text) else ENCODING_UCS2
    widths = _unit_widths(text, encoding)
    units = sum(widths)
    if units <= SINGLE_LIMIT[encoding]:
        return SegmentEstimate(encoding, units, 1)
    return SegmentEstimate(encoding, units, _pack(widths, PART_LIMIT[encoding]))
