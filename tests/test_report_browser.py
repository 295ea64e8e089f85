"""The report of a small scored archive, opened from disk in headless Chromium.

A tiny TACFN is trained on demo clips of three actors (eGeMAPS + faces; the folder also
holds a video without audio and an empty file), then the ``score`` flow scores every file
per clip and in 1 s windows every 0.5 s, with attributions, and writes the report as its
last step. Chromium (Debian's ``chromium``; ``./dev`` installs it) loads ``index.html`` through
the DevTools protocol; the checks read the rendered DOM: every scored file has its row and
its section, every plot drew its marks, thumbnails decoded, sorting works, and nothing
was requested from any network (the page's requests as the browser saw them, the
Content-Security-Policy blocking a planted request, and Chromium's own net log).
"""
from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import subprocess
import time
from typing import Any

import pandas as pd
import pytest

from emofuse.catalog.store import Catalog
from conftest import strip_audio

TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
PLAN = [{"fold": 0, "train": ["Actor_01"], "val": ["Actor_03"], "test": ["Actor_02"]},
        {"fold": 1, "train": ["Actor_02"], "val": ["Actor_03"], "test": ["Actor_01"]}]
EMOTIONS = (1, 3, 4, 5)
FEATURE_SETS = ["egemaps", "faces"]
#: Debian runs chromium through a wrapper that adds flags (remote extensions) and Google API keys; the
#: browser itself is this binary.
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if os.path.exists(p)), None)
#: Flags that keep Chromium's own services quiet; the host rule makes any name lookup fail,
#: so nothing the browser itself might try (updates, sign-in) can reach a network either.
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-default-apps", "--disable-breakpad", "--disable-domain-reliability", "--no-pings",
         "--disable-client-side-phishing-detection", "--enable-automation", "--password-store=basic",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--mute-audio"]


# --------------------------------------------------------------------------- a DevTools client
class Browser:
    """Headless Chromium driven through the DevTools protocol (one page, a net log on disk)."""

    def __init__(self, workdir: str, width: int = 1200, height: int = 900) -> None:
        from websockets.sync.client import connect

        self.profile = os.path.join(workdir, "profile")
        self.netlog = os.path.join(workdir, "netlog.json")
        self.proc = subprocess.Popen([CHROMIUM, *QUIET, f"--window-size={width},{height}", "--remote-debugging-port=0",
                                      f"--user-data-dir={self.profile}", f"--log-net-log={self.netlog}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not (os.path.exists(port_file) and len(open(port_file).read().split()) >= 2):
            assert self.proc.poll() is None and time.time() < deadline, "chromium did not start"
            time.sleep(0.05)
        port, path = open(port_file).read().split()[:2]
        self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", page=True)

    def send(self, method: str, *, page: bool = False, **params: Any) -> dict[str, Any]:
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params,
                                 **({"sessionId": self.session} if page else {})}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", page=True, url=url)
        deadline = time.time() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.time() < deadline, f"{url} did not load"
            self.events.append(json.loads(self.ws.recv(timeout=60)))

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        out = self.send("Runtime.evaluate", page=True, expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in out, out["exceptionDetails"]
        return out["result"].get("value")

    def screenshot(self, path: str, clip: dict[str, float] | None = None) -> None:
        import base64

        kw = {"clip": {**clip, "scale": 1}} if clip else {}
        data = self.send("Page.captureScreenshot", page=True, format="png", captureBeyondViewport=True, **kw)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - it may close the socket before answering
            pass
        self.ws.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def net_log(path: str) -> tuple[list[str], int]:
    """(URLs of the network requests a page initiated, TCP connections made) from a Chromium net log.

    The browser's own requests (updates, sign-in) have the initiator ``not an origin``;
    ``file:`` loads do not appear in a net log at all.
    """
    with open(path) as f:
        log = json.load(f)
    kind = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    begin, end = (log["constants"]["logEventPhase"][p] for p in ("PHASE_BEGIN", "PHASE_END"))
    page, connected = [], 0
    for e in log["events"]:
        name, params = kind[e["type"]], e.get("params") or {}
        if name == "URL_REQUEST_START_JOB" and e.get("phase") == begin and params.get("initiator") != "not an origin":
            page.append(params.get("url", ""))
        if name == "TCP_CONNECT_JOB_CONNECT" and e.get("phase") == end and "net_error" not in params:
            connected += 1
    return page, connected


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def scored(tmp_path_factory, demo_corpus) -> dict:
    """A folder of demo clips extracted, then scored by the `score` flow (1 s windows, attributions) with its report."""
    from emofuse.catalog.corpora.demo import generate
    from emofuse.flows.extract import extract
    from emofuse.flows.score import score
    from emofuse.fusion import training_run

    base = tmp_path_factory.mktemp("report")
    src = str(base / "videos")
    for p in sorted(glob.glob(os.path.join(demo_corpus, "Actor_0[12]", "*.mp4"))):
        code = os.path.basename(p).split("-")
        if code[4] == "01" and int(code[2]) in EMOTIONS:  # statement 1, four emotions
            actor = os.path.join(src, os.path.basename(os.path.dirname(p)))
            os.makedirs(actor, exist_ok=True)
            shutil.copy(p, actor)
    generate(src, actors=[3], emotions=EMOTIONS, statements=(1,))
    mute = os.path.join(src, "Actor_02", "01-01-07-01-01-01-02.mp4")  # a video without audio: face only
    strip_audio(os.path.join(src, "Actor_02", "01-01-03-01-01-01-02.mp4"), mute)
    empty = os.path.join(src, "Actor_01", "01-01-06-01-01-01-01.mp4")  # nothing to score: no_features
    open(empty, "wb").close()
    catalog = str(base / "catalog")
    extract(source=src, catalog=catalog, corpus="ravdess", feature_sets=FEATURE_SETS, n_workers=2)
    run = training_run.train(catalog, model="tacfn", feature_sets=FEATURE_SETS, model_config=TINY_TACFN, epochs=2,
                             folds=PLAN, seed=0, threads=1).run_id
    # the score/catalog path: every item of the catalog, nothing to extract (no second cluster)
    out = score(catalog=catalog, run_id=run, window=1.0, hop=0.5, explain=True)
    return {"catalog": catalog, "run_id": run, "out": out, "mute": mute, "empty": empty, "base": base}


@pytest.fixture(scope="module")
def page(scored, tmp_path_factory) -> Browser:
    """The report open in headless Chromium (closed, and its net log written, after the module)."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run ./dev setup (or apt-get install chromium)")
    b = Browser(str(tmp_path_factory.mktemp("chromium")))
    b.open("file://" + scored["out"]["report"])
    yield b
    b.close()


# --------------------------------------------------------------------------- tests
def test_the_score_flow_writes_the_report_and_links_it(scored):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    index = scored["out"]["report"]
    assert index == os.path.join(scored["catalog"], "reports", scored["run_id"], "index.html")
    assert os.path.isfile(index) and glob.glob(os.path.join(os.path.dirname(index), "thumbs", "*.jpg"))
    with get_client(sync_client=True) as client:
        links = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["score-report"])))
    assert any(f"(file://{index})" in a.data for a in links), [a.data for a in links]  # a markdown link


def test_every_scored_file_has_its_row_and_its_section(scored, page):
    cat = Catalog(scored["catalog"])
    preds = cat.predictions(run_id=scored["run_id"])
    scored_ids = set(preds["item_id"])
    status = cat.status(f"score-{scored['run_id']}")
    rows = page.js("Array.from(document.querySelectorAll('#file-table tbody tr')).map(r => r.dataset.item)")
    sections = page.js("Array.from(document.querySelectorAll('article.item')).map(a => a.dataset.item)")
    assert sorted(rows) == sorted(set(status["item_id"])) and len(rows) == 14  # 13 scored + the empty file
    assert sorted(sections) == sorted(scored_ids) and len(sections) == 13
    empty = cat.item_ids([scored["empty"]])[0]
    text = page.js(f"document.querySelector('tr[data-item=\"{empty}\"]').textContent")
    assert "no_features" in text and "empty file (0 bytes)" in text  # the reason, from the status table
    mute = cat.item_ids([scored["mute"]])[0]
    assert "scored without egemaps: no_audio" in page.js(
        f"document.querySelector('article[data-item=\"{mute}\"] .meta').textContent")
    # the dominant emotion and confidence shown are the clip-level prediction's
    clip = preds[(preds["window"] == "clip") & (preds["fold"] == "ensemble")].set_index("item_id")
    shown = page.js("Array.from(document.querySelectorAll('#file-table tbody tr')).filter(r => r.cells[2].dataset.v)"
                    ".map(r => [r.dataset.item, r.cells[2].dataset.v, parseFloat(r.cells[3].dataset.v)])")
    assert len(shown) == 13
    for item, label, conf in shown:
        assert label == clip.loc[item, "label"] and conf == pytest.approx(float(clip.loc[item, "score"]), abs=1e-4)


def test_every_plot_drew_its_marks_and_every_thumbnail_decoded(scored, page):
    plots = page.js("""Array.from(document.querySelectorAll('article.item')).map(a => [a.dataset.item,
        Array.from(a.querySelectorAll('svg.plot')).map(s => [s.dataset.plot,
          Array.from(s.querySelectorAll('.mark')).filter(m => { const r = m.getBoundingClientRect();
                                                               return r.width > 0 || r.height > 0; }).length])])""")
    assert len(plots) == 13
    for item, figs in plots:
        kinds = dict(figs)
        # probabilities over time, modality attributions (whole file and per window), time attribution strip
        assert {"emotions", "modality-attribution", "modality-attribution-time", "time-attribution"} <= set(kinds)
        assert all(n > 0 for _, n in figs), (item, figs)
        assert kinds["emotions"] >= 5 + 1  # a line per class and the dominant-emotion band
    page.js("Array.from(document.images).forEach(i => { i.loading = 'eager'; })")
    images = page.js("""new Promise(done => setTimeout(() => done(Array.from(document.images).map(i =>
        [i.getAttribute('src'), i.complete, i.naturalWidth])), 300))""")
    assert len(images) >= 13 * 2  # every video with a face has a thumbnail per window (most have 4-5)
    assert all(ok and w == 96 and src.startswith("thumbs/") for src, ok, w in images), images[:3]
    mute = Catalog(scored["catalog"]).item_ids([scored["mute"]])[0]
    assert page.js(f"document.querySelectorAll('article[data-item=\"{mute}\"] .faces img').length") >= 2


def test_the_table_sorts_by_a_column_and_back(page):
    column = page.js("Array.from(document.querySelectorAll('#file-table th')).findIndex(h => h.textContent === 'Confidence')")
    values = (f"Array.from(document.querySelectorAll('#file-table tbody tr')).map(r => r.cells[{column}].dataset.v)"
              ".filter(v => v !== '').map(parseFloat)")
    page.js(f"document.querySelectorAll('#file-table th')[{column}].click()")
    up = page.js(values)
    assert up == sorted(up) and len(up) == 13
    assert page.js(f"document.querySelectorAll('#file-table th')[{column}].getAttribute('aria-sort')") == "ascending"
    page.js(f"document.querySelectorAll('#file-table th')[{column}].click()")
    down = page.js(values)
    assert down == sorted(up, reverse=True)
    last = page.js("Array.from(document.querySelectorAll('#file-table tbody tr')).pop().cells[3].dataset.v")
    assert last == ""  # the file without a prediction sorts last both ways
    page.js("document.querySelectorAll('#file-table th')[0].click()")  # back to file names
    names = page.js("Array.from(document.querySelectorAll('#file-table tbody tr')).map(r => r.cells[0].dataset.v)")
    assert names == sorted(names, key=str.lower)


def test_nothing_leaves_the_machine(page, scored):
    folder = "file://" + os.path.dirname(scored["out"]["report"]) + "/"
    requested = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(u.startswith(folder) or u.startswith("data:") for u in requested), requested
    errors = [e["params"]["entry"]["text"] for e in page.events if e.get("method") == "Log.entryAdded"]
    assert not errors  # no blocked load, no script error
    # the page's policy blocks what a tampered page would try (image, script, fetch)
    blocked = page.js("""new Promise(done => {
        const seen = [];
        document.addEventListener('securitypolicyviolation', e => seen.push(e.effectiveDirective));
        const img = new Image(); img.src = 'http://192.0.2.1/pixel.png'; document.body.append(img);
        const s = document.createElement('script'); s.src = 'https://192.0.2.1/x.js'; document.body.append(s);
        fetch('https://192.0.2.1/').catch(() => {});
        setTimeout(() => done(seen.sort()), 500); })""")
    assert blocked == ["connect-src", "img-src", "script-src-elem"]
    page.close()  # writes the net log
    initiated, connected = net_log(page.netlog)
    assert all(u.startswith(("file:", "data:")) for u in initiated), initiated
    assert connected == 0


def test_a_second_report_of_the_same_catalog_changes_no_file(scored):
    from emofuse.flows.report import build_report

    folder = os.path.dirname(scored["out"]["report"])
    before = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(folder, "**"), recursive=True)}
    res = build_report(scored["catalog"], scored["run_id"])
    assert res.written == 0 and res.index == scored["out"]["report"]
    assert {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(folder, "**"), recursive=True)} == before
    assert res.bytes < 5e6 and res.scored == 13 and res.files == 14
    assert pd.read_parquet(os.path.join(scored["catalog"], "predictions")).filter(like="attr_").notna().any().all()
