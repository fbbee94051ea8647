"""Every ```python snippet of the guide pages (``docs/``) and of ``README.md`` is checked against the emulator.

A snippet's fence says what kind it is:

``python``
    Runnable. It runs as written in a fresh interpreter, with ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` and
    ``EMULATOR_URL`` pointing at the emulator (seeded with 300 messages) and a fresh ``AIRFLOW_HOME``. It must
    check something: it holds at least one ``assert``, and every ``assert`` in it must have been executed (and
    passed) by the end of the run, so an assert skipped by a branch or an early exit fails the test.
``python {no-run}``
    Not run (an excerpt of a DAG file that needs S3, a DAG run, a triggerer ...). Its first line is a comment
    ``# Not run: <reason>`` that the reader sees; it must compile, and its imports are executed, so the
    import paths the docs show stay true.
``python {file=NAME}``
    Part of a small pytest project: the blocks of one page are written to their files in one folder and
    that folder's tests run with pytest; they must all pass, none may be skipped, and there must be one.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]
FENCE = re.compile(r"^```python(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", flags=re.M | re.S)
NO_RUN_REASON = re.compile(r"#\s*Not run: \S")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    info: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        if "{no-run}" in self.info:
            return "no-run"
        return "file" if "{file=" in self.info else "run"

    @property
    def file_name(self) -> str:
        return re.search(r"\{file=([\w.]+)\}", self.info).group(1)


def _snippets() -> list[Snippet]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Snippet(page, line, match.group("info").strip(), match.group("body")))
    return found


SNIPPETS = _snippets()
# A snippet shown on two pages (the README and its guide page) runs once.
RUNNABLE = list({s.body: s for s in reversed(SNIPPETS) if s.kind == "run"}.values())[::-1]
NO_RUN = [s for s in SNIPPETS if s.kind == "no-run"]
PYTEST_PAGES = sorted({s.page for s in SNIPPETS if s.kind == "file"})


def _asserts(source: str) -> set[int]:
    return {node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)}


# Runs a snippet after adding a call after each `assert` that records its line, then writes the lines reached.
RUNNER = """
import ast, json, sys
path, record = sys.argv[1], sys.argv[2]
reached = set()

class Mark(ast.NodeTransformer):
    def visit_Assert(self, node):
        call = ast.parse(f"__assert_reached__({node.lineno})").body[0]
        return [node, ast.copy_location(call, node)]

tree = ast.fix_missing_locations(Mark().visit(ast.parse(open(path, encoding="utf-8").read())))
try:
    exec(compile(tree, path, "exec"), {"__name__": "__main__", "__assert_reached__": reached.add})
finally:
    with open(record, "w") as f:
        json.dump(sorted(reached), f)
"""


def _emulator_env(emulator, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "airflow-home"  # a fresh ledger for each reset emulator (its ids restart)
    home.mkdir()
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT": emulator.connection_json(retry_backoff=0.01),
        "EMULATOR_URL": emulator.base_url.removesuffix("/api"),
    }


def test_the_docs_hold_snippets_of_every_kind():
    assert len(RUNNABLE) >= 5
    assert NO_RUN
    assert PYTEST_PAGES


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if s.kind == "run"], ids=lambda s: s.where)
def test_runnable_snippet_checks_something(snippet):
    assert _asserts(snippet.body), (
        f"{snippet.where}: a runnable snippet must assert what it shows; "
        "add an assert, or mark it ```python {no-run} with a '# Not run: <reason>' first line"
    )


@pytest.mark.parametrize("snippet", NO_RUN, ids=lambda s: s.where)
def test_no_run_snippet_says_why_and_compiles(snippet):
    first = snippet.body.lstrip().splitlines()[0]
    assert NO_RUN_REASON.match(first), (
        f"{snippet.where}: first line must be '# Not run: <reason>', is {first!r}"
    )
    compile(snippet.body, snippet.where, "exec")


def test_the_imports_of_no_run_snippets_resolve(tmp_path):
    imports = []
    for snippet in NO_RUN:
        tree = ast.parse(snippet.body)
        imports += [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    script = tmp_path / "imports.py"
    script.write_text("\n".join(dict.fromkeys(imports)) + "\nprint('imported')\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("imported")


@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda s: s.where)
def test_snippet_runs_against_the_emulator_and_every_assert_holds(snippet, smsnexus_emulator, tmp_path):
    smsnexus_emulator.admin.seed_messages(300, random_seed=1)
    script, record, runner = tmp_path / "snippet.py", tmp_path / "asserts.json", tmp_path / "runner.py"
    script.write_text(snippet.body, encoding="utf-8")
    runner.write_text(RUNNER, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(runner), str(script), str(record)],
        cwd=tmp_path,
        env=_emulator_env(smsnexus_emulator, tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{snippet.where}:\n{result.stderr[-3000:]}"
    expected = _asserts(snippet.body)
    assert expected
    assert set(json.loads(record.read_text())) == expected, f"{snippet.where}: not every assert ran"


@pytest.mark.parametrize("page", PYTEST_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pytest_snippets_pass_under_pytest(page, smsnexus_emulator, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for snippet in (s for s in SNIPPETS if s.page == page and s.kind == "file"):
        (project / snippet.file_name).write_text(snippet.body, encoding="utf-8")
    report = tmp_path / "junit.xml"
    env = _emulator_env(smsnexus_emulator, tmp_path)
    env.pop("AIRFLOW_CONN_SMSNEXUS_DEFAULT")  # the snippet's own fixtures set it
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            str(project),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 1
    assert counts == {**counts, "failures": 0, "errors": 0, "skipped": 0}


def test_troubleshooting_names_every_error_class():
    import airflow_provider_smsnexus.exceptions as exceptions

    classes = {
        name
        for name, value in vars(exceptions).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == exceptions.__name__
        and not name.startswith("_")
    }
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    assert classes
    assert sorted(name for name in classes if f"`{name}`" not in page) == []
