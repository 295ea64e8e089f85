"""Aligned features in memory, their normalisation, and batches for training and scoring.

:class:`AlignedData` is what :func:`emofuse.fusion.align.load_aligned` returns: every row
(a clip, or a window of one) on the common timeline: features as arrays in memory or, from
``load_aligned``, as :class:`~emofuse.fusion.row_store.RowArray` rows in a scratch file, so
memory does not grow with the corpus. :class:`NormStats` are z-normalisation statistics from
the valid steps of the training rows only (stored with a run), computed block by block.
:class:`FusionDataset` keeps a split's masks, labels and targets on its device and reads and
normalises the features of each batch when it is asked for it.

Example (a hand-made AlignedData: 3 clips, one modality of 2 steps × 2 features):
    >>> import numpy as np, pandas as pd, torch
    >>> from emofuse.fusion.data_config import DataConfig, ModalitySpec
    >>> items = pd.DataFrame({"item_id": ["a", "b", "c"], "speaker": ["s1", "s1", "s2"],
    ...                       "duration": [1.0, 1.0, 1.0], "label": [0, 1, -1]})
    >>> data = AlignedData(DataConfig([ModalitySpec("audio", "egemaps")]), items, row_item=np.arange(3),
    ...                    row_start=np.zeros(3), row_end=np.ones(3),
    ...                    x={"audio": np.arange(12, dtype=np.float32).reshape(3, 2, 2)},
    ...                    mask={"audio": np.array([[True, True], [True, False], [True, True]])},
    ...                    classes=["neutral", "happy"], dims={"audio": 2}, feature_sets={"audio": "egemaps-v1"})
    >>> train = data.rows_of_items(data.items_of_speakers(["s1"]))
    >>> train.tolist()
    [0, 1]
    >>> norm = NormStats.compute(data, train)             # 3 valid steps of the training rows
    >>> norm.mean["audio"].tolist()
    [2.0, 3.0]
    >>> ds = FusionDataset(data, train, norm)
    >>> b = ds.batch(torch.tensor([1, 0]))
    >>> tuple(b.inputs["audio"].shape), b.labels.tolist(), b.masks["audio"][0].tolist()
    ((2, 2, 2), [1, 0], [True, False])
    >>> b.inputs["audio"][0, 1].tolist()                  # an invalid step is zero
    [0.0, 0.0]
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.row_store import RowArray, row_chunks


@dataclass
class AlignedData:
    """Every selected item on the common timeline (float32 features, in memory or on disk).

    ``items``: one row per item (item_id, speaker, duration, label index or -1, dimensional
    targets, ``has_<modality>``, ``start``/``end`` = 0/duration), or with ``windows`` one row
    per (item, window) (plus ``window``, the window's number in its clip, and its bounds). Rows (one per clip, or per window) point to items by
    ``row_item``; ``x[m]`` (rows, L_m, d_m: an array, or a :class:`~emofuse.fusion.row_store.RowArray`
    that reads the rows it is indexed with), ``mask[m]`` (rows, L_m, in memory). ``row_step``: each row's
    first step in its clip (0 on ``fixed`` timelines). With per-frame labels
    (:mod:`emofuse.fusion.targets`): ``frame_targets`` (rows, L, K) and ``frame_mask`` (rows, L).
    """

    config: DataConfig
    items: pd.DataFrame
    row_item: np.ndarray
    row_start: np.ndarray
    row_end: np.ndarray
    x: dict[str, np.ndarray | RowArray]
    mask: dict[str, np.ndarray]
    classes: list[str]
    dims: dict[str, int]
    feature_sets: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    #: ``(length_s, hop_s)`` when ``items`` holds time windows of the clips, else None.
    windows: tuple[float, float] | None = None
    row_step: np.ndarray | None = None
    frame_targets: np.ndarray | None = None
    frame_mask: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_rows(self) -> int:
        return len(self.row_item)

    @property
    def has_categories(self) -> bool:
        return bool((self.items["label"] >= 0).any())

    @property
    def has_dimensional(self) -> bool:
        if self.frame_mask is not None:
            return bool(self.frame_mask.any())
        cols = list(self.config.dimensional)
        return bool(cols) and all(c in self.items for c in cols) and bool(self.items[cols].notna().all(axis=1).any())

    def rows_of_items(self, item_index: Iterable[int]) -> np.ndarray:
        """Row indices (sorted) of the given item positions."""
        wanted = np.zeros(self.n_items, bool)
        wanted[np.fromiter((int(i) for i in item_index), np.int64)] = True
        return np.flatnonzero(wanted[self.row_item])

    def items_of_speakers(self, speakers: Iterable[str], *, labelled: bool = True) -> np.ndarray:
        """Item positions of these speakers (labelled items only by default)."""
        return self.items_of(speakers, by="speaker", labelled=labelled)

    def items_of(self, values: Iterable[str], *, by: str = "speaker", labelled: bool = True) -> np.ndarray:
        """Item positions whose column ``by`` (a fold plan's: speaker, split, session) holds one of
        ``values`` (labelled items only by default)."""
        if by not in self.items:
            raise ValueError(f"the fold plan selects items by {by!r}, a column the items have not "
                             f"(the media table has no {by!r} values for them)")
        sel = self.items[by].isin(set(values)).to_numpy()
        if labelled:
            sel &= self.labelled()
        return np.flatnonzero(sel)

    def labelled(self) -> np.ndarray:
        """Bool per item: has the training target (a class when the corpus has classes, else per-frame
        targets when aligned, else all dimensions)."""
        if self.has_categories:
            return (self.items["label"] >= 0).to_numpy()
        if self.frame_mask is not None:
            return self.items["has_frame_targets"].to_numpy(bool)
        if self.has_dimensional:
            return self.items[list(self.config.dimensional)].notna().all(axis=1).to_numpy()
        return np.zeros(self.n_items, bool)


# --------------------------------------------------------------------------- normalisation
@dataclass
class NormStats:
    """Per-feature mean and std of each modality over valid steps of the training rows."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def compute(cls, data: AlignedData, rows: np.ndarray, *, min_std: float = 1e-6) -> "NormStats":
        """Statistics from ``rows`` only (the training split), valid steps only, in float64, read
        block by block (blocks are merged with Chan et al.'s pairwise update, as exact as one pass)."""
        mean, std = {}, {}
        rows = np.asarray(rows, np.int64)
        for m, x in data.x.items():
            n, mu, m2 = 0, np.zeros(x.shape[-1]), np.zeros(x.shape[-1])
            for sel_rows, block in row_chunks(x, rows):
                vals = block[data.mask[m][sel_rows]].astype(np.float64)
                if not len(vals):
                    continue
                k, bmu = len(vals), vals.mean(axis=0)
                bm2 = ((vals - bmu) ** 2).sum(axis=0)
                delta = bmu - mu
                mu = mu + delta * (k / (n + k))
                m2 = m2 + bm2 + delta ** 2 * (n * k / (n + k))
                n += k
            sd = np.sqrt(m2 / n) if n else np.ones(x.shape[-1])
            mean[m] = mu.astype(np.float32)
            std[m] = np.where(sd < min_std, 1.0, sd).astype(np.float32)
        return cls(mean, std)

    def to_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        out = {}
        for m in self.mean:
            out[f"{prefix}{m}.mean"] = torch.from_numpy(np.ascontiguousarray(self.mean[m]))
            out[f"{prefix}{m}.std"] = torch.from_numpy(np.ascontiguousarray(self.std[m]))
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = "") -> "NormStats":
        mean, std = {}, {}
        for k, t in tensors.items():
            if not k.startswith(prefix):
                continue
            m, what = k[len(prefix):].rsplit(".", 1)
            (mean if what == "mean" else std)[m] = t.numpy().astype(np.float32)
        if not mean or set(mean) != set(std):
            raise ValueError(f"no complete normalisation statistics under {prefix!r}")
        return cls(mean, std)


# --------------------------------------------------------------------------- datasets
@dataclass
class Batch:
    """One batch: model inputs and masks, labels (N,) (-1 = none), dimensional targets (N, K), row ids,
    and with per-frame labels the targets per step (N, L, K) and their mask (N, L)."""

    inputs: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    labels: torch.Tensor
    targets: torch.Tensor
    rows: torch.Tensor
    frame_targets: torch.Tensor | None = None
    frame_mask: torch.Tensor | None = None


class FusionDataset(torch.utils.data.Dataset):
    """A split on one device: masks, labels and targets held there, features read per batch.

    ``rows``: row indices of ``data`` (clips or windows). Items come back in the order
    given; ``item_of_row`` maps each local row to its position in ``data.items``, ``row_step``
    to its first step in the clip. Per-frame targets come along when ``data`` has them. A batch
    reads its rows of ``data.x`` (from memory or the scratch file), moves them to the device and
    normalises them there, so only a batch of features is ever held.
    """

    def __init__(self, data: AlignedData, rows: np.ndarray, norm: NormStats, *,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.rows = np.asarray(rows, np.int64)
        self.modalities = list(data.x)
        self._x = data.x
        self._mean = {m: torch.as_tensor(norm.mean[m], dtype=torch.float32, device=self.device) for m in self.modalities}
        self._std = {m: torch.as_tensor(norm.std[m], dtype=torch.float32, device=self.device) for m in self.modalities}
        self.mask = {m: torch.from_numpy(data.mask[m][self.rows]).to(device=self.device, dtype=torch.bool)
                     for m in self.modalities}
        self.item_of_row = data.row_item[self.rows]
        items = data.items.iloc[self.item_of_row]
        self.labels = torch.as_tensor(items["label"].to_numpy(np.int64), dtype=torch.long, device=self.device)
        dcols = [c for c in data.config.dimensional if c in items]
        tgt = items[dcols].to_numpy(np.float32) if dcols else np.zeros((len(items), 0), np.float32)
        self.targets = torch.as_tensor(tgt, dtype=torch.float32, device=self.device)
        self.row_step = (data.row_step[self.rows] if data.row_step is not None
                         else np.zeros(len(self.rows), np.int64))
        self.frame_targets: torch.Tensor | None = None
        self.frame_mask: torch.Tensor | None = None
        if data.frame_targets is not None and data.frame_mask is not None:
            self.frame_targets = torch.from_numpy(data.frame_targets[self.rows]).to(device=self.device,
                                                                                  dtype=torch.float32)
            self.frame_mask = torch.from_numpy(data.frame_mask[self.rows]).to(device=self.device, dtype=torch.bool)

    def inputs(self, idx: torch.Tensor, masks: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Normalised features of local rows ``idx`` on the device, zero on the steps the data masks
        and, with ``masks`` (modality -> (len(idx), L) bool on the device), where those are False."""
        idx = idx.to(self.device)
        local = idx.cpu().numpy()
        out = {}
        for m in self.modalities:
            x = torch.from_numpy(np.asarray(self._x[m][self.rows[local]], np.float32)).to(self.device)
            valid = self.mask[m].index_select(0, idx)
            if masks is not None:
                valid = valid & masks[m]
            z = (x - self._mean[m]) / self._std[m]
            out[m] = torch.where(valid.unsqueeze(-1), z, torch.zeros((), dtype=torch.float32, device=self.device))
        return out

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        b = self.batch(torch.tensor([i], device=self.device))
        return {"inputs": {m: t[0] for m, t in b.inputs.items()}, "masks": {m: t[0] for m, t in b.masks.items()},
                "label": b.labels[0], "targets": b.targets[0]}

    def batch(self, idx: torch.Tensor) -> Batch:
        """Gather rows ``idx`` (local positions) into a batch."""
        idx = idx.to(self.device)
        frame = (None, None) if self.frame_targets is None else (self.frame_targets.index_select(0, idx),
                                                                 self.frame_mask.index_select(0, idx))
        return Batch(self.inputs(idx), {m: t.index_select(0, idx) for m, t in self.mask.items()},
                     self.labels.index_select(0, idx), self.targets.index_select(0, idx), idx, *frame)

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_single: bool = False) -> Iterator[Batch]:
        """Batches in order or shuffled (CPU ``generator``); ``drop_single`` skips a trailing batch of one."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            if drop_single and len(idx) == 1 and n > 1:
                continue
            yield self.batch(idx)


def loader_throughput(ds: FusionDataset, batch_size: int = 16, *, repeats: int = 3) -> float:
    """Items per second of shuffled batch gathering (what the training loop pays for data)."""
    g = torch.Generator().manual_seed(0)
    n = 0
    t0 = time.perf_counter()
    for _ in range(repeats):
        for b in ds.batches(batch_size, shuffle=True, generator=g):
            n += len(b.rows)
    if ds.device.type == "cuda":
        torch.cuda.synchronize(ds.device)
    return n / max(time.perf_counter() - t0, 1e-9)
