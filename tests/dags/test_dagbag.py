"""Every example DAG in dags/ imports cleanly, without deprecation warnings, and parses fast."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAGS = {"smsnexus_campaign_send", "nightly_export", "low_credit_alert"}


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
    bag.caught_warnings = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    return bag


def test_every_example_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= EXPECTED_DAGS


def test_no_deprecation_warnings_from_the_example_dags_or_the_provider(dagbag):
    ours = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in dagbag.caught_warnings
        if "/dags/" in w.filename or "airflow_provider_smsnexus" in w.filename
    ]
    assert ours == []


def test_every_example_dag_is_tagged_and_documented(dagbag):
    for dag_id in EXPECTED_DAGS:
        dag = dagbag.get_dag(dag_id)
        assert "smsnexus" in dag.tags, dag_id
        assert dag.doc_md, dag_id


def test_parsing_the_dags_does_not_import_pandas_or_pyarrow():
    # Airflow parses DAG files every few seconds: heavy libraries belong inside the tasks.
    code = (
        "import sys, runpy, pathlib\n"
        f"for path in sorted(pathlib.Path({str(DAGS_FOLDER)!r}).glob('*.py')):\n"
        "    runpy.run_path(str(path))\n"
        "heavy = sorted(m for m in ('pandas', 'pyarrow', 'aiohttp') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="]
