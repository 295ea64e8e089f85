"""Score catalog items with a trained run and write predictions to the catalog.

A run is loaded from its folder only after every file it needs passed the manifest check
(:meth:`emofuse.catalog.runs.RunFolder.read_verified`: safetensors only, sha256 as recorded).
Items are read from the catalog's cached features with the run's exact feature-set keys,
alignment and per-fold normalisation statistics, then scored by the fold ensemble (mean
of the folds' class probabilities and dimensional predictions) or by one fold.

Predictions go to ``<catalog>/predictions/model=<model>/run=<run_id>/`` (see
:mod:`emofuse.catalog.predictions`): one row per item, fold label and ``window``.
``window="clip"`` rows cover the whole clip (``start`` 0, ``end`` the duration); with
``windows=(length_s, hop_s)`` there is also one row per time window of each clip
(``window="4s/2s"``, ``start``/``end`` its bounds; see :func:`emofuse.fusion.timeline.clip_windows`), so
emotion over time is a plot of those rows. A run trained per frame (``DataConfig.targets
= "frame"``) also writes one row per model step of each clip (``window="frame"``,
``start``/``end`` the step's seconds, :func:`predict_steps`), so valence/arousal over time is
one query. ``label`` is the most probable class, ``score`` its probability.
(item, fold, window) already present for the run are skipped, part names
are a hash of the item ids they hold, and a file's rows of one kind are written in one
part, so re-scoring writes nothing, duplicates nothing, and a crash never leaves a file
half-scored. Every scored item also gets a status row (``score-<run_id>``, see
:mod:`emofuse.fusion.score_report`). With ``explain=True`` the clip and window rows also
carry attributions per modality (``attr_<modality>`` columns) and each row gets a profile
over time (attention or occlusion, ``Catalog.time_attributions``); see :mod:`emofuse.fusion.explain`.

Example (needs a trained run: see ``tests/test_fusion_runs.py`` for one made from scratch):
    >>> res = score_items("emofuse-data/catalog", "tacfn-20250101-120000-abcdef")   # doctest: +SKIP
    >>> res = score_items("emofuse-data/catalog", "tacfn-20250101-120000-abcdef", windows=(4, 2))  # doctest: +SKIP
    >>> import pandas as pd; pd.read_parquet("emofuse-data/catalog/predictions")     # doctest: +SKIP
    >>> score_windows(4.0, None), score_windows(None, None)
    ((4.0, 2.0), None)
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from emofuse.catalog.predictions import window_label
from emofuse.catalog.provenance import pick_device
from emofuse.catalog.schemas import CLIP_WINDOW, FRAME_WINDOW
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.dataset import AlignedData, FusionDataset, NormStats
from emofuse.fusion.explain import explain as explain_rows
from emofuse.fusion.inference import Task, aggregate_items, predict_rows
from emofuse.fusion.run_config import CONFIG, RunConfig
from emofuse.fusion.score_report import record_score_status
from emofuse.fusion.targets import step_bounds, stitch_steps

log = logging.getLogger(__name__)


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


@dataclass
class ScoreResult:
    """What a scoring call did: per-clip rows written, items skipped (already scored), items without features."""

    run_id: str
    model: str
    fold: str
    n_written: int
    n_skipped: int
    n_unscorable: int
    path: str
    parts: list[str] = field(default_factory=list)
    #: Window rows written (``windows`` given), and their ``window`` label.
    n_window_rows: int = 0
    windows: str | None = None
    #: Per-step rows written (``window="frame"``: runs trained per frame).
    n_frame_rows: int = 0
    #: Whether attributions were stored with the rows written (``explain``).
    explained: bool = False
    #: Scoring status per requested item, counted (``ok``, ``no_features``), the reason of
    #: each item without predictions (item_id -> message), and the status folder.
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    status_path: str | None = None
    media_seconds: float = 0.0
    seconds: float = 0.0


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


def score_windows(window: float | None, hop: float | None) -> tuple[float, float] | None:
    """``(length_s, hop_s)`` of windowed scoring from a window length and an optional hop (default half of it).

    >>> score_windows(4, 1), score_windows(None, None)
    ((4.0, 1.0), None)
    >>> score_windows(None, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: hop needs window (seconds per window)
    """
    if window is None:
        if hop is not None:
            raise ValueError("hop needs window (seconds per window)")
        return None
    hop = float(hop) if hop is not None else float(window) / 2
    if not (float(window) > 0 and hop > 0):
        raise ValueError(f"window and hop must be positive seconds, got window={window}, hop={hop}")
    return float(window), hop


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


@dataclass
class ScoreProgress:
    """Where a scoring call stands (given to the ``progress`` callback after every chunk)."""

    items_done: int
    items_total: int
    media_s_done: float
    media_s_total: float
    rows_written: int
    elapsed_s: float

    @property
    def items_per_s(self) -> float:
        return self.items_done / max(self.elapsed_s, 1e-9)

    @property
    def media_s_per_s(self) -> float:
        return self.media_s_done / max(self.elapsed_s, 1e-9)

    @property
    def eta_s(self) -> float:
        """Seconds left, from the media seconds still to score (items when durations are unknown)."""
        if self.media_s_total > 0 and self.media_s_done > 0:
            return self.elapsed_s * (self.media_s_total - self.media_s_done) / self.media_s_done
        if self.items_done:
            return self.elapsed_s * (self.items_total - self.items_done) / self.items_done
        return float("nan")

    def line(self) -> str:
        pct = 100.0 * self.items_done / max(self.items_total, 1)
        return (f"scored {self.items_done}/{self.items_total} items ({pct:.0f}%), {self.rows_written} rows; "
                f"{self.items_per_s:.1f} items/s, {self.media_s_per_s:.0f} media-s/s; ETA {self.eta_s:.0f} s")


def score_items(catalog_root: str | os.PathLike[str], run_id: str, *, item_ids: Iterable[str] | None = None,
                fold: str | int = "ensemble", device: str | torch.device | None = None, batch_size: int = 64,
                chunk_size: int = 1000, windows: tuple[float, float] | Sequence[float] | None = None,
                clip: bool = True, chunk_seconds: float = 600.0,
                progress: Callable[[ScoreProgress], None] | None = None,
                record_status: bool = True, frames: bool | None = None, explain: bool = False) -> ScoreResult:
    """Score items (all media items by default) with a run and write new predictions to the catalog.

    ``clip``: one row per item over the whole clip (``window="clip"``). ``windows``:
    ``(length_s, hop_s)`` also writes one row per time window (``window="<length>s/<hop>s"``).
    ``frames``: one row per model step (``window="frame"``; default: when the run was trained
    per frame; a clip is aligned whole, so its steps fit in memory for files of hours).
    What is already written for this run, fold and window is skipped (nothing replaced,
    nothing duplicated). Work goes in chunks of at most ``chunk_size`` items and
    ``chunk_seconds`` of media; a longer file is its own chunk and its windows are read
    ``chunk_seconds`` at a time, so memory stays bounded whatever a file's length (its
    rows are written as one part, so a file is never half-scored). ``progress`` gets a
    :class:`ScoreProgress` after every chunk. With ``record_status`` every requested item
    gets a status in ``status/feature_set=score-<run_id>/`` (``ok`` or ``no_features`` with
    the extraction statuses that explain it), written only where it changed.
    ``explain``: also store attributions (:mod:`emofuse.fusion.explain`): ``attr_*`` columns
    in the clip and window rows, and time profiles (``Catalog.time_attributions``); rows this
    run wrote earlier without them are scored again, their parts rewritten whole.
    """
    t_start = time.perf_counter()
    cat = Catalog(catalog_root)
    fold_label = str(fold)
    win = None if windows is None else tuple(float(v) for v in windows)
    run = load_run(catalog_root, run_id, folds=None if fold_label == "ensemble" else [int(fold_label)],
                   device=device)
    pred_dir = cat.layout.predictions_dir(run.model_name, run_id)
    media = cat.media()
    ids = list(dict.fromkeys(item_ids)) if item_ids is not None else media["item_id"].tolist()
    if frames is None:
        frames = run.data_config.targets == "frame"
    kinds = ([CLIP_WINDOW] if clip else []) + ([window_label(win)] if win is not None else [])
    kinds += [FRAME_WINDOW] if frames else []
    if not kinds:
        raise ValueError("nothing to score: pass clip=True and/or windows=(length_s, hop_s)")
    done = cat.existing_predictions(run.model_name, run_id, parts=explain)
    done = done[done["fold"] == fold_label]
    done_by_kind = {k: set(done.loc[done["window"] == k, "item_id"]) for k in kinds}
    redo = _unexplained_parts(done, [k for k in kinds if k != FRAME_WINDOW], ids) if explain else []
    need = {i: [k for k in kinds if i not in done_by_kind[k]] for i in ids}
    todo = [i for i in ids if need[i]]
    n_skipped = len(ids) - len(todo)
    duration = dict(zip(media["item_id"], media["duration"].astype("float64").fillna(0.0)))
    media_total = float(sum(duration.get(i, 0.0) for i in todo))
    written, window_rows, frame_rows, parts = 0, 0, 0, []
    unscorable: set[str] = set()
    scored_now: dict[str, set[str]] = {k: set() for k in kinds}
    scored_at = dt.datetime.now(dt.timezone.utc)
    state = {"items": 0, "media": 0.0, "rows": 0}

    def load(chunk: list[str], **kw: Any) -> AlignedData:
        return load_aligned(cat, run.data_config, chunk, classes=run.classes, dims=run.dims, frame_targets=False,
                            **kw)

    times: list[pd.DataFrame] = []  # time attributions of the rows being scored (explain)

    def rows_of(data: AlignedData) -> pd.DataFrame:
        df = predict(run, data, fold=fold_label, batch_size=batch_size, scored_at=scored_at)
        if explain:
            ex = explain_rows(run, data, fold=fold_label, batch_size=batch_size)
            if not np.array_equal(ex.attributions["item_id"].to_numpy(), df["item_id"].to_numpy()):
                raise RuntimeError("attributions and predictions disagree on their rows")  # pragma: no cover
            df = pd.concat([df, ex.attributions.drop(columns="item_id")], axis=1)
            times.append(ex.time)
        return df

    if redo:
        log.info("run %s: %d prediction parts were written without attributions; scoring them again with them",
                 run_id, len(redo))
    for chunk, only in [*((c, None) for c in _chunks(todo, duration, chunk_size, chunk_seconds)),
                        *(([], {k: part}) for k, part in redo)]:
        for kind in kinds:
            ids_k = [i for i in chunk if kind in need[i]] if only is None else only.get(kind, [])
            times.clear()
            if not ids_k:
                continue
            dfs: list[pd.DataFrame] = []
            if kind == CLIP_WINDOW:
                data = load(ids_k)
                if data.n_items:
                    dfs.append(rows_of(data))
            elif kind == FRAME_WINDOW:
                data = load(ids_k)
                if data.n_items:
                    dfs.append(predict_steps(run, data, fold=fold_label, batch_size=batch_size, scored_at=scored_at))
            elif len(ids_k) == 1 and duration.get(ids_k[0], 0.0) > chunk_seconds:
                t = 0.0  # one long file: its windows, chunk_seconds of them at a time
                while t < duration[ids_k[0]]:
                    data = load(ids_k, windows=win, time_range=(t, t + chunk_seconds))
                    if data.n_items:
                        dfs.append(rows_of(data))
                    elif data.n_items == 0 and data.dropped.get("no_modality"):
                        break
                    t += chunk_seconds
            else:
                data = load(ids_k, windows=win)
                if data.n_items:
                    dfs.append(rows_of(data))
            df = pd.concat(dfs, ignore_index=True) if dfs else None
            got = set(df["item_id"]) if df is not None else set()
            unscorable |= set(ids_k) - got
            if df is None or not len(df):
                continue
            if only is not None and got != set(ids_k):  # the part would get another name: keep the old one
                log.warning("run %s: %d of a part's items are no longer scorable; its rows keep no attributions",
                            run_id, len(set(ids_k) - got))
                continue
            if times:  # the time attributions first: the predictions part commits them
                cat.write_time_attributions(run_id, pd.concat(times, ignore_index=True), fold=fold_label, window=kind)
            parts.append(cat.write_predictions(run.model_name, run_id, df, run.classes, fold=fold_label, window=kind,
                                               attributions=[c for c in df if c.startswith("attr_")]))
            scored_now[kind] |= got
            if kind == CLIP_WINDOW:
                written += len(df)
            elif kind == FRAME_WINDOW:
                frame_rows += len(df)
            else:
                window_rows += len(df)
            state["rows"] += len(df)
        state["items"] += len(chunk)
        state["media"] += float(sum(duration.get(i, 0.0) for i in chunk))
        if progress is not None:
            progress(ScoreProgress(state["items"], len(todo), state["media"], media_total, state["rows"],
                                   time.perf_counter() - t_start))
    complete = {i for i in ids if all(i in done_by_kind[k] or i in scored_now[k] for k in kinds)}
    statuses, reasons, status_path = {}, {}, None
    if record_status and ids:
        statuses, reasons, status_path = record_score_status(cat, run.config, run_id, ids, complete)
    log.info("run %s (%s): wrote %d predictions, %d window rows and %d step rows, skipped %d already scored, %d "
             "without features -> %s", run_id, fold_label, written, window_rows, frame_rows, n_skipped,
             len(unscorable), pred_dir)
    return ScoreResult(run_id=run_id, model=run.model_name, fold=fold_label, n_written=written,
                       n_skipped=n_skipped, n_unscorable=len(unscorable), path=pred_dir, parts=parts,
                       n_window_rows=window_rows, windows=window_label(win) if win is not None else None,
                       n_frame_rows=frame_rows, explained=explain,
                       statuses=statuses, reasons=reasons, status_path=status_path,
                       media_seconds=media_total, seconds=time.perf_counter() - t_start)


def _unexplained_parts(done: pd.DataFrame, kinds: list[str], ids: list[str]) -> list[tuple[str, list[str]]]:
    """(window kind, item ids) of each prediction part without attributions that holds one of ``ids``.

    ``done``: ``existing_predictions(..., parts=True)`` of one fold label. A part is scored
    again whole (its items keep one part, under the same name, replaced in one step).
    """
    stale = done[~done["explained"].astype(bool) & done["window"].isin(kinds)]
    wanted = set(ids)
    return [(str(kind), sorted(set(sub["item_id"]))) for (_, kind), sub in stale.groupby(["part", "window"])
            if wanted & set(sub["item_id"])]


def _chunks(ids: list[str], duration: dict[str, float], size: int, seconds: float) -> Iterator[list[str]]:
    """Consecutive groups of at most ``size`` items and ``seconds`` of media (a longer item alone)."""
    chunk: list[str] = []
    held = 0.0
    for i in ids:
        d = float(duration.get(i, 0.0) or 0.0)
        if chunk and (len(chunk) >= size or held + d > seconds):
            yield chunk
            chunk, held = [], 0.0
        chunk.append(i)
        held += d
    if chunk:
        yield chunk


__all__ = ["LoadedRun", "ScoreProgress", "ScoreResult", "load_run", "predict", "predict_steps", "score_items",
           "score_windows"]
