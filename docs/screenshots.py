"""Take the documentation's screenshots again: the Prefect UI (a score flow run, its artifacts) and the report.

Run from the repository root (``./dev docs --screenshots`` does): it starts a Prefect server with
its UI on a free loopback port (its own home, SQLite, in a temporary folder), extracts generated
clips of three actors, trains a tiny TACFN and scores the clips with the ``score`` flow (1 s
windows, attributions, the report as its last step), then photographs with headless Chromium
(the DevTools client of tests/test_report_browser.py):

- docs/images/prefect-flow-run.png: the score flow run's page in the Prefect UI;
- docs/images/prefect-artifacts.png: its artifacts tab (score-summary, score-report);
- docs/report-summary.png, docs/report-video.png: the report's summary and table, one video.

The server and the browser are stopped at the end; the temporary folder is removed.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = {"flow_run": REPO / "docs" / "images" / "prefect-flow-run.png",
       "artifacts": REPO / "docs" / "images" / "prefect-artifacts.png",
       "summary": REPO / "docs" / "report-summary.png", "video": REPO / "docs" / "report-video.png"}
PLAN = [{"fold": 0, "train": ["Actor_01"], "val": ["Actor_03"], "test": ["Actor_02"]},
        {"fold": 1, "train": ["Actor_02"], "val": ["Actor_03"], "test": ["Actor_01"]}]


def wait_for_text(browser, text: str, timeout: float = 90.0) -> None:
    """Wait until the page shows ``text`` (the UI renders in the browser after the load event)."""
    deadline = time.time() + timeout
    while text not in (browser.js("document.body ? document.body.innerText : ''") or ""):
        if time.time() > deadline:
            browser.screenshot(os.path.join(tempfile.gettempdir(), "emofuse-screenshot-timeout.png"))
            raise TimeoutError(f"the page never showed {text!r}")
        time.sleep(0.5)
    time.sleep(2.0)  # let charts and fonts settle
    browser.js("document.querySelectorAll('.p-toast-container').forEach(e => e.remove())")


def scored_catalog(work: Path) -> dict:
    """Generated clips extracted, a tiny TACFN run, scored by the score flow with its report."""
    from emofuse.catalog.corpora.demo import generate
    from emofuse.flows.extract import extract
    from emofuse.flows.score import score
    from emofuse.fusion import training_run

    src, catalog = str(work / "videos"), str(work / "catalog")
    generate(src, actors=[1, 2, 3], emotions=(1, 3, 4, 5), statements=(1,))
    extract(source=src, catalog=catalog, corpus="ravdess", feature_sets=["egemaps", "faces"], n_workers=2)
    run = training_run.train(catalog, model="tacfn", feature_sets=["egemaps", "faces"], epochs=3, folds=PLAN,
                             model_config={"n_layers": 1, "d_ff": 64, "n_heads": 4}, seed=0, threads=1).run_id
    out = score(catalog=catalog, run_id=run, window=1.0, hop=0.5, explain=True)
    return {"catalog": catalog, "run_id": run, "report": out["report"]}


def latest_score_run(api: str) -> str:
    """The id of the newest flow run of the ``score`` flow on the server."""
    import httpx

    flows = httpx.post(f"{api}/flows/filter", json={"flows": {"name": {"any_": ["score"]}}}).json()
    runs = httpx.post(f"{api}/flow_runs/filter", json={"flows": {"id": {"any_": [flows[0]["id"]]}},
                                                        "sort": "EXPECTED_START_TIME_DESC", "limit": 1}).json()
    return runs[0]["id"]


def main() -> int:
    sys.path.insert(0, str(REPO))
    import tests.test_report_browser as browser_test
    from emofuse.flows import local_server as ls
    from tests.test_report_browser import CHROMIUM, Browser

    # the browser may reach the loopback server, and nothing else (no name resolves)
    browser_test.QUIET[:] = [f if not f.startswith("--host-resolver-rules") else
                             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" for f in browser_test.QUIET]

    if CHROMIUM is None:
        print("chromium is not installed: run ./dev setup", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="emofuse-screenshots-"))
    stack = ls.LocalStack(work / "state", ls.free_port())
    stack.state_dir.mkdir()
    home = str(work / "prefect-home")
    try:
        env = ls.server_env(home=home)
        env["PREFECT_UI_API_URL"] = stack.api_url  # the UI's API on this port, not the default 4200
        api = ls.start_server(stack, env=env)
        os.environ.update({"PREFECT_API_URL": api, "PREFECT_HOME": home})
        scored = scored_catalog(work)
        run = latest_score_run(api)
        ui = api.removesuffix("/api")
        browser = Browser(str(work / "chromium"), width=1400, height=900)
        try:
            browser.open(f"{ui}/runs/flow-run/{run}")
            wait_for_text(browser, "Completed")
            browser.screenshot(str(OUT["flow_run"]), clip={"x": 0, "y": 0, "width": 1400, "height": 900})
            browser.js("Array.from(document.querySelectorAll('*')).filter(e => e.children.length === 0"
                       " && e.textContent.trim() === 'Artifacts').pop().click()")  # the tab's label
            wait_for_text(browser, "score-summary")
            browser.screenshot(str(OUT["artifacts"]), clip={"x": 0, "y": 0, "width": 1400, "height": 900})
            browser.open("file://" + scored["report"])
            browser.screenshot(str(OUT["summary"]), clip={"x": 0, "y": 0, "width": 1400, "height": 900})
            browser.js("(async () => { const a = document.querySelector('article.item'); a.scrollIntoView();"
                       " const imgs = Array.from(a.querySelectorAll('img')); imgs.forEach(i => i.loading = 'eager');"
                       " await Promise.all(imgs.map(i => i.decode().catch(() => null))); })()")  # lazy thumbnails
            box = browser.js("(() => { const r = document.querySelector('article.item').getBoundingClientRect();"
                             " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()")
            browser.screenshot(str(OUT["video"]), clip={k: float(v) for k, v in box.items()})
        finally:
            browser.close()
    finally:
        ls.stop(stack, "prefect-server")
        shutil.rmtree(work, ignore_errors=True)
    for path in OUT.values():
        print(f"{path.relative_to(REPO)}: {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
