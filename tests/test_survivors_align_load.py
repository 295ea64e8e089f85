"""``fusion/align.py``'s :func:`load_aligned` around the alignment: what it reports and passes on.

Survivors of a mutation run (docs/mutation.md): the timings and the log line, the error for
``time_range`` without windows, a run's widths and label order passed through, and float32/bool
arrays for an absent modality (whole clips and windows, where a zero-filled float64 block would
turn the whole batch float64).
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Catalog:
    """clip0 (sad) with audio and face, clip1 (happy) with audio only, clip2 without features (dropped)."""
    cat = Catalog(str(tmp_path_factory.mktemp("survivors-align-load") / "cat")).init()
    cat.add_media([{"item_id": f"clip{k}", "path": f"/v/clip{k}.mp4", "relpath": f"clip{k}.mp4", "corpus": "demo",
                    "speaker": "s1", "emotion": e, "duration": 2.0} for k, e in enumerate(["sad", "happy", "sad"])])
    t = np.arange(200) * 0.01
    cat.commit_task("egemaps-v1", "task-1", [
        ExtractResult(f"clip{k}", sequence=Sequence(t, {"values": np.full((200, 3), k, np.float32)}), n_frames=200)
        for k in range(2)])
    tf = np.arange(20) * 0.1
    cat.commit_task("faces-v1", "task-1", [
        ExtractResult("clip0", sequence=Sequence(tf, {"values": np.ones((20, 4), np.float32), "mask": tf < 1.0}),
                      n_frames=20)])
    return cat


AUDIO = ModalitySpec("audio", "egemaps-v1")
FACE = ModalitySpec("face", "faces-v1")


def test_timings_and_the_log_line(catalog, caplog):
    cfg = DataConfig([AUDIO], align=AlignConfig(steps=4))
    with caplog.at_level(logging.INFO, logger="emofuse.fusion.align"):
        data = load_aligned(catalog, cfg, ["clip0", "clip1"])
    tm = data.timings
    assert set(tm) == {"read_s", "align_s", "total_s", "items"} and tm["items"] == 2.0
    assert all(isinstance(tm[k], float) and 0.0 <= tm[k] < 60.0 for k in ("read_s", "align_s", "total_s"))
    assert tm["read_s"] <= tm["total_s"] and tm["align_s"] <= tm["total_s"]
    lines = [r.getMessage() for r in caplog.records if r.name == "emofuse.fusion.align"]
    assert len(lines) == 1
    assert lines[0].startswith("loaded 2 items (2 segments, 2 rows) of ") and "egemaps-v1" in lines[0]
    assert " s (read " in lines[0] and " s, align " in lines[0]
    assert lines[0].count(".") >= 3  # three timings with two decimals


def test_time_range_needs_windows(catalog):
    cfg = DataConfig([AUDIO], align=AlignConfig(steps=4))
    with pytest.raises(ValueError, match=r"^time_range needs windows=\(length_s, hop_s\)$"):
        load_aligned(catalog, cfg, time_range=(0.0, 1.0))


def test_a_runs_widths_and_classes_are_passed_through(catalog):
    cfg = DataConfig([AUDIO], align=AlignConfig(steps=4))
    with pytest.raises(ValueError, match="does not match the run's 5"):
        load_aligned(catalog, cfg, ["clip0", "clip1"], dims={"audio": 5})
    data = load_aligned(catalog, cfg, ["clip0", "clip1"], classes=["sad", "happy"])
    assert data.classes == ["sad", "happy"]
    assert data.items["label"].tolist() == [0, 1]  # clip0 sad, clip1 happy in the run's order


@pytest.mark.parametrize("windows", [None, (1.0, 0.5)])
def test_an_absent_modality_is_float32_zeros_and_a_bool_mask(catalog, windows):
    cfg = DataConfig([AUDIO, FACE], align=AlignConfig(steps=4), missing="mask")
    data = load_aligned(catalog, cfg, ["clip0", "clip1"], windows=windows)
    for m in ("audio", "face"):
        assert data.x[m].dtype == np.float32 and data.mask[m].dtype == np.bool_
    rows1 = data.items["item_id"].to_numpy()[data.row_item] == "clip1"
    assert not data.mask["face"][rows1].any() and not data.x["face"][rows1].any()
    assert data.mask["face"][~rows1].any()
