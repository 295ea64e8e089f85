"""The training protocol's promises, checked through the public entry point and the run folder.

* Early stopping restores the best-on-validation weights: a run forced to stop early (a large
  learning rate, patience 2) saves the weights of its best epoch, not its last: reloaded, they
  reproduce the saved test predictions and the validation scores of the best epoch.
* Early stopping is judged on validation, never on test: two runs that differ only in their
  test speaker have identical training and validation histories and the same best epoch.
* No item is fed to training that is a test (or validation) item of the fold: the items of the
  shuffled training batches are recorded (a spy on ``FusionDataset``, the one way rows reach
  the model) and compared with the plan's speakers and the fold's saved test predictions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.runs import RunFolder
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs
from emofuse.fusion.align import load_aligned
from emofuse.fusion.dataset import FusionDataset
from emofuse.fusion.metrics import unweighted_average_recall
from emofuse.fusion.predict import load_run, predict
from emofuse.fusion.training_run import train
from synthetic_catalog import build_synthetic_catalog

TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
#: A large learning rate makes validation scores jump about, so patience 2 stops training early.
NOISY = dict(model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=25, lr=0.03, patience=2, seed=0,
             threads=1)


def _plan(test: str) -> list[dict]:
    return [{"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03"], "val": ["Actor_04"], "test": [test]}]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("survivors-train") / "cat"
    build_synthetic_catalog(root, n_speakers=6, reps=3)
    return str(root)


@pytest.fixture(scope="module")
def noisy_runs(catalog) -> dict[str, dict]:
    """Two forced-to-stop-early runs that differ only in the test speaker: run id and fold-0 result each."""
    out = {}
    for test in ("Actor_05", "Actor_06"):
        res = train(catalog, folds=_plan(test), **NOISY)
        out[test] = {"run_id": res.run_id, "fold": RunFolder(res.run_dir).read_json(runs.fold_result_name(0))}
    return out


def _items(catalog: str, speakers: list[str]) -> list[str]:
    media = Catalog(catalog).media()
    return sorted(media.loc[media["speaker"].isin(speakers), "item_id"])


def test_early_stopping_restores_the_best_weights_not_the_last(catalog, noisy_runs):
    run_id, fold = noisy_runs["Actor_05"]["run_id"], noisy_runs["Actor_05"]["fold"]
    assert fold["stopped_early"] and fold["best_epoch"] < fold["epochs_run"] < NOISY["epochs"], fold["history"]
    run = load_run(catalog, run_id)
    saved = fold["test_predictions"]
    assert sorted(saved["item_id"]) == _items(catalog, ["Actor_05"])
    data = load_aligned(Catalog(catalog), run.data_config, saved["item_id"], classes=run.classes, dims=run.dims)
    probs = predict(run, data, fold=0)[[f"p_{c}" for c in run.classes]].to_numpy()
    np.testing.assert_allclose(probs, np.asarray(saved["probs"]), atol=1e-5)
    # the saved weights are the best epoch's: they score validation as that epoch did
    val_ids = _items(catalog, ["Actor_04"])
    data = load_aligned(Catalog(catalog), run.data_config, val_ids, classes=run.classes, dims=run.dims)
    pred = predict(run, data, fold=0)
    truth = Catalog(catalog).media().set_index("item_id").loc[pred["item_id"], "emotion"].to_numpy()
    best = fold["history"][fold["best_epoch"] - 1]
    assert unweighted_average_recall(pd.Categorical(truth, run.classes).codes,
                                     pd.Categorical(pred["label"], run.classes).codes) == pytest.approx(best["val_uar"])
    assert fold["val"]["uar"] == pytest.approx(best["val_uar"])
    assert any(h["val_uar"] != best["val_uar"] or h["val_loss"] != best["val_loss"]
               for h in fold["history"][fold["best_epoch"]:])  # the last epochs did differ from the best


def test_early_stopping_never_looks_at_the_test_split(noisy_runs):
    a, b = noisy_runs["Actor_05"]["fold"], noisy_runs["Actor_06"]["fold"]
    timing = {"seconds", "train_items_per_s"}
    assert a["test_predictions"]["item_id"] != b["test_predictions"]["item_id"]
    assert [{k: v for k, v in h.items() if k not in timing} for h in a["history"]] == \
           [{k: v for k, v in h.items() if k not in timing} for h in b["history"]]
    assert (a["best_epoch"], a["epochs_run"], a["stopped_early"]) == (b["best_epoch"], b["epochs_run"], b["stopped_early"])
    assert a["val"] == b["val"]


@pytest.fixture
def fed(monkeypatch) -> list[set[str]]:
    """Item ids of the rows of every shuffled (training) batch, one set per epoch trained."""
    epochs: list[set[str]] = [set()]
    init, batches = FusionDataset.__init__, FusionDataset.batches

    def spy_init(self, data, rows, *args, **kwargs):
        init(self, data, rows, *args, **kwargs)
        self.spy_ids = data.items["item_id"].to_numpy()[data.row_item[np.asarray(rows, np.int64)]]

    def spy_batches(self, *args, shuffle=False, **kwargs):
        for b in batches(self, *args, shuffle=shuffle, **kwargs):
            if shuffle:
                epochs[-1].update(self.spy_ids[b.rows.cpu().numpy()].tolist())
            yield b

    monkeypatch.setattr(FusionDataset, "__init__", spy_init)
    monkeypatch.setattr(FusionDataset, "batches", spy_batches)
    return epochs


@pytest.mark.parametrize("folds", [None, _plan("Actor_05")], ids=["default-plan", "given-plan"])
def test_only_the_training_speakers_items_are_fed_to_training(catalog, fed, folds):
    reports = []

    def next_epoch(r) -> None:
        reports.append(r)
        fed.append(set())

    res = train(catalog, model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=1, folds=folds, seed=0,
                threads=1, progress=next_epoch)
    run = RunFolder(res.run_dir)
    plan = run.read_json("config.json")["folds"]
    assert len(plan) == len(reports) and len(plan) >= (1 if folds else 3)
    for f, r, seen in zip(plan, reports, fed):
        assert r.fold == f["fold"] and f.get("by", "speaker") == "speaker"
        test_ids = run.read_json(runs.fold_result_name(f["fold"]))["test_predictions"]["item_id"]
        assert sorted(test_ids) == _items(catalog, f["test"])
        assert not seen & set(test_ids), f"fold {f['fold']}: test items were trained on"
        assert not seen & set(_items(catalog, f["val"])), f"fold {f['fold']}: validation items were trained on"
        assert sorted(seen) == _items(catalog, f["train"])  # and every training item was
