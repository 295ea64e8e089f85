"""What a run did not take: counts, reasons grouped with examples, and a non-zero exit when it took nothing.

A folder of ``clip000123.mp4`` files is not RAVDESS: the run must say that every file was
rejected, why, and how to take them (``--corpus archive``), and fail; "nothing to do" is only
for a source whose items are all done.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from emofuse.flows import cli


def _clips(demo_corpus: str, n: int) -> list[str]:
    return sorted(glob.glob(os.path.join(demo_corpus, "Actor_01", "*.mp4")))[:n]


@pytest.fixture
def my_videos(tmp_path, demo_corpus) -> str:
    """Three real videos named as a camera names them (not RAVDESS names)."""
    root = tmp_path / "my-videos"
    root.mkdir()
    for i, clip in enumerate(_clips(demo_corpus, 3)):
        shutil.copy(clip, root / f"clip{123 + i:06d}.mp4")
    return str(root)


def test_a_folder_that_is_not_ravdess_fails_with_the_fix(my_videos, tmp_path, capsys):
    catalog = str(tmp_path / "cat")
    code = cli.main(["extract", my_videos, "--catalog", catalog, "--feature-sets", "egemaps"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0, text
    assert "nothing to do" not in text
    assert "3 media files" in text and "took none" in text, text
    assert "is not a RAVDESS name" in text and "clip000123.mp4" in text, text
    assert "--corpus archive" in text, text


def test_the_real_command_exits_non_zero(my_videos, tmp_path):
    catalog = str(tmp_path / "cat")
    proc = subprocess.run([sys.executable, "-m", "emofuse.flows.cli", "extract", my_videos, "--catalog", catalog,
                           "--feature-sets", "egemaps"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "--corpus archive" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_an_empty_folder_is_not_nothing_to_do(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = cli.main(["extract", str(empty), "--catalog", str(tmp_path / "cat"), "--corpus", "archive",
                     "--feature-sets", "egemaps"])
    text = "".join(capsys.readouterr())
    assert code != 0 and "nothing to do" not in text and "no media files" in text, text


def test_a_mixed_folder_reports_counts_and_grouped_reasons(tmp_path, demo_corpus, capsys):
    from emofuse.catalog.layout import Layout
    from emofuse.catalog.summaries import read_extract_runs
    from emofuse.flows.extract import extract

    src = tmp_path / "src" / "Actor_01"
    src.mkdir(parents=True)
    good = _clips(demo_corpus, 2)
    for clip in good:
        shutil.copy(clip, src / os.path.basename(clip))
    for name in ("clip1.mp4", "clip2.mp4", "holiday.wav"):
        shutil.copy(good[0], src / name)
    shutil.copy(good[1], src / "01-01-03-01-01-01-02.mp4")  # names actor 02, lies in Actor_01
    catalog = str(tmp_path / "cat")
    record = extract(source=str(src.parent), catalog=catalog, feature_sets=["egemaps"], n_workers=1)
    assert (record["seen"], record["taken"]) == (6, 2)
    groups = record["rejections"]
    assert sorted(g["count"] for g in groups.values()) == [1, 3], groups
    (bad_name,) = [r for r in groups if "not a RAVDESS name" in r]
    assert "clip1.mp4" not in bad_name  # grouped: the reason names no single file
    assert sorted(os.path.basename(p) for p in groups[bad_name]["examples"]) == ["clip1.mp4", "clip2.mp4",
                                                                                  "holiday.wav"]
    (run,) = read_extract_runs(Layout.at(catalog))
    assert (run.seen, run.taken, run.rejections) == (6, 2, groups)
    # the rerun has nothing to do, and says what it did not take
    capsys.readouterr()
    assert cli.main(["extract", str(src.parent), "--catalog", catalog, "--feature-sets", "egemaps"]) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and "6 media files seen, 2 taken, 4 rejected" in out, out
    assert "not a RAVDESS name" in out and "clip1.mp4" in out, out
