"""Segment counting, checked by hand against the GSM 03.38 / UCS-2 rules."""

from __future__ import annotations

import pytest

from airflow_provider_smsnexus.utils.segments import (
    ENCODING_GSM7,
    ENCODING_UCS2,
    SegmentEstimate,
    estimate_segments,
    is_gsm7,
)

CURLY_QUOTE = "\u2019"
EMOJI = "\U0001f600"  # grinning face: outside the BMP, a surrogate pair in UTF-16


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (1600, 11)],
)
def test_gsm7_text_needs_one_segment_up_to_160_then_153_per_part(length: int, segments: int) -> None:
    assert estimate_segments("a" * length) == SegmentEstimate(ENCODING_GSM7, length, segments)


@pytest.mark.parametrize("char", list("^{}\\[~]|€"))
def test_gsm7_extension_characters_count_two_units(char: str) -> None:
    assert estimate_segments(char) == SegmentEstimate(ENCODING_GSM7, 2, 1)


def test_extension_characters_can_push_a_text_over_160_units() -> None:
    assert estimate_segments("a" * 158 + "€") == SegmentEstimate(ENCODING_GSM7, 160, 1)
    assert estimate_segments("a" * 159 + "€") == SegmentEstimate(ENCODING_GSM7, 161, 2)


def test_an_escape_pair_is_not_split_between_parts() -> None:
    # 152 plain characters, then "{" (2 units) would straddle the 153-unit boundary: it moves on.
    text = "a" * 152 + "{" + "a" * 152
    assert estimate_segments(text) == SegmentEstimate(ENCODING_GSM7, 306, 3)


def test_accents_of_the_gsm7_alphabet_stay_gsm7() -> None:
    assert estimate_segments("é è ù ì ò Ä Ö Ñ Ü ß £ ¥ § ¿ ¡ Δ Ω @ $ _").encoding == ENCODING_GSM7


def test_an_accent_outside_the_gsm7_alphabet_switches_to_ucs2() -> None:
    assert estimate_segments("São Paulo").encoding == ENCODING_UCS2


def test_one_curly_quote_switches_the_whole_text_to_ucs2() -> None:
    text = f"Don{CURLY_QUOTE}t forget your appointment"
    assert not is_gsm7(text)
    assert estimate_segments(text) == SegmentEstimate(ENCODING_UCS2, len(text), 1)


@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_text_needs_one_segment_up_to_70_then_67_per_part(length: int, segments: int) -> None:
    text = CURLY_QUOTE + "a" * (length - 1)
    assert estimate_segments(text) == SegmentEstimate(ENCODING_UCS2, length, segments)


def test_emoji_is_ucs2_and_counts_two_utf16_units() -> None:
    assert estimate_segments(EMOJI) == SegmentEstimate(ENCODING_UCS2, 2, 1)
    assert estimate_segments("a" * 68 + EMOJI) == SegmentEstimate(ENCODING_UCS2, 70, 1)
    assert estimate_segments("a" * 69 + EMOJI) == SegmentEstimate(ENCODING_UCS2, 71, 2)


def test_a_surrogate_pair_is_not_split_between_parts() -> None:
    text = "a" * 66 + EMOJI + "a" * 66  # the emoji would straddle the 67-unit boundary
    assert estimate_segments(text) == SegmentEstimate(ENCODING_UCS2, 134, 3)


def test_empty_text_is_one_gsm7_segment() -> None:
    assert estimate_segments("") == SegmentEstimate(ENCODING_GSM7, 0, 1)


def test_newlines_and_form_feed_are_gsm7() -> None:
    assert estimate_segments("a\nb\rc") == SegmentEstimate(ENCODING_GSM7, 5, 1)
    assert estimate_segments("\f") == SegmentEstimate(ENCODING_GSM7, 2, 1)
