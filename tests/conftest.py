"""Suite-wide fixtures: an isolated AIRFLOW_HOME, the emulator plugin, and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="smsnexus-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"

pytest_plugins = ["airflow_provider_smsnexus.emulator.testing"]
# A `responses` mock also answers the sync hook, whose requests go through urllib3 (not in the secrets
# guard's copies of this file, which run where `tests` cannot be imported).
if (Path(__file__).parent / "_responses_urllib3.py").exists():
    pytest_plugins.append("tests._responses_urllib3")

# Hypothesis: the same examples on every CI run (a failure can be reproduced), a larger random draw on demand
# (`make test-deep`). Tests that set max_examples scale it with `deep_examples()` from tests/_hypothesis.py.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
_hypothesis_settings.register_profile(
    "deep", derandomize=False, print_blob=True, deadline=None, max_examples=1000
)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

POSTGRES_URL = os.environ.get("SMSNEXUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_REQUIRED = os.environ.get("SMSNEXUS_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The suite's private AIRFLOW_HOME."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata database, for tests that run DAGs with ``dag.test()``."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, "AIRFLOW_HOME": str(airflow_home)},
    )
    return airflow_home / "airflow.db"


def _postgres_reachable(url: str) -> str | None:
    """Return None when PostgreSQL answers at ``url``, else the reason it does not."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        return f"PostgreSQL not reachable at {url}: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL (``postgresql://...``); skips with a reason where none answers, fails on CI."""
    reason = _postgres_reachable(POSTGRES_URL)
    if reason:
        if POSTGRES_REQUIRED:
            pytest.fail(f"{reason} (SMSNEXUS_REQUIRE_POSTGRES=1: PostgreSQL tests are required here)")
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_conn_id(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection id (``smsnexus_test_pg``) that points at the test PostgreSQL."""
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_TEST_PG", postgres_url)
    return "smsnexus_test_pg"


# -- secrets guard ---------------------------------------------------------------------------------
# Every token the suite uses is recognisable. A test whose captured logs, output or failure text shows one
# fails; at the end, no file the suite wrote (reports, Parquet, the metadata DB with its XComs and rendered
# template fields, task logs) may contain one either.
_EXTRA_MARKERS = os.environ.get("SMSNEXUS_EXTRA_SECRET_MARKERS", "")
SECRET_MARKERS = ("SMSNEXUS-TEST-TOKEN", "SMSNEXUS-MOCK-SECRET", *filter(None, _EXTRA_MARKERS.split(",")))
_LEAKS: list[str] = []
_LEAKED_ITEMS: set[str] = set()


def _leaked_marker(text: str) -> str | None:
    return next((marker for marker in SECRET_MARKERS if marker in text), None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if item.nodeid in _LEAKED_ITEMS:  # sections accumulate over phases: report each test once
        return
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    for text in texts:
        marker = _leaked_marker(text)
        if marker:
            _LEAKED_ITEMS.add(item.nodeid)
            _LEAKS.append(f"{item.nodeid} ({report.when}): output shows a token ({marker}...)")
            report.outcome = "failed"
            report.longrepr = f"A token ({marker}...) appeared in this test's captured output or error text"
            break


def _files_with_secrets(root: Path) -> list[str]:
    found = []
    markers = [m.encode() for m in SECRET_MARKERS]
    for path in root.rglob("*"):
        # Sources, docs and package metadata are inputs that tests copy (pytester copies this conftest, the
        # docker test builds the package, whose README documents the emulator's default token), not outputs.
        if not path.is_file() or path.suffix in {".py", ".md"} or path.name == "PKG-INFO":
            continue
        if path.stat().st_size > 200_000_000:
            continue
        data = path.read_bytes()
        if any(m in data for m in markers):
            found.append(str(path))
    return found


def _leak_lines(session) -> list[str]:
    roots = [_AIRFLOW_HOME]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and factory._basetemp is not None:
        roots.append(factory._basetemp)
    leaked_files = [f for root in roots if root.exists() for f in _files_with_secrets(root)]
    return _LEAKS + [f"token found in file {f}" for f in leaked_files]


_WORKER_LEAKS: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist, on the controller: a worker's leaks (its session end cannot fail the run itself)."""
    _WORKER_LEAKS.extend(getattr(node, "workeroutput", {}).get("smsnexus_leaks", []))


def pytest_sessionfinish(session, exitstatus):
    lines = _leak_lines(session)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails the run
        workeroutput["smsnexus_leaks"] = lines
        return
    lines += _WORKER_LEAKS
    if lines:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter:
                reporter.write_line(f"SECRET LEAK: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- example DAGs under dag.test() ------------------------------------------------------------------


@pytest.fixture
def dags_folder_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """
    A factory: ``dags_folder_of(*dag_files, sources={name: text})`` makes a DAGs folder holding copies of
    ``dag_files`` and files written from ``sources``, and makes it ``dag.test()``'s only bundle.

    ``dag.test()`` in Airflow 3 syncs the DAG bundles before it runs: the bundle list is read anew by every
    ``dag.test()``, while ``AIRFLOW__CORE__DAGS_FOLDER`` is read once when ``airflow.settings`` is imported.
    """
    import json
    import shutil

    def make(*dag_files: Path, sources: dict[str, str] | None = None) -> Path:
        folder = tmp_path / "dags"
        folder.mkdir(exist_ok=True)
        for dag_file in dag_files:
            shutil.copy(dag_file, folder / dag_file.name)
        for name, text in (sources or {}).items():
            (folder / name).write_text(text)
        bundle = {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder)},
        }
        monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
        monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
        return folder

    return make


@pytest.fixture
def parse_dag():
    """A function ``parse_dag(folder, dag_id, *, retries=None)``: the DAG parsed from ``folder`` (failing on any
    import error), its tasks' retries set to ``retries`` when given (a failure then shows at once)."""

    def load(folder: Path, dag_id: str, *, retries: int | None = None):
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(folder))
        assert bag.import_errors == {}
        dag = bag.get_dag(dag_id)
        if retries is not None:
            for task in dag.tasks:
                task.retries = retries
        return dag

    return load


@pytest.fixture
def unreachable_conn_id(monkeypatch: pytest.MonkeyPatch) -> str:
    """An SMS Nexus connection to a port nothing listens on (the discard port), without retries."""
    import json

    conn = {
        "conn_type": "smsnexus",
        "host": "http://127.0.0.1:9/api",
        "password": "SMSNEXUS-TEST-TOKEN-unreachable",
        "extra": {"max_retries": 0, "timeout": 2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DOWN", json.dumps(conn))
    return "smsnexus_down"
