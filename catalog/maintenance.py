"""Looking after a catalog: migrate older layouts, delete what crashed tasks left, list its tables.

:func:`repair` first brings parts of an older layout to the current schemas
(:func:`~emofuse.catalog.migration.migrate`), finishes compactions a killed process left
(:func:`~emofuse.catalog.compaction.finish_interrupted`), then removes the parts and shards of tasks that
never committed (no status rows) and hold no live claim — found through the claims crashed tasks
leave, and with ``sweep`` also by listing every feature folder —, attribution shards no index part
names, temporary files older than a grace period, take-over markers no taker needs any more,
and this host's owner lock files of processes that are gone. :func:`table_summary` is what
``emofuse catalog ls`` prints: the rows each table holds, what one row is, and the items.
Both are fronted by :class:`~emofuse.catalog.store.Catalog` (``Catalog.repair``, ``Catalog.tables``).

Example:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> from emofuse.catalog import atomic
    >>> from emofuse.catalog.store import Catalog
    >>> cat = Catalog(tempfile.mkdtemp()).init()
    >>> _ = atomic.write_parquet(pa.table({"item_id": ["a"]}), cat.layout.clips("demo-v1"), "crashed")
    >>> [p.rsplit("/", 2)[-2:] for p in repair(cat, grace_s=0, sweep=True)]   # no status rows, no claim: an orphan
    [['clips', 'part-crashed.parquet']]
    >>> table_summary(cat)[["table", "rows", "unit", "items"]].values.tolist()
    [['media', 0, '(item, path)', 0], ['features/demo-v1/clips', 0, 'item', 0]]
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from emofuse.catalog import locks
from emofuse.catalog.attributions import read_time_attribution_index
from emofuse.catalog.compaction import finish_all
from emofuse.catalog.migration import migrate
from emofuse.catalog.predictions import read_predictions
from emofuse.catalog.results import read_results
from emofuse.catalog.urls import fs_path

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.catalog.store import Catalog

log = logging.getLogger(__name__)


def repair(cat: Catalog, *, grace_s: float, sweep: bool) -> list[str]:
    """Migrate parts of an older layout, then delete what crashed tasks and runs left (see the module).

    Crashed extraction tasks are found by the claims they left (:func:`_crashed_tasks`: one listing
    of the task claims, however large the catalog). ``sweep`` also lists every feature set's clips,
    index and shard folders for parts no claim accounts for and for temporary files of killed
    writes (:func:`_task_orphans`): ``emofuse catalog repair`` sweeps; the repair at the start of
    every run does not, because on object storage those listings grow with the tasks (375
    requests at a million items).

    Returns the removed catalog paths (migrated parts and owner lock files are logged, not listed).
    """
    migrate(cat.layout)
    removed = finish_all(cat)  # parts a killed compaction merged but did not delete
    removed += _crashed_tasks(cat)
    if sweep:
        removed += _task_orphans(cat, grace_s)
    removed += _attribution_orphans(cat, grace_s)
    removed += _old_tmp(cat, cat.layout.media, grace_s)
    for marker in locks.stale_takeover_markers(cat.layout.locks):
        locks.remove(marker)
        removed.append(marker)
    if removed:
        log.warning("repair removed %d leftovers of crashed tasks", len(removed))
    owners = locks.remove_dead_owner_locks()  # this host's, not the catalog's: logged, not returned
    if owners:
        log.info("removed %d owner lock files of processes that are gone (%s)", len(owners), locks.owner_lock_dir())
    return removed


def _crashed_tasks(cat: Catalog) -> list[str]:
    """The parts and shards of tasks whose claim outlived them uncommitted, then those claims.

    A task claims ``locks/tasks/<task>.json`` before it writes anything and removes it only after
    its commit; one that fails before or during its commit keeps it (task ids are never reused). So
    a stale task claim is the record of every task that may have left parts, and the parts have
    known names: each feature set's ``part-<task>.parquet`` in clips and index, ``<task>.zarr`` in
    shards. A claim whose task committed (it died before letting go) only goes itself.
    """
    layout = cat.layout
    removed: list[str] = []
    committed: dict[str, set[str]] = {}  # read once per feature set, and only if a claim is stale
    keys: list[str] | None = None
    for name in cat.listdir(layout.task_claims):
        if name.startswith(".") or not name.endswith(".json"):  # temporary files, take-over markers
            continue
        task = name[:-len(".json")]
        claim_path = cat.task_claim_path(task)
        claim = locks.read_claim(claim_path)
        if claim is None or not claim.stale():  # released since the listing, or a live task's
            continue
        keys = cat.feature_sets() if keys is None else keys
        for key in keys:
            if key not in committed:
                committed[key] = cat.committed_tasks(key)
        if not any(task in done for done in committed.values()):
            for key in keys:
                for path in (f"{layout.clips(key)}/part-{task}.parquet", f"{layout.seq_index(key)}/part-{task}.parquet",
                             layout.shard(key, task)):
                    if layout.fs.exists(fs_path(path)):
                        layout.fs.rm(fs_path(path), recursive=True)
                        removed.append(path)
        locks.remove(claim_path)
    return removed


def _task_orphans(cat: Catalog, grace_s: float) -> list[str]:
    """Parts and shards of uncommitted tasks without a live claim, and old temporary files, of every feature set."""
    removed: list[str] = []
    layout = cat.layout
    fs = layout.fs
    for key in cat.feature_sets():
        committed = cat.committed_tasks(key)
        for folder, prefix, suffix in ((layout.clips(key), "part-", ".parquet"),
                                       (layout.seq_index(key), "part-", ".parquet"),
                                       (layout.shards(key), "", ".zarr")):
            names = cat.listdir(folder)  # listed once: a million items leave ~31,000 entries per folder
            removed += _old_tmp(cat, folder, grace_s, names)
            tasks = {name[len(prefix):-len(suffix)]: name for name in names
                     if not name.startswith(".tmp-") and name.startswith(prefix) and name.endswith(suffix)}
            for task in sorted(tasks.keys() - committed):
                path = f"{folder}/{tasks[task]}"
                if task in committed or cat.task_alive(task):
                    continue
                # `committed` was read before this task's claim was looked at: a task of another run
                # may have committed (status first, then its claim goes) in between. Read again.
                fresh = cat.committed_tasks(key)
                if task in fresh:
                    committed = fresh
                    continue
                fs.rm(fs_path(path), recursive=True)
                removed.append(path)
    return removed


def _attribution_orphans(cat: Catalog, grace_s: float) -> list[str]:
    """Attribution shards no index row names (a scoring that crashed before its index part, or a
    shard an explained re-scoring replaced), older than ``grace_s``; and old temporary files."""
    removed: list[str] = []
    layout = cat.layout
    now = time.time()
    for run_dir in cat.listdir(layout.attributions):
        if not run_dir.startswith("run="):
            continue
        run_id = run_dir[len("run="):]
        removed += _old_tmp(cat, layout.attribution_index(run_id), grace_s)
        folder = f"{layout.attributions_dir(run_id)}/shards"
        removed += _old_tmp(cat, folder, grace_s)
        names = [n for n in cat.listdir(folder) if n.endswith(".zarr") and not n.startswith(".")]
        if not names:
            continue
        named = set(read_time_attribution_index(layout, run_id)["shard"])
        for name in names:
            path = f"{folder}/{name}"
            if name[:-len(".zarr")] in named or now - _mtime(layout.fs, fs_path(path)) <= grace_s:
                continue
            # the index part of a scoring in progress may have landed since the index was read
            if name[:-len(".zarr")] in set(read_time_attribution_index(layout, run_id)["shard"]):
                continue
            layout.fs.rm(fs_path(path), recursive=True)
            removed.append(path)
    return removed


def _old_tmp(cat: Catalog, folder: str, grace_s: float, names: list[str] | None = None) -> list[str]:
    """Remove the temporary files (``.tmp-*``) of ``folder`` (its entry ``names``, when listed already)
    older than ``grace_s``."""
    removed = []
    now = time.time()
    for name in cat.listdir(folder) if names is None else names:
        path = f"{folder}/{name}"
        if name.startswith(".tmp-") and now - _mtime(cat.layout.fs, fs_path(path)) > grace_s:
            cat.layout.fs.rm(fs_path(path), recursive=True)
            removed.append(path)
    return removed


def table_summary(cat: Catalog) -> pd.DataFrame:
    """Every table of the catalog: its path, the rows it holds, what one row is (``unit``), the items,
    and details (statuses, sequence frames and shards) — for ``emofuse catalog ls``."""
    layout = cat.layout
    rows = [{"table": "media", "path": layout.media, "rows": len(cat.media(dedupe=False)), "unit": "(item, path)",
             "items": len(cat.media())}]
    log_rows = cat.status(latest=False)
    st = cat.status()
    if len(log_rows):
        rows.append({"table": "status", "path": layout.status, "rows": len(log_rows), "unit": "attempt",
                     "items": int(st["item_id"].nunique()), "details": f"{st['feature_set'].nunique()} feature sets"})
    labels = cat.frame_labels()
    if len(labels):
        rows.append({"table": "labels", "path": layout.labels, "rows": len(labels), "unit": "(item, frame)",
                     "items": int(labels["item_id"].nunique())})
    for key in cat.feature_sets():
        sub = st[st["feature_set"] == key]
        counts = sub["status"].value_counts().to_dict()
        clips = cat.clips(key, columns=["item_id"])
        rows.append({"table": f"features/{key}/clips", "path": layout.clips(key), "rows": len(clips), "unit": "item",
                     "items": int(counts.get("ok", 0)),
                     "details": ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))})
        idx = cat.sequence_index(key, columns=["length", "shard"])
        if len(idx):
            rows.append({"table": f"features/{key}/index", "path": layout.seq_index(key), "rows": len(idx),
                         "unit": "item", "items": int(idx["item_id"].nunique()),
                         "details": f"{int(idx['length'].sum()):,} frames in {idx['shard'].nunique()} shards"})
    if cat.exists(layout.predictions):
        preds = read_predictions(layout)
        runs = preds["run"].nunique() if len(preds) else 0
        rows.append({"table": "predictions", "path": layout.predictions, "rows": len(preds),
                     "unit": "(item, fold, window, start)", "items": preds["item_id"].nunique() if len(preds) else 0,
                     "details": f"{runs} runs"})
    results = read_results(layout)
    if len(results):
        rows.append({"table": "results", "path": layout.results, "rows": len(results), "unit": "(evaluation, metric)",
                     "items": None, "details": f"{results['evaluation'].nunique()} evaluations"})
    return pd.DataFrame(rows)


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
