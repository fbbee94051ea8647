"""Packaging for airflow-provider-smsnexus."""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# Facts defined once, in the package (read as text: installing must not import Airflow).
PACKAGE_INIT = (HERE / "airflow_provider_smsnexus" / "__init__.py").read_text()


def _package_constant(name: str) -> str:
    return re.search(rf'^{name} = "([^"]+)"', PACKAGE_INIT, re.M).group(1)


NAME = _package_constant("PACKAGE_NAME")
VERSION = _package_constant("__version__")
# `make docs`: the Sphinx site under docs/; part of dev too, so `make install` (and CI) can build it.
DOCS_REQUIRES = ["sphinx>=8", "myst-parser>=4", "furo>=2024.8"]
# The "messaging" extra, in dev too (its tests, and the API reference imports the queue provider).
MESSAGING_REQUIRES = "apache-airflow-providers-common-messaging>=2.1"
# The "emulator" extra: the local server's web stack, imported by airflow_provider_smsnexus/emulator/ only (as
# moto[server]); in dev too (the suite, the demo and the docs run it). httptools is uvicorn's C HTTP parser,
# for the emulator's speed (bench/README.md, "Emulator at export scale"). emulator/extra.py names them.
EMULATOR_REQUIRES = ["fastapi>=0.110", "uvicorn>=0.29", "httptools>=0.6"]

setup(
    name=NAME,
    version=VERSION,
    description="Apache Airflow provider for the SMS Nexus messaging API: send, watch and export SMS.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # Airflow 3.3 reads a provider's documentation-url from the "Documentation" URL of its package.
    project_urls={"Documentation": _package_constant("DOCUMENTATION_URL")},
    packages=find_packages(include=["airflow_provider_smsnexus", "airflow_provider_smsnexus.*"]),
    package_data={
        "airflow_provider_smsnexus": ["py.typed"],
        "airflow_provider_smsnexus.emulator": ["static/*.html"],
    },
    python_requires=">=3.10",
    install_requires=[
        # The lowest Airflow it runs on: MIN_AIRFLOW_VERSION (tests/test_airflow_floor.py).
        f"apache-airflow>={_package_constant('MIN_AIRFLOW_VERSION')}",
        "requests>=2.31",
        # The sync hook's own requests go through a urllib3 pool (bench/README.md: 0.44x requests' CPU per call).
        "urllib3>=2",
        "pandas>=2.1",
        "pyarrow>=14",
        "sqlalchemy>=2",
        "phonenumbers>=8.13",
        "aiohttp>=3.9",
        # Decodes the hooks' answers and encodes their JSON bodies (bench/README.md, "History export"); the
        # emulator encodes its answers with it too.
        "msgspec>=0.18",
        # DateTimeTrigger: a campaign with a send window waits for it in the triggerer.
        "apache-airflow-providers-standard>=1.0",
    ],
    extras_require={
        "postgres": ["apache-airflow-providers-postgres>=6", "psycopg2-binary>=2.9"],
        "openlineage": ["apache-airflow-providers-openlineage>=2"],
        # CeleryExecutor with Redis: a campaign's mapped partitions on several workers (docker/, the celery
        # profile). Pair it with "postgres" for a send ledger the workers share (ledger_conn_id).
        "celery": ["apache-airflow-providers-celery>=3.10", "redis>=5"],
        # rate_budget=redis: a rate budget shared through the Redis a Celery deployment already runs.
        "redis": ["redis>=5"],
        # MessageQueueTrigger(scheme="smsnexus"): inbound SMS through Airflow's common.messaging provider.
        "messaging": [MESSAGING_REQUIRES],
        # smsnexus-emulator, EmulatorServer and the pytest fixtures: pip install 'airflow-provider-smsnexus[emulator]'.
        "emulator": EMULATOR_REQUIRES,
        "docs": DOCS_REQUIRES,
        "dev": [
            *DOCS_REQUIRES,
            f"{NAME}[emulator]",  # the emulator extra itself: its packages are listed once, above
            "apache-airflow-providers-celery>=3.10",
            "redis>=5",  # the Celery deployment test
            MESSAGING_REQUIRES,
            "apache-airflow-providers-http>=5",
            "apache-airflow-providers-openlineage>=2",
            "apache-airflow-providers-postgres>=6",
            "psycopg2-binary>=2.9",
            "playwright>=1.45",  # drives the Debian chromium in the inbox page test
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.6",
            "responses>=0.25",
            "hypothesis>=6.100",
            "ruff>=0.6",
        ],
    },
    entry_points={
        "apache_airflow_provider": ["provider_info=airflow_provider_smsnexus:get_provider_info"],
        "console_scripts": ["smsnexus-emulator=airflow_provider_smsnexus.emulator.cli:main"],
    },
    classifiers=[
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Programming Language :: Python :: 3",
    ],
)
