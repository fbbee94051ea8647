"""Tests of the emulator's settings: test defaults, copies, the public view and run-time checks."""

from __future__ import annotations

import pytest

from airflow_provider_smsnexus.emulator.settings import (
    DEFAULT_TOKEN,
    LIFECYCLE_MANUAL,
    LIFTED_LIMIT,
    EmulatorSettings,
)


def test_for_tests_lifts_limits_and_keeps_outcomes_deterministic() -> None:
    settings = EmulatorSettings.for_tests(failure_share=0.5)
    assert (settings.send_limit, settings.read_limit) == (LIFTED_LIMIT, LIFTED_LIMIT)
    assert settings.lifecycle == LIFECYCLE_MANUAL
    assert (settings.failure_share, settings.reply_share, settings.random_seed) == (0.5, 0.0, 0)


def test_copy_changes_only_the_given_fields() -> None:
    settings = EmulatorSettings.for_tests()
    changed = settings.copy(list_order="oldest_first")
    assert changed.list_order == "oldest_first"
    assert changed.send_limit == settings.send_limit
    assert settings.list_order != "oldest_first"


def test_public_dict_hides_the_tokens_and_counts_accounts() -> None:
    public = EmulatorSettings.for_tests().public_dict()
    assert "tokens" not in public
    assert DEFAULT_TOKEN not in repr(public)
    assert public["accounts"] == len(EmulatorSettings.for_tests().tokens)


def test_tokens_and_seed_are_not_run_time_settings() -> None:
    fields = EmulatorSettings.runtime_fields()
    assert "tokens" not in fields
    assert "seed_messages" not in fields
    assert {"list_order", "lifecycle", "send_limit"} <= fields


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("list_order", "sideways", "The selected list_order is invalid."),
        ("list_order", "oldest_first", None),
        ("failure_share", 1.5, "The failure_share setting must be between 0 and 1."),
        ("send_limit", 0, "The send_limit setting must be a positive number."),
        (
            "fail_before_status",
            200,
            "The fail_before_status setting must be an HTTP error status (400 to 599).",
        ),
        ("random_seed", "x", "The random_seed setting must be an integer or null."),
        ("random_seed", None, None),
    ],
)
def test_problem_names_what_is_wrong_with_a_new_value(name: str, value: object, problem: str | None) -> None:
    assert EmulatorSettings.for_tests().problem(name, value) == problem
