"""What mutation testing of ``fusion/align.py`` found unchecked (issue 21): per-clip vectors, empty windows,
``interp`` inside time windows, durations taken from the features, per-frame targets on fixed timelines.

Small catalogs built through the Catalog API, every expected value worked out by hand; each test
takes well under a second. See docs/mutation.md (fusion/align.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec

VEC = {"clip0": [1.0, 2.0, 3.0], "clip1": [-4.0, 0.5, 8.0]}


def _media(cat: Catalog, duration: float | None = 2.0) -> None:
    cat.add_media([{"item_id": i, "path": f"/v/{i}.mp4", "relpath": f"{i}.mp4", "corpus": "demo", "speaker": "s1",
                    "emotion": e, "duration": duration} for i, e in zip(VEC, ["sad", "happy"])])


@pytest.fixture
def clip_cat(tmp_path) -> Catalog:
    """Two 2 s clips with a per-clip embedding each (no sequences)."""
    cat = Catalog(str(tmp_path / "cat")).init()
    _media(cat)
    cat.commit_task("faceclip-v1", "task-1", [ExtractResult(i, row={"embedding": np.asarray(v, np.float32)})
                                              for i, v in VEC.items()])
    return cat


def test_per_clip_vectors_are_repeated_over_the_steps_as_float32_with_a_bool_mask(clip_cat):
    cfg = DataConfig([ModalitySpec("face", "faceclip-v1", source="clip")], align=AlignConfig(steps=3))
    data = load_aligned(clip_cat, cfg)
    assert data.x["face"].shape == (2, 3, 3) and data.x["face"].dtype == np.float32
    np.testing.assert_array_equal(data.x["face"], [[VEC["clip0"]] * 3, [VEC["clip1"]] * 3])
    assert data.mask["face"].dtype == bool and data.mask["face"].tolist() == [[True] * 3] * 2


def test_per_clip_vectors_in_time_windows_are_repeated_in_every_window(clip_cat):
    cfg = DataConfig([ModalitySpec("face", "faceclip-v1", source="clip")], align=AlignConfig(steps=4))
    w = load_aligned(clip_cat, cfg, windows=(1.0, 0.5))  # windows at 0, 0.5, 1.0 of each 2 s clip
    assert w.items[["item_id", "window"]].values.tolist() == [[i, k] for i in VEC for k in range(3)]
    assert w.x["face"].shape == (6, 4, 3) and w.x["face"].dtype == np.float32
    np.testing.assert_array_equal(w.x["face"], [[VEC[i]] * 4 for i in VEC for _ in range(3)])
    assert w.mask["face"].dtype == bool and w.mask["face"].all() and w.mask["face"].shape == (6, 4)


@pytest.fixture
def early_face(tmp_path) -> Catalog:
    """A 2 s clip whose face frames (every 0.1 s, value = 10 * time) stop at 0.5 s."""
    cat = Catalog(str(tmp_path / "cat")).init()
    _media(cat)
    t = np.arange(5) * 0.1
    cat.commit_task("faces-v1", "task-1", [ExtractResult("clip0", sequence=Sequence(
        t, {"values": np.stack([10 * t, np.ones(5)], axis=1).astype(np.float32)}), n_frames=5)])
    return cat


def test_a_window_past_the_last_frame_is_masked_with_a_bool_mask(early_face):
    cfg = DataConfig([ModalitySpec("face", "faces-v1")], align=AlignConfig(steps=4))
    w = load_aligned(early_face, cfg, ["clip0"], windows=(1.0, 0.5))
    # window [0, 1): steps of 0.25 s, frames in the first two; [0.5, 1.5) and [1, 2): no frame at all
    assert w.mask["face"].dtype == bool
    assert w.mask["face"].tolist() == [[True, True, False, False], [False] * 4, [False] * 4]
    assert w.x["face"].dtype == np.float32
    # pooled: frames [0, .1), [.1, .2), [.2, .25) -> (0 * .1 + 1 * .1 + 2 * .05) / .25 = 0.8; then 2.5 * .. = 3.2
    np.testing.assert_allclose(w.x["face"][0, :2, 0], [0.8, 3.2], atol=1e-5)
    assert not w.x["face"][1:].any()


def test_interp_inside_a_time_window_interpolates(tmp_path):
    """Two frames [0, 1) = 0 and [1, 2) = 10 (centres 0.5, 1.5): interpolated at the step centres 0.25,
    0.75, 1.25, 1.75 they give 0, 2.5, 7.5, 10 (clamped at the ends); pooled would be 0, 0, 10, 10."""
    cat = Catalog(str(tmp_path / "cat")).init()
    _media(cat)
    cat.commit_task("faces-v1", "task-1", [ExtractResult("clip0", sequence=Sequence(
        np.array([0.0, 1.0]), {"values": np.array([[0.0], [10.0]], np.float32)}), n_frames=2)])
    cfg = DataConfig([ModalitySpec("face", "faces-v1", method="interp")], align=AlignConfig(steps=4))
    w = load_aligned(cat, cfg, ["clip0"], windows=(2.0, 1.0))
    assert w.items["start"].tolist() == [0.0] and w.items["end"].tolist() == [2.0]
    np.testing.assert_allclose(w.x["face"][0, :, 0], [0.0, 2.5, 7.5, 10.0], atol=1e-5)
    np.testing.assert_allclose(load_aligned(cat, cfg, ["clip0"]).x["face"][0, :, 0], [0.0, 2.5, 7.5, 10.0], atol=1e-5)


def test_durations_come_from_the_features_when_the_media_table_has_none(tmp_path):
    """No duration in the media table: the last frame's end (1.49 s + the 10 ms frame period)."""
    cat = Catalog(str(tmp_path / "cat")).init()
    _media(cat, duration=None)
    t = np.arange(150) * 0.01
    cat.commit_task("egemaps-v1", "task-1", [ExtractResult(i, sequence=Sequence(
        t, {"values": np.ones((150, 2), np.float32)}), n_frames=150) for i in VEC])
    data = load_aligned(cat, DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=3)))
    np.testing.assert_allclose(data.items["duration"], [1.5, 1.5], atol=1e-9)
    np.testing.assert_allclose(data.row_end, [1.5, 1.5], atol=1e-9)


def test_frame_targets_on_a_fixed_timeline(tmp_path):
    """``mode="fixed"`` with per-frame labels: one row of steps per clip. clip0 has 30 fps labels over its 2 s
    (valence = frame number, arousal = minus it): step j = [0.5 j, 0.5 j + 0.5) holds frames 15 j .. 15 j + 14,
    mean 15 j + 7. clip1 has no labels: zero targets (float32 like the rest), all masked."""
    cat = Catalog(str(tmp_path / "cat")).init()
    _media(cat)
    t = np.arange(200) * 0.01
    cat.commit_task("egemaps-v1", "task-1", [ExtractResult(i, sequence=Sequence(
        t, {"values": np.ones((200, 2), np.float32)}), n_frames=200) for i in VEC])
    k = np.arange(60)
    cat.add_frame_labels(pd.DataFrame({"item_id": "clip0", "frame": k.astype(np.int32), "time": k / 30.0,
                                       "valence": k.astype(np.float32), "arousal": -k.astype(np.float32),
                                       "expression": None}))
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=4), targets="frame")
    data = load_aligned(cat, cfg)
    assert data.frame_targets.shape == (2, 4, 2) and data.frame_targets.dtype == np.float32
    assert data.frame_mask.dtype == bool and data.frame_mask.tolist() == [[True] * 4, [False] * 4]
    np.testing.assert_allclose(data.frame_targets[0, :, 0], [7.0, 22.0, 37.0, 52.0], atol=1e-4)
    np.testing.assert_allclose(data.frame_targets[0, :, 1], [-7.0, -22.0, -37.0, -52.0], atol=1e-4)
    assert not data.frame_targets[1].any()
    assert data.items["has_frame_targets"].tolist() == [True, False] and data.row_step.tolist() == [0, 0]
