"""fusion.targets through load_aligned: per-frame labels on the model's steps, and the windowed CCC loss.

Catalogs are made here through the Catalog API (media rows, committed feature sequences, frame
labels), so every expected step value is known by construction.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.dataset import FusionDataset, NormStats
from emofuse.fusion.inference import Task, batch_loss, frame_metrics
from emofuse.fusion.metrics import ccc, frame_regression_metrics
from emofuse.fusion.targets import read_frame_targets, stitch_steps
from emofuse.fusion.timeline import window_starts

KEY = "egemaps-v1-test"


def make_catalog(root, items: dict[str, dict]) -> Catalog:
    """items: item_id -> {duration, feature_end (s of 100 Hz audio frames), labels (DataFrame or None)}."""
    cat = Catalog(root).init()
    cat.add_media([{"item_id": i, "path": f"/v/{i}.mp4", "relpath": f"{i}.mp4", "corpus": "test", "speaker": "s1",
                    "duration": spec["duration"]} for i, spec in items.items()])
    cat.register_feature_set(FeatureSetDescription(name="egemaps", key=KEY, version=1, sequence_dim=3))
    results = []
    for i, spec in items.items():
        t = np.arange(int(round(spec["feature_end"] * 100))) / 100.0
        results.append(ExtractResult(i, sequence=Sequence(t, {"values": np.random.default_rng(0).normal(
            size=(len(t), 3)).astype(np.float32)}), n_frames=len(t)))
    cat.commit_task(KEY, "task-1", results)
    labels = [spec["labels"].assign(item_id=i) for i, spec in items.items() if spec.get("labels") is not None]
    if labels:
        cat.add_frame_labels(pd.concat(labels, ignore_index=True))
    return cat


def frames(times: np.ndarray, valence: np.ndarray, arousal: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"frame": np.arange(len(times), dtype=np.int32), "time": times,
                         "valence": valence.astype(np.float32), "arousal": arousal.astype(np.float32),
                         "expression": None})


def config(**align) -> DataConfig:
    return DataConfig([ModalitySpec("audio", "egemaps")], align=AlignConfig(mode="window", **align), targets="frame")


def test_labels_land_on_their_steps_and_unannotated_or_unfeatured_steps_are_masked(tmp_path):
    # 30 fps labels over 3.5 s of a 3 s clip (the last 0.5 s is past its end), valence = frame number;
    # frames 30-44 (steps 10-14 at 10 Hz) unannotated; audio features stop at 2.5 s (steps 25-29)
    k = np.arange(105)
    val, aro = k.astype(float), -k.astype(float)
    val[30:45] = aro[30:45] = np.nan
    cat = make_catalog(tmp_path / "cat", {
        "a": {"duration": 3.0, "feature_end": 2.5, "labels": frames(k / 30.0, val, aro)},
        "b": {"duration": 2.0, "feature_end": 2.0, "labels": None},           # no labels at all
    })
    data = load_aligned(cat, config(steps=8, hop=5, rate=10.0))
    assert data.frame_targets.shape == (data.n_rows, 8, 2) and data.frame_mask.shape == (data.n_rows, 8)
    assert data.items.set_index("item_id")["has_frame_targets"].to_dict() == {"a": True, "b": False}
    assert data.labelled().tolist() == [True, False] and data.has_dimensional
    # windows of 8 steps every 5 over 30 steps start at 0, 5, 10, 15, 20, 22: the features' own windows
    a_rows = np.flatnonzero(data.row_item == 0)
    assert data.row_step[a_rows].tolist() == window_starts(30, 8, 5) == [0, 5, 10, 15, 20, 22]
    item, step, y = stitch_steps(data.row_item, data.row_step, data.frame_targets, data.frame_mask)
    assert set(item.tolist()) == {0}
    expected = [j for j in range(30) if not 10 <= j < 15 and j < 25]
    assert step.tolist() == expected
    # step j = [j/10, (j+1)/10) holds frames 3j, 3j+1, 3j+2: their mean is 3j + 1
    np.testing.assert_allclose(y[:, 0], 3 * step + 1, atol=1e-4)
    np.testing.assert_allclose(y[:, 1], -(3 * step + 1), atol=1e-4)
    # every window holds the same targets as the clip's steps, and its mask implies a valid feature step
    for r in a_rows:
        for j in np.flatnonzero(data.frame_mask[r]):
            assert data.frame_targets[r, j, 0] == pytest.approx(3 * (data.row_step[r] + j) + 1, abs=1e-4)
    assert not (data.frame_mask & ~data.mask["audio"]).any()
    assert not data.frame_mask[data.row_item == 1].any()
    # steps of 0.2 s (6 frames): steps 5 and 6 (frames 30-41) have no annotated frame; step 7 (frames
    # 42-47) keeps its annotated part only (45-47)
    cfg5 = config(steps=8, hop=5, rate=5.0)
    d5 = load_aligned(cat, cfg5, ["a"])
    _, step5, y5 = stitch_steps(d5.row_item, d5.row_step, d5.frame_targets, d5.frame_mask)
    assert step5.tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12]  # step 12 = [2.4, 2.6) has audio up to 2.5 s
    assert float(y5[step5.tolist().index(7), 0]) == pytest.approx(46.0, abs=1e-4)
    # scoring-style loads skip the labels; per-clip runs never read them
    assert load_aligned(cat, cfg5, frame_targets=False).frame_targets is None
    assert load_aligned(cat, DataConfig([ModalitySpec("audio", "egemaps")])).frame_targets is None


def test_read_frame_targets_keeps_annotated_items_and_their_frame_period(tmp_path):
    t = np.arange(10) / 30.0
    cat = make_catalog(tmp_path / "cat", {
        "a": {"duration": 1.0, "feature_end": 1.0, "labels": frames(t, np.ones(10), np.zeros(10))},
        "b": {"duration": 1.0, "feature_end": 1.0, "labels": frames(t, np.full(10, np.nan), np.full(10, np.nan))},
    })
    got = read_frame_targets(cat, None)
    assert list(got) == ["a"] and got["a"]["hop"] == pytest.approx(1 / 30) and got["a"]["values"].shape == (10, 2)
    with pytest.raises(ValueError, match="no column 'dominance'"):
        read_frame_targets(cat, None, ("valence", "dominance"))


def test_windowed_ccc_loss_matches_a_direct_computation(tmp_path):
    # a 75 s clip at 10 Hz = 750 steps: windows of 300 every 200 start at 0, 200, 400 and 450 (the last
    # aligned to the end); a 12 s clip is one zero-padded window; a few frames unannotated
    rng = np.random.default_rng(1)
    t1, t2 = np.arange(2250) / 30.0, np.arange(360) / 30.0
    v1, a1 = np.sin(t1 / 3), np.cos(t1 / 5)
    v1[600:900] = np.nan
    cat = make_catalog(tmp_path / "cat", {
        "long": {"duration": 75.0, "feature_end": 75.0, "labels": frames(t1, v1, a1)},
        "short": {"duration": 12.0, "feature_end": 12.0, "labels": frames(t2, np.sin(t2), np.cos(t2))},
    })
    data = load_aligned(cat, config(steps=300, hop=200, rate=10.0))
    assert data.row_step.tolist() == [0, 200, 400, 450, 0]
    assert data.frame_mask[4, 120:].sum() == 0                       # the padding of the short clip
    pred = rng.normal(size=data.frame_targets.shape).astype(np.float32)
    task = Task(dimensional=("valence", "arousal"))
    norm = NormStats.compute(data, np.arange(data.n_rows))
    ds = FusionDataset(data, np.arange(data.n_rows), norm)
    b = ds.batch(torch.arange(data.n_rows))
    loss = batch_loss({"va": torch.from_numpy(pred)}, b.labels, b.targets, b.masks, task,
                      frame_targets=b.frame_targets, frame_mask=b.frame_mask)
    direct = [ccc(data.frame_targets[r, data.frame_mask[r], k], pred[r, data.frame_mask[r], k])
              for r in range(data.n_rows) for k in range(2)]
    assert float(loss) == pytest.approx(1.0 - np.mean(direct), abs=1e-5)
    # perfect predictions: loss 0; the padded / unannotated steps carry no weight
    perfect = np.where(data.frame_mask[..., None], data.frame_targets, 100.0).astype(np.float32)
    zero = batch_loss({"va": torch.from_numpy(perfect)}, b.labels, b.targets, b.masks, task,
                      frame_targets=b.frame_targets, frame_mask=b.frame_mask)
    assert float(zero) == pytest.approx(0.0, abs=1e-5)
    # ABAW metrics: the windows stitched onto each clip's steps, all valid steps together and per clip
    m = frame_metrics(ds, pred, ("valence", "arousal"))
    item, step, true = stitch_steps(data.row_item, data.row_step, data.frame_targets, data.frame_mask)
    _, _, p = stitch_steps(data.row_item, data.row_step, pred, data.frame_mask)
    assert m["n_frames"] == len(step) == 750 - 100 + 120 and m["n_videos"] == 2
    assert m["ccc_valence"] == pytest.approx(ccc(true[:, 0], p[:, 0]))
    per_clip = [ccc(true[item == i, 1], p[item == i, 1]) for i in (0, 1)]
    assert m["ccc_video_arousal"] == pytest.approx(np.mean(per_clip))
    # overlapping windows are averaged: step 450 is in the windows starting at 200, 400 and 450
    at = [(r, 450 - s) for r, s in enumerate(data.row_step[:4]) if 0 <= 450 - s < 300]
    assert p[(item == 0) & (step == 450), 0][0] == pytest.approx(np.mean([pred[r, j, 0] for r, j in at]), abs=1e-6)


def test_frame_regression_metrics_pool_all_frames_and_average_videos():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(40, 2))
    pred = true + rng.normal(scale=0.5, size=(40, 2))
    video = np.repeat(["a", "b"], 20)
    m = frame_regression_metrics(true, pred, video)
    assert m["ccc_arousal"] == pytest.approx(ccc(true[:, 1], pred[:, 1]))
    assert m["ccc_video_valence"] == pytest.approx(np.mean([ccc(true[:20, 0], pred[:20, 0]),
                                                            ccc(true[20:, 0], pred[20:, 0])]))
    assert m["ccc_mean"] == pytest.approx((m["ccc_valence"] + m["ccc_arousal"]) / 2)
    with pytest.raises(ValueError, match="video labels"):
        frame_regression_metrics(true, pred, video[:10])
