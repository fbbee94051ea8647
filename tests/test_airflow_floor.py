"""The Airflow floor is true: ``setup.py`` requires ``MIN_AIRFLOW_VERSION``, it is the minor version the suite
runs on (the only one tested), the reason for it still holds, and the pages that state it agree.

Measured when the floor was raised from 3.1: beside Airflow 3.1.8, 47 of the package's 91 modules failed to
import; with those imports mended, the inbound trigger still needed ``airflow.triggers.shared_stream`` (3.3),
and the low-credit and approval DAGs failed when their sensors deferred under ``dag.test()``.
"""

from __future__ import annotations

import re
import runpy
from importlib.metadata import version
from pathlib import Path

import pytest
import setuptools

from airflow_provider_smsnexus import MIN_AIRFLOW_VERSION

ROOT = Path(__file__).resolve().parents[1]
FLOOR = ".".join(MIN_AIRFLOW_VERSION.split(".")[:2])  # "3.3"


def minor(release: str) -> tuple[int, int]:
    major, minor_, *_ = (int(part) for part in re.findall(r"\d+", release))
    return major, minor_


@pytest.fixture(scope="module")
def setup_arguments(monkeypatch_module: pytest.MonkeyPatch) -> dict:
    """The arguments ``setup.py`` gives ``setup()``, without building anything."""
    captured: dict = {}
    monkeypatch_module.setattr(setuptools, "setup", lambda **arguments: captured.update(arguments))
    monkeypatch_module.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"))
    return captured


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_setup_py_requires_the_floor(setup_arguments):
    airflow = [r for r in setup_arguments["install_requires"] if re.match(r"apache-airflow\b(?!-)", r)]
    assert airflow == [f"apache-airflow>={MIN_AIRFLOW_VERSION}"]


def test_the_floor_is_the_minor_version_the_suite_runs_on():
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "constraints-3.11.txt").read_text(), re.M).group(1)
    assert minor(MIN_AIRFLOW_VERSION) == minor(pinned) == minor(version("apache-airflow"))


def test_the_reason_for_the_floor_still_holds():
    # Two-way SMS is built on Airflow 3.3's shared trigger streams and asset state store.
    source = (ROOT / "airflow_provider_smsnexus" / "triggers" / "inbound.py").read_text()
    assert "from airflow.triggers.shared_stream import" in source
    assert "AssetStateStoreAccessor" in source


@pytest.mark.parametrize(
    ("page", "statement"),
    [
        ("README.md", f"Apache Airflow ≥ {FLOOR}"),
        ("docs/index.md", f"| Apache Airflow | ≥ {FLOOR}"),
        ("docs/installation.md", f"Apache Airflow ≥ {FLOOR}"),
    ],
)
def test_the_pages_state_the_floor(page, statement):
    text = (ROOT / page).read_text()
    assert statement in text
    stated = {found for found in re.findall(r"Airflow\*{0,2} ≥ (\d+\.\d+)", text)}
    assert stated <= {FLOOR}, f"{page} states another floor: {stated}"
