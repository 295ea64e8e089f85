"""`emofuse report` on generated scored catalogs (no browser): what the page says, the thumbnails, the folder.

The catalogs come from :mod:`emofuse.flows.report.dummies` (real Catalog writes and real
H.264 videos of a drawn face, no training); the browser test is ``test_report_browser.py``.
"""
from __future__ import annotations

import io
import os
from html import unescape
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from emofuse.catalog.store import Catalog
from emofuse.flows.report import build_report
from emofuse.flows.report.dummies import scored_catalog


class Dom(HTMLParser):
    """The few facts the tests read from a page: rows, sections (with their text and plots), images."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.sections: dict[str, str] = {}
        self.plots: dict[str, list[str]] = {}
        self.images: dict[str, list[str]] = {}
        self._item: str | None = None
        self._depth = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-item"):
            self.rows.append(a["data-item"])
        if tag == "article":
            self._item, self._depth = a.get("data-item"), 0
            self.sections[self._item], self.plots[self._item], self.images[self._item] = "", [], []
        if self._item is not None:
            self._depth += tag == "article"
            if tag == "svg" and a.get("class") == "plot":
                self.plots[self._item].append(a["data-plot"])
            if tag == "img":
                self.images[self._item].append(a["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._item = None

    def handle_data(self, data: str) -> None:
        if self._item is not None:
            self.sections[self._item] += data


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> str:
    """Generated videos shared by the catalogs of this module (one per duration)."""
    return str(tmp_path_factory.mktemp("report-media"))


def _ids(root: str) -> dict[str, str]:
    return {os.path.basename(p).split(".")[0]: i for p, i in Catalog(root).media()[["path", "item_id"]].values}


def test_statuses_reasons_and_missing_modalities_are_on_the_page(tmp_path, media):
    root = str(tmp_path / "cat")
    run_id = scored_catalog(root, n_files=6, media_dir=media, durations=(3.0, 9.0), every=(3, 4, 5))
    res = build_report(root, run_id)
    html = open(res.index).read()
    dom = Dom(html)
    ids = _ids(root)
    broken = {ids["clip-0002"], ids["clip-0005"]}  # every 3rd file is broken, the 4th audio-only, the 5th faceless
    audio, no_face = ids["clip-0003"], ids["clip-0004"]
    assert sorted(dom.rows) == sorted(ids.values())  # every file has a row, the broken ones too
    assert set(dom.sections) == set(ids.values()) - broken and res.scored == 4
    assert "Files without predictions (2)" in html and "egemaps, faces: decode_error (empty file (0 bytes))" in html
    assert "Scored with a modality missing (2)" in html
    assert "scored without faces: no_video" in dom.sections[audio] and "the file has no video" in dom.sections[audio]
    assert "no face was found" in dom.sections[no_face] and not dom.images[no_face]
    for item in set(dom.sections) - {audio, no_face}:
        assert dom.images[item] and all(src.startswith("thumbs/") for src in dom.images[item])
        assert {"emotions", "modality-attribution", "modality-attribution-time", "time-attribution"} <= set(dom.plots[item])
    # the face attribution of the audio-only file is absent, not zero
    assert "absent" in dom.sections[audio]
    # no request can leave: the policy allows nothing but the page's own style, script and images
    assert "default-src 'none'; img-src 'self' file: data:; style-src 'sha256-" in unescape(html)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html


def test_a_run_scored_without_windows_or_explain_says_how_to_get_them(tmp_path, media):
    root = str(tmp_path / "cat")
    run_id = scored_catalog(root, n_files=2, media_dir=media, durations=(3.0,), windows=None, explain=False)
    dom = Dom(open(build_report(root, run_id).index).read())
    assert len(dom.sections) == 2
    for item, text in dom.sections.items():
        assert dom.plots[item] == ["emotions"]  # probabilities as bars over the whole file
        assert "--explain" in text and "--window 4 --hop 2" in text
        assert len(dom.images[item]) == 1  # one face for the whole file


def test_thumbnails_crop_the_face_at_its_stored_box(tmp_path, media):
    root = str(tmp_path / "cat")
    run_id = scored_catalog(root, n_files=1, media_dir=media, durations=(9.0,))
    res = build_report(root, run_id)
    thumbs = sorted(os.listdir(os.path.join(res.folder, "thumbs")))
    assert len(thumbs) == 4  # one per 4 s window every 2 s of a 9 s file
    for name in thumbs:
        img = np.asarray(Image.open(io.BytesIO(open(os.path.join(res.folder, "thumbs", name), "rb").read())))
        assert img.shape == (96, 96, 3)
        skin = np.array([224, 182, 150])  # the drawn face fills the middle of its box, wherever it moved
        assert np.abs(img[42:54, 20:26].reshape(-1, 3).mean(axis=0) - skin).max() < 25, name


def test_long_files_take_their_faces_at_key_frames(tmp_path, media):
    from emofuse.flows.report.data import load_report_data
    from emofuse.flows.report.thumbs import KEY_SLACK_S, SEEK_ABOVE_S, key_frames
    from emofuse.flows.report.build import item_thumbnails

    root = str(tmp_path / "cat")
    run_id = scored_catalog(root, n_files=1, media_dir=media, durations=(SEEK_ABOVE_S + 20.0,), fps=10)
    (item,) = load_report_data(Catalog(root), run_id).items
    kf = key_frames(item.paths[0])
    assert len(kf) >= 2 and len(item.windows) > 10  # x264's key frame every 250 frames: 0 s, 25 s
    shown, files = item_thumbnails(item)
    assert shown and len(files) == len({p.time for p, _ in shown})
    for pick, _ in shown:
        assert 0 <= pick.time - kf[kf <= pick.time + 1e-6].max() <= KEY_SLACK_S
        a, b = item.windows.iloc[pick.span][["start", "end"]]
        assert a <= pick.time <= b


def test_errors_name_the_run_and_what_to_do(tmp_path, media):
    root = str(tmp_path / "cat")
    run_id = scored_catalog(root, n_files=1, media_dir=media, durations=(3.0,))
    with pytest.raises(FileNotFoundError, match="no run 'nope' in .*/runs"):
        build_report(root, "nope")
    with pytest.raises(ValueError, match=r"no predictions with window '9s/9s'; present: \['4s/2s', 'clip'\]"):
        build_report(root, run_id, window="9s/9s")
    Catalog(root).run("tacfn-unscored").write_json("config.json", {"model": "tacfn", "classes": ["a"]})
    with pytest.raises(ValueError, match="score first: emofuse score-archive DIR --run tacfn-unscored"):
        build_report(root, "tacfn-unscored")


def test_the_command_writes_the_folder_and_replaces_stale_thumbnails(tmp_path, media, capsys):
    from emofuse.flows.cli import main

    root, out = str(tmp_path / "cat"), str(tmp_path / "out")
    run_id = scored_catalog(root, n_files=2, media_dir=media, durations=(3.0,))
    os.makedirs(os.path.join(out, "thumbs"))
    open(os.path.join(out, "thumbs", "old.jpg"), "wb").close()
    assert main(["report", "--run", run_id, "--catalog", root, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert f"open file://{out}/index.html" in printed and "2 files, 2 scored, 2 face thumbnails" in printed
    thumbs = os.listdir(os.path.join(out, "thumbs"))
    assert "old.jpg" not in thumbs and len(thumbs) == 2
    assert main(["report", "--run", "nope", "--catalog", root]) == 1
    assert "emofuse report: no run 'nope'" in capsys.readouterr().err
