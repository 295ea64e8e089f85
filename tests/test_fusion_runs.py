"""fusion.runs, fusion.run_config and fusion.score: the run folder, its typed config, integrity checks,
bit-identical scoring, idempotent writes."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.catalog.runs import RunFolder, RunIntegrityError
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs, score as scoring, training_run
from emofuse.fusion.align import load_aligned
from emofuse.fusion.inference import Task
from emofuse.fusion.run_config import RunConfig, latest_run
from emofuse.fusion.predict import load_run, predict
from synthetic_catalog import build_synthetic_catalog
from test_fusion_train import TINY_TACFN

PLAN = [
    {"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03"], "val": ["Actor_04"], "test": ["Actor_05"]},
    {"fold": 1, "train": ["Actor_02", "Actor_03", "Actor_04"], "val": ["Actor_05"], "test": ["Actor_06"]},
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = str(tmp_path_factory.mktemp("fusion-runs") / "cat")
    _, media = build_synthetic_catalog(root, n_speakers=6, reps=2)
    res = training_run.train(root, model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=4, folds=PLAN,
                             seed=1, threads=1)
    return {"root": root, "res": res, "media": media}


def _copy_run(trained: dict, tmp_path) -> tuple[str, str]:
    """A copy of the catalog (so tampering stays local to a test) and the run id."""
    root = str(tmp_path / "cat")
    shutil.copytree(trained["root"], root)
    return root, trained["res"].run_id


def test_run_folder_holds_everything_the_design_asks_for(trained):
    res = trained["res"]
    files = set(os.listdir(res.run_dir))
    assert {"config.json", "manifest.json", "metrics.json", "norm_stats.safetensors", "fold-0.safetensors",
            "fold-1.safetensors", "confusion_matrix.png", "learning_curves.png", "folds"} <= files
    assert not [f for f in files if f.endswith((".pt", ".pth", ".pkl", ".bin"))]
    cfg = json.load(open(os.path.join(res.run_dir, "config.json")))
    assert cfg["model"] == "tacfn" and cfg["registry_model"] == "tacfn" and cfg["seed"] == 1
    assert cfg["feature_sets"] == {"face": "faces-v1-synthetic", "audio": "egemaps-v1-synthetic"}
    assert cfg["folds"] == [{**f, "by": "speaker"} for f in PLAN] and cfg["completed_folds"] == [0, 1] and cfg["n_parameters"] == res.n_parameters > 0
    assert cfg["data"]["align"]["steps"] == 16 and cfg["device"] == "cpu"
    assert "torch" in cfg["provenance"]["packages"]
    metrics = json.load(open(os.path.join(res.run_dir, "metrics.json")))
    for name in ("accuracy", "uar", "macro_f1"):
        assert set(metrics["summary"][name]) == {"mean", "std", "n"} and metrics["summary"][name]["n"] == 2
        assert all(0.0 <= f["test"][name] <= 1.0 for f in metrics["folds"])
    assert np.asarray(metrics["confusion_matrix"]).sum() == 16  # 2 test speakers x 8 items
    manifest = json.load(open(os.path.join(res.run_dir, "manifest.json")))["files"]
    for name, entry in manifest.items():
        data = open(os.path.join(res.run_dir, name), "rb").read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
    for png in ("confusion_matrix.png", "learning_curves.png"):
        assert open(os.path.join(res.run_dir, png), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "| fold | test speakers |" in res.markdown and "mean ± std" in res.markdown
    assert f"{res.n_parameters:,}" in res.markdown


def test_reloaded_run_scores_bit_identically_on_cpu(trained, tmp_path):
    root, run_id = trained["root"], trained["res"].run_id
    cat = Catalog(root)
    outs = []
    for _ in range(2):
        run = load_run(root, run_id, device="cpu")
        data = load_aligned(cat, run.data_config, classes=run.classes, dims=run.dims)
        outs.append(predict(run, data))
    cols = [c for c in outs[0] if c.startswith("p_")]
    assert len(cols) == 4 and np.array_equal(outs[0][cols].to_numpy(), outs[1][cols].to_numpy())
    np.testing.assert_allclose(outs[0][cols].sum(axis=1), 1.0, rtol=1e-5)
    # the ensemble is the mean of the folds, and matches what ends up in the catalog, bit for bit
    per_fold = [predict(run, data, fold=f)[cols].to_numpy(np.float64) for f in (0, 1)]
    np.testing.assert_allclose(outs[0][cols].to_numpy(), (per_fold[0] + per_fold[1]) / 2, rtol=1e-6)
    copy, _ = _copy_run(trained, tmp_path)
    scoring.score(copy, run_id, threads=1)
    written = Catalog(copy).predictions().set_index("item_id").loc[outs[0]["item_id"]]  # p_<class> columns
    assert np.array_equal(written[cols].to_numpy(), outs[0][cols].to_numpy())
    assert (written["label"].to_numpy() == outs[0]["label"].to_numpy()).all()
    # the in-memory weights saved at training time are the ones loaded back
    state = runs.load_weights(RunFolder(trained["res"].run_dir), 0)
    assert all(torch.equal(state[k], v) for k, v in run.models[0].state_dict().items())


def test_pickled_and_tampered_weights_are_refused(trained, tmp_path):
    root, run_id = _copy_run(trained, tmp_path)
    run_dir = os.path.join(root, "runs", run_id)
    path = os.path.join(run_dir, "fold-0.safetensors")
    original = open(path, "rb").read()
    # 1) a pickle in place of the weights (even with a manifest entry that matches it)
    blob = pickle.dumps({"weight": np.zeros(3)})
    open(path, "wb").write(blob)
    man = json.load(open(os.path.join(run_dir, "manifest.json")))
    man["files"]["fold-0.safetensors"]["sha256"] = hashlib.sha256(blob).hexdigest()
    open(os.path.join(run_dir, "manifest.json"), "w").write(json.dumps(man))
    with pytest.raises(RunIntegrityError, match="pickle"):
        load_run(root, run_id)
    with pytest.raises(RunIntegrityError, match="pickle|safetensors"):
        scoring.score(root, run_id)
    # 2) one changed byte in the tensor data: the checksum no longer matches
    man["files"]["fold-0.safetensors"]["sha256"] = hashlib.sha256(original).hexdigest()
    open(os.path.join(run_dir, "manifest.json"), "w").write(json.dumps(man))
    tampered = bytearray(original)
    tampered[-5] ^= 0x01
    open(path, "wb").write(bytes(tampered))
    with pytest.raises(RunIntegrityError, match="sha256"):
        load_run(root, run_id)
    open(path, "wb").write(original)
    assert load_run(root, run_id).models  # intact again: loads
    # 3) statistics and config are checked too; unlisted and pickle-format names are refused
    stats = os.path.join(run_dir, "norm_stats.safetensors")
    open(stats, "ab").write(b"\0")
    with pytest.raises(RunIntegrityError, match="sha256"):
        load_run(root, run_id)
    run = RunFolder(run_dir)
    with pytest.raises(RunIntegrityError, match="never pickle"):
        run.read_verified("fold-0.pt")
    with pytest.raises(RunIntegrityError, match="not recorded"):
        run.read_verified("fold-7.safetensors")
    with open(os.path.join(run_dir, "config.json"), "a") as f:
        f.write(" ")
    with pytest.raises(RunIntegrityError, match="sha256"):
        RunConfig.load(run)


def test_rescoring_writes_nothing_new_and_pandas_reads_the_partitions(trained, tmp_path):
    root, run_id = _copy_run(trained, tmp_path)
    ids = [m["item_id"] for m in trained["media"]]
    first = scoring.score(root, run_id, item_ids=ids[:10], threads=1)
    assert (first.n_written, first.n_skipped) == (10, 0)
    rest = scoring.score(root, run_id, threads=1)  # all items: only the 38 new ones are written
    assert (rest.n_written, rest.n_skipped) == (len(ids) - 10, 10)
    pred_dir = rest.path
    before = {f: os.path.getmtime(os.path.join(pred_dir, f)) for f in os.listdir(pred_dir)}
    again = scoring.score(root, run_id, threads=1)
    assert (again.n_written, again.n_skipped) == (0, len(ids))
    assert {f: os.path.getmtime(os.path.join(pred_dir, f)) for f in os.listdir(pred_dir)} == before
    one_fold = scoring.score(root, run_id, fold=1, item_ids=ids[:5], threads=1)
    assert one_fold.n_written == 5 and scoring.score(root, run_id, fold=1, item_ids=ids[:5], threads=1).n_written == 0
    df = Catalog(root).predictions()  # the wide frame: p_<class> columns
    assert {"model", "run", "item_id", "fold", "start", "end", "label", "score", "p_happy", "scored_at"} <= set(df)
    assert set(df["model"].astype(str)) == {"tacfn"} and set(df["run"].astype(str)) == {run_id}
    assert len(df) == len(ids) + 5 and not df.duplicated(["item_id", "fold"]).any()
    assert set(df.loc[df["fold"] == "1", "item_id"]) == set(ids[:5])
    media = Catalog(root).media().set_index("item_id")
    ens = df[df["fold"] == "ensemble"].set_index("item_id")
    assert np.allclose(ens["end"], media.loc[ens.index, "duration"]) and (ens["start"] == 0).all()
    assert (ens["score"] == ens[[c for c in ens if c.startswith("p_")]].max(axis=1)).all()


def test_run_config_is_typed_and_reads_back_the_exact_json(trained, tmp_path):
    run = Catalog(trained["root"]).run(trained["res"].run_id)
    raw = run.read_bytes("config.json").decode()
    cfg = RunConfig.load(run)
    assert cfg.to_json() == raw  # the typed record writes back the file it was read from, byte for byte
    assert cfg.task == Task(n_classes=4) and cfg.train.epochs == 4 and cfg.seed == 1 and cfg.completed_folds == [0, 1]
    assert [m.name for m in cfg.data.modalities] == list(cfg.model_config["input_dims"]) == ["face", "audio"]
    assert latest_run(Catalog(trained["root"]), "tacfn") == cfg.run_id
    with pytest.raises(ValueError, match="no finished rcma run"):
        latest_run(Catalog(trained["root"]), "rcma")
    # a config.json of an older run: no feature-set names, completed folds or creation time, an unknown key
    old = json.loads(raw)
    for key in ("feature_set_names", "completed_folds", "created"):
        del old[key]
    old["note"] = {"kept": True}
    back = RunConfig.from_json(json.dumps(old))
    assert back.feature_set_names == {} and back.completed_folds == [] and back.created == ""
    assert json.loads(back.to_json())["note"] == {"kept": True}
    # a reordered model config (JSON readers need not keep key order) comes back in training order
    old["model_config"]["input_dims"] = dict(reversed(list(old["model_config"]["input_dims"].items())))
    assert list(RunConfig.from_json(json.dumps(old)).model_config["input_dims"]) == ["face", "audio"]


def test_comparison_table_reports_each_models_latest_run(trained):
    from emofuse.catalog.store import Catalog
    from emofuse.fusion.runs import METRICS, comparison_markdown

    cat, run_id = Catalog(trained["root"]), trained["res"].run_id
    table = comparison_markdown(cat, ["tacfn", "unimodal_face"]).splitlines()
    assert len(table) == 3  # header, rule, the one model that has a run
    acc = cat.run(run_id).read_json(METRICS)["summary"]["accuracy"]
    assert table[2].startswith(f"| tacfn | `{run_id}` |")
    assert table[2].endswith(f"{acc['mean']:.3f} ± {acc['std']:.3f} |")
