"""Every ```python snippet of README.md runs as written against the emulator.

Snippets that only illustrate (a docker-compose excerpt, a shell session) use other fences; a Python snippet
that should not be run uses ```py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S)


def _snippet_id(snippet: str) -> str:
    first = next((line for line in snippet.splitlines() if line.strip() and not line.startswith("#")), "")
    return first[:60]


def test_readme_has_runnable_snippets():
    assert len(SNIPPETS) >= 6


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[_snippet_id(s) for s in SNIPPETS])
def test_readme_snippet_runs_against_the_emulator(snippet, smsnexus_emulator, tmp_path, airflow_home):
    smsnexus_emulator.admin.seed_messages(300, random_seed=1)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT": smsnexus_emulator.connection_json(retry_backoff=0.01),
        "EMULATOR_URL": smsnexus_emulator.base_url.removesuffix("/api"),
    }
    script = tmp_path / "snippet.py"
    script.write_text(snippet, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
