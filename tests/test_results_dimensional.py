"""Results rows of dimensional runs: CCC/RMSE intervals per fold and pooled, and intervals that
resample whole videos when the rows are frames (``groups``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from emofuse.fusion.evaluate import Scored, interval_rows
from emofuse.fusion.training_run import train
from tests.synthetic_catalog import build_synthetic_catalog

TINY_RCMA = {"channels": {"face": 16, "audio": 8, "text": 8}, "n_levels": 2, "regressor_hidden": 16}
PLAN = [{"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03"], "val": ["Actor_04"], "test": ["Actor_05"]},
        {"fold": 1, "train": ["Actor_03", "Actor_04", "Actor_05"], "val": ["Actor_01"], "test": ["Actor_02"]}]


def test_a_valence_arousal_run_writes_ccc_and_rmse_intervals(tmp_path):
    root = str(tmp_path / "cat")
    build_synthetic_catalog(root, n_speakers=5, reps=2, dimensional=True, categorical=False, with_text=False)
    run = train(root, model="rcma", model_config=TINY_RCMA, align={"steps": 16, "hop": 8, "rate": 10.0}, epochs=2,
                folds=PLAN, seed=0, threads=1).run_id
    df = pd.read_parquet(f"{root}/results")
    assert set(df["run"]) == {run} and set(df["fold"]) == {"0", "1", "pooled"}
    assert set(df["metric"]) == {"ccc_valence", "ccc_arousal", "rmse_valence", "rmse_arousal"}
    pooled = df[df["fold"] == "pooled"]
    assert (pooled["n_items"] == 2 * 4 * 2).all()  # two test speakers x 4 emotions x 2 takes
    assert (df["low"] <= df["value"] + 1e-9).all() and (df["value"] <= df["high"] + 1e-9).all()


def test_frame_rows_are_resampled_by_video():
    """Frames of one video share its error: resampling frames as if independent gives a far too narrow
    interval; resampling whole videos (``groups``) does not."""
    rng = np.random.default_rng(0)
    videos = np.repeat(np.arange(12), 50)
    truth = rng.normal(size=len(videos))
    pred = truth + np.repeat(rng.normal(scale=1.0, size=12), 50) + rng.normal(scale=0.1, size=len(videos))
    s = Scored(videos.astype(str).astype(object), np.full(len(videos), "0", object), true_va=truth[:, None],
               pred_va=pred[:, None], dims=("valence",))
    by_frame = {r["metric"]: r["high"] - r["low"] for r in interval_rows(s, "0", n_boot=300, seed=0)}
    by_video = {r["metric"]: r["high"] - r["low"] for r in interval_rows(s, "0", n_boot=300, seed=0, groups=videos)}
    assert by_video["ccc_valence"] > 2 * by_frame["ccc_valence"]
    assert by_video["rmse_valence"] > 2 * by_frame["rmse_valence"]
