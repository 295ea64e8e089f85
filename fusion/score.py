"""Score catalog items with a trained run and write predictions to the catalog.

A run is loaded from its folder only after every file it needs passed the manifest check
(:func:`fusion.runs.read_verified`: safetensors only, sha256 as recorded). Items are read
from the catalog's cached features with the run's exact feature-set keys, alignment and
per-fold normalisation statistics, then scored by the fold ensemble (mean of the folds'
class probabilities and dimensional predictions) or by one fold.

Predictions go to ``<catalog>/predictions/model=<model>/run=<run_id>/part-<fold>-<hash>.parquet``
(``catalog.schemas.prediction_schema``), one row per item and fold label: ``start``/``end``
are the clip bounds, ``label`` the most probable class, ``score`` its probability. Items
already present for that run and fold are skipped and part names are a hash of the item
ids they hold, so re-scoring writes nothing and duplicates nothing.

Example:
    >>> res = score_items("emofuse-data/catalog", "tacfn-20250101-120000-abcdef")   # doctest: +SKIP
    >>> import pandas as pd; pd.read_parquet("emofuse-data/catalog/predictions")     # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import torch
from fsspec.core import url_to_fs
from torch import nn

from catalog import atomic
from catalog.schemas import prediction_schema
from catalog.store import Catalog
from fusion import runs
from fusion.data import AlignedData, DataConfig, FusionDataset, NormStats, load_aligned
from fusion.models import build_model
from fusion.train import Task, aggregate_items, pick_device, predict_rows

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A run ready to score: its config, data recipe, per-fold models and normalisation statistics."""

    run_id: str
    run_dir: str
    config: dict[str, Any]
    data_config: DataConfig
    classes: list[str]
    dims: dict[str, int]
    task: Task
    models: dict[int, nn.Module]
    norms: dict[int, NormStats]
    device: torch.device

    @property
    def model_name(self) -> str:
        return str(self.config["model"])


@dataclass
class ScoreResult:
    """What a scoring call did: rows written, items skipped (already scored), items without features."""

    run_id: str
    model: str
    fold: str
    n_written: int
    n_skipped: int
    n_unscorable: int
    path: str
    parts: list[str] = field(default_factory=list)


def model_config_from_saved(config: dict[str, Any]) -> dict[str, Any]:
    """The model config of ``config.json`` with its modality dicts in training order.

    Models concatenate modalities in the order of ``input_dims``; JSON readers need not keep
    key order, so it is restored from the data config's modality list.
    """
    order = [m["name"] for m in config["data"]["modalities"]]
    mcfg = dict(config["model_config"])
    for key in ("input_dims", "channels"):
        if isinstance(mcfg.get(key), dict):
            d = mcfg[key]
            mcfg[key] = {m: d[m] for m in order if m in d} | {m: v for m, v in d.items() if m not in order}
    return mcfg


def build_from_config(config: dict[str, Any]) -> nn.Module:
    """The run's model architecture (untrained) from ``config.json``."""
    return build_model(config["registry_model"], **model_config_from_saved(config))


def load_run(catalog_root: str | os.PathLike[str], run_id: str, *, folds: Iterable[int] | None = None,
             device: str | torch.device | None = "cpu") -> LoadedRun:
    """Load a run's verified config, statistics and fold weights (CPU by default)."""
    cat = Catalog(catalog_root)
    run_dir = cat.layout.run(run_id)
    if not runs.exists(run_dir, runs.CONFIG):
        raise FileNotFoundError(f"no run {run_id!r} in {cat.layout.runs}")
    config = runs.read_config(run_dir)
    dev = pick_device(device)
    trained = [int(f) for f in config.get("completed_folds", [])]
    wanted = trained if folds is None else [int(f) for f in folds]
    missing = sorted(set(wanted) - set(trained))
    if missing or not wanted:
        raise ValueError(f"run {run_id}: folds {missing or wanted} are not trained (trained: {trained})")
    norms_all = runs.load_norm_stats(run_dir)
    models: dict[int, nn.Module] = {}
    for f in wanted:
        model = build_from_config(config)
        model.load_state_dict(runs.load_weights(run_dir, f), strict=True)
        model.to(device=dev, dtype=torch.float32).eval()
        models[f] = model
    t = config["task"]
    return LoadedRun(run_id=run_id, run_dir=run_dir, config=config,
                     data_config=DataConfig.from_dict(config["data"]), classes=list(config["classes"]),
                     dims={k: int(v) for k, v in config["dims"].items()},
                     task=Task(n_classes=int(t["n_classes"]), dimensional=tuple(t["dimensional"])),
                     models=models, norms={f: norms_all[f] for f in wanted}, device=dev)


def predict(run: LoadedRun, data: AlignedData, *, fold: str | int = "ensemble", batch_size: int = 64,
            scored_at: dt.datetime | None = None) -> pd.DataFrame:
    """Item-level predictions in the prediction schema's columns (no catalog writes)."""
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
    df = pd.DataFrame({"item_id": meta["item_id"].to_numpy(), "fold": str(fold),
                       "start": np.zeros(n), "end": meta["duration"].to_numpy(np.float64)})
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


def existing_predictions(pred_dir: str) -> pd.DataFrame:
    """(item_id, fold) already written for one run (empty frame when none)."""
    fs, p = url_to_fs(pred_dir)
    if not fs.exists(p):
        return pd.DataFrame({"item_id": [], "fold": []})
    files = sorted(f for f in fs.ls(p, detail=False)
                   if os.path.basename(f).startswith("part-") and f.endswith(".parquet"))
    if not files:
        return pd.DataFrame({"item_id": [], "fold": []})
    return pads.dataset(files, filesystem=fs, format="parquet").to_table(columns=["item_id", "fold"]).to_pandas()


def part_name(fold: str, item_ids: Iterable[str]) -> str:
    """Deterministic part name: the fold label and a hash of the (sorted) item ids it holds."""
    h = hashlib.sha256("\n".join(sorted(item_ids)).encode()).hexdigest()[:20]
    return f"{fold}-{h}"


def score_items(catalog_root: str | os.PathLike[str], run_id: str, *, item_ids: Iterable[str] | None = None,
                fold: str | int = "ensemble", device: str | torch.device | None = None, batch_size: int = 64,
                chunk_size: int = 2000) -> ScoreResult:
    """Score items (all media items by default) with a run and write new predictions to the catalog."""
    cat = Catalog(catalog_root)
    fold_label = str(fold)
    run = load_run(catalog_root, run_id, folds=None if fold_label == "ensemble" else [int(fold_label)],
                   device=device)
    pred_dir = cat.layout.predictions_dir(run.model_name, run_id)
    ids = list(dict.fromkeys(item_ids)) if item_ids is not None else cat.media()["item_id"].tolist()
    done = existing_predictions(pred_dir)
    done_ids = set(done.loc[done["fold"] == fold_label, "item_id"])
    todo = [i for i in ids if i not in done_ids]
    n_skipped = len(ids) - len(todo)
    schema = prediction_schema(run.classes)
    written, unscorable, parts = 0, 0, []
    scored_at = dt.datetime.now(dt.timezone.utc)
    for s in range(0, len(todo), chunk_size):
        chunk = todo[s:s + chunk_size]
        data = load_aligned(cat, run.data_config, chunk, classes=run.classes, dims=run.dims)
        unscorable += len(chunk) - data.n_items
        if data.n_items == 0:
            continue
        df = predict(run, data, fold=fold_label, batch_size=batch_size, scored_at=scored_at)
        table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
        parts.append(atomic.write_parquet(table, pred_dir, part_name(fold_label, df["item_id"])))
        written += len(df)
    log.info("run %s (%s): wrote %d predictions, skipped %d already scored, %d without features -> %s",
             run_id, fold_label, written, n_skipped, unscorable, pred_dir)
    return ScoreResult(run_id=run_id, model=run.model_name, fold=fold_label, n_written=written,
                       n_skipped=n_skipped, n_unscorable=unscorable, path=pred_dir, parts=parts)


__all__ = ["LoadedRun", "ScoreResult", "build_from_config", "existing_predictions", "load_run",
           "model_config_from_saved", "part_name",
           "predict", "score_items"]
