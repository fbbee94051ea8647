"""Finding the API token in a text a server wrote, in any encoding or layers of encodings, and redacting it.

A server or a gateway may echo the token back in an error: plain, JSON-escaped, URL-encoded, as HTML or XML
character references (numeric or named: ``&amp;``, ``&quot;``, ``&sol;``), base64-encoded, or several of these
layered (a gateway page HTML-escaping a URL-encoded token, a redirect URL-encoded twice). One pattern finds the
token as any single layer may write each of its characters, or as base64 (:func:`_secret_pattern`). To reach
the layers under that one, the text is also decoded one kind at a time (character references, URL escapes,
backslash escapes), to :data:`MAX_LAYERS` decodings deep; every match in a decoded text is mapped back to the
span of the original text it was decoded from. Each such span is replaced by :data:`REDACTED`.
"""

from __future__ import annotations

import base64
import bisect
import functools
import html
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Stands in for the token in error texts.
REDACTED = "***"
#: How many decodings deep the token is looked for under the layer the pattern itself reads.
MAX_LAYERS = 4


def _char_forms(char: str) -> str:
    """A regex for one character as JSON, URL, HTML or plain text may write it."""
    code = ord(char)
    if code <= 0xFFFF:
        json_escape = rf"\\u{code:04x}"
    else:  # a JSON surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        json_escape = rf"\\u{high:04x}\\u{low:04x}"
    forms = [
        re.escape(char),
        json_escape,
        re.escape("\\" + char),  # JSON's \/ (PHP writes every / so), and any backslash escape
        "".join(f"%{byte:02x}" for byte in char.encode()),
        rf"&#0*{code};",
        rf"&#x0*{code:x};",
    ]
    if char == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


def _base64_forms(secret: str) -> list[str]:
    """The token base64-encoded at each of the three byte alignments (inside a longer encoded text too)."""
    raw = secret.encode()
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Drop the characters that also depend on the bytes around the token.
        head = (shift * 8 + 5) // 6 if shift else 0
        core = encoded.rstrip("=")
        tail = (len(raw) + shift) % 3
        core = core[head : len(core) - (1 if tail else 0)]
        if len(core) >= 8:
            forms.extend({re.escape(core), re.escape(core.replace("+", "-").replace("/", "_"))})
    return forms


@functools.lru_cache(maxsize=16)
def _secret_pattern(secret: str) -> re.Pattern[str]:
    chars = "".join(_char_forms(char) for char in secret)
    return re.compile("|".join([chars, *_base64_forms(secret)]), re.IGNORECASE)


# -- decoding one layer, keeping where each character came from ---------------------------------------------


@dataclass
class _Layer:
    """
    A text decoded from its ``parent`` (None: the original). ``escapes`` lists each decoded escape as
    ``(start, end, parent_start, parent_end)``: ``text[start:end]`` came from ``parent.text[parent_start:
    parent_end]``; between escapes, characters map one to one.
    """

    text: str
    parent: _Layer | None = None
    escapes: list[tuple[int, int, int, int]] = field(default_factory=list)
    _starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._starts = [escape[0] for escape in self.escapes]

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` (not empty) was decoded from."""
        if self.parent is None:
            return start, end
        first, last = self._in_parent(start), self._in_parent(end - 1)
        return self.parent.origin(first[0], last[1])

    def _in_parent(self, position: int) -> tuple[int, int]:
        """The span of the parent's text that character ``position`` of this text came from."""
        index = bisect.bisect_right(self._starts, position) - 1
        if index < 0:
            return position, position + 1
        _, end, parent_start, parent_end = self.escapes[index]
        if position < end:
            return parent_start, parent_end
        shifted = parent_end + (position - end)
        return shifted, shifted + 1


def _decoder(pattern: str, decode: Callable[[re.Match[str]], str]) -> Callable[[_Layer], _Layer | None]:
    """A decoding of one kind of escape: the layer under ``layer``, or None when it decodes nothing."""
    compiled = re.compile(pattern, re.IGNORECASE | re.DOTALL)

    def decode_layer(layer: _Layer) -> _Layer | None:
        pieces: list[str] = []
        escapes: list[tuple[int, int, int, int]] = []
        done = length = 0
        for match in compiled.finditer(layer.text):
            value = decode(match)
            if value == match.group():
                continue
            pieces.append(layer.text[done : match.start()])
            length += match.start() - done
            escapes.append((length, length + len(value), match.start(), match.end()))
            pieces.append(value)
            length += len(value)
            done = match.end()
        if not escapes:
            return None
        pieces.append(layer.text[done:])
        return _Layer("".join(pieces), layer, escapes)

    return decode_layer


def _utf8_escape(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group().replace("%", "")).decode("utf-8", errors="replace")


_JSON_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _backslash_escape(match: re.Match[str]) -> str:
    if match.group("pair_high"):
        high, low = int(match.group("pair_high"), 16), int(match.group("pair_low"), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    if match.group("unit"):
        return chr(int(match.group("unit"), 16))
    char = match.group("char")
    return _JSON_CONTROL.get(char, char)


#: The kinds of escape a layer may have written: HTML and XML character references (named and numeric), URL
#: escapes (one UTF-8 character each), and JSON's (or any) backslash escapes.
_DECODERS = (
    _decoder(r"&(?:#[0-9]{1,8}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});?", lambda m: html.unescape(m.group())),
    _decoder(
        r"%(?:[0-7][0-9a-f]|[c-d][0-9a-f]%[89ab][0-9a-f]|e[0-9a-f](?:%[89ab][0-9a-f]){2}"
        r"|f[0-4](?:%[89ab][0-9a-f]){3})",
        _utf8_escape,
    ),
    _decoder(
        r"\\u(?P<pair_high>d[89ab][0-9a-f]{2})\\u(?P<pair_low>d[c-f][0-9a-f]{2})"
        r"|\\u(?P<unit>[0-9a-f]{4})|\\(?P<char>.)",
        _backslash_escape,
    ),
)


def _layers(text: str) -> Iterator[_Layer]:
    """The text, then every distinct text one to :data:`MAX_LAYERS` decodings under it, shallowest first."""
    level = [_Layer(text)]
    seen = {text}
    for depth in range(MAX_LAYERS + 1):
        yield from level
        if depth == MAX_LAYERS:
            return
        deeper = []
        for layer in level:
            for decode in _DECODERS:
                child = decode(layer)
                if child is not None and child.text not in seen:
                    seen.add(child.text)
                    deeper.append(child)
        level = deeper


def scrub(text: str, secret: str) -> str:
    """
    ``text`` with every occurrence of ``secret`` replaced by ``***``: as plain text, JSON-escaped (``\\/``,
    ``\\u002f``, any character as ``\\uXXXX``), URL-encoded (once or more), as HTML or XML character references
    (numeric or named, escaped once or more), base64, and layers of these.

    :param text: an error text, or a server's message.
    :param secret: the API token ("" scrubs nothing).
    """
    if not secret or not text:
        return text
    pattern = _secret_pattern(secret)
    spans = sorted(
        layer.origin(*match.span())
        for layer in _layers(text)
        for match in pattern.finditer(layer.text)
        if match.end() > match.start()
    )
    if not spans:
        return text
    pieces, done = [], 0
    for start, end in spans:
        if start >= done:  # else it overlaps the span redacted last
            pieces += [text[done:start], REDACTED]
        done = max(done, end)
    pieces.append(text[done:])
    return "".join(pieces)
