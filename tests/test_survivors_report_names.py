"""A report of files whose names are markup shows the names as text everywhere and adds no element.

Two generated scored catalogs (:func:`emofuse.flows.report.dummies.scored_catalog`) differ only in
their file names: plain ones, and markup (``<b>x</b> & "q"``, ``<img src=x onerror=…>``, a
``<script>``; the third file is broken, so its name is in the table of files without
predictions too). Both reports must have the same elements and attributes, and the markup
names must come back as text: parsed (html.parser), and rendered in headless Chromium (the
DevTools client of ``test_report_browser``), where no dialog may open.
"""
from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest

from emofuse.catalog.store import Catalog
from emofuse.flows.report import build_report
from emofuse.flows.report.dummies import scored_catalog
from test_report_browser import CHROMIUM, Browser  # tests/ is on the path (conftest.py)

MARKUP = ('<b>x</b> & "q"', "<img src=x onerror=alert(1)>", "<script>alert(2)</script>")
PLAIN = ("plain-a", "plain-b", "plain-c")


class Page(HTMLParser):
    """Every element (tag and attribute names), every attribute value and all text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: Counter[tuple[str, tuple[str, ...]]] = Counter()
        self.values: list[str] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements[(tag, tuple(sorted(a for a, _ in attrs)))] += 1
        self.values += [v for _, v in attrs if v]

    def handle_data(self, data: str) -> None:
        self.text += data


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    out = {}
    media = str(tmp_path_factory.mktemp("names-media"))
    for kind, names in (("plain", PLAIN), ("markup", MARKUP)):
        root = str(tmp_path_factory.mktemp(kind) / "cat")
        run_id = scored_catalog(root, n_files=3, media_dir=media, durations=(3.0,), every=(3, 100, 100), names=names)
        index = build_report(root, run_id).index
        out[kind] = {"index": index, "html": open(index, encoding="utf-8").read(),
                     "relpaths": sorted(Catalog(root).media()["relpath"])}
    assert all(any(n in r for r in out["markup"]["relpaths"]) for n in MARKUP)  # the names reached the catalog
    return out


def test_markup_names_add_no_element_and_read_back_as_text(reports):
    plain, markup = Page(reports["plain"]["html"]), Page(reports["markup"]["html"])
    assert markup.elements == plain.elements  # same tags with the same attribute names, as often
    assert not any(a == "onerror" for _, attrs in markup.elements for a in attrs)
    for rel in reports["markup"]["relpaths"]:
        assert rel in markup.text  # shown as text (entities decoded by the parser), not parsed as tags
        assert rel in markup.values  # and the sort key of its row (data-v) is the name itself


def test_markup_names_render_as_text_in_chromium(reports, tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run ./dev setup (or apt-get install chromium)")
    counts = {}
    b = Browser(str(tmp_path / "chromium"))
    try:
        for kind in ("plain", "markup"):
            b.open("file://" + reports[kind]["index"])
            counts[kind] = b.js("Array.from(document.querySelectorAll('*')).map(e => e.tagName).sort().join(' ')")
        assert b.js("document.querySelectorAll('[onerror], img[src=x], body script').length") == 1  # the page's own script
        text = b.js("document.body.innerText")
        cells = b.js("Array.from(document.querySelectorAll('#file-table tbody tr')).map(r => r.cells[0].dataset.v)")
        headings = b.js("Array.from(document.querySelectorAll('article h3')).map(h => h.textContent)")
        b.js("document.querySelectorAll('#file-table th')[0].click()")  # sorting moves rows, adds nothing
        after = b.js("Array.from(document.querySelectorAll('*')).map(e => e.tagName).sort().join(' ')")
        dialogs = [e for e in b.events if e.get("method") == "Page.javascriptDialogOpening"]
    finally:
        b.close()
    assert counts["markup"] == counts["plain"] == after
    rels = reports["markup"]["relpaths"]
    assert all(rel in text for rel in rels)
    assert sorted(cells) == rels  # a row per file, the broken one too
    assert sorted(headings) == [r for r in rels if "<script>" not in r]  # a section per scored file
    assert not dialogs
