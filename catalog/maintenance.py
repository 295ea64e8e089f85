"""Looking after a catalog: delete what crashed tasks left, list its tables.

:func:`repair` removes the parts and shards of tasks that never committed (no status
rows) and hold no live claim, and temporary files older than a grace period;
:func:`table_summary` is what ``emofuse catalog ls`` prints. Both are fronted by
:class:`~emofuse.catalog.store.Catalog` (``Catalog.repair``, ``Catalog.tables``).

Example:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> from emofuse.catalog import atomic
    >>> from emofuse.catalog.store import Catalog
    >>> cat = Catalog(tempfile.mkdtemp()).init()
    >>> _ = atomic.write_parquet(pa.table({"item_id": ["a"]}), cat.layout.clips("demo-v1"), "crashed")
    >>> [p.rsplit("/", 2)[-2:] for p in repair(cat, grace_s=0)]   # no status rows, no claim: an orphan
    [['clips', 'part-crashed.parquet']]
    >>> table_summary(cat)[["table", "rows", "items"]].values.tolist()
    [['media', 0, 0], ['features/demo-v1/clips', 0, 0]]
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from emofuse.catalog.predictions import read_predictions

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.catalog.store import Catalog

log = logging.getLogger(__name__)


def repair(cat: Catalog, *, grace_s: float = 3600.0) -> list[str]:
    """Delete what crashed tasks left: parts and shards of uncommitted tasks with no live claim,
    and temporary files older than ``grace_s``. Returns the removed paths."""
    removed: list[str] = []
    layout = cat.layout
    fs = layout.fs
    now = time.time()
    for key in cat.feature_sets():
        committed = cat.committed_tasks(key)
        for folder, prefix, suffix in ((layout.clips(key), "part-", ".parquet"),
                                       (layout.seq_index(key), "part-", ".parquet"),
                                       (layout.shards(key), "", ".zarr")):
            for name in cat.listdir(folder):
                path = f"{folder}/{name}"
                if name.startswith(".tmp-"):
                    if now - _mtime(fs, _p(path)) > grace_s:
                        fs.rm(_p(path), recursive=True)
                        removed.append(path)
                    continue
                if not (name.startswith(prefix) and name.endswith(suffix)):
                    continue
                task = name[len(prefix):-len(suffix)]
                if task in committed or cat.task_alive(task):
                    continue
                # `committed` was read before this task's claim was looked at: a task of another run
                # may have committed (status first, then its claim goes) in between. Read again.
                fresh = cat.committed_tasks(key)
                if task in fresh:
                    committed = fresh
                    continue
                fs.rm(_p(path), recursive=True)
                removed.append(path)
    for folder in (layout.media,):
        for name in cat.listdir(folder):
            if name.startswith(".tmp-") and now - _mtime(fs, _p(f"{folder}/{name}")) > grace_s:
                fs.rm(_p(f"{folder}/{name}"))
                removed.append(f"{folder}/{name}")
    if removed:
        log.warning("repair removed %d leftovers of crashed tasks", len(removed))
    return removed


def table_summary(cat: Catalog) -> pd.DataFrame:
    """Every table of the catalog with its path and row count (for ``emofuse catalog ls``)."""
    layout = cat.layout
    rows = [{"table": "media", "path": layout.media, "rows": len(cat.media(dedupe=False)), "items": len(cat.media())}]
    st = cat.status()
    for key in cat.feature_sets():
        sub = st[st["feature_set"] == key]
        counts = sub["status"].value_counts().to_dict()
        rows.append({"table": f"features/{key}/clips", "path": layout.clips(key),
                     "rows": len(cat.clips(key)), "items": int(counts.get("ok", 0)),
                     "status": ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))})
        idx = cat.sequence_index(key)
        if len(idx):
            rows.append({"table": f"features/{key}/index", "path": layout.seq_index(key),
                         "rows": int(idx["length"].sum()), "items": len(idx),
                         "status": f"{idx['shard'].nunique()} shards"})
    if cat.exists(layout.predictions):
        preds = read_predictions(layout)
        rows.append({"table": "predictions", "path": layout.predictions, "rows": len(preds),
                     "items": preds["item_id"].nunique() if len(preds) else 0})
    return pd.DataFrame(rows)


def _p(path: str) -> str:
    return path.split("://", 1)[1] if "://" in path else path


def _mtime(fs: Any, path: str) -> float:
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return time.time()
    m = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(m, dt.datetime):
        return m.timestamp()
    return float(m) if m is not None else time.time()


__all__ = ["repair", "table_summary"]
