"""Training loop for one fold: seeded, deterministic where torch allows, resumable.

* Device picked at run time (:func:`emofuse.catalog.provenance.pick_device`): CUDA when
  present (AMP: ``torch.autocast`` float16 + ``GradScaler``), CPU otherwise (float32, no AMP).
* Adam; early stopping on the validation split (``patience`` epochs without improvement of
  the monitored metric: UAR for categorical tasks, mean CCC for dimensional-only ones; ties
  go to the lower validation loss); the best-on-validation weights are kept and the test
  split is scored with them only (never best-on-test).
* Losses: cross-entropy on ``logits``; ``1 - CCC`` on ``va``. Dimensional labels in the
  media table are per clip, so the per-step predictions are pooled over each window's valid
  steps and the CCC is taken across the windows of a batch. With per-frame labels
  (``DataConfig.targets="frame"``) the CCC is taken along time within each window (RCMA:
  300 steps, hop 200) over its annotated steps, then averaged over the batch's windows.
* Every epoch writes a checkpoint (:class:`emofuse.catalog.runs.Checkpoints`):
  ``fold-<k>.epoch-<e>.safetensors`` (model, optimizer tensors, best weights, torch RNG
  states) and then ``fold-<k>.json`` (epoch, best, patience counter, history, optimizer
  hyper-parameters, numpy/python RNG states and the checkpoint's sha256) which points to
  it. No pickle anywhere; a crash between the two writes leaves the previous pair valid.
  Resuming restores everything, so an interrupted and resumed fold ends where an
  uninterrupted one would.
* Progress: ``logging`` per epoch and an optional ``progress(EpochReport)`` hook (it may
  raise to stop training; the last checkpoint stays for a resume).

Validation and test scores come from :mod:`emofuse.fusion.inference` (items scored as
the mean of their windows).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from emofuse.catalog.runs import Checkpoints
from emofuse.fusion.dataset import Batch, FusionDataset
from emofuse.fusion.inference import Task, autocast, batch_loss, evaluate

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- configs
@dataclass
class TrainConfig:
    """Optimisation settings for one fold (defaults: TACFN paper: Adam 1e-3, batch 16, 70 epochs)."""

    epochs: int = 70
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    min_delta: float = 0.0
    seed: int = 0
    amp: bool = True
    eval_batch_size: int = 64
    grad_clip: float | None = None


@dataclass
class EpochReport:
    """What the progress hook gets after each epoch."""

    fold: int
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_metrics: dict[str, float]
    monitor: str
    improved: bool
    best_epoch: int
    best_value: float
    seconds: float
    train_items_per_s: float


@dataclass
class FoldOutcome:
    """Result of one fold: best weights (CPU), history, best-on-validation scores, test scores."""

    fold: int
    state: dict[str, torch.Tensor]
    history: list[dict[str, Any]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    val_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    test_items: np.ndarray
    test_probs: np.ndarray | None
    test_va: np.ndarray | None
    seconds: float = 0.0
    resumed_from: int = 0


# --------------------------------------------------------------------------- set-up
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) and ask torch for deterministic kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


# --------------------------------------------------------------------------- checkpoints
def state_to_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached, contiguous CPU copy of the model's state dict (safetensors-ready)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{idx}.{name}"] = val.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[name] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = val
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    return {"state": state, "param_groups": meta["param_groups"]}


def _np_rng_state() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_np_rng_state(s: list[Any]) -> None:
    np.random.set_state((s[0], np.asarray(s[1], np.uint32), s[2], s[3], s[4]))


def _py_rng_state() -> list[Any]:
    version, state, gauss = random.getstate()
    return [version, list(state), gauss]


def _set_py_rng_state(s: list[Any]) -> None:
    random.setstate((s[0], tuple(s[1]), s[2]))


@dataclass
class _Progress:
    epoch: int = 0
    best_value: float = float("-inf")
    best_loss: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def save_checkpoint(checkpoints: Checkpoints, fold: int, model: nn.Module, opt: torch.optim.Optimizer,
                    best_state: dict[str, torch.Tensor] | None, prog: _Progress, shuffle: torch.Generator,
                    scaler: torch.amp.GradScaler | None) -> str:
    """Write this epoch's checkpoint pair (safetensors, then the JSON that points to it)."""
    tensors = {f"model.{k}": v for k, v in state_to_cpu(model).items()}
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    tensors.update(opt_tensors)
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.shuffle"] = shuffle.get_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    meta = {**dataclasses.asdict(prog), "optimizer": opt_meta, "rng_numpy": _np_rng_state(),
            "rng_python": _py_rng_state(), "scaler": scaler.state_dict() if scaler is not None else None}
    return checkpoints.save(fold, prog.epoch, st_save(tensors), meta)


def load_checkpoint(checkpoints: Checkpoints, fold: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The fold's last checkpoint (meta, tensors), or None; refuses a file whose sha256 differs."""
    found = checkpoints.load(fold)
    if found is None:
        return None
    meta, data = found
    return meta, st_load(data)


# --------------------------------------------------------------------------- the loop
def train_step(model: nn.Module, opt: torch.optim.Optimizer, b: Batch, task: Task, *, device: torch.device,
               amp: bool, scaler: Any = None, grad_clip: float | None = None) -> torch.Tensor:
    """One optimiser step on a batch: forward under autocast, loss, backward (scaled when ``scaler``), clip, step."""
    opt.zero_grad(set_to_none=True)
    with autocast(device, amp):
        out = model(b.inputs, b.masks)
    loss = batch_loss(out, b.labels, b.targets, b.masks, task, frame_targets=b.frame_targets,
                      frame_mask=b.frame_mask)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
    return loss


def train_fold(model: nn.Module, train_ds: FusionDataset, val_ds: FusionDataset, test_ds: FusionDataset | None,
               cfg: TrainConfig, task: Task, *, fold: int = 0, checkpoints: Checkpoints | None = None,
               progress: Callable[[EpochReport], None] | None = None) -> FoldOutcome:
    """Train ``model`` on ``train_ds`` with early stopping on ``val_ds``; score ``test_ds`` with the best weights.

    All datasets must live on the same device (the one training runs on). With
    ``checkpoints``, a checkpoint is written every epoch and an existing one is resumed.
    """
    t_start = time.perf_counter()
    device = train_ds.device
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise ValueError(f"fold {fold}: empty split (train {len(train_ds)} rows, val {len(val_ds)} rows)")
    use_amp = bool(cfg.amp and device.type == "cuda")
    model.to(device=device, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    shuffle = torch.Generator(device="cpu")
    shuffle.manual_seed(cfg.seed * 1_000_003 + fold)
    prog = _Progress()
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from = 0
    if checkpoints is not None:
        found = load_checkpoint(checkpoints, fold)
        if found is not None:
            meta, tensors = found
            model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            opt.load_state_dict(_optimizer_state(tensors, meta["optimizer"]))
            best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
            best_state = best or None
            torch.set_rng_state(tensors["rng.torch"])
            shuffle.set_state(tensors["rng.shuffle"])
            if torch.cuda.is_available():
                cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())
                               if f"rng.cuda.{i}" in tensors]
                if cuda_states:
                    torch.cuda.set_rng_state_all(cuda_states)
            _set_np_rng_state(meta["rng_numpy"])
            _set_py_rng_state(meta["rng_python"])
            if scaler is not None and meta.get("scaler"):
                scaler.load_state_dict(meta["scaler"])
            prog = _Progress(**{f.name: meta[f.name] for f in dataclasses.fields(_Progress)})
            resumed_from = prog.epoch
            log.info("fold %d: resuming after epoch %d (best %s=%.4f at epoch %d)", fold, prog.epoch,
                     task.monitor, prog.best_value, prog.best_epoch)
    while prog.epoch < cfg.epochs and not prog.stopped_early:
        epoch = prog.epoch + 1
        t0 = time.perf_counter()
        model.train()
        total, n = 0.0, 0
        for b in train_ds.batches(cfg.batch_size, shuffle=True, generator=shuffle, drop_single=True):
            loss = train_step(model, opt, b, task, device=device, amp=use_amp, scaler=scaler, grad_clip=cfg.grad_clip)
            total += float(loss.detach()) * len(b.rows)
            n += len(b.rows)
        t_train = time.perf_counter() - t0
        val_loss, val_metrics, _ = evaluate(model, val_ds, task, batch_size=cfg.eval_batch_size, amp=use_amp)
        value = float(val_metrics.get(task.monitor, float("nan")))
        if not np.isfinite(value):
            value = -val_loss
        better = value > prog.best_value + cfg.min_delta
        tie = value >= prog.best_value and not better and val_loss < prog.best_loss
        improved = better or tie
        if improved or best_state is None:
            improved = True
            prog.best_value, prog.best_loss, prog.best_epoch, prog.bad_epochs = value, val_loss, epoch, 0
            best_state = state_to_cpu(model)
        else:
            prog.bad_epochs += 1
        scalars = {k: float(v) for k, v in val_metrics.items() if np.isscalar(v)}
        seconds = time.perf_counter() - t0
        prog.epoch = epoch
        prog.history.append({"epoch": epoch, "train_loss": total / max(n, 1), "val_loss": val_loss,
                             **{f"val_{k}": v for k, v in scalars.items()}, "seconds": seconds,
                             "train_items_per_s": n / max(t_train, 1e-9)})
        if prog.bad_epochs >= cfg.patience:
            prog.stopped_early = True
        if checkpoints is not None:
            save_checkpoint(checkpoints, fold, model, opt, best_state, prog, shuffle, scaler)
        log.info("fold %d epoch %d/%d: train loss %.4f, val loss %.4f, val %s %.4f%s (%.1f s, %.0f items/s)",
                 fold, epoch, cfg.epochs, total / max(n, 1), val_loss, task.monitor, value,
                 " *" if improved else "", seconds, n / max(t_train, 1e-9))
        if progress is not None:
            progress(EpochReport(fold=fold, epoch=epoch, epochs=cfg.epochs, train_loss=total / max(n, 1),
                                 val_loss=val_loss, val_metrics=scalars, monitor=task.monitor, improved=improved,
                                 best_epoch=prog.best_epoch, best_value=prog.best_value, seconds=seconds,
                                 train_items_per_s=n / max(t_train, 1e-9)))
    if prog.stopped_early:
        log.info("fold %d: early stop after epoch %d (best epoch %d)", fold, prog.epoch, prog.best_epoch)
    assert best_state is not None
    model.load_state_dict(best_state)
    _, val_metrics, _ = evaluate(model, val_ds, task, batch_size=cfg.eval_batch_size, amp=use_amp)
    test_metrics: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    if test_ds is not None and len(test_ds):
        _, test_metrics, preds = evaluate(model, test_ds, task, batch_size=cfg.eval_batch_size, amp=use_amp)
    return FoldOutcome(fold=fold, state=best_state, history=prog.history, best_epoch=prog.best_epoch,
                       epochs_run=prog.epoch, stopped_early=prog.stopped_early, val_metrics=val_metrics,
                       test_metrics=test_metrics, test_items=preds.get("items", np.zeros(0, np.int64)),
                       test_probs=preds.get("probs"), test_va=preds.get("va"),
                       seconds=time.perf_counter() - t_start, resumed_from=resumed_from)



__all__ = ["EpochReport", "FoldOutcome", "TrainConfig", "load_checkpoint", "save_checkpoint", "seed_everything",
           "train_fold"]
