"""Attributions (fusion.explain, catalog.attributions, score_items(explain=True)): deterministic,
blind to absent modalities, pointing at the modality and the time that carry the label.

The synthetic catalog is written through the Catalog API: two classes (happy, sad) whose
only signal is a direction added to the face embeddings in the second half of each clip;
the eGeMAPS sequence is noise; two items have no face at all. Tiny runs are trained on it.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.schemas import PREDICTION_SCHEMA, TIME_ATTRIBUTION_COLUMNS, Status, prediction_schema
from emofuse.catalog.store import Catalog
from emofuse.fusion import training_run
from emofuse.fusion.torch_threads import torch_threads
from emofuse.fusion.align import load_aligned
from emofuse.fusion.dataset import FusionDataset
from emofuse.fusion.explain import explain, step_edges
from emofuse.fusion.inference import step_mask
from emofuse.fusion.models.common import masked_mean
from emofuse.fusion.predict import load_run
from emofuse.fusion.score import score_items
from tests.snapshots import file_snapshot

FACE_DIM = 16
KEYS = {"egemaps": "egemaps-v1-explain", "faces": "faces-v1-explain"}
PLAN = [{"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03"], "val": ["Actor_04"], "test": ["Actor_05"]},
        {"fold": 1, "train": ["Actor_03", "Actor_04", "Actor_05"], "val": ["Actor_01"], "test": ["Actor_02"]}]
WINDOWS = (1.0, 0.5)
#: The documentation page whose attribution query the last tests run (it was the README's).
REPORT_PAGE = os.path.join(os.path.dirname(__file__), "..", "docs", "guides", "report.md")


def build_catalog(root: str, *, dimensional: bool = False, seed: int = 0, n_speakers: int = 5, reps: int = 3,
                  no_face: int = 2, dur: float = 2.0) -> Catalog:
    """Face embeddings carry the class (or valence) in the second half of each clip; audio is noise."""
    rng = np.random.default_rng(seed)
    cat = Catalog(root).init()
    direction = rng.normal(size=FACE_DIM)
    direction /= np.linalg.norm(direction)
    media, eg, fa = [], [], []
    for s in range(1, n_speakers + 1):
        spk = f"Actor_{s:02d}"
        ident = rng.normal(size=FACE_DIM)
        ident /= np.linalg.norm(ident)
        for emotion, sign in (("happy", 1.0), ("sad", -1.0)):
            for r in range(reps):
                item = hashlib.sha1(f"{seed}-{spk}-{emotion}-{r}".encode()).hexdigest()[:16]
                row = {"item_id": item, "path": f"/synthetic/{spk}/{emotion}-{r}.mp4",
                       "relpath": f"{spk}/{emotion}-{r}.mp4", "corpus": "synthetic", "duration": dur,
                       "has_audio": True, "has_video": True, "speaker": spk}
                if dimensional:
                    row.update(valence=0.6 * sign, arousal=float(rng.uniform(-0.5, 0.5)))
                else:
                    row["emotion"] = emotion
                media.append(row)
                t_a = np.arange(int(dur * 100)) * 0.01
                eg.append(ExtractResult(item, row={"duration": dur}, sequence=Sequence(
                    t_a, {"values": rng.normal(size=(len(t_a), 25)).astype(np.float32)}), n_frames=len(t_a)))
                t_v = np.arange(int(dur * 5)) * 0.2
                if len(media) <= no_face:
                    fa.append(ExtractResult.failed(item, Status.NO_FACE, "no face in any frame"))
                    continue
                emb = ident + rng.normal(scale=0.1, size=(len(t_v), FACE_DIM))
                emb[t_v >= dur / 2] += 1.0 * sign * direction
                fa.append(ExtractResult(item, row={"embedding": emb.mean(0).astype(np.float32)},
                                        sequence=Sequence(t_v, {"values": emb.astype(np.float32),
                                                                "mask": np.ones(len(t_v), bool)}),
                                        n_frames=len(t_v)))
    cat.add_media(media)
    for name, results, dim in (("egemaps", eg, 25), ("faces", fa, FACE_DIM)):
        cat.register_feature_set(FeatureSetDescription(name=name, key=KEYS[name], version=1, sequence_dim=dim))
        cat.commit_task(KEYS[name], f"{name}-task", results)
    return cat


def _copy(src: str, dst) -> str:
    root = str(dst / "cat")
    shutil.copytree(src, root)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One catalog, a concat_mlp (occlusion) and a TACFN (attention) run trained on it; nothing scored."""
    root = str(tmp_path_factory.mktemp("explain") / "cat")
    cat = build_catalog(root)
    mlp = training_run.train(root, model="concat_mlp", model_config={"hidden": [16]}, align={"steps": 8}, epochs=10,
                             lr=1e-2, folds=PLAN, seed=0, threads=1)
    tacfn = training_run.train(root, model="tacfn", align={"steps": 8}, epochs=8, lr=5e-3, folds=PLAN[:1], seed=0,
                               threads=1, model_config={"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32,
                                               "attn_dim": 16})
    no_face = set(cat.status(KEYS["faces"]).query("status == 'no_face'")["item_id"])
    return {"root": root, "mlp": mlp.run_id, "tacfn": tacfn.run_id, "no_face": no_face}


@pytest.fixture(scope="module")
def explained(runs, tmp_path_factory) -> dict:
    """A copy of the catalog scored with explain (clips and 1 s windows) by both runs."""
    root = _copy(runs["root"], tmp_path_factory.mktemp("explained"))
    with torch_threads(1):
        for run_id in (runs["mlp"], runs["tacfn"]):
            res = score_items(root, run_id, windows=WINDOWS, explain=True, device="cpu")
            assert res.explained and res.n_written == 30
    return {"root": root, "cat": Catalog(root)}


def test_the_modality_and_the_time_that_carry_the_label_get_the_largest_attribution(runs, explained):
    cat = explained["cat"]
    for run_id in (runs["mlp"], runs["tacfn"]):
        p = cat.predictions(run_id=run_id)
        clips = p[(p.window == "clip") & ~p.item_id.isin(runs["no_face"])]
        assert (clips.attr_face > clips.attr_audio).mean() >= 0.8, clips[["attr_face", "attr_audio"]]
        assert clips.attr_face.mean() > 3 * max(clips.attr_audio.abs().mean(), 1e-3)
    # occlusion: masking the second half (where the face carries the class) costs the prediction most
    t = cat.time_attributions(runs["mlp"])
    t = t[(t.window == "clip") & ~t.item_id.isin(runs["no_face"])]
    assert set(t.kind) == {"occlusion"} and t.groupby("item_id").size().eq(8).all()
    late = t.start >= 1.0 - 1e-9
    assert t[late].weight.mean() > 0 > t[~late].weight.mean()
    per_item = t.assign(late=late).groupby(["item_id", "late"]).weight.mean().unstack()
    assert (per_item[True] > per_item[False]).mean() >= 0.8


def test_attention_rows_sum_to_one_over_face_steps_and_are_nan_without_a_face(runs, explained):
    cat = explained["cat"]
    t = cat.time_attributions(runs["tacfn"])
    assert list(t.columns) == TIME_ATTRIBUTION_COLUMNS and set(t.kind) == {"attention"}
    p = cat.predictions(run_id=runs["tacfn"])
    keys = ["item_id", "fold", "window", "window_start"]
    per_row = t.groupby(keys, dropna=False).agg(total=("weight", "sum"), nan=("weight", lambda w: w.isna().all()),
                                               target=("target", "first"), n=("weight", "size")).reset_index()
    assert len(per_row) == len(p)  # one profile per prediction row, joined on the row's keys
    joined = per_row.merge(p.rename(columns={"start": "window_start"}), on=keys, validate="one_to_one")
    assert (joined.target == joined.label).all() and (joined.n == 8).all()
    face = ~joined.item_id.isin(runs["no_face"])
    assert np.allclose(joined.total[face], 1.0, atol=1e-5) and joined.nan[~face].all()
    assert p[p.item_id.isin(runs["no_face"])].attr_face.isna().all()
    assert p[p.item_id.isin(runs["no_face"])].attr_audio.notna().all()
    windows = t[t.window == "1s/0.5s"]
    assert ((windows.start >= windows.window_start - 1e-9) & (windows.end <= windows.window_end + 1e-9)).all()


def test_two_runs_give_the_same_numbers_and_explain_leaves_predictions_alone(runs, explained, tmp_path):
    """Scoring with explain again (another copy) gives identical attributions; without explain the
    predictions are those of before (same values, no attr_ column)."""
    again = _copy(runs["root"], tmp_path / "again")
    plain = _copy(runs["root"], tmp_path / "plain")
    with torch_threads(1):
        score_items(again, runs["mlp"], windows=WINDOWS, explain=True, device="cpu")
        score_items(plain, runs["mlp"], windows=WINDOWS, device="cpu")
    key = ["window", "item_id", "start"]
    a = explained["cat"].predictions(run_id=runs["mlp"]).drop(columns="scored_at").sort_values(key, ignore_index=True)
    b = Catalog(again).predictions(run_id=runs["mlp"]).drop(columns="scored_at").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(explained["cat"].time_attributions(runs["mlp"]),
                                  Catalog(again).time_attributions(runs["mlp"]), check_exact=True)
    c = Catalog(plain).predictions(run_id=runs["mlp"]).drop(columns="scored_at").sort_values(key, ignore_index=True)
    schema = prediction_schema(["happy", "sad"])
    assert set(c.columns) == {"model", "run", *schema.names} - {"scored_at"}
    for part in glob.glob(os.path.join(plain, "predictions", "*", "*", "part-*.parquet")):
        stored = pd.read_parquet(part)  # every part has the one schema; unexplained: null attribution lists
        assert stored.columns.tolist() == PREDICTION_SCHEMA.names and stored["attribution"].isna().all()
    pd.testing.assert_frame_equal(a[c.columns], c, check_exact=True)
    assert not os.path.exists(os.path.join(plain, "attributions"))


def test_an_absent_modality_changes_nothing(runs, explained):
    """Items without a face: attr_face is NaN, and neither the content of the masked face steps nor
    removing the face from every other item changes their attributions by one bit."""
    cat = explained["cat"]
    run = load_run(cat.root, runs["mlp"], device="cpu")
    data = load_aligned(cat, run.data_config, classes=run.classes, dims=run.dims)
    ex = explain(run, data)
    gone = ex.attributions.item_id.isin(runs["no_face"]).to_numpy()
    assert gone.sum() == 2 and ex.attributions.attr_face[gone].isna().all()
    assert ex.attributions.attr_face[~gone].notna().all() and ex.attributions.attr_audio.notna().all()
    noisy = dataclasses.replace(data, x=dict(data.x))
    noisy.x["face"] = np.array(data.x["face"])  # an in-memory copy (load_aligned keeps rows on disk)
    masked_rows = ~data.mask["face"].any(axis=1)
    noisy.x["face"][masked_rows] = np.random.default_rng(1).normal(scale=1e3, size=noisy.x["face"][masked_rows].shape)
    ex_noisy = explain(run, noisy)
    pd.testing.assert_frame_equal(ex.attributions, ex_noisy.attributions, check_exact=True)
    pd.testing.assert_frame_equal(ex.time, ex_noisy.time, check_exact=True)
    faceless = dataclasses.replace(data, mask={**data.mask, "face": np.zeros_like(data.mask["face"])})
    ex_faceless = explain(run, faceless)
    assert ex_faceless.attributions.attr_face.isna().all()
    pd.testing.assert_frame_equal(ex.attributions[gone].reset_index(drop=True),
                                  ex_faceless.attributions[gone].reset_index(drop=True), check_exact=True)
    def time_of(e):
        return e.time[e.time.item_id.isin(runs["no_face"])].reset_index(drop=True)

    pd.testing.assert_frame_equal(time_of(ex), time_of(ex_faceless), check_exact=True)
    p = cat.predictions(run_id=runs["mlp"])  # what score_items stored is what explain() computes
    stored = p[p.window == "clip"].set_index("item_id").loc[ex.attributions.item_id, ["attr_face", "attr_audio"]]
    np.testing.assert_array_equal(stored.to_numpy(), ex.attributions[["attr_face", "attr_audio"]].to_numpy())


def test_explain_upgrades_rows_scored_without_it_in_place(runs, tmp_path):
    root = _copy(runs["root"], tmp_path)
    cat = Catalog(root)
    with torch_threads(1):
        first = score_items(root, runs["mlp"], windows=WINDOWS, device="cpu")
        parts = sorted(os.path.basename(p) for p in first.parts)
        second = score_items(root, runs["mlp"], windows=WINDOWS, explain=True, device="cpu")
        assert sorted(os.listdir(second.path)) == parts  # the same parts, rewritten with attributions
        assert second.n_written == 30 and second.statuses == {"ok": 30}
        p = cat.predictions(run_id=runs["mlp"])
        assert len(p) == len(p.drop_duplicates(["item_id", "window", "start"])) == 30 + 30 * 3
        assert p.attr_audio.notna().all()
        assert len(cat.time_attributions(runs["mlp"]).groupby(["item_id", "window", "window_start"])) == len(p)
        before = file_snapshot(root)
        third = score_items(root, runs["mlp"], windows=WINDOWS, explain=True, device="cpu")
    assert third.n_written == 0 and third.n_skipped == 30 and file_snapshot(root) == before


def test_readme_query_lists_the_windows_where_the_face_outweighed_the_voice(runs, explained):
    text = open(REPORT_PAGE).read()
    block = re.search(r"```python\n(# windows where the face outweighed the voice.*?)```", text, re.S)
    assert block, "the attribution query of docs/guides/report.md is missing"
    scope = {"root": explained["root"], "run_id": runs["tacfn"]}
    exec(block.group(1), scope)
    face = scope["face_won"]
    p = explained["cat"].predictions(run_id=runs["tacfn"])
    w = p[p.window != "clip"]
    expected = w[w.attr_face > w.attr_audio]
    assert len(face) == len(expected) > 0
    assert set(zip(face.item_id, face.start)) == set(zip(expected.item_id, expected.start))
    assert "relpath" in face and (face.attr_face > face.attr_audio).all()


def test_dimensional_runs_explain_valence_and_arousal_over_several_model_windows(tmp_path):
    root = str(tmp_path / "cat")
    build_catalog(root, dimensional=True, n_speakers=4, reps=2)
    plan = [{"fold": 0, "train": ["Actor_01", "Actor_02"], "val": ["Actor_03"], "test": ["Actor_04"]}]
    res = training_run.train(root, model="rcma", align={"steps": 5, "hop": 3, "rate": 5.0}, epochs=2, folds=plan, seed=0,
                             threads=1, model_config={"channels": {"face": 8, "audio": 8}, "n_levels": 1,
                                             "regressor_hidden": 8})
    cat = Catalog(root)
    run = load_run(root, res.run_id, device="cpu")
    assert run.task.dimensional == ("valence", "arousal") and not run.task.n_classes
    with torch_threads(1):
        score_items(root, res.run_id, explain=True, device="cpu")
    p = cat.predictions(run_id=res.run_id)
    attr = sorted(c for c in p if c.startswith("attr_"))
    assert attr == ["attr_audio_arousal", "attr_audio_valence", "attr_face_arousal", "attr_face_valence"]
    assert p.attr_face_valence.isna().sum() == 2 and p.attr_audio_valence.notna().all()
    t = cat.time_attributions(res.run_id)
    assert set(t.target) == {"valence", "arousal"} and set(t.kind) == {"occlusion"}
    # a 2 s clip is 10 bins at 5 Hz in 3 model windows (steps 0-4, 3-7, 5-9): one range per bin, and
    # each weight is the drop of the clip's mean prediction when the bin is masked in every window
    data = load_aligned(cat, run.data_config, classes=run.classes, dims=run.dims)
    item = data.items.item_id[data.items.item_id.isin(set(p.item_id)) & data.items.has_face].iloc[0]
    rows = np.flatnonzero(data.items.item_id.to_numpy()[data.row_item] == item)
    assert len(rows) == 3
    one = t[(t.item_id == item) & (t.target == "valence")].sort_values("start")
    assert np.allclose(one.start, np.arange(10) * 0.2) and np.allclose(one.end, np.arange(1, 11) * 0.2)
    ds = FusionDataset(data, rows, run.norms[0], device="cpu")
    x = ds.inputs(torch.arange(len(ds)))
    model = run.models[0]

    def valence(masks: dict[str, torch.Tensor]) -> float:
        with torch.no_grad():
            out = model(x, masks)
        return float(masked_mean(out["va"].float(), step_mask(masks))[:, 0].mean())

    full = valence(ds.mask)
    for k in (0, 4, 9):
        a, b = k * 0.2, (k + 1) * 0.2
        masks = {}
        for m, mk in ds.mask.items():
            centres = np.stack([(e[:-1] + e[1:]) / 2 for e in (step_edges(data, m, int(r)) for r in rows)])
            masks[m] = mk & ~torch.as_tensor((centres >= a) & (centres < b))
        assert one.weight.iloc[k] == pytest.approx(full - valence(masks), abs=1e-5)


def test_explain_is_an_option_of_both_score_commands():
    import argparse

    from emofuse.flows.params import COMMANDS

    for cmd, argv in (("score", ["--model", "tacfn"]), ("score-archive", ["/videos", "--model", "tacfn"])):
        parser = argparse.ArgumentParser()
        COMMANDS[cmd].add_options(parser)
        assert COMMANDS[cmd].kwargs(parser.parse_args(argv))["explain"] is False
        assert COMMANDS[cmd].kwargs(parser.parse_args([*argv, "--explain"]))["explain"] is True
