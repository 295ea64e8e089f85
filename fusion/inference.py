"""Running a model over a dataset: per-row outputs, per-item means, loss and metrics.

Shared by training (validation and test scores of each epoch and fold) and by scoring
(:mod:`emofuse.fusion.score`). A model maps ``(inputs, masks)`` to ``logits`` (class
scores per row) and/or ``va`` (dimensional predictions per step, pooled over each row's
valid steps). Windows (RCMA) are scored per item: the class probabilities /
dimensional predictions of an item's windows are averaged (:func:`aggregate_items`).

With per-frame targets (``ds.frame_targets``, :mod:`emofuse.fusion.targets`) the ``va`` loss
is 1 - CCC along time within each window (row) over its valid steps, averaged over windows;
metrics follow the ABAW convention: the windows are stitched back onto each clip's steps
(the mean where windows overlap), and the CCC is taken over all valid steps of the split
concatenated, plus per clip (:func:`~emofuse.fusion.metrics.frame_regression_metrics`).

Example (a toy model on 3 hand-made rows of 2 items):
    >>> import numpy as np, pandas as pd, torch
    >>> from emofuse.fusion.data_config import DataConfig, ModalitySpec
    >>> from emofuse.fusion.dataset import AlignedData, FusionDataset, NormStats
    >>> items = pd.DataFrame({"item_id": ["a", "b"], "speaker": "s1", "duration": 1.0, "label": [0, 1]})
    >>> data = AlignedData(DataConfig([ModalitySpec("audio", "egemaps")]), items, row_item=np.array([0, 0, 1]),
    ...                    row_start=np.zeros(3), row_end=np.ones(3),
    ...                    x={"audio": np.array([[[1.0, 0.0]], [[3.0, 0.0]], [[0.0, 2.0]]], np.float32)},
    ...                    mask={"audio": np.ones((3, 1), bool)}, classes=["neutral", "happy"],
    ...                    dims={"audio": 2}, feature_sets={"audio": "egemaps-v1"})
    >>> ds = FusionDataset(data, np.arange(3), NormStats({"audio": np.zeros(2, np.float32)},
    ...                                                  {"audio": np.ones(2, np.float32)}))
    >>> class Toy(torch.nn.Module):           # logits = the features of the first step
    ...     def forward(self, inputs, masks):
    ...         return {"logits": inputs["audio"][:, 0]}
    >>> predict_rows(Toy(), ds)["probs"].argmax(1).tolist()
    [0, 0, 1]
    >>> loss, metrics, preds = evaluate(Toy(), ds, Task(n_classes=2))
    >>> preds["items"].tolist(), metrics["accuracy"]
    ([0, 1], 1.0)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from emofuse.fusion.dataset import FusionDataset
from emofuse.fusion.losses import ccc_loss, cross_entropy
from emofuse.fusion.metrics import classification_metrics, frame_regression_metrics, regression_metrics
from emofuse.fusion.models.common import masked_mean
from emofuse.fusion.targets import stitch_steps


@dataclass
class Task:
    """What the model predicts: ``n_classes`` (0: none) and dimensional target names.

    >>> Task(n_classes=8).monitor, Task(dimensional=("valence", "arousal")).monitor
    ('uar', 'ccc_mean')
    """

    n_classes: int = 0
    dimensional: tuple[str, ...] = ()

    @property
    def monitor(self) -> str:
        """The validation metric that selects the best epoch: UAR with classes, else mean CCC."""
        return "uar" if self.n_classes else "ccc_mean"


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when ``amp``; a no-op elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def step_mask(masks: dict[str, torch.Tensor]) -> torch.Tensor:
    """Steps where any modality is valid (N, L)."""
    return torch.stack(list(masks.values())).any(dim=0)


def batch_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, targets: torch.Tensor,
               masks: dict[str, torch.Tensor], task: Task, *, frame_targets: torch.Tensor | None = None,
               frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on logits plus 1 - CCC on ``va`` (as configured by ``task``).

    Per-clip targets (N, K): the CCC across the batch's windows of their pooled ``va``. Per-frame
    targets (N, L, K) with ``frame_mask`` (N, L): the CCC along time within each window.
    """
    loss = torch.zeros((), dtype=torch.float32, device=labels.device)
    if task.n_classes:
        loss = loss + cross_entropy(out["logits"], labels)
    if task.dimensional and frame_targets is not None:
        loss = loss + ccc_loss(out["va"].float(), frame_targets.float(), frame_mask)
    elif task.dimensional:
        pooled = masked_mean(out["va"].float(), step_mask(masks))
        loss = loss + ccc_loss(pooled.unsqueeze(0), targets.float().unsqueeze(0))
    return loss


@torch.no_grad()
def predict_rows(model: nn.Module, ds: FusionDataset, *, batch_size: int = 64, amp: bool = False,
                 steps: bool = False) -> dict[str, np.ndarray]:
    """Per-row outputs of ``model`` on ``ds``: ``probs`` (rows, C) and/or ``va`` (rows, K), float32 numpy.

    ``steps``: also ``va_steps`` (rows, L, K), the per-step ``va``, and ``step_mask`` (rows, L).
    """
    model.eval()
    probs, vas, va_steps, smasks = [], [], [], []
    for b in ds.batches(batch_size):
        with autocast(ds.device, amp):
            out = model(b.inputs, b.masks)
        if "logits" in out:
            probs.append(torch.softmax(out["logits"].float(), dim=-1).cpu().numpy())
        if "va" in out:
            sm = step_mask(b.masks)
            vas.append(masked_mean(out["va"].float(), sm).cpu().numpy())
            if steps:
                va_steps.append(out["va"].float().cpu().numpy())
                smasks.append(sm.cpu().numpy())
    res: dict[str, np.ndarray] = {}
    if probs:
        res["probs"] = np.concatenate(probs).astype(np.float32)
    if vas:
        res["va"] = np.concatenate(vas).astype(np.float32)
    if va_steps:
        res["va_steps"] = np.concatenate(va_steps).astype(np.float32)
        res["step_mask"] = np.concatenate(smasks)
    return res


def aggregate_items(item_of_row: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of row values per item: (item positions in first-seen order, (items, ...) float32).

    >>> items, means = aggregate_items(np.array([2, 2, 0]), np.array([[1.0], [3.0], [5.0]]))
    >>> items.tolist(), means.tolist()
    ([2, 0], [[2.0], [5.0]])
    """
    items, first, inverse = np.unique(item_of_row, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    sums = np.zeros((len(items),) + values.shape[1:], np.float64)
    np.add.at(sums, inverse, values.astype(np.float64))
    counts = np.bincount(inverse, minlength=len(items)).reshape((-1,) + (1,) * (values.ndim - 1))
    return items[order], (sums / counts)[order].astype(np.float32)


def evaluate(model: nn.Module, ds: FusionDataset, task: Task, *, batch_size: int = 64,
             amp: bool = False) -> tuple[float, dict[str, Any], dict[str, np.ndarray]]:
    """Loss (row level) and item-level metrics (per-frame ones with per-frame targets);
    returns (loss, metrics, item predictions)."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for b in ds.batches(batch_size):
            with autocast(ds.device, amp):
                out = model(b.inputs, b.masks)
            loss = batch_loss(out, b.labels, b.targets, b.masks, task, frame_targets=b.frame_targets,
                              frame_mask=b.frame_mask)
            total += float(loss) * len(b.rows)
            n += len(b.rows)
    per_frame = ds.frame_targets is not None and bool(task.dimensional)
    rows = predict_rows(model, ds, batch_size=batch_size, amp=amp, steps=per_frame)
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
        if per_frame:
            metrics.update(frame_metrics(ds, rows["va_steps"], task.dimensional))
        elif task.dimensional:
            metrics.update(regression_metrics(t, va, names=task.dimensional))
    return total / max(n, 1), metrics, preds


def frame_metrics(ds: FusionDataset, va_steps: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """ABAW per-frame metrics of per-step predictions ``va_steps`` (rows, L, K) against ``ds``'s per-frame targets.

    Windows are stitched back onto their clip's steps (:func:`~emofuse.fusion.targets.stitch_steps`);
    the valid target steps of every clip are scored together and per clip.
    """
    if ds.frame_targets is None or ds.frame_mask is None:
        raise ValueError("the dataset has no per-frame targets")
    mask = ds.frame_mask.cpu().numpy()
    item, _, pred = stitch_steps(ds.item_of_row, ds.row_step, va_steps, mask)
    _, _, true = stitch_steps(ds.item_of_row, ds.row_step, ds.frame_targets.cpu().numpy(), mask)
    return frame_regression_metrics(true, pred, item, names=names)


__all__ = ["Task", "aggregate_items", "autocast", "batch_loss", "evaluate", "frame_metrics", "predict_rows",
           "step_mask"]
