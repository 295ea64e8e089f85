"""The documentation site: ``mkdocs build --strict`` succeeds (no broken link, reference or
docstring), and every page, opened from disk in headless Chromium, requests nothing beyond the
site's folder (the browser's own request events and its net log), so it reads offline.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tests.test_report_browser import CHROMIUM, Browser, net_log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(config: str, out: str) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``out`` (a fresh interpreter, as ./dev docs runs it)."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", out],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("site") / "site")
    res = build(os.path.join(REPO, "mkdocs.yml"), out)
    assert res.returncode == 0, res.stderr[-4000:]
    return out


def test_the_site_builds_strictly_with_every_page_and_generated_reference(site):
    for page in ("index", "getting-started", "concepts/catalog", "guides/archive", "extend/model",
                 "reference/cli", "reference/deployments", "reference/catalog", "benchmarks", "changelog"):
        assert os.path.exists(os.path.join(site, page + ".html")), page
    cli = open(os.path.join(site, "reference", "cli.html")).read()
    for command in ("emofuse extract", "emofuse score-archive", "emofuse catalog ls", "emofuse report"):
        assert f">{command}<" in cli or f">{command}</" in cli or command in cli, command
    assert "--retry-failed" in cli and "--batch-seconds" in cli  # flow parameters, from the flows' schemas
    deps = open(os.path.join(site, "reference", "deployments.html")).read()
    for name in ("extract/ravdess", "extract/crema-d", "train/ravdess-tacfn", "score/archive"):
        assert name in deps, name
    api = open(os.path.join(site, "reference", "catalog.html")).read()
    assert "emofuse.catalog.store.Catalog" in api and "predictions" in api  # rendered from docstrings


PROMPT = '<span class="gp">&gt;&gt;&gt; </span>'  # a highlighted doctest line (pycon)
ROLES = (":func:", ":meth:", ":class:", ":mod:", ":data:", ":attr:")


def docstring_rendering_problems(site: str) -> dict[str, list[str]]:
    """Per API page: doctest lines not shown as code, nested quotes, Sphinx roles shown verbatim."""
    problems = {}
    for page in ("api", "catalog", "pipeline", "fusion"):
        html = open(os.path.join(site, "reference", page + ".html")).read()
        found = [f"{html.replace(PROMPT, '').count('&gt;&gt;&gt;')} doctest lines as text"] \
            if "&gt;&gt;&gt;" in html.replace(PROMPT, "") else []
        found += ["nested quotes"] * ("<blockquote>" in html) + [r for r in ROLES if r in html]
        found += ["no highlighted doctest"] * (PROMPT not in html)
        if found:
            problems[page] = found
    return problems


def test_the_api_pages_show_every_docstring_example_as_code(site):
    """The docstrings' ``Example:`` / ``Example (…):`` sections and bare doctests render as highlighted
    console blocks (docs/griffe_docstrings.py), and Sphinx roles as inline code, not as text."""
    assert docstring_rendering_problems(site) == {}


def test_the_griffe_extension_s_examples():
    import doctest
    import importlib.util

    spec = importlib.util.spec_from_file_location("griffe_docstrings", os.path.join(REPO, "docs", "griffe_docstrings.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted >= 5 and result.failed == 0


def test_a_broken_link_fails_the_strict_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(os.path.join(REPO, "docs"), docs, ignore=shutil.ignore_patterns("__pycache__"))
    with open(docs / "changelog.md", "a") as f:
        f.write("\nSee [the missing page](no-such-page.md).\n")
    config = tmp_path / "mkdocs.yml"
    text = open(os.path.join(REPO, "mkdocs.yml")).read()
    config.write_text(text.replace("docs_dir: docs", f"docs_dir: {docs}")
                      .replace("- docs/hooks.py", f"- {REPO}/docs/hooks.py")
                      .replace("paths: [build/docs-src]", f"paths: [{REPO}/build/docs-src]"))
    res = build(str(config), str(tmp_path / "site"))
    warnings = [line for line in res.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert res.returncode != 0 and warnings and all("no-such-page.md" in w for w in warnings), res.stderr[-3000:]


def pages(site: str) -> list[str]:
    return sorted(glob.glob(os.path.join(site, "**", "*.html"), recursive=True))


def open_every_page(site: str, workdir: str) -> tuple[list[str], list[str], int]:
    """(requests the pages made, net-log URLs the pages initiated, TCP connections) over every page."""
    browser = Browser(workdir)
    requested = []
    try:
        for page in pages(site):
            if os.path.basename(page) == "404.html":
                continue
            browser.open("file://" + page)
            requested += [e["params"]["request"]["url"] for e in browser.events
                          if e.get("method") == "Network.requestWillBeSent"]
            assert browser.js("document.querySelector('article') !== null"), page
    finally:
        browser.close()
    initiated, connected = net_log(browser.netlog)
    return requested, initiated, connected


def local(url: str, site: str) -> bool:
    return url.startswith("file://" + site + "/") or url.startswith(("data:", "blob:"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: run ./dev setup")
def test_every_page_opens_offline_with_no_request_leaving_the_machine(site, tmp_path):
    requested, initiated, connected = open_every_page(site, str(tmp_path))
    assert requested and all(local(u, site) for u in requested), [u for u in requested if not local(u, site)]
    assert all(u.startswith(("file:", "data:", "blob:")) for u in initiated), initiated
    assert connected == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: run ./dev setup")
def test_a_page_that_fetches_a_font_is_caught(site, tmp_path):
    """The check sees a request leave: the built index with a web font (what theme.font would add) fails it."""
    copy = str(tmp_path / "site")
    shutil.copytree(site, copy)
    for page in pages(copy):
        if os.path.basename(page) != "index.html" or os.path.dirname(page) != copy:
            os.remove(page)
    index = os.path.join(copy, "index.html")
    html = open(index).read().replace(
        "</head>", '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto"></head>', 1)
    open(index, "w").write(html)
    requested, _initiated, _connected = open_every_page(copy, str(tmp_path / "chromium"))
    assert [u for u in requested if not local(u, copy)] == ["https://fonts.googleapis.com/css?family=Roboto"]


def test_the_readme_links_into_the_site_resolve():
    """README.md's relative links and images (docs/…) name files that exist, so they work on GitHub too."""
    import re

    text = open(os.path.join(REPO, "README.md")).read()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http", "#"))]
    assert len(targets) >= 15 and all(t.startswith("docs/") for t in targets), targets
    missing = [t for t in targets if not os.path.exists(os.path.join(REPO, t))]
    assert not missing, missing
