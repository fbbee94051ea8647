"""Keyword replies as carriers read them (STOP, START, YES, NO): the whole text is the keyword, compared
without regard to case, surrounding whitespace or trailing punctuation.

One rule for every reader of keywords: the campaign's opt-outs (``STOP.`` opts out, ``stop sending me ads``
does not, as carriers and the CTIA handbook treat a keyword only when it is the whole message) and the
approval sensor's answers (``No!`` rejects). :func:`reply_keyword` reads a text; :func:`keyword_pattern`
is the same rule as a regular expression, for filters that travel as text (a trigger's ``pattern``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Punctuation ignored after a keyword ("Stop.", "STOP!!", "yes?", a phone's "…").
TRAILING_PUNCTUATION = ".!?,;:\u2026"
_TRAILING = re.compile(r"[\s" + re.escape(TRAILING_PUNCTUATION) + r"]+$")


def reply_keyword(text: str) -> str:
    """
    The keyword a reply is, upper-cased: the whole text without surrounding whitespace and trailing punctuation.

    A text of several words stays several words (``"STOP SENDING ME ADS"``), so it matches no keyword.

    :param text: the body of an inbound message.
    """
    return _TRAILING.sub("", text.strip()).upper()


def keyword_pattern(words: Iterable[str]) -> str:
    """
    A regular expression (for a case-insensitive ``re.search``) matching exactly the texts whose
    :func:`reply_keyword` is one of ``words``.

    :param words: the keywords, e.g. ``("YES", "NO")``.
    """
    alternatives = "|".join(re.escape(word.strip()) for word in words)
    return r"^\s*(?:" + alternatives + r")[\s" + re.escape(TRAILING_PUNCTUATION) + r"]*$"
