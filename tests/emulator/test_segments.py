"""The emulator's own segment count, checked against a table worked out by hand from GSM 03.38,
and the credits it charges over HTTP. The expected values are written out, never computed by code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_smsnexus.emulator.segments import GSM7_DEFAULT_TABLE, character_units, count_segments

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, 2 UTF-16 units

# (description, text, segments) - each worked out by hand:
HAND_CHECKED = [
    ("empty text is still one message", "", 1),
    ("160 GSM-7 septets fit one message", "a" * 160, 1),
    ("161 septets need two parts of 153", "a" * 161, 2),
    ("2 x 153 septets fill two parts exactly", "a" * 306, 2),
    ("307 septets spill into a third part", "a" * 307, 3),
    ("80 euro signs are 160 septets (escape + code each)", "€" * 80, 1),
    ("81 euro signs are 162 septets: 76 per part (152 septets), then 5", "€" * 81, 2),
    ("an escape pair never straddles a part: 152 a, then the euro opens part 2", "a" * 152 + "€" + "a" * 152, 3),
    ("e-acute is in the GSM-7 basic set: 160 fit", "é" * 160, 1),
    ("e-acute: 161 need two parts", "é" * 161, 2),
    ("line feeds are basic septets", "\n" * 160, 1),
    ("brackets are extension characters: 80 fit", "[" * 80, 1),
    ("brackets: 81 need two parts", "]" * 81, 2),
    ("70 Cyrillic letters fit one UCS-2 message", "ж" * 70, 1),
    ("71 Cyrillic letters need two parts of 67", "ж" * 71, 2),
    ("2 x 67 UCS-2 units fill two parts exactly", "ж" * 134, 2),
    ("135 UCS-2 units spill into a third part", "ж" * 135, 3),
    ("35 emoji are 70 units: one message", EMOJI * 35, 1),
    ("36 emoji are 72 units: 33 per part (66 units), then 3", EMOJI * 36, 2),
    ("a surrogate pair never straddles a part: 66 zhe, then the emoji opens part 2", "ж" * 66 + EMOJI + "ж" * 66, 3),
    ("one UCS-2 character turns the whole text to UCS-2: 160 units, 67 per part", "a" * 159 + "ж", 3),
    ("a curly apostrophe is not GSM-7", "Don\u2019t", 1),
    ("lower-case c-cedilla is not in the table (only capital at 0x09): 71 are UCS-2", "ç" * 71, 2),
    ("capital C-cedilla is GSM-7: 160 fit", "Ç" * 160, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "segments"), [row[1:] for row in HAND_CHECKED], ids=[row[0] for row in HAND_CHECKED]
)
def test_segment_count_matches_the_hand_checked_table(text, segments):
    assert count_segments(text) == segments


def test_units_are_septets_for_gsm7_and_utf16_units_for_ucs2():
    assert character_units("a€") == ("GSM-7", [1, 2])
    assert character_units("ж" + EMOJI) == ("UCS-2", [1, 2])


def test_the_default_table_is_the_128_septets_of_gsm_03_38():
    assert len(GSM7_DEFAULT_TABLE) == 128
    # Spot checks against the standard's table: position -> character.
    assert [GSM7_DEFAULT_TABLE[i] for i in (0x00, 0x01, 0x09, 0x10, 0x20, 0x24, 0x40, 0x5F, 0x60, 0x7F)] == [
        "@", "£", "Ç", "Δ", " ", "¤", "¡", "§", "¿", "à",
    ]  # fmt: skip


def test_the_emulator_does_not_use_the_providers_segment_counter():
    # Credit checks are only independent when the server counts on its own.
    package = Path(__file__).parents[2] / "airflow_provider_smsnexus" / "emulator"
    for path in package.glob("*.py"):
        imported = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "airflow_provider_smsnexus.utils.segments" not in imported, path.name


@pytest.mark.parametrize(
    ("text", "credits"),
    [("€" * 81, 2), ("a" * 152 + "€" + "a" * 152, 3), ("ж" * 66 + EMOJI + "ж" * 66, 3), ("é" * 160, 1)],
)
def test_a_send_is_charged_the_hand_checked_segments(api, smsnexus_emulator, text, credits):
    answer = api.send(text).json()["data"]
    assert answer["credits_used"] == credits
    assert smsnexus_emulator.admin.account()["credits"] == 10000 - credits
    assert [m["credits_used"] for m in smsnexus_emulator.admin.sent_messages()] == [credits]
