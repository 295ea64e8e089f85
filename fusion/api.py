"""The two entry points the flows and the CLI call: :func:`train` and :func:`score`.

``train`` reads cached features of a catalog, trains one model per speaker-independent
fold (early stopping on a validation split), and writes a run folder (see
:mod:`emofuse.fusion.runs`); ``score`` applies a run to catalog items and writes predictions
(see :mod:`emofuse.fusion.score`).

Per-frame training: when the catalog's labels table has per-frame valence/arousal for the
items (Aff-Wild2) and the model is RCMA, the run trains per frame (``DataConfig.targets =
"frame"``): targets per model step, windows of 300 steps every 200 at the labels' frame rate
(unless ``align`` says otherwise), 1 - CCC along time within each window, and ABAW metrics
(CCC over all valid frames of the test split, plus the per-video mean).

Models and their defaults are :data:`emofuse.fusion.presets.PRESETS` (see that module);
every argument can be overridden; small settings (``epochs=5``, a smaller
``model_config``) make a quick demo.

Example (needs a catalog with extracted features; ``tests/test_fusion_train.py`` builds a
synthetic one):
    >>> res = train("emofuse-data/catalog", model="tacfn", epochs=5)     # doctest: +SKIP
    >>> print(res.markdown)                                              # doctest: +SKIP
    >>> score("emofuse-data/catalog", res.run_id).n_written              # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from emofuse.catalog.provenance import collect, pick_device
from emofuse.catalog.runs import new_run_id
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.dataset import FusionDataset, NormStats, loader_throughput
from emofuse.fusion.folds import check_plan, default_plan, plan_by
from emofuse.fusion.inference import Task
from emofuse.fusion.models import build_model, count_parameters
from emofuse.fusion.presets import PRESETS, Preset, preset_modalities, preset_model_config
from emofuse.fusion.run_config import CONFIG, RunConfig
from emofuse.fusion.score import ScoreResult, score_items
from emofuse.fusion.targets import FRAME_WINDOW_HOP, FRAME_WINDOW_STEPS, label_rate, read_frame_targets
from emofuse.fusion.train import EpochReport, seed_everything, train_fold

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """A finished training run: where it is, its summary metrics (name -> mean/std/n) and a markdown report."""

    run_id: str
    run_dir: str
    model: str
    metrics: dict[str, dict[str, float]]
    markdown: str
    folds: list[dict[str, Any]]
    n_parameters: int
    seconds: float
    throughput: dict[str, float] = field(default_factory=dict)


def train(
    catalog_root: str | os.PathLike[str],
    *,
    model: str = "tacfn",
    feature_sets: Mapping[str, str] | Sequence[str | ModalitySpec] | None = None,
    model_config: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    folds: int | Sequence[Mapping[str, Any]] | None = None,
    device: str | None = None,
    progress: Callable[[EpochReport], None] | None = None,
    run_id: str | None = None,
    align: AlignConfig | Mapping[str, Any] | None = None,
    missing: str = "mask",
    patience: int | None = None,
    weight_decay: float | None = None,
    fold_ids: Sequence[int] | None = None,
    threads: int | None = None,
) -> RunResult:
    """Train ``model`` on a catalog's cached features over a fold plan; write a run.

    ``feature_sets``: modality -> feature-set name/key (or a list of names); default per model
    (see module). ``folds``: number of speaker folds, or a plan (list of dicts with train/val/test
    values of the column ``by``, default ``speaker``; see :mod:`emofuse.fusion.folds`); default:
    the corpus's standard plan when every labelled item comes from one corpus that has one
    (RAVDESS, CREMA-D, MELD, …), else 5 speaker folds (at most the number of speakers). ``fold_ids``:
    train only these folds of the plan. ``run_id`` of an existing run resumes it (finished
    folds are kept, an interrupted fold continues from its last checkpoint; ``epochs`` may
    be raised). ``progress`` gets an :class:`EpochReport` after every epoch. ``threads``:
    torch CPU threads for this call (None: torch's default; 1 is fastest for these small
    models on a busy machine, where spinning OpenMP threads can slow a step 10x).
    """
    with torch_threads(threads):
        return _train(catalog_root, model=model, feature_sets=feature_sets, model_config=model_config,
                      epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, folds=folds, device=device,
                      progress=progress, run_id=run_id, align=align, missing=missing, patience=patience,
                      weight_decay=weight_decay, fold_ids=fold_ids)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's CPU thread count for a block (restored after); None leaves it alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(catalog_root: str | os.PathLike[str], *, model: str, feature_sets: Any, model_config: Any,
           epochs: int | None, batch_size: int | None, lr: float | None, seed: int, folds: Any,
           device: str | None, progress: Any, run_id: str | None, align: Any, missing: str,
           patience: int | None, weight_decay: float | None, fold_ids: Sequence[int] | None) -> RunResult:
    t0 = time.perf_counter()
    if model not in PRESETS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(PRESETS)}")
    preset = PRESETS[model]
    cat = Catalog(catalog_root)
    dev = pick_device(device)
    seed_everything(seed)
    run_id = run_id or new_run_id(model)
    run = cat.run(run_id)
    saved = RunConfig.load(run) if run.exists(CONFIG) else None  # an existing run: resume it
    if saved is not None:
        if saved.model != model:
            raise ValueError(f"run {run_id} trains {saved.model!r}, not {model!r}")
        data_cfg = saved.data
        frame_ids = _frame_labelled(cat, preset)[0] if data_cfg.targets == "frame" else []
        tcfg = dataclasses.replace(saved.train)
        if epochs is not None:
            tcfg.epochs = int(epochs)
        seed = saved.seed
        log.info("resuming run %s (%s): its saved data, model, fold and optimiser settings are used "
                 "(epochs %d)", run_id, run.path, tcfg.epochs)
    else:
        frame_ids, frame_rate = _frame_labelled(cat, preset)
        base = dataclasses.asdict(preset.align)
        if frame_ids:  # per-frame training (RCMA): the paper's windows, steps at the labels' frame rate
            base.update(mode="window", steps=FRAME_WINDOW_STEPS, hop=FRAME_WINDOW_HOP, rate=frame_rate or base["rate"])
        al = align if isinstance(align, AlignConfig) else AlignConfig(**{**base, **(align or {})})
        data_cfg = DataConfig(modalities=preset_modalities(cat, preset, feature_sets), align=al, missing=missing,
                              targets="frame" if frame_ids else "clip")
        over = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                                      weight_decay=weight_decay).items() if v is not None}
        tcfg = dataclasses.replace(preset.train, seed=seed, **over)
    media = cat.media()
    has_target = np.zeros(len(media), bool)
    if data_cfg.label in media:
        has_target |= media[data_cfg.label].notna().to_numpy()
    dims_cols = [c for c in data_cfg.dimensional if c in media]
    if dims_cols and len(dims_cols) == len(data_cfg.dimensional):
        has_target |= media[dims_cols].notna().all(axis=1).to_numpy()
    if frame_ids:
        has_target |= media["item_id"].isin(set(frame_ids)).to_numpy()
    labelled_ids = media["item_id"].to_numpy()[has_target].tolist() if len(media) else []
    if not labelled_ids:
        raise ValueError(f"the media table of {cat.root} has no labelled items ({data_cfg.label!r} or "
                         f"{list(data_cfg.dimensional)}) to train on")
    # unlabelled items (an archive) are not read; a per-frame run learns the frames' V/A only (no class head)
    data = load_aligned(cat, data_cfg, labelled_ids, classes=[] if data_cfg.targets == "frame" else None)
    data_cfg = data.config  # feature sets resolved to keys
    dimensional = data.has_dimensional and preset.registry == "rcma"  # only RCMA has a regression head
    task = Task(n_classes=len(data.classes) if data.has_categories else 0,
                dimensional=tuple(data.config.dimensional) if dimensional else ())
    if not task.n_classes and not task.dimensional:
        raise ValueError("the catalog's media table has no emotion labels (nor valence/arousal) to train on")
    labelled = data.labelled()
    if saved is not None:
        plan = saved.folds
        if saved.feature_sets != data.feature_sets or saved.classes != data.classes:
            raise ValueError(f"run {run_id}: the catalog's feature sets/classes changed since the run started")
    elif folds is None or isinstance(folds, int):  # the corpus's own plan, else a speaker k-fold
        plan = default_plan(media[media["item_id"].isin(set(data.items.loc[labelled, "item_id"]))], k=folds,
                            seed=seed)
    else:
        plan = [dict(f) for f in folds]
    check_plan(plan)
    if any(plan_by(f) == "speaker" for f in plan) and data.items.loc[labelled, "speaker"].isna().any():
        raise ValueError("speaker-independent folds need a speaker for every labelled item; some have none")
    ids = [int(f["fold"]) for f in plan] if saved is None else list(saved.fold_ids)
    if saved is None and fold_ids is not None:
        ids = [int(f) for f in fold_ids]
    by_fold = {int(f["fold"]): f for f in plan}
    # splits and normalisation statistics (training items only)
    split_items = {k: {s: data.items_of(by_fold[k][s], by=plan_by(by_fold[k])) for s in ("train", "val", "test")}
                   for k in ids}
    for k in ids:
        for s, it in split_items[k].items():
            if len(it) == 0:
                raise ValueError(f"fold {k}: no labelled items for the {s} {plan_by(by_fold[k])} values "
                                 f"{by_fold[k][s]}")
    if saved is not None:
        norms = runs.load_norm_stats(run)
        mcfg = saved.model_config
    else:
        norms = {k: NormStats.compute(data, data.rows_of_items(split_items[k]["train"])) for k in ids}
        mcfg = preset_model_config(model, preset, data, task, model_config)
    n_params = count_parameters(build_model(preset.registry, **mcfg))
    config = RunConfig(
        run_id=run_id, model=model, registry_model=preset.registry, model_config=mcfg, n_parameters=n_params,
        feature_sets=data.feature_sets,
        feature_set_names={m.name: cat.feature_set_info(m.feature_set).get("name") for m in data_cfg.modalities},
        data=data_cfg, dims=data.dims, classes=data.classes, task=task, folds=plan, fold_ids=ids, train=tcfg,
        seed=seed, device=str(dev), amp=bool(tcfg.amp and dev.type == "cuda"), dropped=data.dropped,
        completed_folds=list(saved.completed_folds) if saved is not None else [],
        created=saved.created if saved is not None else dt.datetime.now(dt.timezone.utc).isoformat(),
        provenance=collect(), extra=dict(saved.extra) if saved is not None else {})
    config.save(run)
    if saved is None:
        runs.save_norm_stats(run, norms)
    checkpoints = run.checkpoints if run.local else None
    fold_results: list[dict[str, Any]] = []
    throughput: dict[str, float] = {"load_items_per_s": data.n_items / max(data.timings.get("total_s", 0.0), 1e-9)}
    for k in ids:
        name = runs.fold_result_name(k)
        if k in config.completed_folds and run.exists(name):
            fold_results.append(run.read_json(name))
            log.info("fold %d already trained in run %s: kept", k, run_id)
            continue
        sp = split_items[k]
        datasets = {s: FusionDataset(data, data.rows_of_items(sp[s]), norms[k], device=dev) for s in sp}
        if "loader_items_per_s" not in throughput:
            throughput["loader_items_per_s"] = loader_throughput(datasets["train"], tcfg.batch_size)
        seed_everything(seed * 1000 + k)
        net = build_model(preset.registry, **mcfg)
        outcome = train_fold(net, datasets["train"], datasets["val"], datasets["test"], tcfg, task, fold=k,
                             checkpoints=checkpoints, progress=progress)
        runs.save_weights(run, k, outcome.state)
        test_ids = data.items["item_id"].to_numpy()[outcome.test_items].tolist()
        preds: dict[str, Any] = {"item_id": test_ids}
        if outcome.test_probs is not None and task.n_classes:
            preds["true"] = data.items["label"].to_numpy()[outcome.test_items].tolist()
            preds["pred"] = outcome.test_probs.argmax(axis=1).tolist()
            preds["probs"] = outcome.test_probs.tolist()
        if outcome.test_va is not None:
            preds["va"] = outcome.test_va.tolist()
        res = {
            "fold": k, "train_speakers": by_fold[k]["train"], "val_speakers": by_fold[k]["val"],
            "test_speakers": by_fold[k]["test"], "by": plan_by(by_fold[k]), "n_train_items": len(sp["train"]),
            "n_val_items": len(sp["val"]), "n_test_items": len(sp["test"]), "n_train_rows": len(datasets["train"]),
            "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs_run, "stopped_early": outcome.stopped_early,
            "resumed_from": outcome.resumed_from,
            "val": outcome.val_metrics, "test": outcome.test_metrics, "history": outcome.history,
            "seconds": outcome.seconds, "test_predictions": preds,
        }
        run.write_json(name, res)
        config.completed_folds = sorted(set(config.completed_folds) | {k})
        config.save(run)
        if checkpoints is not None:
            checkpoints.clear(k)
        fold_results.append(res)
    if checkpoints is not None:
        checkpoints.remove_if_empty()
    hist_speeds = [h["train_items_per_s"] for f in fold_results for h in f.get("history", [])]
    if hist_speeds:
        throughput["train_items_per_s"] = float(np.median(hist_speeds))
    epoch_s = [h["seconds"] for f in fold_results for h in f.get("history", [])]
    if epoch_s:
        throughput["epoch_seconds"] = float(np.median(epoch_s))
    metrics = runs.write_report(run, config, fold_results, task, throughput, data.timings)
    md = runs.markdown_summary(config, metrics)
    return RunResult(run_id=run_id, run_dir=run.path, model=model, metrics=metrics["summary"], markdown=md,
                     folds=[{k: v for k, v in f.items() if k != "history"} for f in fold_results],
                     n_parameters=n_params, seconds=time.perf_counter() - t0, throughput=throughput)


def _frame_labelled(cat: Catalog, preset: Preset) -> tuple[list[str], float | None]:
    """Items with per-frame valence/arousal labels and the labels' frame rate, when ``preset`` trains per
    frame (RCMA, the one model with a per-step regression head); ([], None) otherwise."""
    if preset.registry != "rcma":
        return [], None
    targets = read_frame_targets(cat, None)
    media_ids = set(cat.media()["item_id"]) if targets else set()
    found = {i: f for i, f in targets.items() if i in media_ids}
    return list(found), label_rate(found)


def score(
    catalog_root: str | os.PathLike[str],
    run_id: str,
    *,
    item_ids: Sequence[str] | None = None,
    fold: str | int = "ensemble",
    device: str | None = None,
    batch_size: int = 64,
    threads: int | None = None,
) -> ScoreResult:
    """Score catalog items (all by default) with run ``run_id`` and write predictions; see :mod:`emofuse.fusion.score`."""
    with torch_threads(threads):
        return score_items(catalog_root, run_id, item_ids=item_ids, fold=fold, device=device, batch_size=batch_size)


__all__ = ["PRESETS", "Preset", "RunResult", "ScoreResult", "score", "torch_threads", "train"]
