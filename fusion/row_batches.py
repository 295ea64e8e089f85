"""Aligned batches of items into one :class:`~emofuse.fusion.dataset.AlignedData`, in the items' order.

:func:`~emofuse.fusion.align.load_aligned` aligns a corpus a batch of items at a time, in the
order their frames are stored, into the same scratch-file writers (:func:`new_writers`);
:func:`join_rows` joins the batches and :func:`in_item_order` puts segments and rows back in the
items' order (copying the scratch rows block by block).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.dataset import AlignedData
from emofuse.fusion.row_store import RowArray, RowWriter, permuted


def new_writers(cfg: DataConfig, dims: dict[str, int]) -> dict[str, RowWriter]:
    """One scratch-file writer per modality for rows of its (steps, width): features on disk, not in memory."""
    return {s.name: RowWriter((cfg.align.steps_for(s.name), dims[s.name])) for s in cfg.modalities}


def join_rows(parts: list[AlignedData], x: dict[str, np.ndarray | RowArray]) -> AlignedData:
    """Batches of :func:`align_items` (aligned in this order into the same writers) as one
    :class:`AlignedData` whose features are ``x``."""
    first = parts[0]
    offsets = np.cumsum([0, *(len(p.items) for p in parts[:-1])])

    def cat(get: Any) -> np.ndarray:
        return np.concatenate([get(p) for p in parts])

    out = dataclasses.replace(
        first, items=pd.concat([p.items for p in parts], ignore_index=True),
        row_item=np.concatenate([p.row_item + o for p, o in zip(parts, offsets)]),
        row_start=cat(lambda p: p.row_start), row_end=cat(lambda p: p.row_end), x=x,
        mask={m: cat(lambda p, m=m: p.mask[m]) for m in first.mask},
        row_step=cat(lambda p: p.row_step))
    if first.frame_targets is not None:
        out.frame_targets, out.frame_mask = cat(lambda p: p.frame_targets), cat(lambda p: p.frame_mask)
    return out


def in_item_order(data: AlignedData, seg_pos: np.ndarray) -> AlignedData:
    """``data`` with its segments sorted by ``seg_pos`` (each segment's item position; a stable
    sort, so an item's windows keep their order) and its rows following them; unchanged when
    already in that order."""
    seg_perm = np.argsort(seg_pos, kind="stable")
    if np.array_equal(seg_perm, np.arange(len(seg_perm))):
        return data
    new_seg = np.empty_like(seg_perm)
    new_seg[seg_perm] = np.arange(len(seg_perm))
    row_perm = np.argsort(new_seg[data.row_item], kind="stable")
    out = dataclasses.replace(
        data, items=data.items.iloc[seg_perm].reset_index(drop=True), row_item=new_seg[data.row_item][row_perm],
        row_start=data.row_start[row_perm], row_end=data.row_end[row_perm],
        x={m: permuted(x, row_perm) for m, x in data.x.items()}, mask={m: v[row_perm] for m, v in data.mask.items()},
        row_step=None if data.row_step is None else data.row_step[row_perm])
    if data.frame_targets is not None:
        out.frame_targets, out.frame_mask = data.frame_targets[row_perm], data.frame_mask[row_perm]
    return out
