"""A trained run loaded for prediction, and its predictions as rows of the prediction schema.

:func:`load_run` reads a run folder only after every file it needs passed the manifest check
(:meth:`emofuse.catalog.runs.RunFolder.read_verified`: safetensors only, sha256 as recorded)
and builds each fold's model from the run's config (the model registry,
:mod:`emofuse.fusion.models.registry`). :func:`predict` gives one row per clip or time window
(the fold ensemble: the mean of the folds' class probabilities and dimensional predictions, or
one fold), :func:`predict_steps` one row per model step (runs trained per frame). Nothing is
written here: :mod:`emofuse.fusion.score` writes the rows to the catalog.

Example (needs a trained run: see ``tests/test_fusion_runs.py`` for one made from scratch):
    >>> run = load_run("emofuse-data/catalog", "tacfn-20250101-120000-abcdef")          # doctest: +SKIP
    >>> data = load_aligned(Catalog("emofuse-data/catalog"), run.data_config, classes=run.classes,
    ...                     dims=run.dims)                                              # doctest: +SKIP
    >>> predict(run, data).head()                                                       # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from emofuse.catalog.predictions import window_label
from emofuse.catalog.provenance import pick_device
from emofuse.catalog.schemas import FRAME_WINDOW
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs
from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.dataset import AlignedData, FusionDataset, NormStats
from emofuse.fusion.inference import Task, aggregate_items, predict_rows
from emofuse.fusion.run_config import CONFIG, RunConfig
from emofuse.fusion.targets import step_bounds, stitch_steps


@dataclass
class LoadedRun:
    """A run ready to score: its config, per-fold models and normalisation statistics."""

    run_id: str
    run_dir: str
    config: RunConfig
    models: dict[int, nn.Module]
    norms: dict[int, NormStats]
    device: torch.device

    @property
    def model_name(self) -> str:
        return self.config.model

    @property
    def data_config(self) -> DataConfig:
        return self.config.data

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    @property
    def dims(self) -> dict[str, int]:
        return self.config.dims

    @property
    def task(self) -> Task:
        return self.config.task


def load_run(catalog_root: str | os.PathLike[str], run_id: str, *, folds: Iterable[int] | None = None,
             device: str | torch.device | None = "cpu") -> LoadedRun:
    """Load a run's verified config, statistics and fold weights (CPU by default)."""
    cat = Catalog(catalog_root)
    run = cat.run(run_id)
    if not run.exists(CONFIG):
        raise FileNotFoundError(f"no run {run_id!r} in {cat.layout.runs}")
    config = RunConfig.load(run)
    dev = pick_device(device)
    trained = list(config.completed_folds)
    wanted = trained if folds is None else [int(f) for f in folds]
    missing = sorted(set(wanted) - set(trained))
    if missing or not wanted:
        raise ValueError(f"run {run_id}: folds {missing or wanted} are not trained (trained: {trained})")
    norms_all = runs.load_norm_stats(run)
    models: dict[int, nn.Module] = {}
    for f in wanted:
        model = config.build_model()
        model.load_state_dict(runs.load_weights(run, f), strict=True)
        model.to(device=dev, dtype=torch.float32).eval()
        models[f] = model
    return LoadedRun(run_id=run_id, run_dir=run.path, config=config, models=models,
                     norms={f: norms_all[f] for f in wanted}, device=dev)


def predict(run: LoadedRun, data: AlignedData, *, fold: str | int = "ensemble", batch_size: int = 64,
            scored_at: dt.datetime | None = None) -> pd.DataFrame:
    """Predictions in the prediction schema's columns (no catalog writes).

    One row per item of ``data``, or per (item, window) when ``data`` holds windows
    (``load_aligned(..., windows=...)``); ``start``/``end`` are the clip's or window's bounds.
    """
    folds = sorted(run.models) if str(fold) == "ensemble" else [int(fold)]
    probs_sum: np.ndarray | None = None
    va_sum: np.ndarray | None = None
    items: np.ndarray | None = None
    for f in folds:
        if f not in run.models:
            raise ValueError(f"fold {f} is not loaded (loaded: {sorted(run.models)})")
        ds = FusionDataset(data, np.arange(data.n_rows), run.norms[f], device=run.device)
        out = predict_rows(run.models[f], ds, batch_size=batch_size, amp=False)
        if "probs" in out:
            items, p = aggregate_items(ds.item_of_row, out["probs"])
            probs_sum = p.astype(np.float64) if probs_sum is None else probs_sum + p
        if "va" in out:
            items, v = aggregate_items(ds.item_of_row, out["va"])
            va_sum = v.astype(np.float64) if va_sum is None else va_sum + v
    if items is None:
        items = np.zeros(0, np.int64)
    n = len(items)
    meta = data.items.iloc[items]
    when = scored_at or dt.datetime.now(dt.timezone.utc)
    start = meta["start"].to_numpy(np.float64) if "start" in meta else np.zeros(n)
    end = meta["end"].to_numpy(np.float64) if "end" in meta else meta["duration"].to_numpy(np.float64)
    df = pd.DataFrame({"item_id": meta["item_id"].to_numpy(), "fold": str(fold),
                       "window": window_label(getattr(data, "windows", None)), "start": start, "end": end})
    if probs_sum is not None and run.classes:
        probs = (probs_sum / len(folds)).astype(np.float32)
        best = probs.argmax(axis=1)
        df["label"] = [run.classes[k] for k in best]
        df["score"] = probs[np.arange(n), best]
    else:
        probs = None
        df["label"] = None
        df["score"] = np.full(n, np.nan, np.float32)
    dims = list(run.task.dimensional)
    for j, name in enumerate(("valence", "arousal")):
        if va_sum is not None and name in dims:
            df[name] = (va_sum[:, dims.index(name)] / len(folds)).astype(np.float32)
        else:
            df[name] = np.full(n, np.nan, np.float32)
    df["scored_at"] = pd.Timestamp(when)
    for k, c in enumerate(run.classes):
        df[f"p_{c}"] = probs[:, k] if probs is not None else np.full(n, np.nan, np.float32)
    return df


def predict_steps(run: LoadedRun, data: AlignedData, *, fold: str | int = "ensemble", batch_size: int = 64,
                  scored_at: dt.datetime | None = None) -> pd.DataFrame:
    """Per-step ``valence``/``arousal`` in the prediction schema's columns (``window="frame"``).

    One row per (item, model step) where some modality is valid: the mean of the folds (the
    ensemble) and of the windows that hold the step; ``start``/``end`` are the step's seconds
    (:func:`~emofuse.fusion.targets.step_bounds`). ``data``: whole clips (no time windows).
    """
    if getattr(data, "windows", None) is not None:
        raise ValueError("per-step predictions are made on whole clips (load_aligned without windows)")
    folds = sorted(run.models) if str(fold) == "ensemble" else [int(fold)]
    dims = list(run.task.dimensional)
    total: np.ndarray | None = None
    item = step = np.zeros(0, np.int64)
    for f in folds:
        if f not in run.models:
            raise ValueError(f"fold {f} is not loaded (loaded: {sorted(run.models)})")
        ds = FusionDataset(data, np.arange(data.n_rows), run.norms[f], device=run.device)
        out = predict_rows(run.models[f], ds, batch_size=batch_size, amp=False, steps=True)
        if "va_steps" not in out:
            raise ValueError(f"run {run.run_id} has no per-step regression head to predict frames with")
        item, step, va = stitch_steps(ds.item_of_row, ds.row_step, out["va_steps"], out["step_mask"])
        total = va if total is None else total + va
    va = (total / len(folds)) if total is not None else np.zeros((0, len(dims)))
    meta = data.items.iloc[item]
    start, end = step_bounds(run.data_config.align, meta["start"].to_numpy(np.float64),
                             meta["end"].to_numpy(np.float64), step)
    n = len(item)
    df = pd.DataFrame({"item_id": meta["item_id"].to_numpy(), "fold": str(fold), "window": FRAME_WINDOW,
                       "start": start, "end": end, "label": None, "score": np.full(n, np.nan, np.float32)})
    for name in ("valence", "arousal"):
        df[name] = va[:, dims.index(name)].astype(np.float32) if name in dims else np.full(n, np.nan, np.float32)
    df["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    for c in run.classes:
        df[f"p_{c}"] = np.full(n, np.nan, np.float32)
    return df


__all__ = ["LoadedRun", "load_run", "predict", "predict_steps"]
