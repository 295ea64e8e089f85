"""fusion.data and fusion.folds: alignment, masks, missing modalities, train-only statistics, fold plans.

Also holds :func:`build_synthetic_catalog`, the small catalog the fusion tests share: real
catalog writes (``Catalog.add_media`` + ``Catalog.commit_task``) of generated features whose
class signal is split across modalities (audio carries an arousal-like bit, the face a
valence-like bit), so neither modality alone separates the four classes.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
import torch

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog
from emofuse.fusion.data import (
    AlignConfig,
    DataConfig,
    FusionDataset,
    ModalitySpec,
    NormStats,
    align_to_edges,
    fixed_edges,
    frame_bounds,
    load_aligned,
    loader_throughput,
    rate_edges,
    window_starts,
)
from emofuse.fusion.folds import check_plan, generic_plan, make_plan, ravdess_plan

#: emotion -> (arousal bit in audio, valence bit in face)
SIGNAL = {"neutral": (0, 1), "happy": (1, 1), "sad": (0, 0), "angry": (1, 0)}
KEYS = {"egemaps": "egemaps-v1-synthetic", "faces": "faces-v1-synthetic", "text": "text-v1-synthetic"}
FACE_DIM = 64


def build_synthetic_catalog(root, *, n_speakers: int = 6, reps: int = 3, seed: int = 0,
                            no_face: int = 2, with_text: bool = True, tweak: str | None = None,
                            tweak_scale: float = 1.0, dimensional: bool = False,
                            categorical: bool = True) -> tuple[Catalog, list[dict]]:
    """Write a synthetic catalog (media + egemaps/faces/text feature sets) and return it with its media rows.

    ``no_face`` items get the faces status ``no_face``; ``tweak``: an item id whose egemaps
    values are multiplied by ``tweak_scale`` (everything else identical for one seed).
    ``dimensional``: media rows get valence (the face bit) and arousal (the audio bit) in
    [-1, 1]; ``categorical=False`` leaves the emotion column empty.
    """
    rng = np.random.default_rng(seed)
    cat = Catalog(root).init()
    statements = rng.normal(size=(2, 32)).astype(np.float32)
    arousal_dir = rng.normal(size=25)
    valence_dir = rng.normal(size=FACE_DIM)
    valence_dir /= np.linalg.norm(valence_dir)
    media, eg, fa, tx = [], [], [], []
    n = 0
    for s in range(1, n_speakers + 1):
        spk = f"Actor_{s:02d}"
        ident = rng.normal(size=FACE_DIM)
        ident /= np.linalg.norm(ident)
        voice = rng.normal(scale=0.3, size=25)
        for emotion, (ar, va) in SIGNAL.items():
            for r in range(reps):
                n += 1
                item = hashlib.sha1(f"{seed}-{spk}-{emotion}-{r}".encode()).hexdigest()[:16]
                dur = float(rng.uniform(2.0, 3.0))
                st = int(rng.integers(2))
                media.append({"item_id": item, "path": f"/synthetic/{spk}/{emotion}-{r}.mp4",
                              "relpath": f"{spk}/{emotion}-{r}.mp4", "size": 1000 + n, "corpus": "synthetic",
                              "duration": dur, "has_audio": True, "has_video": True, "speaker": spk,
                              "emotion": emotion if categorical else None, "statement": st + 1})
                if dimensional:
                    media[-1]["valence"] = float(np.clip(1.2 * va - 0.6 + rng.normal(scale=0.15), -1, 1))
                    media[-1]["arousal"] = float(np.clip(1.2 * ar - 0.6 + rng.normal(scale=0.15), -1, 1))
                # audio: 25 LLD at 100 Hz, the arousal bit shifts a fixed direction
                t_a = np.arange(int(dur * 100)) * 0.01
                lld = rng.normal(size=(len(t_a), 25)) + voice + (1.6 * ar - 0.8) * arousal_dir
                if item == tweak:
                    lld = lld * tweak_scale
                eg.append(ExtractResult(item, row={"loudness_sma3_amean": float(lld[:, 0].mean()),
                                                   "F0semitoneFrom27.5Hz_sma3nz_amean": float(lld[:, 1].mean()),
                                                   "duration": dur},
                                        sequence=Sequence(t_a, {"values": lld.astype(np.float32)}),
                                        n_frames=len(t_a)))
                # face: identity + valence direction, 5 fps, some frames without a face
                t_v = np.arange(int(dur * 5)) * 0.2
                if n <= no_face:
                    fa.append(ExtractResult.failed(item, Status.NO_FACE, "no face in any frame"))
                else:
                    emb = ident + (0.6 * va - 0.3) * valence_dir + rng.normal(scale=0.08, size=(len(t_v), FACE_DIM))
                    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
                    mask = rng.random(len(t_v)) > 0.15
                    mask[0] = True
                    emb[~mask] = 0.0
                    fa.append(ExtractResult(item, row={"embedding": emb[mask].mean(0).astype(np.float32),
                                                       "face_ratio": float(mask.mean())},
                                            sequence=Sequence(t_v, {"values": emb.astype(np.float32), "mask": mask,
                                                                    "bbox": np.zeros((len(t_v), 4), np.float32)}),
                                            n_frames=len(t_v)))
                # text: one untimed segment, the statement (no emotion signal)
                nan = np.array([np.nan])
                tx.append(ExtractResult(item, row={"embedding": statements[st]},
                                        sequence=Sequence(nan, {"values": statements[st][None], "start": nan,
                                                                "end": nan.copy()}), n_frames=1))
    cat.add_media(media)
    sets = [("egemaps", eg, 25), ("faces", fa, FACE_DIM)] + ([("text", tx, 32)] if with_text else [])
    for name, results, dim in sets:
        cat.register_feature_set({"name": name, "key": KEYS[name], "version": 1, "sequence_dim": dim,
                                  "row_columns": None})
        half = len(results) // 2  # two tasks: two shards per feature set
        cat.commit_task(KEYS[name], f"{name}-task-a", results[:half])
        cat.commit_task(KEYS[name], f"{name}-task-b", results[half:])
    return cat, media


def _cfg(mode: str = "fixed", missing: str = "mask", text: bool = False, **align) -> DataConfig:
    mods = [ModalitySpec("face", "faces"), ModalitySpec("audio", "egemaps")]
    if text:
        mods.append(ModalitySpec("text", "text"))
    return DataConfig(modalities=mods, align=AlignConfig(mode=mode, **align), missing=missing)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    cat, media = build_synthetic_catalog(tmp_path_factory.mktemp("fusion-data") / "cat")
    return cat, media


# --------------------------------------------------------------------------- alignment
def test_pool_and_interp_on_hand_made_sequences():
    # 100 Hz ramp over 1 s into 10 bins: pooling and interpolation both give the bin means
    t = np.arange(100) * 0.01
    s, e = frame_bounds(t, hop=0.01, clip_end=1.0)
    edges = fixed_edges(1.0, 10)
    for method in ("pool", "interp"):
        out, mask = align_to_edges(t[:, None], s, e, edges, method=method)
        assert mask.all()
        np.testing.assert_allclose(out[:, 0], 0.045 + 0.1 * np.arange(10), atol=1e-6)
    # up-sampling two frames (0 and 10, 0.5 s each) to 4 bins
    s, e = frame_bounds(np.array([0.0, 0.5]), hop=0.5, clip_end=1.0)
    v = np.array([[0.0], [10.0]])
    pooled, _ = align_to_edges(v, s, e, fixed_edges(1.0, 4), method="pool")
    interp, _ = align_to_edges(v, s, e, fixed_edges(1.0, 4), method="interp")
    np.testing.assert_allclose(pooled[:, 0], [0, 0, 10, 10])
    np.testing.assert_allclose(interp[:, 0], [0, 2.5, 7.5, 10])
    # a bin straddling two frames is their overlap-weighted mean
    out, _ = align_to_edges(v, s, e, np.array([0.25, 0.75]), method="pool")
    assert out[0, 0] == pytest.approx(5.0)
    # masked frames (no face) leave their bins masked and zero, and never leak into others
    out, mask = align_to_edges(v, s, e, fixed_edges(1.0, 4), method="pool", valid=np.array([True, False]))
    assert mask.tolist() == [True, True, False, False] and np.all(out[2:] == 0)
    # NaN frames are treated as missing
    out, mask = align_to_edges(np.array([[np.nan], [4.0]]), s, e, fixed_edges(1.0, 2))
    assert mask.tolist() == [False, True] and out[1, 0] == 4.0


def test_text_segments_cover_their_time_and_untimed_cover_the_clip():
    starts, ends = np.array([0.6, 1.5]), np.array([0.9, 1.8])
    s, e = frame_bounds(starts, hop=0.0, clip_end=2.0, starts=starts, ends=ends)
    out, mask = align_to_edges(np.array([[1.0], [3.0]]), s, e, fixed_edges(2.0, 8))
    assert mask.tolist() == [False, False, True, True, False, False, True, True]  # steps without speech masked
    assert out[2, 0] == 1.0 and out[6, 0] == 3.0 and out[0, 0] == 0.0
    nan = np.array([np.nan])
    s, e = frame_bounds(nan, hop=0.0, clip_end=2.5, starts=nan, ends=nan)
    out, mask = align_to_edges(np.ones((1, 3)), s, e, fixed_edges(2.5, 5))
    assert mask.all() and np.all(out == 1.0)


def test_windows_cover_the_whole_clip():
    for n_steps in (1, 7, 32, 33, 100, 101, 250):
        starts = window_starts(n_steps, 32, 16)
        covered = np.zeros(max(n_steps, 32), bool)
        for s in starts:
            covered[s:s + 32] = True
        assert covered[:n_steps].all(), n_steps
        assert starts[-1] + 32 == max(n_steps, 32)  # the last window ends at the clip end
        assert starts == sorted(set(starts))
    assert len(rate_edges(2.34, 10.0)) - 1 == 24


def test_window_mode_pads_short_clips_and_masks_the_padding(synth):
    cat, media = synth
    data = load_aligned(cat, _cfg("window", steps=40, hop=20, rate=10.0, text=True))
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
    data = load_aligned(cat, _cfg("window", steps=8, hop=5, rate=10.0))
    for i in range(3):
        rows = np.flatnonzero(data.row_item == i)
        assert len(rows) > 1
        assert data.row_start[rows[0]] == 0.0
        assert data.row_end[rows[-1]] == pytest.approx(data.items["duration"][i])


def test_fixed_mode_shapes_masks_and_missing_faces(synth):
    cat, media = synth
    data = load_aligned(cat, _cfg(steps=16, steps_per_modality={"audio": 24}))
    assert data.x["face"].shape == (len(media), 16, FACE_DIM) and data.x["audio"].shape == (len(media), 24, 25)
    assert data.feature_sets == {"face": KEYS["faces"], "audio": KEYS["egemaps"]}
    assert data.classes == ["neutral", "happy", "sad", "angry"]  # RAVDESS order
    no_face = ~data.items["has_face"].to_numpy()
    assert no_face.sum() == 2  # kept, face fully masked
    assert not data.mask["face"][no_face].any() and data.mask["face"][~no_face].mean() > 0.7
    assert data.mask["audio"].all()
    dropped = load_aligned(cat, _cfg(missing="drop"))
    assert dropped.n_items == len(media) - 2 and dropped.dropped == {"missing_face": 2}
    # a subset of items, in the given order; per-clip vectors repeated over the steps
    ids = [m["item_id"] for m in media[5:9]][::-1]
    cfg = DataConfig(modalities=[ModalitySpec("face", "faces", source="clip"), ModalitySpec("audio", "egemaps")])
    sub = load_aligned(cat, cfg, ids)
    assert sub.items["item_id"].tolist() == ids and sub.dims["face"] == FACE_DIM
    assert np.allclose(sub.x["face"][:, 0], sub.x["face"][:, -1])


# --------------------------------------------------------------------------- normalisation
def test_norm_stats_use_the_training_split_only(tmp_path):
    cat_a, media = build_synthetic_catalog(tmp_path / "a", n_speakers=4, reps=2, with_text=False)
    test_item = next(m["item_id"] for m in media if m["speaker"] == "Actor_04")
    cat_b, _ = build_synthetic_catalog(tmp_path / "b", n_speakers=4, reps=2, with_text=False,
                                       tweak=test_item, tweak_scale=50.0)
    stats = []
    for cat in (cat_a, cat_b):
        data = load_aligned(cat, _cfg())
        train = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02"]))
        everything = np.arange(data.n_rows)
        stats.append((NormStats.compute(data, train), NormStats.compute(data, everything)))
    for m in ("audio", "face"):
        assert np.array_equal(stats[0][0].mean[m], stats[1][0].mean[m])
        assert np.array_equal(stats[0][0].std[m], stats[1][0].std[m])
    assert not np.array_equal(stats[0][1].std["audio"], stats[1][1].std["audio"])  # the change is visible
    # applied: training rows standardised on valid steps, invalid steps stay zero
    data = load_aligned(cat_a, _cfg())
    train = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02", "Actor_03"]))
    norm = NormStats.compute(data, train)
    ds = FusionDataset(data, train, norm)
    z = ds.x["audio"][ds.mask["audio"]]
    assert torch.allclose(z.mean(0), torch.zeros(25), atol=1e-4) and torch.allclose(z.std(0), torch.ones(25), atol=1e-2)
    assert torch.all(ds.x["face"][~ds.mask["face"]] == 0)
    back = NormStats.from_tensors(norm.to_tensors("fold-0/"), "fold-0/")
    assert np.array_equal(back.mean["face"], norm.mean["face"])


def test_batches_are_gathers_and_fast(synth):
    cat, media = synth
    t0 = time.perf_counter()
    data = load_aligned(cat, _cfg(text=True))
    load_s = time.perf_counter() - t0
    rows = np.arange(data.n_rows)
    ds = FusionDataset(data, rows, NormStats.compute(data, rows))
    b = ds.batch(torch.tensor([3, 1]))
    assert b.inputs["face"].shape == (2, 32, FACE_DIM) and b.masks["text"].dtype == torch.bool
    assert b.labels.tolist() == [int(data.items["label"][3]), int(data.items["label"][1])]
    assert sum(len(x.rows) for x in ds.batches(5, shuffle=True, generator=torch.Generator().manual_seed(0))) == len(ds)
    ips = loader_throughput(ds, 16)
    print(f"catalog load+align: {len(media) / load_s:.0f} items/s; batch gathering: {ips:.0f} items/s")
    assert ips > 2000


# --------------------------------------------------------------------------- folds
def _assert_disjoint(plan):
    check_plan(plan)
    for f in plan:
        tr, va, te = set(f["train"]), set(f["val"]), set(f["test"])
        assert not (tr & va or tr & te or va & te)


def test_ravdess_fold_plan_is_the_official_one_with_validation():
    actors = [f"Actor_{i:02d}" for i in range(1, 25)]
    plan = make_plan(actors)
    assert plan == ravdess_plan()
    _assert_disjoint(plan)
    assert [f["test"] for f in plan] == [[f"Actor_{a:02d}" for a in range(4 * k + 1, 4 * k + 5)] for k in range(5)]
    for f in plan:
        assert {"Actor_21", "Actor_22", "Actor_23", "Actor_24"} <= set(f["train"])
        assert len(f["train"]) == 16 and len(f["val"]) == 4
        assert set(f["train"]) | set(f["val"]) | set(f["test"]) == set(actors)


def test_generic_fold_plan_is_speaker_independent():
    speakers = [f"spk{i}" for i in range(7)]
    plan = make_plan(speakers, k=3, seed=1)
    _assert_disjoint(plan)
    tested = [s for f in plan for s in f["test"]]
    assert sorted(tested) == sorted(speakers)  # every speaker tested exactly once
    assert len(make_plan(speakers[:4], k=10)) == 4  # k capped at the number of speakers
    for f in generic_plan(speakers[:3], k=3):
        assert len(f["train"]) == len(f["val"]) == len(f["test"]) == 1
    assert make_plan(speakers, seed=3) == make_plan(speakers, seed=3)
    with pytest.raises(ValueError):
        make_plan(["a", "b"])
    with pytest.raises(ValueError):
        check_plan([{"fold": 0, "train": ["a", "b"], "val": ["b"], "test": ["c"]}])
