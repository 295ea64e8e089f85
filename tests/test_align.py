"""fusion.align and fusion.features: load_aligned and each of its stages (read, availability, labels, align)."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.sequences import LazySequence
from emofuse.fusion.align import align_items, load_aligned, segment_edges
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.features import (
    Features,
    availability,
    feature_widths,
    item_durations,
    label_items,
    read_features,
    select_items,
    select_media,
    warn_missing,
)
from synthetic_catalog import FACE_DIM, KEYS, build_synthetic_catalog, data_config


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    cat, media = build_synthetic_catalog(tmp_path_factory.mktemp("fusion-data") / "cat")
    return cat, media


# --------------------------------------------------------------------------- load_aligned
def test_window_mode_pads_short_clips_and_masks_the_padding(synth):
    cat, media = synth
    data = load_aligned(cat, data_config("window", steps=40, hop=20, rate=10.0, text=True))
    # clips are 2-3 s = 20-30 steps at 10 Hz: one window each, padding masked for every modality
    assert data.n_rows == data.n_items
    dur = data.items["duration"].to_numpy()
    n_valid = np.ceil(dur * 10 - 1e-6).astype(int)
    audio = data.mask["audio"]
    assert audio.shape == (data.n_items, 40)
    # every bin of the clip has audio, but a last partial bin may end before the last 10 ms frame
    assert np.all((audio.sum(1) == n_valid) | (audio.sum(1) == n_valid - 1))
    assert not audio[np.arange(40)[None, :] >= n_valid[:, None]].any()
    assert np.all(data.x["face"][~data.mask["face"]] == 0)
    # long windows: several per clip, together covering every step of the clip
    data = load_aligned(cat, data_config("window", steps=8, hop=5, rate=10.0))
    for i in range(3):
        rows = np.flatnonzero(data.row_item == i)
        assert len(rows) > 1
        assert data.row_start[rows[0]] == 0.0
        assert data.row_end[rows[-1]] == pytest.approx(data.items["duration"][i])


def test_fixed_mode_shapes_masks_and_missing_faces(synth):
    cat, media = synth
    data = load_aligned(cat, data_config(steps=16, steps_per_modality={"audio": 24}))
    assert data.x["face"].shape == (len(media), 16, FACE_DIM) and data.x["audio"].shape == (len(media), 24, 25)
    assert data.feature_sets == {"face": KEYS["faces"], "audio": KEYS["egemaps"]}
    assert data.classes == ["angry", "happy", "neutral", "sad"]  # a corpus without a class order: sorted
    no_face = ~data.items["has_face"].to_numpy()
    assert no_face.sum() == 2  # kept, face fully masked
    assert not data.mask["face"][no_face].any() and data.mask["face"][~no_face].mean() > 0.7
    assert data.mask["audio"].all()
    dropped = load_aligned(cat, data_config(missing="drop"))
    assert dropped.n_items == len(media) - 2 and dropped.dropped == {"missing_face": 2}
    # a subset of items, in the given order; per-clip vectors repeated over the steps
    ids = [m["item_id"] for m in media[5:9]][::-1]
    cfg = DataConfig(modalities=[ModalitySpec("face", "faces", source="clip"), ModalitySpec("audio", "egemaps")])
    sub = load_aligned(cat, cfg, ids)
    assert sub.items["item_id"].tolist() == ids and sub.dims["face"] == FACE_DIM
    assert np.allclose(sub.x["face"][:, 0], sub.x["face"][:, -1])


def test_long_items_read_block_by_block_align_like_whole_ones(synth):
    cat, media = synth
    ids = [m["item_id"] for m in media[:8]]
    for cfg, kw in ((data_config(text=True), {}), (data_config("window", steps=8, hop=4, rate=10.0), {}),
                    (data_config(), {"windows": (1.0, 0.5)})):
        whole = load_aligned(cat, cfg, ids, **kw)
        blocks = load_aligned(cat, cfg, ids, max_item_rows=9, **kw)  # every LLD and face sequence lazily
        assert whole.items.equals(blocks.items) and np.array_equal(whole.row_item, blocks.row_item)
        for m in whole.x:
            np.testing.assert_allclose(whole.x[m], blocks.x[m], atol=1e-5)
            assert (whole.mask[m] == blocks.mask[m]).all()
    # windows that start in a time range: the same rows as those of all windows
    one = ids[5:6]  # an item with a face
    every = load_aligned(cat, data_config(), one, windows=(1.0, 0.5))
    parts = [load_aligned(cat, data_config(), one, windows=(1.0, 0.5), time_range=(t0, t0 + 1.0), max_item_rows=50)
             for t0 in (0.0, 1.0, 2.0)]
    assert sum(p.n_rows for p in parts) == every.n_rows
    np.testing.assert_allclose(np.concatenate([p.x["audio"] for p in parts]), every.x["audio"], atol=1e-5)
    assert np.concatenate([p.items["start"] for p in parts]).tolist() == every.items["start"].tolist()
    with pytest.raises(ValueError):
        load_aligned(cat, data_config(), one, time_range=(0.0, 1.0))  # a range needs windows
    with pytest.raises(ValueError):
        load_aligned(cat, data_config(), one, windows=(1.0, 0.0))


# --------------------------------------------------------------------------- 1. read
def test_select_media_keeps_the_given_order_and_rejects_unknown_ids(synth):
    cat, media = synth
    all_media = cat.media()
    assert select_media(all_media, None) is all_media
    ids = [media[4]["item_id"], media[1]["item_id"], media[4]["item_id"]]
    assert select_media(all_media, ids)["item_id"].tolist() == ids[:2]  # duplicates once
    with pytest.raises(KeyError, match="not in the catalog"):
        select_media(all_media, ["nope"])


def test_read_features_reads_aux_arrays_frame_periods_and_clip_vectors(synth):
    cat, media = synth
    ids = [m["item_id"] for m in media]
    cfg = data_config(text=True).resolved(cat)
    feats = read_features(cat, cfg, ids)
    assert feats.feature_sets == {"face": KEYS["faces"], "audio": KEYS["egemaps"], "text": KEYS["text"]}
    assert len(feats.seqs["audio"]) == len(ids) and len(feats.seqs["face"]) == len(ids) - 2  # 2 without a face
    some = ids[5]
    assert set(feats.seqs["face"][some]) == {"times", "values", "mask"}  # bbox is not read
    assert set(feats.seqs["audio"][some]) == {"times", "values"}
    assert set(feats.seqs["text"][some]) == {"times", "values", "start", "end"}
    assert feats.hops["audio"] == pytest.approx(0.01) and feats.hops["face"] == pytest.approx(0.2)
    assert feats.hops["text"] == 0.0  # untimed segments
    # long items come back lazily, and still count towards the frame period
    lazy = read_features(cat, cfg, ids[:6], max_item_rows=100)
    assert all(isinstance(s, LazySequence) for s in lazy.seqs["audio"].values())
    assert not any(isinstance(s, LazySequence) for s in lazy.seqs["face"].values())
    assert lazy.hops["audio"] == pytest.approx(0.01)
    # a fixed hop wins; per-clip vectors are one row per item
    cfg = DataConfig([ModalitySpec("face", "faces", source="clip"), ModalitySpec("audio", "egemaps", hop=0.05)])
    feats = read_features(cat, cfg.resolved(cat), ids[:6])
    assert feats.hops == {"audio": 0.05}
    assert {v["values"].shape for v in feats.seqs["face"].values()} == {(1, FACE_DIM)}
    assert len(feats.seqs["face"]) == 4  # the first two items have no face


# --------------------------------------------------------------------------- 2. availability
def test_availability_and_which_items_stay():
    feats = Features({"audio": {"a": {}, "b": {}}, "face": {"a": {}, "c": {}}})
    avail = availability(feats, ["a", "b", "c", "d"])
    assert avail["audio"].tolist() == [True, True, False, False] and avail["face"].tolist() == [True, False, True, False]
    mods = [ModalitySpec("audio", "egemaps"), ModalitySpec("face", "faces")]
    keep, dropped = select_items(DataConfig(mods), avail)
    assert keep.tolist() == [True, True, True, False] and dropped == {"no_modality": 1}
    keep, dropped = select_items(DataConfig(mods, missing="drop"), avail)
    assert keep.tolist() == [True, False, False, False]
    assert dropped == {"missing_audio": 2, "missing_face": 2}  # "d" is counted as missing, not again as empty


def test_missing_modalities_are_logged_with_their_status(synth, caplog):
    cat, media = synth
    ids = [m["item_id"] for m in media]
    cfg = data_config().resolved(cat)
    avail = availability(read_features(cat, cfg, ids), ids)
    with caplog.at_level(logging.WARNING, logger="emofuse.fusion.features"):
        warn_missing(cat, cfg, ids, avail)
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "face" in msg and f"2 of {len(ids)}" in msg and "no_face=2" in msg and "kept with the modality masked" in msg


# --------------------------------------------------------------------------- 3. labels
def _frames(t_end: float, n: int = 5, width: int = 3) -> dict[str, np.ndarray]:
    return {"times": np.linspace(0.0, t_end, n), "values": np.zeros((n, width), np.float32)}


def test_feature_widths_must_agree_and_match_the_run():
    cfg = DataConfig([ModalitySpec("audio", "egemaps")])
    feats = Features({"audio": {"a": _frames(1.0), "b": _frames(1.0)}})
    assert feature_widths(cfg, feats, ["a", "b"]) == {"audio": 3}
    assert feature_widths(cfg, feats, ["a"], {"audio": 3}) == {"audio": 3}
    with pytest.raises(ValueError, match="does not match the run"):
        feature_widths(cfg, feats, ["a"], {"audio": 4})
    with pytest.raises(ValueError, match="disagree"):
        feature_widths(cfg, Features({"audio": {"a": _frames(1.0), "b": _frames(1.0, width=2)}}), ["a", "b"])
    with pytest.raises(ValueError, match="no item has features"):
        feature_widths(cfg, feats, ["c"])


def test_item_durations_fall_back_to_the_last_frame():
    feats = Features({"audio": {"a": _frames(2.0), "b": _frames(1.0)}, "face": {"b": _frames(3.0)},
                      "text": {"a": {"times": np.array([np.nan]), "values": np.zeros((1, 3))}}},
                     hops={"audio": 0.01, "face": 0.2, "text": 0.0})
    media = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "duration": [np.nan, 0.0, 5.0, None]})
    np.testing.assert_allclose(item_durations(media, feats), [2.01, 3.2, 5.0, 1.0])  # "d": no frames, 1 s
    np.testing.assert_allclose(item_durations(media[["item_id"]], feats), [2.01, 3.2, 1.0, 1.0])


def test_label_items_orders_classes_and_carries_targets():
    cfg = DataConfig([ModalitySpec("audio", "egemaps")])
    media = pd.DataFrame({"item_id": list("abcde"), "speaker": ["s1"] * 5,
                          "emotion": ["sad", "bored", None, "neutral", "sad"], "valence": [0.5, None, 0, 0, -1]})
    avail = {"audio": np.array([True, True, False, True, True])}
    items, classes = label_items(media, cfg, np.arange(5.0), avail)
    assert classes == ["bored", "neutral", "sad"]  # no corpus, so no class order: sorted (never RAVDESS's)
    assert items["label"].tolist() == [2, 0, -1, 1, 2]
    _, classes = label_items(media.assign(corpus="ravdess"), cfg, np.arange(5.0), avail)
    assert classes == ["neutral", "sad", "bored"]  # RAVDESS's order first, then the others sorted
    _, classes = label_items(media.assign(corpus="crema-d"), cfg, np.arange(5.0), avail)
    assert classes == ["neutral", "sad", "bored"]  # CREMA-D's own order (its registered recipe's)
    _, classes = label_items(media.assign(corpus="meld", emotion=["sadness", "joy", None, "neutral", "anger"]), cfg,
                             np.arange(5.0), avail)
    assert classes == ["neutral", "joy", "anger", "sadness"]  # MELD's own order, not RAVDESS's
    assert items["has_audio"].tolist() == avail["audio"].tolist() and items["duration"].tolist() == [0, 1, 2, 3, 4]
    assert np.isnan(items["valence"][1]) and items["arousal"].isna().all()  # a target the corpus lacks is NaN
    items, classes = label_items(media, cfg, np.arange(5.0), avail, classes=["sad", "neutral"])
    assert classes == ["sad", "neutral"] and items["label"].tolist() == [0, -1, -1, 1, 0]
    items, _ = label_items(media.drop(columns="emotion"), cfg, np.arange(5.0), avail)
    assert (items["label"] == -1).all()


# --------------------------------------------------------------------------- 4. align
def test_align_items_on_hand_made_frames():
    t = np.arange(20) * 0.1  # 10 Hz over 2 s, values = time
    feats = Features({"audio": {"a": {"times": t, "values": t[:, None].astype(np.float32)}},
                      "clip": {"a": {"values": np.array([[7.0, 8.0]], np.float32)}}}, hops={"audio": 0.1})
    items = pd.DataFrame({"item_id": ["a"], "duration": [2.0], "label": [0]})
    mods = [ModalitySpec("audio", "egemaps"), ModalitySpec("clip", "faces", source="clip")]
    cfg = DataConfig(mods, align=AlignConfig(steps=4))
    rows = align_items(cfg, items, feats, {"audio": 1, "clip": 2})
    np.testing.assert_allclose(rows.x["audio"][0, :, 0], [0.2, 0.7, 1.2, 1.7], atol=1e-6)  # bin means
    assert rows.x["clip"].shape == (1, 4, 2) and (rows.x["clip"][0] == [7.0, 8.0]).all() and rows.mask["clip"].all()
    assert rows.items[["start", "end"]].values.tolist() == [[0.0, 2.0]] and rows.row_item.tolist() == [0]
    # time windows: each aligned as a clip; a time range keeps the windows starting in it
    rows = align_items(cfg, items, feats, {"audio": 1, "clip": 2}, windows=(1.0, 0.5), time_range=(0.4, 2.0))
    assert rows.items["window"].tolist() == [1, 2] and rows.items["start"].tolist() == [0.5, 1.0]
    # bins of 0.25 s: overlap-weighted, e.g. [0.5, 0.75) = (0.5 * 0.1 + 0.6 * 0.1 + 0.7 * 0.05) / 0.25
    np.testing.assert_allclose(rows.x["audio"][:, :, 0], [[0.58, 0.82, 1.08, 1.32], [1.08, 1.32, 1.58, 1.82]],
                               atol=1e-6)
    np.testing.assert_allclose(rows.row_start, [0.5, 1.0])
    # RCMA windows of 8 bins every 4 at 5 Hz over the 2 s clip (10 bins): windows at bins 0 and 2
    cfg = DataConfig(mods, align=AlignConfig(mode="window", steps=8, hop=4, rate=5.0))
    rows = align_items(cfg, items, feats, {"audio": 1, "clip": 2})
    assert rows.row_item.tolist() == [0, 0] and rows.x["audio"].shape == (2, 8, 1)
    np.testing.assert_allclose(rows.row_start, [0.0, 0.4]) and np.testing.assert_allclose(rows.row_end, [1.6, 2.0])
    assert segment_edges(cfg, "audio", 1.0, 2.0).tolist() == pytest.approx([1.0, 1.2, 1.4, 1.6, 1.8, 2.0])
    # an item without frames of a modality: zero and masked
    rows = align_items(cfg, items.assign(item_id="b"), feats, {"audio": 1, "clip": 2})
    assert not rows.mask["audio"].any() and not np.asarray(rows.x["audio"]).any()
