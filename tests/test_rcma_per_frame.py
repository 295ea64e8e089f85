"""RCMA trained per frame (fusion.training_run.train on a catalog with per-frame labels), its metrics and its per-step predictions.

The catalog (``synthetic_frames``): per clip, smooth latent signals drive the per-frame
valence/arousal labels (10 fps, with unannotated runs) and the features (face along a valence
direction, audio along an arousal one); 6 speakers, 3 clips of 24-36 s each. One fold
trains on 4 speakers, validates on one and tests on the sixth.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.runs import RunFolder
from emofuse.catalog.schemas import CLIP_WINDOW, FRAME_WINDOW
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs, score as scoring, training_run
from emofuse.fusion.align import load_aligned
from emofuse.fusion.metrics import frame_regression_metrics
from emofuse.fusion.run_config import RunConfig
from emofuse.fusion.predict import load_run
from emofuse.fusion.targets import stitch_steps
from synthetic_frames import build_frame_catalog

TINY_RCMA = {"channels": {"face": 32, "audio": 16}, "n_levels": 2, "regressor_hidden": 32}
PLAN = [{"fold": 0, "train": ["S01", "S02", "S03", "S04"], "val": ["S05"], "test": ["S06"]}]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("rcma-frames") / "cat")
    build_frame_catalog(root, n_speakers=6, clips=3)
    res = training_run.train(root, model="rcma", model_config=TINY_RCMA, epochs=15, lr=3e-3, folds=PLAN, seed=0,
                             threads=1, patience=50)
    return root, res


def held_out_steps(root: str, run_id: str):
    """The test speaker's per-step targets (item, step, values) on the run's timeline."""
    run = load_run(root, run_id)
    cat = Catalog(root)
    media = cat.media()
    ids = media.loc[media["speaker"] == "S06", "item_id"].tolist()
    data = load_aligned(cat, run.data_config, ids, dims=run.dims)
    item, step, y = stitch_steps(data.row_item, data.row_step, data.frame_targets, data.frame_mask)
    return data.items["item_id"].to_numpy()[item], step, y, run


def test_rcma_trains_per_frame_and_beats_a_per_clip_constant(trained):
    root, res = trained
    cfg = RunConfig.load(RunFolder(res.run_dir))
    # per-frame training: the paper's windows of 300 steps every 200, at the labels' 10 fps
    assert cfg.data.targets == "frame"
    assert (cfg.data.align.mode, cfg.data.align.steps, cfg.data.align.hop, cfg.data.align.rate) == \
        ("window", 300, 200, 10.0)
    assert cfg.model_config["seq_len"] == 300 and cfg.task.dimensional == ("valence", "arousal")
    test = res.folds[0]["test"]
    assert test["n_videos"] == 3 and test["n_frames"] > 600
    # the baseline knows each held-out clip's true mean label and predicts it at every frame
    item, _, y, _ = held_out_steps(root, res.run_id)
    assert len(y) == test["n_frames"]
    means = pd.DataFrame(y, columns=["v", "a"]).groupby(item).transform("mean").to_numpy()
    base = frame_regression_metrics(y, means, item)
    assert base["ccc_video_mean"] == pytest.approx(0.0, abs=1e-9)   # a constant has no CCC within a clip
    for name in ("valence", "arousal"):
        assert test[f"ccc_{name}"] > base[f"ccc_{name}"] + 0.3, res.markdown
        assert test[f"ccc_video_{name}"] > 0.4, res.markdown
    assert res.metrics["ccc_mean"]["mean"] == pytest.approx(test["ccc_mean"])
    assert "CCC valence" in res.markdown and "CCC arousal" in res.markdown and "per-video CCC" in res.markdown
    metrics = RunFolder(res.run_dir).read_json(runs.METRICS)
    assert metrics["summary"]["ccc_video_mean"]["mean"] == pytest.approx(test["ccc_video_mean"])
    # a finished per-frame run resumed trains nothing more and reports the same
    again = training_run.train(root, model="rcma", run_id=res.run_id, threads=1)
    assert again.metrics == res.metrics


def test_scoring_a_per_frame_run_writes_one_row_per_step(trained):
    root, res = trained
    scored = scoring.score(root, res.run_id, threads=1)
    df = pd.read_parquet(scored.path)
    assert set(df["window"]) == {CLIP_WINDOW, FRAME_WINDOW} and scored.n_written == 18
    steps = df[df["window"] == FRAME_WINDOW]
    assert scored.n_frame_rows == len(steps) and steps["label"].isna().all()
    # valence/arousal over time of one clip is one query; steps are 0.1 s and lie inside the clip
    item0 = steps["item_id"].iloc[0]
    one = df.query("window == 'frame' and item_id == @item0").sort_values("start")
    assert np.allclose(np.diff(one["start"]), 0.1) and (one["end"] - one["start"] <= 0.1 + 1e-9).all()
    dur = Catalog(root).media().set_index("item_id").loc[item0, "duration"]
    assert one["start"].iloc[0] == 0.0 and dur - 0.2 < one["end"].iloc[-1] <= dur
    # the rows of the held-out speaker give the run's own test scores back (the ensemble is fold 0 here)
    item, step, y, run = held_out_steps(root, res.run_id)
    keyed = steps.assign(step=np.rint(steps["start"] * run.data_config.align.rate).astype(int)).set_index(
        ["item_id", "step"])
    pred = keyed.loc[list(zip(item, step)), ["valence", "arousal"]].to_numpy()
    m = frame_regression_metrics(y, pred, item)
    test = res.folds[0]["test"]
    tol = 2e-2 if RunConfig.load(RunFolder(res.run_dir)).amp else 1e-4  # a GPU evaluates in float16 autocast
    for key in ("ccc_valence", "ccc_arousal", "ccc_video_mean"):
        assert m[key] == pytest.approx(test[key], abs=tol)
    # scoring again writes nothing new
    assert scoring.score(root, res.run_id, threads=1).n_frame_rows == 0
