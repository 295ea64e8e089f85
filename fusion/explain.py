"""Why a run predicted what it did: attributions per modality and over time (pure torch, deterministic).

:func:`explain` takes the same inputs as :func:`emofuse.fusion.predict.predict` (a loaded run
and aligned rows) and gives, for every prediction row (a clip, or a time window of one):

* **per modality** — ``attr_<modality>``: the predicted class's probability minus its
  probability when that modality is masked in the whole row (the models treat a masked
  modality exactly like a missing one), and for valence/arousal heads
  ``attr_<modality>_<target>``: the predicted value minus the value with that modality
  masked. Positive: the modality pushed the prediction the way it went. NaN when the
  modality has no valid step in the row (absent: masking it would change nothing).
* **over time** — for models that attend over time steps (TACFN: ``attention`` over the
  target, the face), the attention weights of each step (they sum to 1 over the row's
  valid target steps; NaN at steps where the target is masked); for the others (RCMA,
  ``concat_mlp``, ``unimodal_*``) an ``occlusion`` profile: the row's time span is cut into
  at most ``segments`` equal ranges and each range is masked in every modality, one at a
  time; its weight is the drop of the predicted class's probability (and of each
  valence/arousal output) when it is masked. A range where no modality has a valid step
  has weight NaN. RCMA rows are several model windows: a range is masked in every window
  it overlaps, and the drop is that of the mean over the windows (as scoring averages them).

Fold ensembles: every number is the mean over the folds (as the probabilities are); the
class is the ensemble's predicted class. All passes run in eval mode without gradients,
in fixed batches, so two calls give the same numbers.

Example (a toy model whose logits are its face input's mean; the audio is ignored):
    >>> import numpy as np, pandas as pd, torch
    >>> from types import SimpleNamespace
    >>> from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
    >>> from emofuse.fusion.dataset import AlignedData, NormStats
    >>> from emofuse.fusion.inference import Task
    >>> from emofuse.fusion.models.common import get_mask, masked_mean
    >>> class FaceOnly(torch.nn.Module):
    ...     def forward(self, inputs, masks):
    ...         return {"logits": masked_mean(inputs["face"], get_mask(inputs["face"], masks, "face"))}
    >>> cfg = DataConfig([ModalitySpec("face", "f"), ModalitySpec("audio", "a")], align=AlignConfig(steps=2))
    >>> items = pd.DataFrame({"item_id": ["a", "b"], "duration": 2.0, "label": -1, "start": 0.0, "end": 2.0})
    >>> face = np.array([[[3.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    >>> data = AlignedData(cfg, items, row_item=np.arange(2), row_start=np.zeros(2), row_end=np.full(2, 2.0),
    ...                    x={"face": face, "audio": np.ones((2, 2, 1), np.float32)},
    ...                    mask={"face": np.array([[True, True], [False, False]]), "audio": np.ones((2, 2), bool)},
    ...                    classes=["happy", "sad"], dims={"face": 2, "audio": 1}, feature_sets={})
    >>> norm = NormStats({"face": np.zeros(2, np.float32), "audio": np.zeros(1, np.float32)},
    ...                  {"face": np.ones(2, np.float32), "audio": np.ones(1, np.float32)})
    >>> run = SimpleNamespace(models={0: FaceOnly()}, norms={0: norm}, device=torch.device("cpu"),
    ...                       classes=["happy", "sad"], task=Task(n_classes=2))
    >>> ex = explain(run, data, segments=2)
    >>> ex.attributions.set_index("item_id").astype(float).round(3).to_dict("index")  # b has no face: NaN
    {'a': {'attr_face': 0.381, 'attr_audio': 0.0}, 'b': {'attr_face': nan, 'attr_audio': 0.0}}
    >>> t = ex.time[ex.time.item_id == "a"].astype({"weight": float}).round(3)  # masking the 3.0 step lowers p
    >>> ex.kind, t[["start", "end", "weight", "target"]].values.tolist()
    ('occlusion', [[0.0, 1.0, 0.15, 'happy'], [1.0, 2.0, -0.072, 'happy']])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from emofuse.catalog.predictions import window_label
from emofuse.catalog.schemas import TIME_ATTRIBUTION_COLUMNS, attribution_columns
from emofuse.fusion.align import segment_edges
from emofuse.fusion.dataset import AlignedData, FusionDataset
from emofuse.fusion.inference import aggregate_items, step_mask
from emofuse.fusion.models.common import masked_mean

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.fusion.predict import LoadedRun

#: Most occlusion ranges per prediction row.
MAX_SEGMENTS = 32
ATTENTION = "attention"
OCCLUSION = "occlusion"


@dataclass
class Explanation:
    """Attributions of the prediction rows of one :class:`AlignedData`.

    ``attributions``: one row per prediction row, in :func:`~emofuse.fusion.predict.predict`'s
    order: ``item_id`` and the ``attr_*`` columns (float32). ``time``: one row per step of
    each (prediction row, target) profile, in :data:`~emofuse.catalog.schemas.TIME_ATTRIBUTION_COLUMNS`.
    ``kind``: ``attention`` or ``occlusion``.
    """

    attributions: pd.DataFrame
    time: pd.DataFrame
    kind: str

    @property
    def columns(self) -> list[str]:
        """The ``attr_*`` column names."""
        return [c for c in self.attributions if c != "item_id"]


# --------------------------------------------------------------------------- forward passes
@torch.no_grad()
def _forward(model: nn.Module, ds: FusionDataset, rows: np.ndarray, masks: dict[str, np.ndarray] | None,
             batch_size: int, *, attention: bool = False) -> dict[str, np.ndarray]:
    """Outputs of ``model`` on dataset rows ``rows`` with ``masks`` (modality -> (len(rows), L) bool;
    None: the data's own): ``probs`` (softmax), ``va`` (pooled over valid steps), ``attention``."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {"probs": [], "va": [], "attention": []}
    for s in range(0, len(rows), batch_size):
        idx = torch.as_tensor(rows[s:s + batch_size], dtype=torch.long, device=ds.device)
        if masks is None:
            mb = {m: t.index_select(0, idx) for m, t in ds.mask.items()}
        else:
            mb = {m: torch.as_tensor(a[s:s + batch_size], dtype=torch.bool, device=ds.device) for m, a in masks.items()}
        xb = ds.inputs(idx, mb)
        res = model(xb, mb)
        if "logits" in res:
            out["probs"].append(torch.softmax(res["logits"].float(), dim=-1).cpu().numpy())
        if "va" in res:
            out["va"].append(masked_mean(res["va"].float(), step_mask(mb)).cpu().numpy())
        if attention and "attention" in res:
            out["attention"].append(res["attention"].float().cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items() if v}


def _values(out: dict[str, np.ndarray], cls: np.ndarray | None, n_dims: int) -> np.ndarray:
    """(rows, targets) float64: the probability of class ``cls[row]`` (when classes), then the dimensional outputs."""
    cols = []
    if cls is not None:
        cols.append(out["probs"][np.arange(len(cls)), cls][:, None])
    if n_dims:
        cols.append(out["va"][:, :n_dims])
    return np.concatenate(cols, axis=1).astype(np.float64)


def _group_mean(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    sums = np.zeros((n_groups,) + values.shape[1:], np.float64)
    np.add.at(sums, group, values)
    counts = np.bincount(group, minlength=n_groups).reshape((-1,) + (1,) * (values.ndim - 1))
    return sums / np.maximum(counts, 1)


# --------------------------------------------------------------------------- step times
def step_edges(data: AlignedData, modality: str, row: int) -> np.ndarray:
    """Edges (L + 1,) in seconds of the steps of ``modality`` in model row ``row``."""
    al = data.config.align
    n = data.x[modality].shape[1]
    if al.mode == "fixed":
        return segment_edges(data.config, modality, float(data.row_start[row]), float(data.row_end[row]))
    return float(data.row_start[row]) + np.arange(n + 1, dtype=np.float64) / al.rate


def _segment_edges(data: AlignedData, ws: float, we: float, segments: int) -> np.ndarray:
    """Edges of the occlusion ranges of a prediction row spanning ``[ws, we)``."""
    al = data.config.align
    if al.mode == "fixed":
        n_bins = max(x.shape[1] for x in data.x.values())
    else:
        n_bins = int(np.ceil((we - ws) * al.rate - 1e-6))
    return np.linspace(ws, we, max(1, min(n_bins, int(segments))) + 1)


# --------------------------------------------------------------------------- the entry point
def explain(run: LoadedRun | Any, data: AlignedData, *, fold: str | int = "ensemble", batch_size: int = 64,
            segments: int = MAX_SEGMENTS) -> Explanation:
    """Attributions per modality and over time of every prediction row of ``data`` (see the module docstring).

    ``run``: a :class:`~emofuse.fusion.predict.LoadedRun` (``models``, ``norms``, ``device``,
    ``classes``, ``task``); ``fold``: ``ensemble`` or one loaded fold, as for ``predict``.
    """
    folds = sorted(run.models) if str(fold) == "ensemble" else [int(fold)]
    mods = list(data.x)
    classes = list(run.classes) if run.task.n_classes else []
    dims = list(run.task.dimensional)
    cols = attribution_columns(mods, categorical=bool(classes), dimensional=dims)
    targets_dim = len(dims)
    n_rows = data.n_rows
    if not n_rows:
        return Explanation(pd.DataFrame({"item_id": [], **{c: np.zeros(0, np.float32) for c in cols}}),
                           pd.DataFrame({c: [] for c in TIME_ATTRIBUTION_COLUMNS}), OCCLUSION)
    groups, first, group = np.unique(data.row_item, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in first-seen order, as predict() lists them
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[group.reshape(-1)]
    items = groups[order]
    n_groups = len(items)
    rows_all = np.arange(n_rows)
    n_in_group = np.bincount(group, minlength=n_groups).astype(np.float64)
    datasets = {f: FusionDataset(data, rows_all, run.norms[f], device=run.device) for f in folds}

    # full outputs, and the ensemble's class per prediction row (exactly as predict() computes it)
    full = {f: _forward(run.models[f], datasets[f], rows_all, None, batch_size, attention=True) for f in folds}
    cls_group = None
    if classes:
        probs_sum = sum(aggregate_items(data.row_item, full[f]["probs"])[1].astype(np.float64) for f in folds)
        cls_group = (probs_sum / len(folds)).astype(np.float32).argmax(axis=1)
    cls_row = cls_group[group] if cls_group is not None else None
    v_full = {f: _values(full[f], cls_row, targets_dim) for f in folds}
    n_targets = (1 if classes else 0) + targets_dim

    # per modality: mask it in every row of the prediction row
    attr = np.full((n_groups, len(mods), n_targets), np.nan, np.float64)
    for j, m in enumerate(mods):
        present_row = data.mask[m].any(axis=1)
        present = np.bincount(group, weights=present_row.astype(np.float64), minlength=n_groups) > 0
        rows = np.flatnonzero(present_row)  # rows without the modality are unchanged by masking it
        if not len(rows):
            continue
        masks = {k: data.mask[k][rows] & (k != m) for k in mods}
        drop = np.zeros((n_groups, n_targets), np.float64)
        for f in folds:
            v = _values(_forward(run.models[f], datasets[f], rows, masks, batch_size),
                        cls_row[rows] if cls_row is not None else None, targets_dim)
            d = np.zeros((n_rows, n_targets))
            d[rows] = v_full[f][rows] - v
            drop += _group_mean(d, group, n_groups)
        attr[present, j] = drop[present] / len(folds)
    off = 1 if classes else 0  # in the order of attribution_columns(): classes, then per modality each target
    values = [attr[:, j, 0] for j in range(len(mods))] if classes else []
    values += [attr[:, j, off + t] for j in range(len(mods)) for t in range(targets_dim)]
    attributions = pd.DataFrame({"item_id": data.items["item_id"].to_numpy()[items],
                                 **{c: v.astype(np.float32) for c, v in zip(cols, values)}})

    # over time
    target_mod = getattr(getattr(run.models[folds[0]], "config", None), "target", None)
    kind = ATTENTION if "attention" in full[folds[0]] and target_mod in data.x else OCCLUSION
    labels = [classes[c] for c in cls_group] if cls_group is not None else [None] * n_groups
    target_names = [([lab] if lab is not None else []) + dims for lab in labels]
    if kind == ATTENTION:
        time = _attention_rows(data, full, folds, group, n_groups, items, target_mod, target_names)
    else:
        time = _occlusion_rows(run, data, datasets, folds, v_full, cls_row, targets_dim, group, n_in_group, items,
                               target_names, batch_size, segments)
    time.insert(1, "fold", str(fold))
    time.insert(2, "window", window_label(getattr(data, "windows", None)))
    time["kind"] = kind
    return Explanation(attributions=attributions, time=time[TIME_ATTRIBUTION_COLUMNS], kind=kind)


def _bounds(data: AlignedData, items: np.ndarray, g: int) -> tuple[float, float]:
    meta = data.items.iloc[int(items[g])]
    ws = float(meta["start"]) if "start" in meta else 0.0
    we = float(meta["end"]) if "end" in meta else float(meta["duration"])
    return ws, we


_PROFILE = ("item_id", "window_start", "window_end", "start", "end", "weight", "target")


def _frame(data: AlignedData, items: np.ndarray, g: int, starts: np.ndarray, ends: np.ndarray,
           weights: np.ndarray, targets: list[str]) -> dict[str, np.ndarray]:
    """Long rows of one prediction row's profiles (``weights``: (steps, targets)), as columns."""
    ws, we = _bounds(data, items, g)
    n, k = len(starts), len(targets)
    return {"item_id": np.full(n * k, data.items["item_id"].iloc[int(items[g])], dtype=object),
            "window_start": np.full(n * k, ws), "window_end": np.full(n * k, we),
            "start": np.tile(starts, k), "end": np.tile(ends, k),
            "weight": weights.T.reshape(-1).astype(np.float32), "target": np.repeat(np.asarray(targets, object), n)}


def _concat(frames: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One frame of the profiles' columns (an empty one without profiles)."""
    if not frames:
        return pd.DataFrame({c: [] for c in _PROFILE})
    return pd.DataFrame({c: np.concatenate([f[c] for f in frames]) for c in _PROFILE})


def _attention_rows(data: AlignedData, full: dict[int, dict[str, np.ndarray]], folds: list[int], group: np.ndarray,
                    n_groups: int, items: np.ndarray, target: str, target_names: list[list[str]]) -> pd.DataFrame:
    """Mean attention over the folds per target step; rows of one prediction row on one grid of steps."""
    att = sum(full[f]["attention"].astype(np.float64) for f in folds) / len(folds)
    att = np.where(data.mask[target], att, np.nan)
    names = [t[:1] for t in target_names]  # attention does not depend on the target: one profile
    rate = data.config.align.rate
    frames = []
    for g in range(n_groups):
        rows = np.flatnonzero(group == g)
        if len(rows) == 1:
            e = step_edges(data, target, int(rows[0]))
            frames.append(_frame(data, items, g, e[:-1], e[1:], att[rows[0]][:, None], names[g]))
            continue
        ws, we = _bounds(data, items, g)  # several model windows on one grid of 1/rate s: mean per step
        first = np.rint((data.row_start[rows] - ws) * rate).astype(np.int64)
        n = int(first.max()) + att.shape[1]
        sums, counts = np.zeros(n), np.zeros(n)
        for r, s in zip(rows, first):
            ok = np.isfinite(att[r])
            sums[s:s + att.shape[1]] += np.where(ok, att[r], 0.0)
            counts[s:s + att.shape[1]] += ok
        starts = ws + np.arange(n) / rate
        keep = starts < we
        w = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)[keep]
        frames.append(_frame(data, items, g, starts[keep], np.minimum(starts[keep] + 1 / rate, we), w[:, None],
                             names[g]))
    return _concat(frames)


def _occlusion_rows(run: Any, data: AlignedData, datasets: dict[int, FusionDataset], folds: list[int],
                    v_full: dict[int, np.ndarray], cls_row: np.ndarray | None, n_dims: int, group: np.ndarray,
                    n_in_group: np.ndarray, items: np.ndarray, target_names: list[list[str]], batch_size: int,
                    segments: int) -> pd.DataFrame:
    """Drop of each target when one time range is masked in every modality, per prediction row."""
    mods = list(data.x)
    n_groups = len(items)
    seg_edges = [_segment_edges(data, *_bounds(data, items, g), segments) for g in range(n_groups)]
    var_row: list[int] = []
    var_seg: list[int] = []
    var_mask: dict[str, list[np.ndarray]] = {m: [] for m in mods}
    touched = [np.zeros(len(e) - 1, bool) for e in seg_edges]
    for r in range(data.n_rows):
        g = int(group[r])
        e = seg_edges[g]
        seg_of = {}
        for m in mods:
            se = step_edges(data, m, r)
            centre = (se[:-1] + se[1:]) / 2
            seg_of[m] = np.clip(np.searchsorted(e, centre, side="right") - 1, 0, len(e) - 2)
        hit = sorted({int(k) for m in mods for k in seg_of[m][data.mask[m][r]]})
        for k in hit:
            var_row.append(r)
            var_seg.append(k)
            touched[g][k] = True
            for m in mods:
                var_mask[m].append(data.mask[m][r] & (seg_of[m] != k))
    rows = np.asarray(var_row, np.int64)
    segs = np.asarray(var_seg, np.int64)
    n_targets = (1 if cls_row is not None else 0) + n_dims
    offset = np.concatenate([[0], np.cumsum([len(e) - 1 for e in seg_edges])]).astype(np.int64)
    weights = np.zeros((int(offset[-1]), n_targets))  # every range of every prediction row, flat
    if len(rows):
        masks = {m: np.stack(v) for m, v in var_mask.items()}
        flat = offset[group[rows]] + segs
        for f in folds:
            v = _values(_forward(run.models[f], datasets[f], rows, masks, batch_size),
                        cls_row[rows] if cls_row is not None else None, n_dims)
            np.add.at(weights, flat, (v_full[f][rows] - v) / n_in_group[group[rows]][:, None])
    frames = []
    for g in range(n_groups):
        w = np.where(touched[g][:, None], weights[offset[g]:offset[g + 1]] / len(folds), np.nan)
        e = seg_edges[g]
        frames.append(_frame(data, items, g, e[:-1], e[1:], w, target_names[g]))
    return _concat(frames)


__all__ = ["ATTENTION", "Explanation", "MAX_SEGMENTS", "OCCLUSION", "explain", "step_edges"]
