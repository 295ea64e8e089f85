"""The commit protocol of an extraction task: shard, per-clip part, index part, then status.

A task writes its output in a fixed order — the Zarr shard of its sequences, the per-clip
part, the index part, and last the status part (:func:`emofuse.catalog.status.record_status`),
which is the commit record. Readers show a task's parts only once its status rows exist,
so a task that crashed midway leaves orphans that nobody sees and
:meth:`~emofuse.catalog.store.Catalog.repair` deletes.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from emofuse.catalog.layout import Layout
    >>> from emofuse.catalog.records import ExtractResult, Sequence
    >>> from emofuse.catalog.schemas import Status
    >>> from emofuse.catalog.tables import read_table
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> seq = Sequence(np.arange(4) * 0.01, {"values": np.ones((4, 2), np.float32)})
    >>> results = [ExtractResult("a", row={"mean": 1.0}, sequence=seq, n_frames=4),
    ...            ExtractResult.failed("b", Status.NO_AUDIO, "no audio stream")]
    >>> commit_task(layout, "demo-v1", "task-1", results)
    2
    >>> read_table(layout.seq_index("demo-v1"))[["item_id", "shard", "offset", "length"]].values.tolist()
    [['a', 'task-1', 0, 4]]
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.records import ExtractResult
from emofuse.catalog.schemas import SEQ_INDEX_SCHEMA, Status
from emofuse.catalog.status import StatusEntry, committed_tasks, record_status
from emofuse.catalog.tables import conform, folder_schema, rows_to_table
from emofuse.catalog.urls import fs_path


def commit_task(layout: Layout, feature_set: str, task_id: str, results: list[ExtractResult], *,
                run_id: str = "", sequence_attrs: dict[str, Any] | None = None) -> int:
    """Store a task's results: shard, clip rows, index rows, then status (the commit).

    Returns the number of status rows written (0 when nothing changed): a failure
    identical to the one already recorded is not logged again, so re-running over files
    that are broken for good changes nothing on disk.
    """
    ok = [r for r in results if r.ok]
    with_seq = [r for r in ok if r.sequence is not None and len(r.sequence) > 0]
    try:
        if with_seq:
            write_shard(layout, feature_set, task_id, with_seq, sequence_attrs or {})
        rows = [{"item_id": r.item_id, **r.row} for r in ok if r.row is not None]
        if rows:
            folder = layout.clips(feature_set)  # every part in the schema of the folder's first one
            atomic.write_parquet(conform(rows_to_table(rows), folder_schema(folder)), folder, task_id)
        entries = [StatusEntry(r.item_id, Status(r.status).value, r.message, int(r.n_frames), float(r.wall_s))
                   for r in results]
        return record_status(layout, feature_set, entries, task_id=task_id, run_id=run_id, keep_ok=True)
    except BaseException:  # e.g. the disk filled up: take back what this uncommitted task wrote
        discard_uncommitted(layout, feature_set, task_id)
        raise


def discard_uncommitted(layout: Layout, feature_set: str, task_id: str) -> None:
    """Best effort: remove the shard, index part and clip part of a task whose commit failed.

    Readers here ignore them anyway (no status rows), but plain pandas would read the
    parts; what cannot be removed now (the store is gone) is left to ``Catalog.repair``.
    """
    try:
        if task_id in committed_tasks(layout, feature_set):  # an earlier commit under this id stays
            return
        fs = layout.fs
        for path in (f"{layout.clips(feature_set)}/part-{task_id}.parquet",
                     f"{layout.seq_index(feature_set)}/part-{task_id}.parquet", layout.shard(feature_set, task_id)):
            p = fs_path(path)
            if fs.exists(p):
                fs.rm(p, recursive=True)
    except Exception:  # noqa: BLE001 - cleaning up after a failure must not hide the failure
        pass


def write_shard(layout: Layout, feature_set: str, task_id: str, results: list[ExtractResult],
                attrs: dict[str, Any]) -> None:
    """Write the task's sequences as one Zarr shard, then its index part (rows of each item in the shard)."""
    names = list(results[0].sequence.arrays)
    for r in results:
        if list(r.sequence.arrays) != names:
            raise ValueError(f"item {r.item_id}: sequence arrays {list(r.sequence.arrays)} != {names}")
    times = np.concatenate([r.sequence.times for r in results])
    arrays = {n: np.concatenate([np.asarray(r.sequence.arrays[n]) for r in results]) for n in names}
    atomic.write_zarr_shard(layout.shard(feature_set, task_id), times, arrays,
                            {**attrs, "feature_set": feature_set, "task_id": task_id})
    index, offset = [], 0
    for r in results:
        n = len(r.sequence)
        index.append({"item_id": r.item_id, "shard": task_id, "offset": offset, "length": n,
                      "t_start": float(r.sequence.times[0]), "t_end": float(r.sequence.times[-1])})
        offset += n
    atomic.write_parquet(pa.Table.from_pylist(index, schema=SEQ_INDEX_SCHEMA), layout.seq_index(feature_set), task_id)


__all__ = ["commit_task", "discard_uncommitted", "write_shard"]
