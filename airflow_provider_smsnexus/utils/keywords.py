"""Keyword replies, read by one rule each and defined once here.

- **Carrier keywords** (STOP, START): the whole text is the keyword, compared without regard to case,
  surrounding whitespace or trailing punctuation. The campaign's opt-outs use it (``STOP.`` opts out,
  ``stop sending me ads`` does not, as carriers and the CTIA handbook treat a keyword only when it is the whole
  message). :func:`reply_keyword` reads a text; :func:`keyword_pattern` is the same rule as a regular
  expression, for filters that travel as text (a trigger's ``pattern``).
- **Answers** to a question (the approval sensor's YES or NO): the answer is the text's first word, leading
  whitespace and punctuation aside, and what follows is free: ``Yes, go ahead`` approves, ``No thanks``
  rejects, ``yesterday`` and ``I said yes`` are not answers. :func:`answer_pattern` is the rule as a regular
  expression, and :func:`answer_word` reads a text with it.
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


def answer_pattern(words: Iterable[str]) -> str:
    """
    A regular expression (for a case-insensitive ``re.search``) matching exactly the texts that start with
    one of ``words``: after any whitespace and punctuation, the word (or words, any spacing between them),
    then the end of the text or a character that is not a letter, digit or underscore.

    :param words: the answers, e.g. ``("YES", "NO")``; the longest is tried first (``NO WAY`` before ``NO``).
    :raises ValueError: no word is given (every text would match).
    """
    spelled = sorted({" ".join(word.split()) for word in words if word.split()}, key=lambda w: (-len(w), w))
    if not spelled:
        raise ValueError("answer_pattern needs at least one non-blank word")
    alternatives = "|".join(r"\s+".join(map(re.escape, word.split())) for word in spelled)
    return r"^[\W_]*(" + alternatives + r")(?!\w)"


def answer_word(text: str, words: Iterable[str]) -> str | None:
    """
    The one of ``words`` that ``text`` starts with (the rule of :func:`answer_pattern`), upper-cased with single
    spaces, or None when the text is not an answer.

    :param text: the body of an inbound message.
    :param words: the answers, e.g. ``("YES", "NO")``.
    """
    match = re.search(answer_pattern(words), text, re.IGNORECASE)
    return None if match is None else " ".join(match.group(1).split()).upper()
