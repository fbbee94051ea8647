"""The emulator's own count of SMS segments (what it charges, as the server does), written from 3GPP TS 23.038
(GSM 03.38).

It plays the server's part: the provider's :mod:`airflow_provider_smsnexus.utils.segments` is the client's
estimate of this charge. The two share nothing, so the credit checks of the suite compare two independent
counts instead of one count with itself. The rules:
a text whose every character is in the GSM 7-bit default alphabet (:data:`GSM7_DEFAULT_TABLE`,
indexed by septet value) or its extension table (:data:`GSM7_EXTENSION_TABLE`, reached through the
escape septet 0x1B, so each of those characters takes 2 septets) is sent as GSM-7: one message holds
160 septets, a part of a concatenated message 153 (the user data header takes 7). Any other text is
sent as UCS-2, counted in UTF-16 code units (a character outside the Basic Multilingual Plane, such
as an emoji, is a surrogate pair: 2 units): 70 in one message, 67 per part. A part boundary never
falls inside an escape sequence or a surrogate pair: such a character starts the next part. An
empty text is still one message.
"""

from __future__ import annotations

#: The GSM 7-bit default alphabet, one character per septet value 0x00..0x7F; 0x1B (the escape to
#: the extension table) is a placeholder that no text character matches.
GSM7_DEFAULT_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)
#: The extension table's characters by septet value (after the escape septet).
GSM7_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_ESCAPE = 0x1B
_DEFAULT_CHARS = frozenset(ch for value, ch in enumerate(GSM7_DEFAULT_TABLE) if value != _ESCAPE)
_EXTENSION_CHARS = frozenset(GSM7_EXTENSION_TABLE.values())

#: ``(units in one message, units per part of a concatenated message)`` per encoding.
GSM7_LIMITS = (160, 153)
UCS2_LIMITS = (70, 67)


def character_units(text: str) -> tuple[str, list[int]]:
    """The encoding a text is sent in and the width of each of its characters in that encoding's units.

    :param text: the message text.
    :return: ``("GSM-7", septets per character)`` or ``("UCS-2", UTF-16 code units per character)``.
    """
    if all(ch in _DEFAULT_CHARS or ch in _EXTENSION_CHARS for ch in text):
        return "GSM-7", [2 if ch in _EXTENSION_CHARS else 1 for ch in text]
    return "UCS-2", [len(ch.encode("utf-16-le")) // 2 for ch in text]


def count_segments(text: str) -> int:
    """The number of SMS parts the text is sent in, which is what the emulator charges.

    :param text: the message text.
    """
    encoding, widths = character_units(text)
    single, per_part = GSM7_LIMITS if encoding == "GSM-7" else UCS2_LIMITS
    if sum(widths) <= single:
        return 1
    parts, room = 1, per_part
    for width in widths:
        if width > room:  # this character opens the next part: escapes and surrogates stay whole
            parts += 1
            room = per_part
        room -= width
    return parts
