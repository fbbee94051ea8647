"""Keyword replies as carriers read them: the whole text, any case, trailing punctuation ignored."""

from __future__ import annotations

import re

import pytest

from airflow_provider_smsnexus.utils.keywords import keyword_pattern, reply_keyword

# Hand-checked: the text, and the keyword a carrier reads in it (the text itself when it is no keyword).
READINGS = [
    ("STOP", "STOP"),
    ("stop", "STOP"),
    ("  Stop. ", "STOP"),
    ("STOP!", "STOP"),
    ("Stop!!!", "STOP"),
    ("stop?", "STOP"),
    ("Stop …", "STOP"),
    ("no.", "NO"),
    ("Yes!", "YES"),
    ("stop sending me ads", "STOP SENDING ME ADS"),
    ("please stop", "PLEASE STOP"),
    ("STOP STOP", "STOP STOP"),
    (".STOP", ".STOP"),
    ("STOP 🛑", "STOP 🛑"),
]


@pytest.mark.parametrize(("text", "keyword"), READINGS)
def test_a_reply_is_read_as_its_whole_text_without_case_or_trailing_punctuation(text, keyword):
    assert reply_keyword(text) == keyword


@pytest.mark.parametrize(("text", "keyword"), READINGS)
def test_the_pattern_matches_exactly_the_texts_whose_keyword_is_one_of_the_words(text, keyword):
    pattern = re.compile(keyword_pattern(["STOP", "NO", "YES"]), re.IGNORECASE)
    assert bool(pattern.search(text.strip())) == (keyword in {"STOP", "NO", "YES"})
