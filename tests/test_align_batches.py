"""fusion.align.load_aligned batch by batch: a corpus read and aligned a few items at a time is the
same data, bit for bit, as one read of everything (frame periods, widths, availability and classes
are found over every item first), and no read asks for more than a batch."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.features import FeatureReader
from synthetic_catalog import build_synthetic_catalog, data_config

KEY = "egemaps-v1-test"


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.items, b.items)
    for f in ("row_item", "row_start", "row_end", "row_step"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert (a.classes, a.dims, a.dropped, a.feature_sets) == (b.classes, b.dims, b.dropped, b.feature_sets)
    assert list(a.x) == list(b.x)
    for m in a.x:
        np.testing.assert_array_equal(np.asarray(a.x[m]), np.asarray(b.x[m]), err_msg=m)
        np.testing.assert_array_equal(a.mask[m], b.mask[m], err_msg=m)
    for f in ("frame_targets", "frame_mask"):
        if getattr(a, f) is None:
            assert getattr(b, f) is None
        else:
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """The number of items each FeatureReader.read asks for."""
    sizes: list[int] = []
    real = FeatureReader.read

    def read(self, item_ids, hops=None):
        ids = list(item_ids)
        sizes.append(len(ids))
        return real(self, ids, hops)

    monkeypatch.setattr(FeatureReader, "read", read)
    return sizes


@pytest.mark.parametrize("cfg, kw", [
    (data_config(text=True), {}),
    (data_config("window", missing="drop", steps=6, hop=3, rate=4.0), {}),
    (data_config(text=True), {"windows": (0.75, 0.5)}),
], ids=["clips", "rcma-windows-drop", "time-windows"])
def test_batches_of_items_align_as_one_read(tmp_path_factory, reads, cfg, kw):
    cat, media = build_synthetic_catalog(tmp_path_factory.mktemp("batches") / "cat", n_speakers=3, reps=2)
    whole = load_aligned(cat, cfg, batch_items=10_000, **kw)
    assert max(reads) == len(media)
    reads.clear()
    batched = load_aligned(cat, cfg, batch_items=4, **kw)
    assert max(reads) <= 4 and len(reads) >= 2 * (len(media) // 4)  # the survey's pass, then the aligning one
    _same(whole, batched)


def test_frame_periods_and_targets_are_the_corpus_not_the_batch(tmp_path, reads):
    """Items at 100 Hz and at 33 Hz: the frame period is the corpus's median (10 ms) in every batch,
    also one holding only 33-Hz items; per-frame targets come along unchanged."""
    cat = Catalog(tmp_path / "cat").init()
    ids = [f"i{k}" for k in range(9)]
    cat.add_media([{"item_id": i, "path": f"/v/{i}.mp4", "relpath": f"{i}.mp4", "corpus": "test",
                    "speaker": "s1", "duration": 1.0 + 0.07 * k} for k, i in enumerate(ids)])
    cat.register_feature_set(FeatureSetDescription(name="egemaps", key=KEY, version=1, sequence_dim=3))
    rng = np.random.default_rng(0)
    results = []
    for k, i in enumerate(ids):
        t = np.arange(0.0, 1.0 + 0.07 * k, 0.01 if k < 5 else 0.03)
        results.append(ExtractResult(i, sequence=Sequence(t, {"values": rng.normal(size=(len(t), 3)).astype(
            np.float32)}), n_frames=len(t)))
    cat.commit_task(KEY, "task-1", results)
    ft = np.arange(30) / 30.0
    cat.add_frame_labels(pd.concat([pd.DataFrame({"item_id": i, "frame": np.arange(30, dtype=np.int32), "time": ft,
                                                  "valence": rng.normal(size=30).astype(np.float32),
                                                  "arousal": rng.normal(size=30).astype(np.float32),
                                                  "expression": None}) for i in ids[::2]], ignore_index=True))
    cfg = DataConfig([ModalitySpec("audio", "egemaps")], align=AlignConfig(mode="window", steps=8, hop=4, rate=10.0),
                     targets="frame")
    whole = load_aligned(cat, cfg, batch_items=100)
    batched = load_aligned(cat, cfg, batch_items=4)  # the last batch: i8 alone, 33 Hz
    assert whole.frame_targets is not None and whole.frame_mask.any()
    _same(whole, batched)
    fixed = DataConfig([ModalitySpec("audio", "egemaps")], align=AlignConfig(steps=7))
    _same(load_aligned(cat, fixed, batch_items=100), load_aligned(cat, fixed, batch_items=4))


def test_batches_follow_the_shards_and_come_back_in_item_order(tmp_path, monkeypatch):
    """Tasks that interleave the item ids (task t holds items k with k % 3 == t), so batches in the
    media table's order would open every shard: batches are taken shard by shard (each shard opened
    once per pass) and the rows come back in the items' order, each the same as the item aligned alone."""
    from emofuse.catalog import sequences

    cat = Catalog(tmp_path / "cat").init()
    ids = [f"a{k:02d}" for k in range(12)]
    cat.add_media([{"item_id": i, "path": f"/v/{i}.mp4", "relpath": f"{i}.mp4", "corpus": "test", "speaker": "s1",
                    "emotion": ["sad", "happy"][k % 2], "duration": 1.0 + 0.1 * k} for k, i in enumerate(ids)])
    cat.register_feature_set(FeatureSetDescription(name="egemaps", key=KEY, version=1, sequence_dim=3))
    rng = np.random.default_rng(1)
    for t in range(3):
        results = []
        for k in range(t, 12, 3):
            times = np.arange(0.0, 1.0 + 0.1 * k, 0.01)
            results.append(ExtractResult(ids[k], sequence=Sequence(times, {"values": rng.normal(
                size=(len(times), 3)).astype(np.float32)}), n_frames=len(times)))
        cat.commit_task(KEY, f"task-{t}", results)
    opened: list[str] = []
    real_open = sequences.open_shard

    def open_shard(layout, feature_set, shard):
        opened.append(shard)
        return real_open(layout, feature_set, shard)

    monkeypatch.setattr(sequences, "open_shard", open_shard)
    cfg = DataConfig([ModalitySpec("audio", "egemaps")], align=AlignConfig(mode="window", steps=8, hop=4, rate=10.0))
    data = load_aligned(cat, cfg, batch_items=4)
    # once for the arrays every shard holds, once in the survey's pass, once in the aligning one
    assert sorted(opened) == sorted(3 * ["task-0", "task-1", "task-2"])
    assert data.items["item_id"].tolist() == ids and data.classes == ["happy", "sad"]
    assert (np.diff(data.row_item) >= 0).all() and (data.row_step[data.row_item == 11] > 0).any()
    for k, i in enumerate(ids):
        alone = load_aligned(cat, cfg, [i])
        rows = np.flatnonzero(data.row_item == k)
        np.testing.assert_array_equal(np.asarray(data.x["audio"])[rows], np.asarray(alone.x["audio"]))
        np.testing.assert_array_equal(data.mask["audio"][rows], alone.mask["audio"])
        np.testing.assert_array_equal(data.row_step[rows], alone.row_step)
        np.testing.assert_array_equal(data.row_start[rows], alone.row_start)
        assert int(data.items["label"][k]) == ["happy", "sad"].index(["sad", "happy"][k % 2])
    assert list(data.items.columns) == list(alone.items.columns)
    # per-frame targets come back in order too; time windows (many per item) keep their order
    ft = np.arange(40) / 20.0
    cat.add_frame_labels(pd.concat([pd.DataFrame({"item_id": i, "frame": np.arange(40, dtype=np.int32), "time": ft,
                                                  "valence": rng.normal(size=40).astype(np.float32),
                                                  "arousal": rng.normal(size=40).astype(np.float32),
                                                  "expression": None}) for i in ids], ignore_index=True))
    framed = dataclasses.replace(cfg, targets="frame")
    reads = []
    real_read = FeatureReader.read
    monkeypatch.setattr(FeatureReader, "read", lambda self, ii, hops=None: reads.append(len(list(ii))) or
                        real_read(self, ii, hops))
    data = load_aligned(cat, framed, batch_items=1)
    assert max(reads) == 1
    fixed = DataConfig([ModalitySpec("audio", "egemaps")], align=AlignConfig(steps=4))
    windowed = load_aligned(cat, fixed, batch_items=4, windows=(0.3, 0.1))
    for k, i in enumerate(ids):
        rows = np.flatnonzero(data.row_item == k)
        alone = load_aligned(cat, framed, [i])
        np.testing.assert_array_equal(data.frame_targets[rows], alone.frame_targets)
        np.testing.assert_array_equal(data.frame_mask[rows], alone.frame_mask)
        segs = np.flatnonzero(windowed.items["item_id"].to_numpy() == i)
        alone = load_aligned(cat, fixed, [i], windows=(0.3, 0.1))
        assert windowed.items["window"].to_numpy()[segs].tolist() == alone.items["window"].tolist()
        rows = np.flatnonzero(np.isin(windowed.row_item, segs))
        np.testing.assert_array_equal(np.asarray(windowed.x["audio"])[rows], np.asarray(alone.x["audio"]))


def test_no_item_left_is_an_empty_load_of_the_run_s_shape(tmp_path):
    """Scoring items that all lack a modality (``missing="drop"``) with a run's widths and classes:
    no row, every array of the run's shape, the items table's columns there."""
    cat, media = build_synthetic_catalog(tmp_path / "cat", n_speakers=2, reps=1, no_face=2)
    cfg = data_config("window", missing="drop", steps=6, hop=3, rate=4.0)
    full = load_aligned(cat, cfg)
    faceless = [m["item_id"] for m in media if m["item_id"] not in set(full.items["item_id"])]
    assert len(faceless) == 2
    empty = load_aligned(cat, cfg, faceless, dims=full.dims, classes=full.classes)
    assert empty.n_rows == 0 and len(empty.items) == 0 and empty.dropped == {"missing_face": 2}
    assert {m: x.shape for m, x in empty.x.items()} == {m: (0, *x.shape[1:]) for m, x in full.x.items()}
    assert {m: v.shape for m, v in empty.mask.items()} == {m: (0, v.shape[1]) for m, v in full.mask.items()}
    assert list(empty.items.columns) == list(full.items.columns) and empty.classes == full.classes
