"""The two entry points the flows and the CLI call: :func:`train` and :func:`score`.

``train`` reads cached features of a catalog, trains one model per speaker-independent
fold (early stopping on a validation split), and writes a run folder (see
:mod:`emofuse.fusion.runs`); ``score`` applies a run to catalog items and writes predictions
(see :mod:`emofuse.fusion.score`).

Models and their defaults (``PRESETS``):

=================  ====================================  =============================  ==============
model              inputs (modality <- feature set)      timeline                        optimisation
=================  ====================================  =============================  ==============
tacfn              face <- faces (target),               32 steps per clip (pool)        Adam 1e-3,
                   audio <- egemaps LLD (query);                                         batch 16, 70 ep.
                   text only when asked (extra input)
rcma               face <- faces, audio <- egemaps,      windows of 100 steps at 25 Hz,  Adam 1e-4, wd
                   text <- text when present             hop 50                          1e-3, batch 12,
                                                                                         50 epochs
concat_mlp         face, audio (+ text when present)     32 steps per clip               Adam 1e-3, 16
unimodal_audio     audio <- egemaps                      32 steps per clip               Adam 1e-3, 16
unimodal_face      face <- faces                         32 steps per clip               Adam 1e-3, 16
=================  ====================================  =============================  ==============

Model hyper-parameters are the papers' (``emofuse.fusion.models``); RCMA's learning rate is 1e-4
instead of the paper's 1e-5, which fine-tunes pre-trained backbones while ours trains from
scratch on features. RCMA predicts valence/arousal (1 - CCC) when the media table has both
columns and classes (cross-entropy) when it has an emotion label; RAVDESS has only classes.
Every argument can be overridden; small settings (``epochs=5``, a smaller
``model_config``) make a quick demo.

Example:
    >>> res = train("emofuse-data/catalog", model="tacfn", epochs=5)     # doctest: +SKIP
    >>> print(res.markdown)                                              # doctest: +SKIP
    >>> score("emofuse-data/catalog", res.run_id).n_written              # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from emofuse.catalog.store import Catalog
from emofuse.fusion import runs
from emofuse.fusion.data import (
    DEFAULT_MODALITY_NAMES,
    AlignConfig,
    AlignedData,
    DataConfig,
    FusionDataset,
    ModalitySpec,
    NormStats,
    load_aligned,
    loader_throughput,
)
from emofuse.fusion.folds import check_plan, make_plan
from emofuse.fusion.models import build_model, count_parameters
from emofuse.fusion.score import ScoreResult, model_config_from_saved, score_items
from emofuse.fusion.train import EpochReport, Task, TrainConfig, clear_checkpoints, pick_device, seed_everything, train_fold

log = logging.getLogger(__name__)


@dataclass
class Preset:
    """Defaults of one model name: registry model, inputs, timeline, optimisation, role config."""

    registry: str
    inputs: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    align: AlignConfig = field(default_factory=AlignConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_config: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "tacfn": Preset("tacfn", {"face": "faces", "audio": "egemaps"},
                    model_config={"target": "face", "query": "audio"}),
    "rcma": Preset("rcma", {"face": "faces", "audio": "egemaps"}, {"text": "text"},
                   align=AlignConfig(mode="window", steps=100, hop=50, rate=25.0),
                   train=TrainConfig(epochs=50, batch_size=12, lr=1e-4, weight_decay=1e-3)),
    "concat_mlp": Preset("concat_mlp", {"face": "faces", "audio": "egemaps"}, {"text": "text"}),
    "unimodal_audio": Preset("unimodal", {"audio": "egemaps"}, model_config={"modality": "audio"}),
    "unimodal_face": Preset("unimodal", {"face": "faces"}, model_config={"modality": "face"}),
}


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


def _modalities(cat: Catalog, preset: Preset,
                feature_sets: Mapping[str, str] | Sequence[str | ModalitySpec] | None) -> list[ModalitySpec]:
    if feature_sets is None:
        present = {cat.feature_set_info(k).get("name") for k in cat.feature_sets()}
        chosen = dict(preset.inputs)
        chosen.update({m: n for m, n in preset.optional.items() if n in present})
        return [ModalitySpec(m, n) for m, n in chosen.items()]
    if isinstance(feature_sets, Mapping):
        return [ModalitySpec(m, n) for m, n in feature_sets.items()]
    out = []
    for f in feature_sets:
        if isinstance(f, ModalitySpec):
            out.append(f)
        else:
            name = cat.feature_set_info(cat.find_feature_set(f)).get("name", f)
            out.append(ModalitySpec(DEFAULT_MODALITY_NAMES.get(name, name), f))
    return out


def _model_config(model: str, preset: Preset, data: AlignedData, task: Task,
                  overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    mods = list(data.dims)
    cfg: dict[str, Any] = {"input_dims": dict(data.dims), **preset.model_config}
    if preset.registry == "tacfn":
        cfg["n_classes"] = task.n_classes
        roles = {**cfg, **(overrides or {})}
        cfg["extra"] = [m for m in mods if m not in (roles["target"], roles["query"])]
    elif preset.registry == "rcma":
        cfg.update(seq_len=data.config.align.steps, n_classes=task.n_classes or None,
                   n_targets=len(task.dimensional))
    elif preset.registry == "concat_mlp":
        cfg["n_classes"] = task.n_classes
    else:
        cfg["n_classes"] = task.n_classes
    cfg.update(overrides or {})
    if preset.registry != "rcma" and not cfg.get("n_classes"):
        raise ValueError(f"model {model!r} needs class labels; the catalog's media table has none")
    return cfg


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
    """Train ``model`` on a catalog's cached features over speaker-independent folds; write a run.

    ``feature_sets``: modality -> feature-set name/key (or a list of names); default per model
    (see module). ``folds``: number of folds, or a plan (list of dicts with train/val/test
    speakers); default RAVDESS protocol or 5 (at most the number of speakers). ``fold_ids``:
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
    run_id = run_id or runs.new_run_id(model)
    run_dir = cat.layout.run(run_id)
    resume = runs.exists(run_dir, runs.CONFIG)
    if resume:
        saved = runs.read_config(run_dir)
        if saved["model"] != model:
            raise ValueError(f"run {run_id} trains {saved['model']!r}, not {model!r}")
        data_cfg = DataConfig.from_dict(saved["data"])
        tcfg = TrainConfig(**saved["train"])
        if epochs is not None:
            tcfg.epochs = int(epochs)
        seed = int(saved["seed"])
        log.info("resuming run %s (%s): its saved data, model, fold and optimiser settings are used "
                 "(epochs %d)", run_id, run_dir, tcfg.epochs)
    else:
        al = align if isinstance(align, AlignConfig) else AlignConfig(**{**dataclasses.asdict(preset.align),
                                                                        **(align or {})})
        data_cfg = DataConfig(modalities=_modalities(cat, preset, feature_sets), align=al, missing=missing)
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
    labelled_ids = media["item_id"].to_numpy()[has_target].tolist() if len(media) else []
    if not labelled_ids:
        raise ValueError(f"the media table of {cat.root} has no labelled items ({data_cfg.label!r} or "
                         f"{list(data_cfg.dimensional)}) to train on")
    data = load_aligned(cat, data_cfg, labelled_ids)  # unlabelled items (an archive) are not read
    data_cfg = data.config  # feature sets resolved to keys
    dimensional = data.has_dimensional and preset.registry == "rcma"  # only RCMA has a regression head
    task = Task(n_classes=len(data.classes) if data.has_categories else 0,
                dimensional=tuple(data.config.dimensional) if dimensional else ())
    if not task.n_classes and not task.dimensional:
        raise ValueError("the catalog's media table has no emotion labels (nor valence/arousal) to train on")
    labelled = data.labelled()
    speakers = sorted(set(data.items.loc[labelled, "speaker"].dropna()))
    if labelled.any() and data.items.loc[labelled, "speaker"].isna().any():
        raise ValueError("speaker-independent folds need a speaker for every labelled item; some have none")
    if resume:
        plan = saved["folds"]
        if saved["feature_sets"] != data.feature_sets or saved["classes"] != data.classes:
            raise ValueError(f"run {run_id}: the catalog's feature sets/classes changed since the run started")
    elif folds is None or isinstance(folds, int):
        plan = make_plan(speakers, k=folds, seed=seed)
    else:
        plan = [dict(f) for f in folds]
    check_plan(plan)
    ids = [int(f["fold"]) for f in plan] if not resume else list(saved["fold_ids"])
    if not resume and fold_ids is not None:
        ids = [int(f) for f in fold_ids]
    by_fold = {int(f["fold"]): f for f in plan}
    # splits and normalisation statistics (training speakers only)
    split_items = {k: {s: data.items_of_speakers(by_fold[k][s]) for s in ("train", "val", "test")} for k in ids}
    for k in ids:
        for s, it in split_items[k].items():
            if len(it) == 0:
                raise ValueError(f"fold {k}: no labelled items for the {s} speakers {by_fold[k][s]}")
    if resume:
        norms = runs.load_norm_stats(run_dir)
    else:
        norms = {k: NormStats.compute(data, data.rows_of_items(split_items[k]["train"])) for k in ids}
    mcfg = _model_config(model, preset, data, task, model_config)
    if resume:
        mcfg = model_config_from_saved(saved)
    n_params = count_parameters(build_model(preset.registry, **mcfg))
    config = {
        "run_id": run_id, "model": model, "registry_model": preset.registry, "model_config": mcfg,
        "n_parameters": n_params, "feature_sets": data.feature_sets,
        "feature_set_names": {m.name: cat.feature_set_info(m.feature_set).get("name") for m in data_cfg.modalities},
        "data": data_cfg.to_dict(), "dims": data.dims, "classes": data.classes,
        "task": {"n_classes": task.n_classes, "dimensional": list(task.dimensional), "monitor": task.monitor},
        "folds": plan, "fold_ids": ids, "train": dataclasses.asdict(tcfg), "seed": seed, "device": str(dev),
        "amp": bool(tcfg.amp and dev.type == "cuda"), "dropped": data.dropped,
        "completed_folds": saved.get("completed_folds", []) if resume else [],
        "created": saved["created"] if resume else dt.datetime.now(dt.timezone.utc).isoformat(),
        "provenance": _provenance(),
    }
    runs.write_json(run_dir, runs.CONFIG, config)
    if not resume:
        runs.save_norm_stats(run_dir, norms)
    ckpt_root = f"{run_dir}/checkpoints" if runs.is_local(run_dir) else None
    fold_results: list[dict[str, Any]] = []
    throughput: dict[str, float] = {"load_items_per_s": data.n_items / max(data.timings.get("total_s", 0.0), 1e-9)}
    for k in ids:
        name = f"folds/fold-{k}.json"
        if k in config["completed_folds"] and runs.exists(run_dir, name):
            fold_results.append(json.loads(runs.read_verified(run_dir, name)))
            log.info("fold %d already trained in run %s: kept", k, run_id)
            continue
        sp = split_items[k]
        datasets = {s: FusionDataset(data, data.rows_of_items(sp[s]), norms[k], device=dev) for s in sp}
        if "loader_items_per_s" not in throughput:
            throughput["loader_items_per_s"] = loader_throughput(datasets["train"], tcfg.batch_size)
        seed_everything(seed * 1000 + k)
        net = build_model(preset.registry, **mcfg)
        outcome = train_fold(net, datasets["train"], datasets["val"], datasets["test"], tcfg, task, fold=k,
                             checkpoint_dir=ckpt_root, progress=progress)
        runs.save_weights(run_dir, k, outcome.state)
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
            "test_speakers": by_fold[k]["test"], "n_train_items": len(sp["train"]), "n_val_items": len(sp["val"]),
            "n_test_items": len(sp["test"]), "n_train_rows": len(datasets["train"]), "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs_run, "stopped_early": outcome.stopped_early,
            "resumed_from": outcome.resumed_from,
            "val": outcome.val_metrics, "test": outcome.test_metrics, "history": outcome.history,
            "seconds": outcome.seconds, "test_predictions": preds,
        }
        runs.write_json(run_dir, name, res)
        config["completed_folds"] = sorted(set(config["completed_folds"]) | {k})
        runs.write_json(run_dir, runs.CONFIG, config)
        if ckpt_root:
            clear_checkpoints(ckpt_root, k)
        fold_results.append(res)
    if ckpt_root and os.path.isdir(ckpt_root) and not os.listdir(ckpt_root):
        os.rmdir(ckpt_root)
    hist_speeds = [h["train_items_per_s"] for f in fold_results for h in f.get("history", [])]
    if hist_speeds:
        throughput["train_items_per_s"] = float(np.median(hist_speeds))
    epoch_s = [h["seconds"] for f in fold_results for h in f.get("history", [])]
    if epoch_s:
        throughput["epoch_seconds"] = float(np.median(epoch_s))
    metrics = _write_report(run_dir, config, fold_results, task, n_params, throughput, data)
    md = runs.markdown_summary(config, metrics)
    return RunResult(run_id=run_id, run_dir=run_dir, model=model, metrics=metrics["summary"], markdown=md,
                     folds=[{k: v for k, v in f.items() if k != "history"} for f in fold_results],
                     n_parameters=n_params, seconds=time.perf_counter() - t0, throughput=throughput)


def _provenance() -> dict[str, Any]:
    try:
        from emofuse.pipeline.provenance import collect
    except ImportError:  # pragma: no cover - pipeline is part of the project
        return {}
    return collect()


def _write_report(run_dir: str, config: dict[str, Any], folds: list[dict[str, Any]], task: Task, n_params: int,
                  throughput: dict[str, float], data: AlignedData) -> dict[str, Any]:
    summary = runs.summarise(folds)
    metrics: dict[str, Any] = {
        "run_id": config["run_id"], "model": config["model"], "n_parameters": n_params,
        "classes": config["classes"], "task": config["task"],
        "folds": [{k: v for k, v in f.items() if k not in ("history", "test_predictions")} for f in folds],
        "summary": summary, "throughput": throughput, "data_timings": data.timings,
    }
    title = f"{config['model']} ({config['run_id']})"
    if task.n_classes:
        cm = runs.summed_confusion(folds, task.n_classes)
        metrics["confusion_matrix"] = cm.tolist()
        acc = summary.get("accuracy", {}).get("mean", float("nan"))
        runs.write_bytes(run_dir, "confusion_matrix.png",
                         runs.plot_confusion(cm, config["classes"], title=f"{title}: accuracy {acc:.3f}"))
    runs.write_bytes(run_dir, "learning_curves.png",
                     runs.plot_learning_curves({f["fold"]: f.get("history", []) for f in folds}, task.monitor,
                                               title=title))
    runs.write_json(run_dir, runs.METRICS, metrics)
    return metrics


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


__all__ = ["PRESETS", "Preset", "RunResult", "ScoreResult", "score", "train"]
