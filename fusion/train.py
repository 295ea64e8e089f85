"""Training loop for one fold: seeded, deterministic where torch allows, resumable.

* Device picked at run time (:func:`pick_device`): CUDA when present (AMP: ``torch.autocast``
  float16 + ``GradScaler``), CPU otherwise (float32, no AMP).
* Adam; early stopping on the validation split (``patience`` epochs without improvement of
  the monitored metric: UAR for categorical tasks, mean CCC for dimensional-only ones; ties
  go to the lower validation loss); the best-on-validation weights are kept and the test
  split is scored with them only (never best-on-test).
* Losses: cross-entropy on ``logits``; ``1 - CCC`` on ``va``. Dimensional labels in the
  media table are per clip, so the per-step predictions are pooled over each window's valid
  steps and the CCC is taken across the windows of a batch.
* Every epoch writes a checkpoint: ``fold-<k>.epoch-<e>.safetensors`` (model, optimizer
  tensors, best weights, torch RNG states) and then ``fold-<k>.json`` (epoch, best,
  patience counter, history, optimizer hyper-parameters, numpy/python RNG states and the
  checkpoint's sha256) which points to it. No pickle anywhere; a crash between the two
  writes leaves the previous pair valid. Resuming restores everything, so an interrupted
  and resumed fold ends where an uninterrupted one would.
* Progress: ``logging`` per epoch and an optional ``progress(EpochReport)`` hook (it may
  raise to stop training; the last checkpoint stays for a resume).

Windows (RCMA) are scored per item: the class probabilities / dimensional predictions of
an item's windows are averaged.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
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

from emofuse.fusion.data import FusionDataset
from emofuse.fusion.losses import ccc_loss, cross_entropy
from emofuse.fusion.metrics import classification_metrics, regression_metrics
from emofuse.fusion.models.common import masked_mean

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
class Task:
    """What the model predicts: ``n_classes`` (0: none) and dimensional target names."""

    n_classes: int = 0
    dimensional: tuple[str, ...] = ()

    @property
    def monitor(self) -> str:
        return "uar" if self.n_classes else "ccc_mean"


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
def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the one given, else ``cuda`` when available, else ``cpu``."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available here")
        return dev
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) and ask torch for deterministic kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when ``amp``; a no-op elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- losses, prediction
def step_mask(masks: dict[str, torch.Tensor]) -> torch.Tensor:
    """Steps where any modality is valid (N, L)."""
    return torch.stack(list(masks.values())).any(dim=0)


def batch_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, targets: torch.Tensor,
               masks: dict[str, torch.Tensor], task: Task) -> torch.Tensor:
    """Cross-entropy on logits plus 1 - CCC on window-pooled ``va`` (as configured by ``task``)."""
    loss = torch.zeros((), dtype=torch.float32, device=labels.device)
    if task.n_classes:
        loss = loss + cross_entropy(out["logits"], labels)
    if task.dimensional:
        pooled = masked_mean(out["va"].float(), step_mask(masks))
        loss = loss + ccc_loss(pooled.unsqueeze(0), targets.float().unsqueeze(0))
    return loss


@torch.no_grad()
def predict_rows(model: nn.Module, ds: FusionDataset, *, batch_size: int = 64,
                 amp: bool = False) -> dict[str, np.ndarray]:
    """Per-row outputs of ``model`` on ``ds``: ``probs`` (rows, C) and/or ``va`` (rows, K), float32 numpy."""
    model.eval()
    probs, vas = [], []
    for b in ds.batches(batch_size):
        with autocast(ds.device, amp):
            out = model(b.inputs, b.masks)
        if "logits" in out:
            probs.append(torch.softmax(out["logits"].float(), dim=-1).cpu().numpy())
        if "va" in out:
            vas.append(masked_mean(out["va"].float(), step_mask(b.masks)).cpu().numpy())
    res: dict[str, np.ndarray] = {}
    if probs:
        res["probs"] = np.concatenate(probs).astype(np.float32)
    if vas:
        res["va"] = np.concatenate(vas).astype(np.float32)
    return res


def aggregate_items(item_of_row: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of row values per item: (item positions in first-seen order, (items, ...) float32)."""
    items, first, inverse = np.unique(item_of_row, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    sums = np.zeros((len(items),) + values.shape[1:], np.float64)
    np.add.at(sums, inverse, values.astype(np.float64))
    counts = np.bincount(inverse, minlength=len(items)).reshape((-1,) + (1,) * (values.ndim - 1))
    return items[order], (sums / counts)[order].astype(np.float32)


def evaluate(model: nn.Module, ds: FusionDataset, task: Task, *, batch_size: int = 64,
             amp: bool = False) -> tuple[float, dict[str, Any], dict[str, np.ndarray]]:
    """Loss (row level) and item-level metrics; returns (loss, metrics, item predictions)."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for b in ds.batches(batch_size):
            with autocast(ds.device, amp):
                out = model(b.inputs, b.masks)
            total += float(batch_loss(out, b.labels, b.targets, b.masks, task)) * len(b.rows)
            n += len(b.rows)
    rows = predict_rows(model, ds, batch_size=batch_size, amp=amp)
    metrics: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    labels = ds.labels.cpu().numpy()
    targets = ds.targets.cpu().numpy()
    if "probs" in rows:
        items, probs = aggregate_items(ds.item_of_row, rows["probs"])
        _, y = aggregate_items(ds.item_of_row, labels[:, None].astype(np.float64))
        preds.update(items=items, probs=probs)
        if task.n_classes:
            metrics.update(classification_metrics(y[:, 0].astype(int), probs.argmax(1), task.n_classes))
    if "va" in rows:
        items, va = aggregate_items(ds.item_of_row, rows["va"])
        _, t = aggregate_items(ds.item_of_row, targets)
        preds.update(items=items, va=va)
        if task.dimensional:
            metrics.update(regression_metrics(t, va, names=task.dimensional))
    return total / max(n, 1), metrics, preds


# --------------------------------------------------------------------------- checkpoints
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def save_checkpoint(ckpt_dir: str, fold: int, model: nn.Module, opt: torch.optim.Optimizer,
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
    data = st_save(tensors)
    name = f"fold-{fold}.epoch-{prog.epoch:04d}.safetensors"
    _write_atomic(os.path.join(ckpt_dir, name), data)
    meta = {"fold": fold, "checkpoint": name, "sha256": _sha256(data), **dataclasses.asdict(prog),
            "optimizer": opt_meta, "rng_numpy": _np_rng_state(), "rng_python": _py_rng_state(),
            "scaler": scaler.state_dict() if scaler is not None else None}
    _write_atomic(os.path.join(ckpt_dir, f"fold-{fold}.json"),
                  json.dumps(meta, default=_json_default).encode())
    for old in os.listdir(ckpt_dir):  # keep only the checkpoint the JSON names
        if old.startswith(f"fold-{fold}.epoch-") and old != name:
            os.remove(os.path.join(ckpt_dir, old))
    return name


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if torch.is_tensor(o):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def load_checkpoint(ckpt_dir: str, fold: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The fold's last checkpoint (meta, tensors), or None; refuses a file whose sha256 differs."""
    meta_path = os.path.join(ckpt_dir, f"fold-{fold}.json")
    if not os.path.exists(meta_path):
        return None
    with open(meta_path, "rb") as f:
        meta = json.loads(f.read())
    path = os.path.join(ckpt_dir, meta["checkpoint"])
    if not meta["checkpoint"].endswith(".safetensors"):
        raise ValueError(f"checkpoint {path} is not a safetensors file; refusing to load it")
    with open(path, "rb") as f:
        data = f.read()
    if _sha256(data) != meta["sha256"]:
        raise ValueError(f"checkpoint {path} does not match the sha256 recorded in {meta_path}; refusing to load it")
    return meta, st_load(data)


# --------------------------------------------------------------------------- the loop
def train_fold(model: nn.Module, train_ds: FusionDataset, val_ds: FusionDataset, test_ds: FusionDataset | None,
               cfg: TrainConfig, task: Task, *, fold: int = 0, checkpoint_dir: str | None = None,
               progress: Callable[[EpochReport], None] | None = None) -> FoldOutcome:
    """Train ``model`` on ``train_ds`` with early stopping on ``val_ds``; score ``test_ds`` with the best weights.

    All datasets must live on the same device (the one training runs on). With
    ``checkpoint_dir``, a checkpoint is written every epoch and an existing one is resumed.
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
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
        found = load_checkpoint(checkpoint_dir, fold)
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
            opt.zero_grad(set_to_none=True)
            with autocast(device, use_amp):
                out = model(b.inputs, b.masks)
            loss = batch_loss(out, b.labels, b.targets, b.masks, task)
            if scaler is not None:
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
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
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, fold, model, opt, best_state, prog, shuffle, scaler)
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


def clear_checkpoints(checkpoint_dir: str, fold: int) -> None:
    """Remove a finished fold's checkpoint files."""
    if not os.path.isdir(checkpoint_dir):
        return
    for name in os.listdir(checkpoint_dir):
        if name.startswith(f"fold-{fold}.") and (name.endswith(".safetensors") or name.endswith(".json")):
            os.remove(os.path.join(checkpoint_dir, name))


__all__ = [
    "EpochReport", "FoldOutcome", "Task", "TrainConfig", "aggregate_items", "autocast", "batch_loss",
    "clear_checkpoints", "evaluate", "load_checkpoint", "pick_device", "predict_rows", "save_checkpoint",
    "seed_everything", "train_fold",
]
