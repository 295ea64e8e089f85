"""The results board opened from disk in headless Chromium (the report's DevTools client).

Two runs trained on a RAVDESS-named corpus, one of them scored on a CREMA-D-named corpus
(``tests/results_corpora.py``), and a run folder whose name is markup: ``emofuse board`` writes
the page; the checks read the rendered DOM (every run has its row, the matrix and the comparison
are there, the name is text, not markup) and what the browser requested (nothing beyond the page).
"""
from __future__ import annotations

import os
import sys

import pytest

from emofuse.catalog.store import Catalog
from emofuse.fusion.evaluate import evaluate_corpus
from tests.results_corpora import run_cli, two_runs
from tests.test_report_browser import CHROMIUM, Browser, net_log

#: A run folder named with markup (an unfinished run: no results) that must show as text.
ODD_RUN = 'odd<b>&amp;<img src=x.png>run'


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> dict:
    root = str(tmp_path_factory.mktemp("board") / "catalog")
    runs = two_runs(root)
    evaluate_corpus(root, runs[0], "crema-d", n_boot=200)
    evaluate_corpus(root, runs[1], "crema-d", n_boot=200)
    os.makedirs(os.path.join(root, "runs", ODD_RUN))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    out = run_cli(env, "board", "--catalog", root, "--n-boot", "200").stdout
    return {"root": root, "runs": runs, "path": out.strip().rsplit(": ", 1)[1], "out": out}


@pytest.fixture(scope="module")
def page(board, tmp_path_factory) -> Browser:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run ./dev setup (or apt-get install chromium)")
    b = Browser(str(tmp_path_factory.mktemp("chromium-board")))
    b.open("file://" + board["path"])
    yield b
    b.close()


def test_every_run_of_the_catalog_has_its_row(board, page):
    shown = page.js("Array.from(document.querySelectorAll('#file-table tbody tr')).map(r => r.dataset.run)")
    assert sorted(shown) == sorted(Catalog(board["root"]).runs()) == sorted(board["runs"] + [ODD_RUN])
    cells = page.js("Array.from(document.querySelectorAll('#file-table tbody tr')).map(r => r.textContent)")
    finished = [c for c in cells if "no results" not in c]
    assert len(finished) == 2 and all("[" in c and "ravdess" in c for c in finished)  # metric [low, high]
    links = page.js("Array.from(document.querySelectorAll('#file-table a')).map(a => a.textContent)")
    assert links.count("confusion") == 2 and links.count("curves") == 2


def test_the_matrix_and_the_comparisons_are_drawn(board, page):
    tests = page.js("Array.from(document.querySelectorAll('#matrix-table td[data-test]')).map(td => td.dataset.test)")
    assert sorted(tests) == sorted(["ravdess", "crema-d"] * 2)
    left_out = page.js("document.querySelector('#matrix-table td[data-test=\"crema-d\"]').textContent")
    assert "48 items" in left_out and "24 left out" in left_out
    pairs = page.js("Array.from(document.querySelectorAll('#comparison-table tbody tr'))"
                    ".map(r => [r.dataset.a, r.dataset.b, r.cells[0].textContent])")
    assert sorted(p[2] for p in pairs) == ["crema-d", "ravdess"]
    assert all(sorted(p[:2]) == sorted(board["runs"]) for p in pairs)
    assert page.js("document.querySelectorAll('svg.ci circle.dot').length") == 2


def test_names_are_text_and_nothing_leaves_the_machine(board, page):
    assert page.js("document.querySelectorAll('main img, main b').length") == 0  # the run name did not become markup
    assert ODD_RUN in page.js("document.querySelector('#file-table').textContent")
    folder = "file://" + os.path.dirname(board["path"]) + "/"
    requested = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(u.startswith(folder) or u.startswith("data:") for u in requested), requested
    errors = [e["params"]["entry"]["text"] for e in page.events if e.get("method") == "Log.entryAdded"]
    assert not errors
    page.close()  # writes the net log
    initiated, connected = net_log(page.netlog)
    assert all(u.startswith(("file:", "data:")) for u in initiated), initiated
    assert connected == 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
