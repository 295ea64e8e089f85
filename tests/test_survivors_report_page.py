"""The report page rendered from hand-built :class:`ReportData` (no catalog, no video): every part says what it must.

Written against the survivors of ``./dev mutate flows/report/page.py`` (docs/mutation.md): the
header and summary cards, the statuses, throughput and run tables, each cell of the file table,
a video's section, the emotion and attribution plots (compared with what :mod:`svg` draws for
the expected arguments, so a wrong column, range, window or duration shows), the time profile
chosen (the predicted class's whole-file profile, the first dimension's, the windows averaged)
and the thumbnails. Milliseconds per test: the page is pure string work.
"""
from __future__ import annotations

import math
from html import escape, unescape
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.summaries import ExtractRunSummary, FeatureSetRun
from emofuse.flows.report import page as pg
from emofuse.flows.report import svg
from emofuse.flows.report.assets import CSS, JS, READING, class_colors, csp, modality_colors
from emofuse.flows.report.data import ItemData, ReportData, RunInfo, merge_profiles
from emofuse.flows.report.thumbs import FacePick

CLASSES = ["angry", "happy"]
ID = {k: f"{k:0<8}" * 4 for k in ("aaaa", "bbbb", "cccc", "dddd", "eeee")}  # 32 characters, anchors use 16


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.kids, self.parts = tag, attrs, [], []

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    def all(self, tag: str | None = None, **attrs: str) -> list["Node"]:
        out = []
        for k in self.kids:
            if (tag is None or k.tag == tag) and all(k.attrs.get(a.replace("_", "-")) == v for a, v in attrs.items()):
                out.append(k)
            out += k.all(tag, **attrs)
        return out

    def one(self, tag: str | None = None, **attrs: str) -> "Node":
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


VOID = {"meta", "img", "br", "input", "line", "path", "rect", "link"}


class Tree(HTMLParser):
    """The page as nested nodes (tag, attributes, text)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        n = Node(tag, dict(attrs))
        self.stack[-1].kids.append(n)
        self.stack[-1].parts.append(n)
        if tag not in VOID:
            self.stack.append(n)

    def handle_startendtag(self, tag, attrs):
        n = Node(tag, dict(attrs))
        self.stack[-1].kids.append(n)
        self.stack[-1].parts.append(n)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


# -- data ----------------------------------------------------------------------------------------
def _run(classes=CLASSES, dims=(), metrics=None) -> RunInfo:
    return RunInfo(run_id="run-7", model="tacfn", classes=list(classes), dimensional=list(dims),
                   feature_sets={"audio": "egemaps-1", "face": "faces-2"}, names={"audio": "egemaps", "face": "faces"},
                   created="2026-01-02T03:04:05.678+00:00",
                   metrics={"uar": {"mean": 0.5, "std": 0.125, "n": 3}, "wa": {"mean": 0.25}, "note": 1.0,
                            "other": {"std": 1.0}} if metrics is None else metrics)


def _windows(n: int, cols: dict[str, list[float]], hop: float = 2.0, length: float = 4.0) -> pd.DataFrame:
    starts = np.arange(n) * hop
    return pd.DataFrame({"window": "4s/2s", "start": starts, "end": starts + length, **cols})


def _profile(window: str, target: str, kind: str, starts, weights, window_start: float = 0.0) -> pd.DataFrame:
    s = np.asarray(starts, float)
    return pd.DataFrame({"window": window, "window_start": window_start, "target": target, "kind": kind,
                         "start": s, "end": s + 1.0, "weight": np.asarray(weights, float)})


def classified() -> tuple[ReportData, dict]:
    """Two scored files (one with a modality missing), a broken one, one without features; windows, attributions."""
    a_win = _windows(3, {"p_angry": [0.7, 0.2, 0.6], "p_happy": [0.3, 0.8, 0.4],
                         "attr_audio": [0.1, -0.3, 0.05], "attr_face": [0.02, 0.15, np.nan]})
    a_ta = pd.concat([_profile("clip", "happy", "occlusion", [0, 1, 2, 3], [0.1, -0.4, 0.2, 0.3]),
                      _profile("clip", "angry", "attention", [0, 1, 2, 3], [0.9, 0.1, 0.1, 0.1]),
                      _profile("4s/2s", "happy", "attention", [0, 1], [0.5, 0.5])], ignore_index=True)
    a = ItemData(ID["aaaa"], "2024/a.mp4", ["/m/2024/a.mp4", "/copy/a.mp4"], 8.0, True, "ok", "",
                 clip={"label": "happy", "score": 0.7123, "p_angry": 0.3, "p_happy": 0.7, "attr_audio": 0.12,
                       "attr_face": -0.04},
                 windows=a_win, time_attr=a_ta)
    b = ItemData(ID["bbbb"], "2024/<b>.wav", ["/m/2024/b.wav", "/c1/b.wav", "/c2/b.wav"], 6.0, False, "ok",
                 "face: no <video> stream",
                 clip={"label": "surprised", "score": 0.5, "p_angry": 0.5, "p_happy": 0.5, "attr_audio": 0.3,
                       "attr_face": None},
                 windows=_windows(2, {"p_angry": [0.5, 0.5], "p_happy": [0.5, 0.5],
                                      "attr_audio": [np.nan, np.nan], "attr_face": [np.nan, np.nan]}))
    c = ItemData(ID["cccc"], 'x/<i>c</i> "&amp;".mp4', ["/m/x/c.mp4"], None, True, "decode_error",
                 "empty file <0 bytes>")
    d = ItemData(ID["dddd"], "x/d.mp4", ["/m/x/d.mp4"], 2.5, True, "no_features", "faces: not extracted")
    extract = [ExtractRunSummary(run_id=f"ex-{k:02d}", catalog="/cat", source=None if k == 3 else f"/src/{k}",
                                 corpus="demo", wall_s=float(k),
                                 feature_sets={"egemaps-1": FeatureSetRun("egemaps", 4, 0, {"ok": 3, "failed": k},
                                                                          media_seconds=20.0 + k),
                                               "faces-2": FeatureSetRun("faces", 4, 0, {"ok": 1},
                                                                        media_seconds=50.0 + k),
                                               "other-9": FeatureSetRun("x", 9, 0, {"ok": 99},
                                                                        media_seconds=999.0)})
               for k in range(11)]
    data = ReportData(catalog="/cat", run=_run(), fold="fold-0", window="4s/2s", items=[a, b, c, d], n_files=7,
                      extraction={"audio": {"ok": 3, "decode_error": 1}, "face": {"ok": 2, "no_face": 2}},
                      extract_runs=extract, attr_columns=["attr_audio", "attr_face"],
                      scored_span=(pd.Timestamp("2026-01-01 10:00:00"), pd.Timestamp("2026-01-01 10:00:04")))
    thumbs = {ID["aaaa"]: [(FacePick(0, 1.25, (0, 0, 1, 1)), "a-0.jpg"), (FacePick(1, 2.5, (0, 0, 1, 1)), "a<1>.jpg")]}
    return data, thumbs


def dimensional() -> ReportData:
    """A valence/arousal run: no classes, windowed profiles only (averaged), one file clip-only."""
    ta = pd.concat([_profile("4s/2s", "valence", "attention", [0, 1, 2, 3], [0.2, 0.4, 0.1, 0.1], 0.0),
                    _profile("4s/2s", "valence", "attention", [2, 3, 4, 5], [0.5, 0.5, 0.25, 0.0], 2.0),
                    _profile("4s/2s", "arousal", "occlusion", [0, 1], [9.0, 9.0], 0.0)], ignore_index=True)
    e = ItemData(ID["eeee"], "v/e.mp4", ["/m/v/e.mp4"], 6.0, True, "ok", "",
                 clip={"valence": 0.3, "arousal": -0.25},
                 windows=_windows(2, {"valence": [0.3, -0.2], "arousal": [0.1, 0.4]}), time_attr=ta, faces={})
    f = ItemData(ID["dddd"], "v/f.mp4", ["/m/v/f.mp4"], None, True, "ok", "",
                 clip={"valence": -0.5})  # no arousal at all
    return ReportData(catalog="/cat2", run=_run([], ["valence", "arousal"], metrics={}), fold="all", window="4s/2s",
                      items=[e, f], n_files=2, extraction={}, extract_runs=[], attr_columns=[],
                      scored_span=(pd.Timestamp("2026-01-01 10:00:00"), pd.Timestamp("2026-01-01 10:00:01")))


def clip_only() -> ReportData:
    """A run scored without windows or --explain: one scored file."""
    g = ItemData(ID["aaaa"], "g.mp4", ["/m/g.mp4"], 75.0, True, "ok", "",
                 clip={"label": "angry", "score": 0.6, "p_angry": 0.6, "p_happy": 0.4}, faces=None)
    return ReportData(catalog="/cat3", run=_run(), fold="fold-1", window=None, items=[g], n_files=1,
                      extraction={}, extract_runs=[], attr_columns=[],
                      scored_span=(pd.Timestamp("2026-01-01 10:00:00"), pd.Timestamp("2026-01-01 10:00:00.5")))


@pytest.fixture  # per test: mutmut maps each function to the tests that call it (a shared page hides them)
def cls() -> tuple[str, Node, ReportData]:
    data, thumbs = classified()
    html = pg.render(data, thumbs)
    return html, Tree(html).root, data


# -- helpers -------------------------------------------------------------------------------------
def test_durations_numbers_and_symmetric_ranges():
    assert [pg.fmt_seconds(s) for s in (3.456, 59.0, 60.0, 75.0, 3599.0, 3600.0, 4000.0)] == [
        "3.5 s", "59.0 s", "1 min 0 s", "1 min 15 s", "59 min 59 s", "1 h 0 min", "1 h 7 min"]
    assert [pg.fmt_seconds(s) for s in (None, math.nan, math.inf)] == ["–"] * 3
    # rounding carries into the next unit: never "1 min 60 s" or "1 h 60 min"
    assert [pg.fmt_seconds(s) for s in (59.94, 59.96, 119.6, 3599.6, 7140.0, 7190.0)] == [
        "59.9 s", "1 min 0 s", "2 min 0 s", "1 h 0 min", "1 h 59 min", "2 h 0 min"]
    assert pg._num(1.234567891) == ("1.23457", "1.23") and pg._num(3, "{:+.1f}") == ("3", "+3.0")
    assert pg._num(None) == pg._num(math.nan) == pg._num(math.inf) == pg._num(pd.NA) == pg._num(np.nan) == ("", "–")
    cases = ([0.03], [0.05], [-0.45, 0.3], [0.1000000000001], [2.0], [], [np.nan, -0.15])
    assert [pg._sym_range(v) for v in cases] == [
        0.05, 0.05, 0.5, 0.1, 1.0, 0.05, 0.2]
    legend = pg._legend(["a<b", "c"], ["#111", "#222"])
    assert legend.startswith('<div class="legend">') and legend.endswith("</div>")
    assert legend.count('<svg class="sw" viewBox="0 0 10 10" width="10" height="10">') == 2
    assert legend == ('<div class="legend">'
                      '<span><svg class="sw" viewBox="0 0 10 10" width="10" height="10"><rect width="10" height="10" '
                      'fill="#111"/></svg>a&lt;b</span>'
                      '<span><svg class="sw" viewBox="0 0 10 10" width="10" height="10"><rect width="10" height="10" '
                      'fill="#222"/></svg>c</span></div>')


# -- header, summary -----------------------------------------------------------------------------
def test_head_style_policy_navigation_and_footer(cls):
    html, root, data = cls
    assert html.startswith("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">") and html.endswith(
        "</html>\n")
    style = root.one("style").text
    assert style == CSS + "\n" + "\n".join(f".k{k}{{background:{c}}}" for k, c in enumerate(class_colors(CLASSES)))
    assert root.one("meta", http_equiv="Content-Security-Policy").attrs["content"] == csp(style, JS)
    assert root.one("script").text == JS
    assert root.one("meta", name="referrer").attrs["content"] == "no-referrer"
    assert root.one("meta", name="viewport").attrs["content"] == "width=device-width, initial-scale=1"
    assert root.one("head").one("title").text == "emofuse report · tacfn · run-7"
    assert root.one("h1").text == "Emotions in 4 files"
    assert root.one("p", **{"class": "muted"}).text == (
        "tacfn run run-7 · predictions of fold-0, time windows 4s/2s · catalog /cat")
    assert [(a.attrs["href"], a.text) for a in root.one("nav").all("a")] == [
        ("#summary", "Summary"), ("#files", "Files"), ("#videos", "Videos (2)"), ("#reading", "How to read it")]
    assert root.one("footer").text == ("Written by emofuse report --run run-7 from the catalog alone; "
                                       "this folder opens offline and makes no request.")
    assert READING in html and html.index(READING) > html.index('<section id="videos">')
    videos = root.one("section", id="videos")
    assert videos.kids[0].tag == "h2" and videos.kids[0].text == "Videos"
    legend = videos.kids[1]
    assert legend.attrs["class"] == "legend" and [(s.kids[0].attrs["class"], s.text) for s in legend.kids] == [
        ("sw k0", "angry"), ("sw k1", "happy")]
    assert [a.attrs["data-item"] for a in videos.all("article")] == [ID["aaaa"], ID["bbbb"]]
    one = pg.render(clip_only(), {})
    assert "<h1>Emotions in 1 file</h1>" in one and ", whole clips only · catalog" in one
    assert "Videos (1)" in one and one == pg.Page(clip_only(), {}).render()


def _table(node: Node) -> list[list[str]]:
    return [[td.text for td in tr.all("td")] for tr in node.one("tbody").all("tr")]


def _after(root: Node, h4: str) -> Node:
    """The element right after the <h4> with this text."""
    for parent in [root, *root.all()]:
        for k, kid in enumerate(parent.kids):
            if kid.tag == "h4" and kid.text == h4:
                return parent.kids[k + 1]
    raise AssertionError(h4)


def test_summary_cards_statuses_and_problem_files(cls):
    _, root, data = cls
    summary = root.one("section", id="summary")
    assert summary.kids[0].text == "Summary"
    cards = [(c.one("b").text, c.one("span").text) for c in summary.all("div", **{"class": "card"})]
    assert cards == [("4", "files"), ("7", "paths (a copy counts once)"), ("2", "scored"),
                     ("1", "scored with a modality missing"), ("2", "without predictions"),
                     ("14.0 s", "of media scored"), ("5", "time windows (4s/2s)")]
    statuses = _after(summary, "Statuses per item")
    assert [(th.text, th.attrs.get("class")) for th in statuses.all("th")] == [
        ("Step", None), ("Feature set", None), ("ok", "num"), ("decode_error", "num"), ("no_face", "num"),
        ("no_features", "num")]
    assert _table(statuses) == [["egemaps (audio)", "egemaps-1", "3", "1", "", ""],
                                ["faces (face)", "faces-2", "2", "", "2", ""],
                                ["scoring", "score-run-7", "2", "1", "", "1"]]
    assert all(td.attrs.get("class") == "num" for tr in statuses.all("tr") for td in tr.all("td")[2:])
    bad = _after(summary, "Files without predictions (2)")
    assert [th.text for th in bad.all("th")] == ["File", "Status", "Reason"]
    assert _table(bad) == [['x/<i>c</i> "&amp;".mp4', "decode_error", "empty file <0 bytes>"],
                           ["x/d.mp4", "no_features", "faces: not extracted"]]
    assert [tr.attrs.get("class") for tr in bad.one("tbody").all("tr")] == ["bad", "bad"]
    masked = _after(summary, "Scored with a modality missing (1)")
    assert [th.text for th in masked.all("th")] == ["File", "Reason"]
    assert _table(masked) == [["2024/<b>.wav", "face: no <video> stream"]]
    assert masked.one("a").attrs["href"] == "#item-" + ID["bbbb"][:16]
    run = _after(summary, "Run")
    assert run.attrs["class"] == "kv"
    assert list(zip((t.text for t in run.all("dt")), (d.text for d in run.all("dd")))) == [
        ("model", "tacfn"), ("run", "run-7"), ("trained", "2026-01-02 03:04:05"), ("classes", "angry, happy"),
        ("feature sets", "audio: egemaps-1, face: faces-2"), ("held-out uar", "0.500 ± 0.125 over 3 folds"),
        ("held-out wa", "0.250 ± 0.000 over ? folds")]
    assert summary.kids[-1].tag == "dl"


def test_summary_without_problems_or_copies_and_a_dimensional_run():
    root = Tree(pg.render(dimensional(), {})).root
    summary = root.one("section", id="summary")
    cards = [(c.one("b").text, c.one("span").text) for c in summary.all("div", **{"class": "card"})]
    assert cards == [("2", "files"), ("2", "scored"), ("0", "scored with a modality missing"),
                     ("0", "without predictions"), ("6.0 s", "of media scored"), ("2", "time windows (4s/2s)")]
    assert [h.text for h in summary.all("h4")] == ["Statuses per item", "Throughput", "Run"]
    assert _after(summary, "Throughput").text == "No extract run recorded for these feature sets."
    assert _after(summary, "Throughput").attrs["class"] == "note"
    assert summary.all("p")[-1].text == (  # a file of unknown duration adds none; one second is a rate
        "Scored 2 files (6.0 s of media) between 2026-01-01 10:00:00 and 10:00:01 UTC (2.0 files/s, 6 media s/s).")
    run = _after(summary, "Run")
    assert list(zip((t.text for t in run.all("dt")), (d.text for d in run.all("dd"))))[3:] == [
        ("classes", "–"), ("feature sets", "audio: egemaps-1, face: faces-2"), ("dimensions", "valence, arousal")]
    nameless = dimensional()
    nameless.run.names = {"audio": "egemaps"}  # a modality whose extractor is not recorded: named by itself
    statuses = _after(Tree(pg.render(nameless, {})).root, "Statuses per item")
    assert [r[:2] for r in _table(statuses)] == [["egemaps (audio)", "egemaps-1"], ["face (face)", "faces-2"],
                                                 ["scoring", "score-run-7"]]
    clip = Tree(pg.render(clip_only(), {})).root.one("section", id="summary")
    assert [(c.one("b").text, c.one("span").text) for c in clip.all("div", **{"class": "card"})][-1] == (
        "1 min 15 s", "of media scored")
    assert clip.all("p")[-1].text == (
        "Scored 1 files (1 min 15 s of media) between 2026-01-01 10:00:00 and 10:00:00 UTC.")


def test_throughput_lists_the_last_ten_extract_runs_of_the_runs_feature_sets(cls):
    html, root, data = cls
    summary = root.one("section", id="summary")
    table = _after(summary, "Throughput")
    assert [(th.text, th.attrs.get("class")) for th in table.all("th")] == [
        ("Extract run", None), ("Source", None), ("Items extracted", "num"), ("Media s", "num"), ("Wall s", "num"),
        ("Media s per s", "num")]
    rows = _table(table)
    assert [r[0] for r in rows] == [f"ex-{k:02d}" for k in range(1, 11)]
    assert rows[0] == ["ex-01", "/src/1", "4", "51.0", "1.0", "51.0"]  # the largest of the run's feature sets
    assert rows[2] == ["ex-03", "–", "6", "53.0", "3.0", "17.7"]
    assert rows[9] == ["ex-10", "/src/10", "13", "60.0", "10.0", "6.0"]
    assert all(td.attrs.get("class") == "num" for tr in table.all("tr") for td in tr.all("td")[2:])
    note = summary.kids[summary.kids.index(table) + 1]
    assert (note.tag, note.attrs["class"], note.text) == ("p", "note", "The last 10 of 11 extract runs.")
    scored = summary.kids[summary.kids.index(note) + 1]
    assert scored.text == ("Scored 2 files (14.0 s of media) between 2026-01-01 10:00:00 and 10:00:04 UTC "
                           "(0.5 files/s, 4 media s/s).")
    # ten runs: no note; a run without media or wall time: no rate
    data10 = classified()[0]
    data10.extract_runs = data10.extract_runs[1:]
    data10.extract_runs[0].wall_s = 0.0
    data10.extract_runs[1].feature_sets = {"faces-2": FeatureSetRun("faces", 4, 0, {}, media_seconds=0.0)}
    data10.extract_runs[2].feature_sets = {"faces-2": FeatureSetRun("faces", 1, 0, {"ok": 1}, media_seconds=0.5)}
    s10 = Tree(pg.render(data10, {})).root.one("section", id="summary")
    rows10 = _table(_after(s10, "Throughput"))
    assert len(rows10) == 10 and rows10[0][5] == "–" and rows10[1][2:] == ["0", "0.0", "2.0", "–"]
    assert rows10[2][2:] == ["1", "0.5", "3.0", "0.2"]  # under a media second: still a rate
    assert "extract runs." not in s10.text
    data10.extract_runs[1].feature_sets = {}
    assert _table(_after(Tree(pg.render(data10, {})).root, "Throughput"))[1][2:] == ["0", "0.0", "2.0", "–"]


# -- the table -----------------------------------------------------------------------------------
def test_the_file_table_heads_and_every_cell(cls):
    _, root, data = cls
    files = root.one("section", id="files")
    assert files.kids[0].text == "Files"
    assert files.one("input").attrs == {"id": "file-filter", "type": "search",
                                        "placeholder": "Filter by file name, emotion or status",
                                        "aria-label": "filter the files"}
    ths = files.one("table", id="file-table").all("th")
    assert [(th.text, th.attrs.get("data-sort"), th.attrs.get("class"), th.attrs.get("aria-sort")) for th in ths] == [
        ("File", "text", None, "ascending"), ("Duration (s)", "num", "num", None), ("Emotion", "text", None, None),
        ("Confidence", "num", "num", None), ("Windows", "num", "num", None), ("audio attr.", "num", "num", None),
        ("face attr.", "num", "num", None), ("Status", "text", None, None)]
    assert all(set(th.attrs) <= {"data-sort", "class", "aria-sort"} for th in ths)
    assert files.kids[-1].attrs["class"] == "note" and files.kids[-1].text == (
        "Click a column to sort it (again to reverse). Confidence is the probability of the predicted emotion over "
        "the whole file; an attribution (attr.) is how much that probability drops when the modality is masked.")
    rows = {tr.attrs["data-item"]: tr for tr in files.one("tbody").all("tr")}
    assert list(rows) == [ID[k] for k in ("aaaa", "bbbb", "cccc", "dddd")]
    cells = {k: [(td.attrs.get("data-v"), td.text, td.attrs.get("class")) for td in rows[ID[k]].all("td")]
             for k in ("aaaa", "bbbb", "cccc", "dddd")}
    assert cells["aaaa"] == [("2024/a.mp4", "2024/a.mp4 (+1 copy)", None), ("8", "8.0", "num"),
                             ("happy", "happy", None), ("0.7123", "0.71", "num"), ("3", "3", "num"),
                             ("0.12", "+0.12", "num"), ("-0.04", "-0.04", "num"), ("ok", "ok", None)]
    assert cells["bbbb"] == [("2024/<b>.wav", "2024/<b>.wav (+2 copies)face: no <video> stream", None),
                             ("6", "6.0", "num"),
                             ("surprised", "surprised", None), ("0.5", "0.50", "num"), ("2", "2", "num"),
                             ("0.3", "+0.30", "num"), ("", "–", "num"), ("ok", "ok", None)]
    assert cells["cccc"] == [('x/<i>c</i> "&amp;".mp4', 'x/<i>c</i> "&amp;".mp4empty file <0 bytes>', None),
                             ("", "–", "num"), ("", "–", None),
                             ("", "–", "num"), ("0", "–", "num"), ("", "–", "num"), ("", "–", "num"),
                             ("decode_error", "decode_error", None)]
    a, b, c = rows[ID["aaaa"]], rows[ID["bbbb"]], rows[ID["cccc"]]
    assert a.one("a").attrs["href"] == "#item-" + ID["aaaa"][:16] and not c.all("a")
    assert a.one("span", **{"class": "muted"}).text == "(+1 copy)" and not c.all("span", **{"class": "muted"})
    assert b.one("div", **{"class": "note-line"}).text == "face: no <video> stream" and not a.all("div")
    assert a.one("span", **{"class": "sw k1"}) and not b.all("span", **{"class": "sw k0"})
    assert not [s for s in b.all("span") if "sw" in s.attrs.get("class", "")]  # a label of no class: no swatch
    assert [tr.attrs.get("class") for tr in rows.values()] == [None, None, "bad", "bad"]
    assert [sorted(tr.attrs) for tr in rows.values()] == [["data-item"]] * 2 + [["class", "data-item"]] * 2
    assert [tr.all("td")[-1].one("span").attrs["class"] for tr in rows.values()] == [
        "status-ok", "status-ok", "status-bad", "status-bad"]


def test_a_missing_label_or_score_shows_as_missing():
    data, _ = classified()
    a, b = data.items[0], data.items[1]
    del a.clip["score"]  # a label without its probability
    b.clip["label"] = np.nan  # no label
    root = Tree(pg.render(data, {})).root
    assert _article(root, "aaaa").kids[1].text == "8.0 s · happy (nan over the whole file)"
    assert _article(root, "bbbb").kids[1].text == "6.0 s · face: no <video> stream"
    rows = {tr.attrs["data-item"]: tr.all("td") for tr in root.one("table", id="file-table").one("tbody").all("tr")}
    assert [(td.attrs.get("data-v"), td.text) for td in rows[ID["aaaa"]][2:4]] == [("happy", "happy"), ("", "–")]
    assert [(td.attrs.get("data-v"), td.text) for td in rows[ID["bbbb"]][2:4]] == [("", "–"), ("0.5", "0.50")]


def test_the_table_of_a_dimensional_and_of_a_clip_only_run():
    root = Tree(pg.render(dimensional(), {})).root
    assert [(th.text, th.attrs.get("data-sort")) for th in root.one("table", id="file-table").all("th")] == [
        ("File", "text"), ("Duration (s)", "num"), ("Valence", "num"), ("Arousal", "num"), ("Windows", "num"),
        ("Status", "text")]
    rows = root.one("table", id="file-table").one("tbody").all("tr")
    assert [(td.attrs.get("data-v"), td.text) for td in rows[0].all("td")][1:] == [
        ("6", "6.0"), ("0.3", "0.30"), ("-0.25", "-0.25"), ("2", "2"), ("ok", "ok")]
    assert [(td.attrs.get("data-v"), td.text) for td in rows[1].all("td")][1:] == [
        ("", "–"), ("-0.5", "-0.50"), ("", "–"), ("0", "0"), ("ok", "ok")]
    clip = Tree(pg.render(clip_only(), {})).root.one("table", id="file-table")
    assert [th.text for th in clip.all("th")] == ["File", "Duration (s)", "Emotion", "Confidence", "Status"]
    assert [(td.attrs.get("data-v"), td.text) for td in clip.one("tbody").all("td")] == [
        ("g.mp4", "g.mp4"), ("75", "75.0"), ("angry", "angry"), ("0.6", "0.60"), ("ok", "ok")]


# -- a video's section ---------------------------------------------------------------------------
def _article(root: Node, key: str) -> Node:
    return root.one("article", data_item=ID[key])


def test_a_section_names_the_file_its_prediction_and_its_paths(cls):
    html, root, data = cls
    a, b = _article(root, "aaaa"), _article(root, "bbbb")
    assert a.attrs == {"class": "item", "id": "item-" + ID["aaaa"][:16], "data-item": ID["aaaa"]}
    assert a.kids[0].tag == "h3" and a.kids[0].text == "2024/a.mp4"
    meta = a.kids[1]
    assert meta.attrs["class"] == "meta" and meta.text == "8.0 s · happy (0.71 over the whole file)"
    assert meta.one("b").text == "happy" and meta.one("span").attrs["class"] == "sw k1"
    assert b.kids[0].text == "2024/<b>.wav" and not b.all("video")
    assert b.kids[1].text == "6.0 s · surprised (0.50 over the whole file) · face: no <video> stream"
    assert not b.kids[1].all("span")
    details = a.one("details")
    assert details.one("summary").text == "path and id" and details.one("summary").attrs["class"] == "muted"
    assert details.one("p").text == f"item {ID['aaaa']}/m/2024/a.mp4/copy/a.mp4"
    assert [c.text for c in details.all("code")] == [ID["aaaa"], "/m/2024/a.mp4", "/copy/a.mp4"]
    assert len(details.all("br")) == 2
    assert [h.text for h in a.all("h4")] == ["Emotion over time", "What the prediction rests on",
                                            "Main face per window"]
    dim = Tree(pg.render(dimensional(), {})).root
    assert _article(dim, "eeee").kids[1].text == "6.0 s · valence +0.30 · arousal -0.25"
    assert _article(dim, "dddd").kids[1].text == "– · valence -0.50"
    nan = dimensional()
    nan.items[1].clip["arousal"] = np.nan  # stored but missing: left out like an absent one
    assert _article(Tree(pg.render(nan, {})).root, "dddd").kids[1].text == "– · valence -0.50"


def test_the_emotion_plots_are_drawn_from_the_right_columns(cls):
    html, root, data = cls
    a, b = data.items[0], data.items[1]
    colors = class_colors(CLASSES)
    for item in (a, b):
        w = item.windows
        expected = svg.time_lines(w["start"].to_numpy(), w["end"].to_numpy(), w[["p_angry", "p_happy"]].to_numpy(float),
                                  CLASSES, colors, duration=item.duration, kind="emotions", y_range=(0.0, 1.0),
                                  strip=True)
        assert expected in html
    art = _article(root, "aaaa")
    assert art.kids[art.kids.index(art.all("h4")[0]) + 1].attrs["class"] == "legend"
    assert art.one("svg", data_plot="emotions").all("rect", **{"class": "mark dominant"})
    notes = [p.text for p in art.all("p", **{"class": "note"})]
    assert notes[0] == ("3 windows of 4s/2s; the band on top is the most probable emotion of each window. "
                        "Hover a window for its numbers.")
    # whole-file only: bars of the class probabilities
    one = pg.render(clip_only(), {})
    assert svg.bars([0.6, 0.4], CLASSES, colors, kind="emotions", x_range=(0.0, 1.0)) in one
    g = Tree(one).root.one("article")
    assert [h.text for h in g.all("h4")] == ["Emotion over the whole file", "What the prediction rests on",
                                            "Main face"]
    assert g.all("p", **{"class": "note"})[0].text == (
        "Whole-file prediction only: score with --window 4 --hop 2 for emotion over time.")
    assert not g.all("div", **{"class": "legend"})


def test_dimensional_plots_use_the_dimensions_on_a_signed_axis():
    data = dimensional()
    html = pg.render(data, {})
    e, f = data.items
    dims = ["valence", "arousal"]
    colors = modality_colors(["text", "audio", "face"])[:2]
    assert svg.time_lines(e.windows["start"].to_numpy(), e.windows["end"].to_numpy(),
                          e.windows[dims].to_numpy(float), dims, colors, duration=6.0, kind="emotions",
                          y_range=(-1.0, 1.0), strip=False) in html
    assert svg.bars([-0.5, np.nan], dims, colors, kind="emotions", x_range=(-1.0, 1.0)) in html
    art = Tree(html).root.one("article", data_item=ID["eeee"])
    assert art.all("h4")[0].text == "Valence and arousal over time" and not art.all("div", **{"class": "legend"})
    three = dimensional()
    three.run.dimensional = ["valence", "arousal", "dominance"]
    three.items[1].clip["dominance"] = 0.25
    assert svg.bars([-0.5, np.nan, 0.25], three.run.dimensional, modality_colors(["text", "audio", "face"]),
                    kind="emotions", x_range=(-1.0, 1.0)) in pg.render(three, {})
    # a file of unknown duration with windows: the plot spans to its last window's end
    e.duration = None
    assert svg.time_lines(e.windows["start"].to_numpy(), e.windows["end"].to_numpy(),
                          e.windows[dims].to_numpy(float), dims, colors, duration=6.0, kind="emotions",
                          y_range=(-1.0, 1.0), strip=False) in pg.render(data, {})


# -- attributions --------------------------------------------------------------------------------
def test_attributions_whole_file_per_window_and_the_predicted_class_profile(cls):
    html, root, data = cls
    a = data.items[0]
    names, colors = ["audio", "face"], modality_colors(["audio", "face"])
    assert svg.bars([0.12, -0.04], names, colors, kind="modality-attribution", x_range=(-0.2, 0.2),
                    fmt="{:+.2f}") in html
    assert svg.bars([0.3, np.nan], names, colors, kind="modality-attribution", x_range=(-0.4, 0.4),
                    fmt="{:+.2f}") in html
    w = a.windows
    assert ('<p class="meta">Per window:</p>' + pg._legend(names, colors) + svg.time_lines(
        w["start"].to_numpy(), w["end"].to_numpy(), w[["attr_audio", "attr_face"]].to_numpy(float), names, colors,
        duration=8.0, kind="modality-attribution-time", y_range=(-0.4, 0.4), height=130, fmt="{:+.2f}")) in html
    happy = a.time_attr[(a.time_attr["window"] == "clip") & (a.time_attr["target"] == "happy")]
    strip = svg.heat_strip(happy["start"].to_numpy(), happy["end"].to_numpy(), happy["weight"].to_numpy(float),
                           duration=8.0, label="occlusion")
    text = ("Over time (occlusion, whole file): how much the prediction drops when this time range is masked; "
            "darker = more weight.")
    assert f'<p class="meta">{escape(text)}</p>{strip}' in html
    art = _article(root, "aaaa")
    assert art.all("p", **{"class": "meta"})[2].text == (
        "Whole file: how much the predicted emotion's probability drops when each modality is masked "
        "(absent: the file lacks it).")
    b = _article(root, "bbbb")  # no time attribution, no per-window values
    assert b.all("svg", data_plot="modality-attribution") and not b.all("svg", data_plot="modality-attribution-time")
    assert "No time attribution stored for this file." in [p.text for p in b.all("p", **{"class": "note"})]
    assert "No time attribution stored for this file." not in art.text


def test_a_profile_of_another_class_or_windows_only():
    data, _ = classified()
    a = data.items[0]
    a.clip["label"] = "sad"  # no whole-file profile of this class: all the clip rows, their first kind
    clip = a.time_attr[a.time_attr["window"] == "clip"]
    html = pg.render(data, {})
    strip = svg.heat_strip(clip["start"].to_numpy(), clip["end"].to_numpy(), clip["weight"].to_numpy(float),
                           duration=8.0, label="occlusion")
    assert strip in html
    b = data.items[1]  # a whole-file profile of one step, of the predicted class
    b.time_attr = pd.concat([_profile("clip", "angry", "attention", [0, 1], [0.5, 0.5]),
                             _profile("clip", "surprised", "occlusion", [3.0], [0.25])], ignore_index=True)
    one = pg.render(data, {})
    assert svg.heat_strip([3.0], [4.0], [0.25], duration=6.0, label="occlusion") in one
    assert "Over time (occlusion, whole file)" in one
    a.time_attr = a.time_attr[a.time_attr["window"] != "clip"]  # windows only: their profiles merged
    a.duration = None
    html = pg.render(data, {})
    s, e, w = merge_profiles(a.time_attr)
    assert svg.heat_strip(s, e, w, duration=2.0, label="attention") in html
    assert escape("Over time (attention, windows averaged): the model's attention over its face steps; "
                  "darker = more weight.") in html


def test_a_dimensional_profile_shows_the_first_dimension_averaged_over_windows():
    data = dimensional()
    html = pg.render(data, {})
    ta = data.items[0].time_attr
    s, e, w = merge_profiles(ta[ta["target"] == "arousal"])
    assert svg.heat_strip(s, e, w, duration=6.0, label="occlusion") in html
    assert escape("Over time (occlusion, arousal, windows averaged): how much the prediction drops when this "
                  "time range is masked; darker = more weight.") in html
    art = Tree(html).root.one("article", data_item=ID["eeee"])
    assert art.all("h4")[1].text == "What the prediction rests on"
    assert not art.all("svg", data_plot="modality-attribution")  # no attribution columns
    assert "No time attribution stored" not in html


def test_a_kind_without_a_description_is_named_as_it_is():
    data = dimensional()
    ta = data.items[0].time_attr
    ta.loc[ta["target"] == "arousal", "kind"] = "gradient<x>"
    html = pg.render(data, {})
    assert escape("Over time (gradient<x>, arousal, windows averaged): gradient<x>; darker = more weight.") in html
    assert svg.heat_strip(*merge_profiles(ta[ta["target"] == "arousal"]), duration=6.0, label="gradient<x>") in html


def test_without_attributions_the_page_says_how_to_get_them():
    html = pg.render(clip_only(), {})
    art = Tree(html).root.one("article")
    k = art.kids.index([h for h in art.all("h4") if h.text == "What the prediction rests on"][0])
    note = art.kids[k + 1]
    assert note.attrs["class"] == "note" and note.text == unescape(pg.NO_ATTRIBUTIONS.format(run="run-7")).replace(
        "<code>", "").replace("</code>", "")
    assert not art.all("svg", data_plot="modality-attribution")


# -- faces ---------------------------------------------------------------------------------------
def test_thumbnails_per_window_with_their_label_and_span(cls):
    html, root, data = cls
    figs = _article(root, "aaaa").all("figure")
    imgs = [f.one("img").attrs for f in figs]
    assert [i["src"] for i in imgs] == ["thumbs/a-0.jpg", "thumbs/a<1>.jpg"]
    assert [i["alt"] for i in imgs] == [i["title"] for i in imgs] == [
        "0–4 s: angry (frame at 1.25 s)", "2–6 s: happy (frame at 2.50 s)"]
    assert all((i["loading"], i["width"], i["height"]) == ("lazy", "64", "64") for i in imgs)
    assert [f.one("figcaption").text for f in figs] == ["0–4 s", "2–6 s"]
    assert [f.one("span").attrs["class"] for f in figs] == ["sw k0", "sw k1"]
    assert _article(root, "aaaa").one("div", **{"class": "faces"}).kids == figs
    assert "windows shown" not in html
    no_video = _article(root, "bbbb")
    assert no_video.all("p", **{"class": "note"})[-1].text == "No thumbnail: the file has no video."


def test_thumbnails_of_whole_files_and_why_one_is_missing():
    data = clip_only()
    g = data.items[0]
    html = pg.render(data, {ID["aaaa"]: [(FacePick(0, 30.0, (0, 0, 1, 1)), "g.jpg")]})
    img = Tree(html).root.one("img")
    assert img.attrs["title"] == "0–75 s (frame at 30.00 s)"  # no windows: the whole file, no label
    assert not Tree(html).root.one("figure").all("span") and Tree(html).root.one("figcaption").text == "0–75 s"
    assert "No thumbnail: no face was found or faces were not extracted." in pg.render(data, {})
    g.faces = {}
    assert "No thumbnail: no face was found." in pg.render(data, {})
    g.duration = None
    assert Tree(pg.render(data, {ID["aaaa"]: [(FacePick(0, 0.0, (0, 0, 1, 1)), "g.jpg")]})).root.one(
        "img").attrs["title"] == "0–0 s (frame at 0.00 s)"
    # a window whose probabilities are missing: no label
    data, _ = classified()
    a = data.items[0]
    a.windows.loc[1, ["p_angry", "p_happy"]] = np.nan
    a.windows.loc[2, ["p_angry"]] = np.nan
    picks = [(FacePick(k, 2.0 * k, (0, 0, 1, 1)), f"{k}.jpg") for k in range(3)]
    titles = [i.attrs["title"] for i in Tree(pg.render(data, {ID["aaaa"]: picks})).root.all("img")]
    assert titles == ["0–4 s: angry (frame at 0.00 s)", "2–6 s (frame at 2.00 s)",
                      "4–8 s: happy (frame at 4.00 s)"]


@pytest.mark.parametrize("n_picks, note", [(48, True), (47, False), (50, False)])
def test_a_note_says_when_not_every_window_has_its_thumbnail(n_picks, note):
    data = clip_only()
    g = data.items[0]
    data.window = "4s/2s"
    g.windows = _windows(50, {"p_angry": [0.5] * 50, "p_happy": [0.5] * 50})
    picks = [(FacePick(k, 2.0 * k, (0, 0, 1, 1)), f"{k}.jpg") for k in range(n_picks)]
    html = pg.render(data, {ID["aaaa"]: picks})
    text = f'<p class="note">{n_picks} of 50 windows shown (evenly spread).</p>'
    assert (text in html) is note
    assert html.count("<figure>") == n_picks


CONTAINERS = {"#root", "html", "head", "body", "header", "main", "section", "article", "nav", "table", "thead", "tbody",
              "tr", "dl", "details", "figure"}


@pytest.mark.parametrize("make", ["classified", "dimensional", "clip_only"])
def test_no_stray_text_between_the_elements(make):
    data = classified()[0] if make == "classified" else globals()[make]()
    picks = [(FacePick(0, 1.0, (0, 0, 1, 1)), "a.jpg"), (FacePick(0, 2.0, (0, 0, 1, 1)), "b.jpg")]
    root = Tree(pg.render(data, {ID["aaaa"]: picks})).root
    for node in [root, *root.all()]:
        if node.tag in CONTAINERS or (node.tag == "div" and node.attrs.get("class") in {
                "legend", "cards", "faces", "card", "table-wrap"}):
            stray = [p for p in node.parts if isinstance(p, str) and p.strip()]
            assert not stray, (node.tag, node.attrs, stray)


def test_per_window_attributions_of_a_file_of_unknown_duration_end_with_its_last_window():
    data = clip_only()
    g = data.items[0]
    data.window, data.attr_columns, g.duration = "1s/0.5s", ["attr_audio"], None
    g.windows = _windows(2, {"p_angry": [0.6, 0.4], "p_happy": [0.4, 0.6], "attr_audio": [0.1, -0.1]}, 0.5, 1.0)
    w = g.windows
    assert svg.time_lines(w["start"].to_numpy(), w["end"].to_numpy(), w[["attr_audio"]].to_numpy(float), ["audio"],
                          modality_colors(["audio"]), duration=1.5, kind="modality-attribution-time",
                          y_range=(-0.1, 0.1), height=130, fmt="{:+.2f}") in pg.render(data, {})
