"""fusion.train via fusion.training_run.train: learning on held-out speakers, resuming, checkpoint format.

Tiny models and few epochs on the synthetic catalog of ``synthetic_catalog`` (4 classes split
across audio and face, 6 speakers); one thread so a busy 2-core machine stays fast.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from emofuse.catalog.runs import RunFolder
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs, score as scoring, training_run
from emofuse.fusion.align import load_aligned
from emofuse.fusion.inference import Task
from emofuse.fusion.run_config import RunConfig
from emofuse.fusion.predict import load_run, predict
from emofuse.fusion.train import EpochReport
from synthetic_catalog import build_synthetic_catalog

TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
TINY_RCMA = {"channels": {"face": 32, "audio": 16, "text": 16}, "n_levels": 2, "regressor_hidden": 32}
PLAN = [{"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03", "Actor_06"], "val": ["Actor_04"],
         "test": ["Actor_05"]}]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("fusion-train") / "cat"
    build_synthetic_catalog(root, n_speakers=6, reps=3)
    return str(root)


def test_tacfn_beats_chance_on_held_out_speakers(catalog):
    reports: list[EpochReport] = []
    res = training_run.train(catalog, model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=12,
                             folds=PLAN, seed=0, threads=1, progress=reports.append)
    acc = res.metrics["accuracy"]["mean"]
    assert acc >= 0.6, res.markdown  # chance is 0.25; each modality alone reaches 0.5
    assert [r.epoch for r in reports] == list(range(1, len(reports) + 1)) and reports[0].fold == 0
    fold = res.folds[0]
    assert fold["test_speakers"] == ["Actor_05"] and fold["n_test_items"] == 12
    assert 1 <= fold["best_epoch"] <= fold["epochs_run"]
    assert res.throughput["loader_items_per_s"] > res.throughput["train_items_per_s"]


def test_rcma_classification_head_beats_chance(catalog):
    res = training_run.train(catalog, model="rcma", model_config=TINY_RCMA, align={"steps": 32, "hop": 16, "rate": 10.0},
                             epochs=12, lr=2e-3, folds=PLAN, seed=0, threads=1)
    cfg = RunConfig.load(RunFolder(res.run_dir))
    assert cfg.task == Task(n_classes=4)  # RAVDESS-like: classes only
    assert cfg.to_dict()["task"] == {"n_classes": 4, "dimensional": [], "monitor": "uar"}
    assert set(cfg.feature_sets) == {"face", "audio", "text"}  # text joins RCMA when present
    assert cfg.model_config["seq_len"] == 32
    assert res.metrics["accuracy"]["mean"] >= 0.5, res.markdown
    # reloaded from the run folder, the model is the trained one (modality order included)
    run = load_run(catalog, res.run_id)
    assert list(run.models[0].config.input_dims) == ["face", "audio", "text"]
    saved = RunFolder(res.run_dir).read_json(runs.fold_result_name(0))["test_predictions"]
    data = load_aligned(Catalog(catalog), run.data_config, saved["item_id"], classes=run.classes, dims=run.dims)
    probs = predict(run, data, fold=0)[[f"p_{c}" for c in run.classes]].to_numpy()
    np.testing.assert_allclose(probs, np.asarray(saved["probs"]), atol=1e-5)


def test_interrupted_training_resumes_where_it_stopped(catalog):
    kw = dict(model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=5, folds=PLAN, seed=3,
              threads=1, patience=50)
    full = training_run.train(catalog, **kw)

    def stop_after_two(r: EpochReport) -> None:
        seen.append(r.epoch)
        if r.epoch == 2:
            raise KeyboardInterrupt("stopped by the user")

    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        training_run.train(catalog, run_id="resumed", progress=stop_after_two, **kw)
    run_dir = os.path.join(catalog, "runs", "resumed")
    ckpts = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
    assert ckpts == ["fold-0.epoch-0002.safetensors", "fold-0.json"]  # safetensors + JSON, no pickle
    meta = json.load(open(os.path.join(run_dir, "checkpoints", "fold-0.json")))
    assert meta["epoch"] == 2 and len(meta["history"]) == 2
    assert any(k.startswith("optim.") for k in load_file(os.path.join(run_dir, "checkpoints", ckpts[0])))
    seen.clear()
    res = training_run.train(catalog, run_id="resumed", progress=lambda r: seen.append(r.epoch), **kw)
    assert seen == [3, 4, 5]
    assert res.folds[0]["resumed_from"] == 2 and res.folds[0]["epochs_run"] == 5
    assert not os.path.exists(os.path.join(run_dir, "checkpoints"))  # finished folds leave no checkpoints
    # model, optimizer, data order and RNG states were all restored: the same weights as without the stop
    a = runs.load_weights(RunFolder(full.run_dir), 0)
    b = runs.load_weights(RunFolder(res.run_dir), 0)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    # a finished run resumed again trains nothing more
    seen.clear()
    again = training_run.train(catalog, run_id="resumed", **kw)
    assert seen == [] and again.metrics == res.metrics


def test_rcma_regresses_valence_arousal_when_the_corpus_has_them(tmp_path):
    root = str(tmp_path / "cat")
    build_synthetic_catalog(root, n_speakers=6, reps=3, dimensional=True, categorical=False, with_text=False)
    res = training_run.train(root, model="rcma", model_config=TINY_RCMA, align={"steps": 32, "hop": 16, "rate": 10.0},
                             epochs=10, lr=3e-3, batch_size=12, folds=PLAN, seed=0, threads=1)
    cfg = RunConfig.load(RunFolder(res.run_dir))
    assert cfg.to_dict()["task"] == {"n_classes": 0, "dimensional": ["valence", "arousal"], "monitor": "ccc_mean"}
    assert cfg.model_config["n_classes"] is None and cfg.model_config["n_targets"] == 2
    assert res.metrics["ccc_mean"]["mean"] > 0.6, res.markdown  # 1 - CCC was optimised (about 0.95 here)
    assert "CCC valence" in res.markdown
    scored = scoring.score(root, res.run_id, threads=1)
    df = pd.read_parquet(scored.path)
    assert len(df) == scored.n_written == 72 and df["valence"].notna().all() and df["label"].isna().all()
    with pytest.raises(ValueError, match="labels"):
        training_run.train(root, model="tacfn", epochs=1, folds=PLAN, threads=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model, config, kw", [
    ("tacfn", TINY_TACFN, {"align": {"steps": 16}}),
    ("rcma", TINY_RCMA, {"align": {"steps": 32, "hop": 16, "rate": 10.0}, "lr": 2e-3}),
])
def test_trains_and_scores_on_cuda_with_amp(tmp_path, model, config, kw):
    """Training and scoring pick the GPU by themselves; training runs float16 AMP there, and the saved
    weights give the GPU's predictions on the CPU."""
    root = str(tmp_path / "cat")
    build_synthetic_catalog(root, n_speakers=6, reps=3)
    res = training_run.train(root, model=model, model_config=config, epochs=12, folds=PLAN, seed=0, **kw)
    cfg = RunConfig.load(RunFolder(res.run_dir))
    assert cfg.device.startswith("cuda") and cfg.amp is True
    assert res.metrics["accuracy"]["mean"] >= 0.5, res.markdown  # chance is 0.25
    assert res.throughput["train_items_per_s"] > 0
    saved = RunFolder(res.run_dir).read_json(runs.fold_result_name(0))["test_predictions"]
    cpu_run = load_run(root, res.run_id, device="cpu")
    data = load_aligned(Catalog(root), cpu_run.data_config, saved["item_id"], classes=cpu_run.classes,
                        dims=cpu_run.dims)
    cols = [f"p_{c}" for c in cpu_run.classes]
    on_cpu = predict(cpu_run, data, fold=0).set_index("item_id")[cols]
    np.testing.assert_allclose(on_cpu.loc[saved["item_id"]].to_numpy(), np.asarray(saved["probs"]),
                               atol=2e-2)  # the GPU evaluated in float16 autocast
    scored = scoring.score(root, res.run_id)
    df = pd.read_parquet(scored.path)
    assert scored.n_written == len(df) == 72
    gpu = df.set_index("item_id").loc[saved["item_id"], cols].to_numpy()
    np.testing.assert_allclose(gpu, on_cpu.loc[saved["item_id"]].to_numpy(), atol=5e-3)
