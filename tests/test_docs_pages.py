"""The documentation pages in a real headless Chromium at 1280 pixels: every table and code block fits the text
column or scrolls sideways with a scrollbar that shows, and no page scrolls sideways as a whole.

The guide pages are built for the test without the API reference (``autosummary_generate`` off, ``api/``
left out: a few seconds, where the whole site takes most of a minute); ``make docs`` builds all of it with
warnings as errors. A screenshot of each page is kept in the test's folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests._chromium import chromium

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CSS = DOCS / "_static" / "smsnexus.css"
PAGES = sorted(
    str(page.relative_to(DOCS).with_suffix(".html"))
    for page in DOCS.rglob("*.md")
    if not {"_build", "api"} & set(page.relative_to(DOCS).parts)
)
WIDTH = 1280
#: The project's line length (pyproject.toml): a code line this long fits the column, without scrolling.
LINE_LENGTH = 110

# For each table (its scroll wrapper) and code block of the article: does it fit, does it scroll, and with what
# scrollbar (the height it takes below the content: 0 for an overlay scrollbar, or none).
MEASURE = """() => {
  const article = document.querySelector("article");
  const column = article.getBoundingClientRect();
  const boxes = [...article.querySelectorAll("table")].map((t) => t.closest(".table-wrapper") || t)
    .concat([...article.querySelectorAll("pre")]);
  return {
    pageWidth: document.scrollingElement.scrollWidth,
    boxes: boxes.map((box) => {
      const style = getComputedStyle(box);
      const borders = parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
      return {
        kind: box.tagName === "PRE" ? "code" : "table",
        text: box.innerText.trim().slice(0, 60),
        longestLine: Math.max(...box.innerText.split("\\n").map((line) => line.length)),
        fits: box.scrollWidth <= box.clientWidth + 1,
        overflowX: style.overflowX,
        scrollbar: box.offsetHeight - box.clientHeight - borders,
        outside: box.getBoundingClientRect().right - column.right,
      };
    }),
  };
}"""


def styled_scrollbar_height() -> int:
    """The scrollbar height the docs' stylesheet gives scrolling tables and code blocks."""
    rule = re.search(r"::-webkit-scrollbar \{\s*height: (\d+)px;", CSS.read_text())
    assert rule, f"{CSS.name} styles no scrollbar height"
    return int(rule.group(1))


@pytest.fixture(scope="module")
def built_pages() -> Iterator[Path]:
    # Outside the test folders the secrets guard scans: the emulator's page documents its default token.
    with tempfile.TemporaryDirectory(prefix="smsnexus-docs-html-") as out:
        subprocess.run(
            [sys.executable, "-m", "sphinx", "-q", "-b", "html", "-D", "autosummary_generate=0",
             "-D", "exclude_patterns=_build,api,README-front.md", str(DOCS), out],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        yield Path(out)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(show_scrollbars=True) as launched:
        yield launched


def test_the_guide_pages_are_all_checked():
    assert {"index.html", "installation.html", "connection.html", "guides/exports.html"} <= set(PAGES)
    assert len(PAGES) >= 12


@pytest.mark.parametrize("page_name", PAGES)
def test_tables_and_code_fit_a_1280_pixel_window_or_scroll_visibly(browser, built_pages, page_name, tmp_path):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    try:
        page.goto((built_pages / page_name).as_uri())
        measured = page.evaluate(MEASURE)
        page.screenshot(path=str(tmp_path / f"{page_name.replace('/', '_')}.png"))
    finally:
        page.close()
    bar = styled_scrollbar_height()

    assert measured["pageWidth"] <= WIDTH, f"{page_name} scrolls sideways as a whole (see {tmp_path})"
    for box in measured["boxes"]:
        where = f"{page_name}: {box['kind']} {box['text']!r} (screenshot in {tmp_path})"
        assert box["outside"] <= 8, f"{where} sticks out of the text column by {box['outside']:.0f} px"
        if box["fits"]:
            continue
        assert box["overflowX"] in ("auto", "scroll"), f"{where} is cut off"
        # The stylesheet's scrollbar, which takes its own room (an overlay one hides until scrolled).
        assert box["scrollbar"] == bar, f"{where} scrolls without the styled scrollbar"
        assert box["kind"] == "code", f"{where}: a table must fit"
        assert box["longestLine"] > LINE_LENGTH, (
            f"{where}: a line of {box['longestLine']} characters must fit"
        )


def test_the_exports_guides_first_table_fits_with_its_destination_column(browser, built_pages):
    # The table a reader first saw cut off at the right, its destination column unreadable.
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    try:
        page.goto((built_pages / "guides/exports.html").as_uri())
        first = page.evaluate(MEASURE)["boxes"][0]
        header = page.locator("article table").first.locator("th").last
        header_right = header.bounding_box()["x"] + header.bounding_box()["width"]
        column_right = (
            page.locator("article").bounding_box()["x"] + page.locator("article").bounding_box()["width"]
        )
    finally:
        page.close()
    assert first["kind"] == "table"
    assert first["fits"]
    assert header_right <= column_right + 8
