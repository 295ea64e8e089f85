"""A training run: :func:`train` fits one model per fold of a plan on a catalog's cached features
and writes the run folder (see :mod:`emofuse.fusion.runs`); :func:`emofuse.fusion.score.score`
applies a run to catalog items.

``train`` takes these steps, each a function below:

1. :func:`run_settings` — the model (a preset name of the model registry,
   :mod:`emofuse.fusion.models.registry`) and, for a new run, its data and optimisation
   settings; the ``run_id`` of an existing run resumes it with the settings it saved;
2. :func:`load_labelled` — the labelled items of the media table on the model's timeline;
3. :func:`run_task` — what the run predicts: the targets of the data that the model can train
   on (its abilities, never its name);
4. :func:`fold_splits` — the fold plan and the train/val/test items of each fold trained;
5. :func:`write_run_config` — normalisation statistics (training items only), the model config,
   ``config.json``;
6. :func:`train_folds` — per fold, early stopping on the validation split, the weights and the
   test predictions; then the report (:func:`emofuse.fusion.runs.write_report`) and the rows of the
   catalog's ``results/`` table (metrics with bootstrap intervals, :mod:`emofuse.fusion.evaluate`).

Per-frame training: when the model can train per frame (``abilities.per_frame``, RCMA) and the
catalog's labels table has per-frame valence/arousal for the items (Aff-Wild2), the run trains
per frame (``DataConfig.targets = "frame"``): targets per model step, windows of 300 steps every
200 at the labels' frame rate (unless ``align`` says otherwise), 1 - CCC along time within each
window, and ABAW metrics (CCC over all valid frames of the test split, plus the per-video mean).

Every preset default can be overridden; small settings (``epochs=5``, a smaller
``model_config``) make a quick demo.

Example (needs a catalog with extracted features; ``tests/test_fusion_train.py`` builds a
synthetic one):
    >>> res = train("emofuse-data/catalog", model="tacfn", epochs=5)     # doctest: +SKIP
    >>> print(res.markdown)                                              # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from emofuse.catalog.corpora.evaluation import EvaluationPlan, Fold
from emofuse.catalog.provenance import collect, pick_device
from emofuse.catalog.runs import RunFolder, new_run_id
from emofuse.catalog.store import Catalog
from emofuse.fusion import runs
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.dataset import AlignedData, FusionDataset, NormStats, loader_throughput
from emofuse.fusion.evaluate import record_run_results
from emofuse.fusion.folds import check_plan, default_plan
from emofuse.fusion.inference import Task
from emofuse.fusion.models import ModelInputs, ModelSpec, count_parameters, find_preset
from emofuse.fusion.presets import Preset, preset_modalities
from emofuse.fusion.run_config import CONFIG, RunConfig
from emofuse.fusion.targets import FRAME_WINDOW_HOP, FRAME_WINDOW_STEPS, label_rate, read_frame_targets
from emofuse.fusion.torch_threads import torch_threads
from emofuse.fusion.train import EpochReport, FoldOutcome, TrainConfig, seed_everything, train_fold

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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
    folds: int | EvaluationPlan | Sequence[Mapping[str, Any]] | None = None,
    device: str | None = None,
    progress: Callable[[EpochReport], None] | None = None,
    run_id: str | None = None,
    align: AlignConfig | Mapping[str, Any] | None = None,
    missing: str = "mask",
    patience: int | None = None,
    weight_decay: float | None = None,
    fold_ids: Sequence[int] | None = None,
    threads: int | None = None,
    corpus: str | Sequence[str] | None = None,
) -> RunResult:
    """Train ``model`` on a catalog's cached features over a fold plan; write a run.

    ``model``: a preset name (``emofuse.fusion.models.registry.preset_names()``).
    ``feature_sets``: modality -> feature-set name/key (or a list of names); default: the
    preset's. ``folds``: number of speaker folds, or a plan (see :mod:`emofuse.fusion.folds`);
    default: the corpus's standard plan when every labelled item comes from one corpus that has
    one (RAVDESS, CREMA-D, MELD, …), else 5 speaker folds (at most the number of speakers).
    ``fold_ids``: train only these folds of the plan. ``run_id`` of an existing run resumes it
    (finished folds are kept, an interrupted fold continues from its last checkpoint; ``epochs``
    may be raised). ``progress`` gets an :class:`EpochReport` after every epoch. ``threads``:
    torch CPU threads for this call (None: torch's default; see :mod:`emofuse.fusion.torch_threads`).
    ``corpus``: train on the items of this corpus (or these corpora) only (None: every labelled item).
    """
    with torch_threads(threads):
        t0 = time.perf_counter()
        spec, preset = find_preset(model)
        cat = Catalog(catalog_root)
        dev = pick_device(device)
        seed_everything(seed)
        settings = run_settings(cat, spec, preset, run_id, feature_sets=feature_sets, align=align, missing=missing,
                                seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                                weight_decay=weight_decay, corpus=corpus)
        media = training_media(cat, settings.data)
        data = load_labelled(cat, media, spec, settings)
        task = run_task(spec, preset, data)
        plan, splits = fold_splits(data, media, settings, folds, fold_ids)
        config, norms = write_run_config(cat, spec, settings, data, task, plan, splits, model_config, dev)
        fold_results, throughput = train_folds(settings.run, config, data, splits, norms, dev, progress)
        metrics = runs.write_report(settings.run, config, fold_results, task, throughput, data.timings)
        record_run_results(cat.root, config.run_id, seed=settings.seed)  # results/: metrics with intervals
        return RunResult(run_id=config.run_id, run_dir=settings.run.path, model=model, metrics=metrics["summary"],
                         markdown=runs.markdown_summary(config, metrics),
                         folds=[{k: v for k, v in f.items() if k != "history"} for f in fold_results],
                         n_parameters=config.n_parameters, seconds=time.perf_counter() - t0, throughput=throughput)


# --------------------------------------------------------------------------- 1. settings
@dataclass
class RunSettings:
    """What a run trains with before its data is read: the preset, the run folder, the run saved
    there (a resumed run), the data and optimisation settings, the seed, the per-frame items."""

    preset: Preset
    run: RunFolder
    run_id: str
    saved: RunConfig | None
    data: DataConfig
    train: TrainConfig
    seed: int
    frame_ids: list[str]


def run_settings(cat: Catalog, spec: ModelSpec, preset: Preset, run_id: str | None, *,
                 feature_sets: Mapping[str, str] | Sequence[str | ModalitySpec] | None,
                 align: AlignConfig | Mapping[str, Any] | None, missing: str, seed: int, epochs: int | None,
                 batch_size: int | None, lr: float | None, patience: int | None,
                 weight_decay: float | None, corpus: str | Sequence[str] | None = None) -> RunSettings:
    """A new run's settings (the preset's, overridden by the arguments), or a resumed run's saved ones."""
    run_id = run_id or new_run_id(preset.name)
    run = cat.run(run_id)
    saved = RunConfig.load(run) if run.exists(CONFIG) else None  # an existing run: resume it
    if saved is not None:
        if saved.model != preset.name:
            raise ValueError(f"run {run_id} trains {saved.model!r}, not {preset.name!r}")
        frame_ids = frame_labelled(cat, spec)[0] if saved.data.targets == "frame" else []
        tcfg = dataclasses.replace(saved.train)
        if epochs is not None:
            tcfg.epochs = int(epochs)
        log.info("resuming run %s (%s): its saved data, model, fold and optimiser settings are used "
                 "(epochs %d)", run_id, run.path, tcfg.epochs)
        return RunSettings(preset, run, run_id, saved, saved.data, tcfg, saved.seed, frame_ids)
    frame_ids, frame_rate = frame_labelled(cat, spec)
    if not frame_ids and not spec.abilities.per_clip:
        raise ValueError(f"model {preset.name!r} trains per frame only; {cat.root} has no per-frame labels")
    base = dataclasses.asdict(preset.align)
    if frame_ids:  # per-frame training: the paper's windows, steps at the labels' frame rate
        base.update(mode="window", steps=FRAME_WINDOW_STEPS, hop=FRAME_WINDOW_HOP, rate=frame_rate or base["rate"])
    al = align if isinstance(align, AlignConfig) else AlignConfig(**{**base, **(align or {})})
    corpora = None if corpus is None else ((corpus,) if isinstance(corpus, str) else tuple(corpus))
    data_cfg = DataConfig(modalities=preset_modalities(cat, preset, feature_sets), align=al, missing=missing,
                          targets="frame" if frame_ids else "clip", corpora=corpora)
    over = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                                  weight_decay=weight_decay).items() if v is not None}
    tcfg = dataclasses.replace(preset.train, seed=seed, **over)
    return RunSettings(preset, run, run_id, None, data_cfg, tcfg, seed, frame_ids)


def frame_labelled(cat: Catalog, spec: ModelSpec) -> tuple[list[str], float | None]:
    """Items with per-frame valence/arousal labels and the labels' frame rate, when the model can
    train per frame; ([], None) otherwise."""
    if not spec.abilities.per_frame:
        return [], None
    targets = read_frame_targets(cat, None)
    media_ids = set(cat.media()["item_id"]) if targets else set()
    found = {i: f for i, f in targets.items() if i in media_ids}
    return list(found), label_rate(found)


# --------------------------------------------------------------------------- 2. data, 3. task
def training_media(cat: Catalog, data: DataConfig) -> pd.DataFrame:
    """The media rows a run may train on: all of them, or those of ``data.corpora``."""
    media = cat.media()
    if data.corpora is None:
        return media
    have = sorted(set(media["corpus"].dropna())) if len(media) else []
    missing = [c for c in data.corpora if c not in have]
    if missing:
        raise ValueError(f"the catalog {cat.root} has no items of corpus {', '.join(missing)} (it has: "
                         f"{', '.join(have) or 'none'})")
    return media[media["corpus"].isin(data.corpora)].reset_index(drop=True)


def load_labelled(cat: Catalog, media: pd.DataFrame, spec: ModelSpec, settings: RunSettings) -> AlignedData:
    """The items with a training target (class, valence/arousal, per-frame labels) on the run's timeline.

    Unlabelled items (an archive) are not read. A per-frame run learns the frames' V/A only,
    and a model without a class head ignores the classes (no label order).
    """
    cfg = settings.data
    has_target = np.zeros(len(media), bool)
    if cfg.label in media:
        has_target |= media[cfg.label].notna().to_numpy()
    dims_cols = [c for c in cfg.dimensional if c in media]
    if dims_cols and len(dims_cols) == len(cfg.dimensional):
        has_target |= media[dims_cols].notna().all(axis=1).to_numpy()
    if settings.frame_ids:
        has_target |= media["item_id"].isin(set(settings.frame_ids)).to_numpy()
    labelled_ids = media["item_id"].to_numpy()[has_target].tolist() if len(media) else []
    if not labelled_ids:
        raise ValueError(f"the media table of {cat.root} has no labelled items ({cfg.label!r} or "
                         f"{list(cfg.dimensional)}) to train on")
    no_classes = cfg.targets == "frame" or not spec.abilities.categorical
    return load_aligned(cat, cfg, labelled_ids, classes=[] if no_classes else None)


def run_task(spec: ModelSpec, preset: Preset, data: AlignedData) -> Task:
    """What the run predicts: the data's classes and valence/arousal, as far as the model can learn them."""
    can = spec.abilities
    classes = data.has_categories and can.categorical
    dimensional = data.has_dimensional and can.dimensional
    task = Task(n_classes=len(data.classes) if classes else 0,
                dimensional=tuple(data.config.dimensional) if dimensional else ())
    if not task.n_classes and not task.dimensional:
        wants = " or ".join(w for w, ok in (("emotion labels", can.categorical),
                                            ("valence/arousal labels", can.dimensional)) if ok)
        raise ValueError(f"model {preset.name!r} trains on {wants}; the catalog's media table has none to train on")
    return task


# --------------------------------------------------------------------------- 4. folds
def fold_splits(data: AlignedData, media: pd.DataFrame, settings: RunSettings,
                folds: int | EvaluationPlan | Sequence[Mapping[str, Any]] | None,
                fold_ids: Sequence[int] | None) -> tuple[EvaluationPlan, dict[int, dict[str, np.ndarray]]]:
    """The fold plan, and for each fold trained its item positions per split (``train``/``val``/``test``)."""
    saved = settings.saved
    labelled = data.labelled()
    if saved is not None:
        plan = saved.folds
        if saved.feature_sets != data.feature_sets or saved.classes != data.classes:
            raise ValueError(f"run {settings.run_id}: the catalog's feature sets/classes changed since the run started")
    elif folds is None or isinstance(folds, int):  # the corpus's own plan, else a speaker k-fold
        plan = default_plan(media[media["item_id"].isin(set(data.items.loc[labelled, "item_id"]))], k=folds,
                            seed=settings.seed)
    else:
        plan = folds
    plan = check_plan(plan)  # typed, whatever form it was given in
    if any(f.by == "speaker" for f in plan) and data.items.loc[labelled, "speaker"].isna().any():
        raise ValueError("speaker-independent folds need a speaker for every labelled item; some have none")
    ids = plan.indices if saved is None else list(saved.fold_ids)
    if saved is None and fold_ids is not None:
        ids = [int(f) for f in fold_ids]
    by_fold = {f.index: f for f in plan}
    splits = {k: {s: data.items_of(by_fold[k].part(s), by=by_fold[k].by) for s in SPLITS} for k in ids}
    for k in ids:
        for s, it in splits[k].items():
            if len(it) == 0:
                raise ValueError(f"fold {k}: no labelled items for the {s} {by_fold[k].by} values "
                                 f"{by_fold[k].part(s)}")
    return plan, splits


# --------------------------------------------------------------------------- 5. config
def write_run_config(cat: Catalog, spec: ModelSpec, settings: RunSettings, data: AlignedData, task: Task,
                     plan: EvaluationPlan, splits: dict[int, dict[str, np.ndarray]],
                     model_config: Mapping[str, Any] | None,
                     dev: torch.device) -> tuple[RunConfig, dict[int, NormStats]]:
    """The run's ``config.json`` (written) and per-fold normalisation statistics (from the training
    items only; a new run writes them, a resumed one reads its own)."""
    saved, tcfg = settings.saved, settings.train
    if saved is not None:
        norms = runs.load_norm_stats(settings.run)
        mcfg = saved.model_config
    else:
        norms = {k: NormStats.compute(data, data.rows_of_items(splits[k]["train"])) for k in splits}
        inputs = ModelInputs(dims=data.dims, steps=data.config.align.steps, task=task)
        mcfg = spec.run_config(settings.preset, inputs, model_config)
    config = RunConfig(
        run_id=settings.run_id, model=settings.preset.name, registry_model=spec.name, model_config=mcfg,
        n_parameters=count_parameters(spec.build(mcfg)), feature_sets=data.feature_sets,
        feature_set_names={m.name: cat.feature_set_info(m.feature_set).name for m in data.config.modalities},
        data=data.config, dims=data.dims, classes=data.classes, task=task, folds=plan, fold_ids=list(splits),
        train=tcfg, seed=settings.seed, device=str(dev), amp=bool(tcfg.amp and dev.type == "cuda"),
        dropped=data.dropped, completed_folds=list(saved.completed_folds) if saved is not None else [],
        created=saved.created if saved is not None else dt.datetime.now(dt.timezone.utc).isoformat(),
        provenance=collect(), extra=dict(saved.extra) if saved is not None else {})
    config.save(settings.run)
    if saved is None:
        runs.save_norm_stats(settings.run, norms)
    return config, norms


# --------------------------------------------------------------------------- 6. folds trained
def train_folds(run: RunFolder, config: RunConfig, data: AlignedData, splits: dict[int, dict[str, np.ndarray]],
                norms: dict[int, NormStats], dev: torch.device,
                progress: Callable[[EpochReport], None] | None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Train every fold not finished yet (a finished one is read back); each fold's result is written as
    it finishes. Returns the fold results and the throughput figures."""
    checkpoints = run.checkpoints if run.local else None
    fold_results: list[dict[str, Any]] = []
    throughput: dict[str, float] = {"load_items_per_s": data.n_items / max(data.timings.get("total_s", 0.0), 1e-9)}
    for k, sp in splits.items():
        name = runs.fold_result_name(k)
        if k in config.completed_folds and run.exists(name):
            fold_results.append(run.read_json(name))
            log.info("fold %d already trained in run %s: kept", k, config.run_id)
            continue
        datasets = {s: FusionDataset(data, data.rows_of_items(sp[s]), norms[k], device=dev) for s in sp}
        if "loader_items_per_s" not in throughput:
            throughput["loader_items_per_s"] = loader_throughput(datasets["train"], config.train.batch_size)
        seed_everything(config.seed * 1000 + k)
        outcome = train_fold(config.build_model(), datasets["train"], datasets["val"], datasets["test"],
                             config.train, config.task, fold=k, checkpoints=checkpoints, progress=progress)
        runs.save_weights(run, k, outcome.state)
        res = fold_result(config.folds.fold(k), data, sp, len(datasets["train"]), outcome, config.task)
        run.write_json(name, res)
        config.completed_folds = sorted(set(config.completed_folds) | {k})
        config.save(run)
        if checkpoints is not None:
            checkpoints.clear(k)
        fold_results.append(res)
    if checkpoints is not None:
        checkpoints.remove_if_empty()
    history = [h for f in fold_results for h in f.get("history", [])]
    if history:
        throughput["train_items_per_s"] = float(np.median([h["train_items_per_s"] for h in history]))
        throughput["epoch_seconds"] = float(np.median([h["seconds"] for h in history]))
    return fold_results, throughput


def fold_result(fold: Fold, data: AlignedData, split: dict[str, np.ndarray], n_train_rows: int,
                outcome: FoldOutcome, task: Task) -> dict[str, Any]:
    """A trained fold's ``fold-<k>.json``: its plan, sizes, epochs, metrics, history and test predictions."""
    preds: dict[str, Any] = {"item_id": data.items["item_id"].to_numpy()[outcome.test_items].tolist()}
    if outcome.test_probs is not None and task.n_classes:
        preds["true"] = data.items["label"].to_numpy()[outcome.test_items].tolist()
        preds["pred"] = outcome.test_probs.argmax(axis=1).tolist()
        preds["probs"] = outcome.test_probs.tolist()
    if outcome.test_va is not None:
        preds["va"] = outcome.test_va.tolist()
    return {
        "fold": fold.index, "train_speakers": fold.part("train"), "val_speakers": fold.part("val"),
        "test_speakers": fold.part("test"), "by": fold.by, "n_train_items": len(split["train"]),
        "n_val_items": len(split["val"]), "n_test_items": len(split["test"]), "n_train_rows": n_train_rows,
        "best_epoch": outcome.best_epoch, "epochs_run": outcome.epochs_run, "stopped_early": outcome.stopped_early,
        "resumed_from": outcome.resumed_from, "val": outcome.val_metrics, "test": outcome.test_metrics,
        "history": outcome.history, "seconds": outcome.seconds, "test_predictions": preds,
    }


__all__ = ["RunResult", "RunSettings", "fold_splits", "frame_labelled", "load_labelled", "run_settings", "run_task",
           "train", "train_folds", "write_run_config"]
