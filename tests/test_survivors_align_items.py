"""What mutation testing of ``align_items`` / ``_window_arg`` / ``segment_edges`` found unchecked (issue 21).

Small catalogs of 2 s clips with 100 Hz features, as in ``fusion/align.py``'s docstring; each test
takes well under a second. See docs/mutation.md (fusion/align.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import _window_arg, align_items, load_aligned, segment_edges
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec


@pytest.fixture
def cat(tmp_path):
    cat = Catalog(str(tmp_path)).init()
    cat.add_media([{"item_id": f"clip{k}", "path": f"/v/clip{k}.mp4", "relpath": f"clip{k}.mp4", "corpus": "demo",
                    "speaker": "s1", "emotion": e, "duration": 2.0} for k, e in enumerate(["sad", "happy"])])
    t = np.arange(200) * 0.01
    cat.commit_task("egemaps-v1", "task-1", [
        ExtractResult(f"clip{k}", sequence=Sequence(t, {"values": np.full((200, 3), k, np.float32)}), n_frames=200)
        for k in range(2)])
    return cat


def test_window_arg_refuses_a_zero_or_negative_length_or_hop_with_a_message():
    assert _window_arg((1, 0.5)) == (1.0, 0.5)
    for bad in [(0, 1), (1, 0), (-1, 1), (1, -1)]:
        with pytest.raises(ValueError, match=r"windows=\(length_s, hop_s\) must be positive"):
            _window_arg(bad)


def test_frame_targets_with_windows_are_refused_with_a_message():
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")])
    with pytest.raises(ValueError, match="^per-frame targets are aligned on whole clips, not with windows"):
        align_items(cfg, None, None, {}, windows=(1.0, 1.0), targets={})


def test_segment_edges_of_a_window_use_the_modalitys_own_steps():
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=2, steps_per_modality={"audio": 4}))
    assert segment_edges(cfg, "audio", 2.0, 3.0).tolist() == [2.0, 2.25, 2.5, 2.75, 3.0]
    assert segment_edges(cfg, "face", 2.0, 3.0).tolist() == [2.0, 2.5, 3.0]


def test_fixed_windows_rows_items_and_metadata(cat):
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=2, steps_per_modality={"audio": 4}))
    w = load_aligned(cat, cfg, ["clip1"], windows=(1.0, 0.5))
    assert w.x["audio"].shape == (3, 4, 3)  # the modality's steps inside each time window
    assert w.row_start.tolist() == [0.0, 0.5, 1.0] and w.row_end.tolist() == [1.0, 1.5, 2.0]
    assert w.row_step.tolist() == [0, 0, 0]
    assert w.items["window"].dtype == np.int64
    assert "index" not in w.items.columns and w.items.index.tolist() == [0, 1, 2]
    assert w.windows == (1.0, 0.5)
    assert w.config is not None and w.config.align == cfg.align
    whole = load_aligned(cat, cfg, ["clip1"])
    assert whole.row_step.tolist() == [0] and whole.row_end.tolist() == [2.0] and whole.windows is None


def test_one_window_per_clip(cat):
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=4))
    w = load_aligned(cat, cfg, ["clip0", "clip1"], windows=(2.0, 1.0))
    assert w.items[["item_id", "window", "start", "end"]].values.tolist() == [["clip0", 0, 0.0, 2.0],
                                                                          ["clip1", 0, 0.0, 2.0]]
    assert w.x["audio"][:, :, 0].tolist() == [[0.0] * 4, [1.0] * 4]


def test_no_window_in_the_time_range_gives_empty_typed_arrays(cat):
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=2, steps_per_modality={"audio": 4}))
    w = load_aligned(cat, cfg, ["clip1"], windows=(1.0, 0.5), time_range=(5.0, 6.0))
    assert len(w.items) == 0 and list(w.items.columns) == list(load_aligned(cat, cfg, ["clip1"], windows=(1.0, 0.5)).items.columns)
    assert w.x["audio"].shape == (0, 4, 3) and w.x["audio"].dtype == np.float32
    assert w.mask["audio"].shape == (0, 4) and w.mask["audio"].dtype == bool
    assert w.row_item.dtype == np.int64 and w.row_step.dtype == np.int64 and len(w.row_item) == 0


def test_padded_rcma_windows_stay_float32(cat):
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(mode="window", steps=80, hop=40, rate=25.0))
    w = load_aligned(cat, cfg, ["clip1"])  # 2 s at 25 Hz = 50 bins < 80: one zero-padded window
    assert w.x["audio"].shape == (1, 80, 3) and w.x["audio"].dtype == np.float32
    assert w.mask["audio"][0].tolist() == [True] * 50 + [False] * 30
