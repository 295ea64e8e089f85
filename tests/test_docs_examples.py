"""Every Python and shell block of README.md and docs/ runs here, or says why it does not.

The convention (docs/contributing.md, "Code blocks that run"): a ``python``/``bash``/``sh``/``console``
block is preceded by ``<!-- example: run -->`` or ``<!-- example: skip REASON -->``. Run blocks of one
page execute in order in one namespace (shell blocks with ``bash -e``) in a folder whose
``emofuse-data/catalog`` is a small real catalog: generated clips of three actors extracted
(eGeMAPS + faces), a tiny TACFN run, scored per clip and in 4 s windows with attributions.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGS = ("python", "bash", "sh", "console")
MARKER = re.compile(r"^<!-- example: (run|skip (.+?)) -->$")
FENCE = re.compile(r"^```(\w*)")
PLAN = [{"fold": 0, "train": ["Actor_01"], "val": ["Actor_03"], "test": ["Actor_02"]},
        {"fold": 1, "train": ["Actor_02"], "val": ["Actor_03"], "test": ["Actor_01"]}]


def pages() -> list[str]:
    """README.md and every Markdown page of docs/, relative to the repository."""
    found = ["README.md", *sorted(glob.glob("docs/**/*.md", root_dir=REPO, recursive=True))]
    return [p for p in found if os.path.exists(os.path.join(REPO, p))]


def blocks(text: str) -> list[dict]:
    """The code blocks of a page: language, code, marker (None when missing), line."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if m.group(1) in LANGS:
                marker = MARKER.match(lines[i - 1]) if i else None
                out.append({"lang": m.group(1), "code": "\n".join(lines[i + 1:j]), "line": i + 1,
                            "run": bool(marker) and marker.group(1) == "run",
                            "reason": marker.group(2) if marker else None, "marked": bool(marker)})
            i = j
        i += 1
    return out


def test_every_block_is_run_or_says_why_not():
    unmarked = [f"{p}:{b['line']}" for p in pages() for b in blocks(open(os.path.join(REPO, p)).read())
                if not b["marked"]]
    assert not unmarked, f"code blocks without <!-- example: run --> or <!-- example: skip REASON -->: {unmarked}"
    for p in pages():
        for b in blocks(open(os.path.join(REPO, p)).read()):
            assert b["run"] or len(b["reason"].strip()) > 10, f"{p}:{b['line']}: say why the block is not run"


def test_the_collector_sees_markers_and_reasons():
    text = "x\n<!-- example: run -->\n```python\n1 + 1\n```\n<!-- example: skip needs a real corpus -->\n" \
           "```bash\nls\n```\n```python\nprint()\n```\n```text\nnot code\n```\n"
    found = blocks(text)
    assert [(b["lang"], b["run"], b["marked"], b["reason"]) for b in found] == [
        ("python", True, True, None), ("bash", False, True, "needs a real corpus"), ("python", False, False, None)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict:
    """A folder with ``emofuse-data/catalog``: generated clips extracted, a tiny TACFN run, scored with attributions."""
    from emofuse.catalog.corpora.demo import generate
    from emofuse.flows.extract import extract
    from emofuse.flows.score import score
    from emofuse.fusion import training_run

    base = tmp_path_factory.mktemp("docs-examples")
    src = str(base / "videos")
    generate(src, actors=[1, 2, 3], emotions=(1, 3, 4, 5), statements=(1,))
    catalog = str(base / "emofuse-data" / "catalog")
    extract(source=src, catalog=catalog, corpus="ravdess", feature_sets=["egemaps", "faces"], n_workers=2)
    run = training_run.train(catalog, model="tacfn", feature_sets=["egemaps", "faces"], epochs=1, folds=PLAN,
                             model_config={"n_layers": 1, "d_ff": 64, "n_heads": 4}, seed=0, threads=1).run_id
    score(catalog=catalog, run_id=run, window=4.0, hop=2.0, explain=True, report=False)
    return {"dir": str(base), "root": "emofuse-data/catalog", "run_id": run}


RUN_PAGES = [p for p in pages() if any(b["run"] for b in blocks(open(os.path.join(REPO, p)).read()))]


@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_page_s_examples_run(page, workdir, monkeypatch):
    monkeypatch.chdir(workdir["dir"])
    monkeypatch.delenv("EMOFUSE_DATA")  # as a user runs them: the data dir is ./emofuse-data of the working dir
    import matplotlib

    matplotlib.use("Agg")
    scope: dict = {"root": workdir["root"], "run_id": workdir["run_id"], "__name__": "__docs__"}
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    ran = 0
    for b in blocks(open(os.path.join(REPO, page)).read()):
        if not b["run"]:
            continue
        where = f"{page}:{b['line']}"
        if b["lang"] == "python":
            try:
                exec(compile(b["code"], where, "exec"), scope)
            except Exception as e:  # noqa: BLE001 - say which block failed
                pytest.fail(f"{where}: {type(e).__name__}: {e}")
        else:
            out = subprocess.run(["bash", "-e", "-c", b["code"]], env=env, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, f"{where}: exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        ran += 1
    assert ran
