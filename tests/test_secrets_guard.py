"""The suite's secrets guard (tests/conftest.py) really fails a run that shows a token."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")


# The inner runs watch for this marker too; the outer run does not, so their output cannot trip it.
MARKER = "GUARD-SELFCHECK-SECRET"


@pytest.fixture
def guarded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    monkeypatch.setenv("SMSNEXUS_EXTRA_SECRET_MARKERS", MARKER)
    return pytester


def test_a_token_in_captured_output_fails_the_test(guarded):
    guarded.makepyfile(
        test_leak="""
        def test_prints_token():
            print("Authorization: Bearer GUARD-SELFCHECK-SECRET-1")
        """
    )
    result = guarded.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*SECRET LEAK*test_prints_token*"])


def test_a_token_in_a_written_file_fails_the_session(guarded):
    guarded.makepyfile(
        test_leak="""
        def test_writes_token(tmp_path):
            (tmp_path / "report.txt").write_text("token=GUARD-SELFCHECK-SECRET-2")
        """
    )
    result = guarded.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*SECRET LEAK: token found in file*report.txt*"])


def test_a_token_in_a_file_written_on_an_xdist_worker_fails_the_session(guarded):
    # make test runs the suite on pytest-xdist workers: a worker's session end cannot fail the run itself, and
    # its AIRFLOW_HOME (metadata DB, task logs) is its own, outside the controller's temporary directory.
    guarded.makepyfile(
        test_leak="""
        import os, pathlib

        def test_writes_token():
            home = pathlib.Path(os.environ["AIRFLOW_HOME"])
            (home / "report.txt").write_text("token=GUARD-SELFCHECK-SECRET-3")

        def test_other():
            pass
        """
    )
    result = guarded.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*SECRET LEAK: token found in file*report.txt*"])


def test_a_clean_run_passes(guarded):
    guarded.makepyfile(test_clean="def test_ok():\n    print('Authorization: Bearer ***')\n")
    result = guarded.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
