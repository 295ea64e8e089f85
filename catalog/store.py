"""The catalog: read and write media, status, feature sets and their sequences.

A catalog is a folder (or fsspec URL) laid out as :mod:`emofuse.catalog.layout` says.
Writers commit a task's output in a fixed order — Zarr shard, per-clip part,
index part, and last the status part, which is the commit record. Anything of
a task without status rows is an orphan of a crashed task: readers here ignore
it and :meth:`Catalog.repair` deletes it once the task's claim is gone.

Example:
    >>> cat = Catalog("emofuse-data/catalog")                  # doctest: +SKIP
    >>> cat.media()[["item_id", "emotion"]].head()             # doctest: +SKIP
    >>> import pandas as pd; pd.read_parquet(cat.layout.clips(key))  # the same, without emofuse
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections import defaultdict
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import zarr

from emofuse.catalog import atomic, locks
from emofuse.catalog.layout import Layout
from emofuse.catalog.records import ExtractResult
from emofuse.catalog.schemas import LAYOUT_VERSION, MEDIA_SCHEMA, SEQ_INDEX_SCHEMA, STATUS_SCHEMA, Status

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def read_table(folder: str, schema: pa.Schema | None = None, *, partitioning: str | None = None) -> pd.DataFrame:
    """Read a Parquet folder into pandas (empty frame with the schema's columns when absent)."""
    layout_fs = Layout(folder).fs
    path = folder.split("://", 1)[1] if "://" in folder else folder
    if not layout_fs.exists(path) or not any(
        not os.path.basename(p).startswith((".", "_")) for p in layout_fs.find(path)
    ):
        return schema.empty_table().to_pandas() if schema is not None else pd.DataFrame()
    dataset = ds.dataset(path, filesystem=layout_fs, format="parquet", schema=schema,
                         partitioning=partitioning)
    return dataset.to_table().to_pandas()


class Catalog:
    """One catalog root. Cheap to construct; every method reads what is on disk now."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.layout = Layout.at(root)
        self.local = "://" not in self.layout.root

    @property
    def root(self) -> str:
        return self.layout.root

    def init(self) -> "Catalog":
        """Create the root and its manifest if missing (idempotent)."""
        fs = self.layout.fs
        fs.makedirs(self._p(self.root), exist_ok=True)
        atomic.write_json({"layout_version": LAYOUT_VERSION, "created": utcnow().isoformat()},
                          self.layout.manifest, overwrite=False)
        return self

    def _p(self, path: str) -> str:
        return path.split("://", 1)[1] if "://" in path else path

    def exists(self, path: str) -> bool:
        """Whether ``path`` (a path inside this catalog, as Layout gives it) exists."""
        return self.layout.fs.exists(self._p(path))

    def listdir(self, path: str) -> list[str]:
        """Sorted entry names of a folder of this catalog (empty when it does not exist)."""
        if not self.exists(path):
            return []
        return sorted(os.path.basename(p.rstrip("/")) for p in self.layout.fs.ls(self._p(path), detail=False))

    # -- media --------------------------------------------------------------------
    def media(self, *, dedupe: bool = True) -> pd.DataFrame:
        """The media table; with ``dedupe`` one row per item (its most recently registered path)."""
        df = read_table(self.layout.media, MEDIA_SCHEMA)
        if dedupe and len(df):
            df = df.sort_values("registered_at").drop_duplicates("item_id", keep="last")
            df = df.sort_values(["corpus", "relpath"], na_position="last").reset_index(drop=True)
        return df

    def known_files(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime in µs, item_id) of every registered path, to skip re-hashing."""
        df = read_table(self.layout.media, MEDIA_SCHEMA)
        out: dict[str, tuple[int, int, str]] = {}
        for path, size, mtime, item in zip(df["path"], df["size"], df["mtime"], df["item_id"]):
            out[path] = (int(size), int(pd.Timestamp(mtime).value // 1000), item)
        return out

    def add_media(self, rows: list[dict[str, Any]]) -> int:
        """Append media rows whose (item_id, path) pair is new; returns how many were added."""
        if not rows:
            return 0
        with self._locked("media"):
            return self._add_media(rows)

    def _locked(self, name: str):
        """A catalog-wide critical section (local catalogs; remote ones assume one writer)."""
        import contextlib

        if not self.local:
            return contextlib.nullcontext()
        return locks.held(self._p(self.layout.join("locks", f"{name}.lock")))

    def _add_media(self, rows: list[dict[str, Any]]) -> int:
        existing = read_table(self.layout.media, MEDIA_SCHEMA)
        seen = set(zip(existing["item_id"], existing["path"]))
        new = [r for r in rows if (r["item_id"], r["path"]) not in seen]
        if not new:
            return 0
        now = utcnow()
        full = [{**{f.name: None for f in MEDIA_SCHEMA}, "registered_at": now, **r} for r in new]
        atomic.write_parquet(pa.Table.from_pylist(full, schema=MEDIA_SCHEMA), self.layout.media)
        return len(new)

    # -- status -------------------------------------------------------------------
    def status(self, feature_set: str | None = None, *, latest: bool = True) -> pd.DataFrame:
        """Status rows (all feature sets or one); with ``latest`` the newest row per (item, set)."""
        if feature_set is not None:
            df = read_table(self.layout.status_dir(feature_set), STATUS_SCHEMA)
            df.insert(1, "feature_set", feature_set)
        else:
            df = read_table(self.layout.status, STATUS_SCHEMA.append(pa.field("feature_set", pa.string())),
                            partitioning="hive")
        if latest and len(df):
            df = df.sort_values("attempted_at").drop_duplicates(["item_id", "feature_set"], keep="last")
            df = df.reset_index(drop=True)
        return df

    def done(self, feature_set: str) -> set[str]:
        """Items whose current status for this feature set is ``ok``."""
        st = self.status(feature_set)
        return set(st.loc[st["status"] == Status.OK.value, "item_id"])

    def committed_tasks(self, feature_set: str) -> set[str]:
        st = read_table(self.layout.status_dir(feature_set), STATUS_SCHEMA)
        return set(st["task_id"])

    # -- feature sets -------------------------------------------------------------
    def register_feature_set(self, info: dict[str, Any]) -> None:
        """Record a feature set's description once (its key fixes its content)."""
        atomic.write_json(info, self.layout.feature_set_info(info["key"]), overwrite=False)

    def feature_sets(self) -> list[str]:
        return [k for k in self.listdir(self.layout.features) if not k.startswith(".")]

    def feature_set_info(self, key: str) -> dict[str, Any]:
        with self.layout.fs.open(self._p(self.layout.feature_set_info(key))) as f:
            return json.load(f)

    def find_feature_set(self, name_or_key: str) -> str:
        """Resolve a feature-set name (``egemaps``) or key to a key present in the catalog."""
        keys = self.feature_sets()
        if name_or_key in keys:
            return name_or_key
        matches = [k for k in keys if self.feature_set_info(k).get("name") == name_or_key]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise KeyError(f"no feature set {name_or_key!r} in {self.root}; present: {keys or 'none'}. "
                           "Run `emofuse extract` first.")
        raise KeyError(f"{name_or_key!r} names several feature sets {matches}; pass the full key")

    # -- writing a task -----------------------------------------------------------
    def task_claim_path(self, task_id: str) -> str:
        return self._p(self.layout.join("locks", "tasks", f"{task_id}.json"))

    def item_claim_path(self, feature_set: str, item_id: str) -> str:
        return self._p(self.layout.join("locks", feature_set, f"{item_id}.lock"))

    def claim(self, feature_set: str, task_id: str, item_ids: Iterable[str]) -> list[str]:
        """Claim items for a task; returns those claimed and not already done.

        Items claimed by a live task elsewhere (another run) are left to it.
        Remote (fsspec) catalogs have no claims: one writer at a time there.
        """
        ids = list(item_ids)
        if self.local:
            locks.try_claim(self.task_claim_path(task_id), task_id)
            ids = [i for i in ids if locks.try_claim(self.item_claim_path(feature_set, i), task_id)]
        done = self.done(feature_set)  # re-read after claiming: another run may have finished
        mine = [i for i in ids if i not in done]
        for i in set(ids) - set(mine):
            self._release_item(feature_set, i, task_id)
        return mine

    def _release_item(self, feature_set: str, item_id: str, task_id: str) -> None:
        if self.local:
            locks.release(self.item_claim_path(feature_set, item_id), task_id)

    def release(self, feature_set: str, task_id: str, item_ids: Iterable[str]) -> None:
        for i in item_ids:
            self._release_item(feature_set, i, task_id)
        if self.local:
            locks.release(self.task_claim_path(task_id), task_id)

    def commit_task(
        self,
        feature_set: str,
        task_id: str,
        results: list[ExtractResult],
        *,
        run_id: str = "",
        sequence_attrs: dict[str, Any] | None = None,
    ) -> int:
        """Store a task's results: shard, clip rows, index rows, then status (the commit).

        Returns the number of status rows written (0 when nothing changed).
        """
        ok = [r for r in results if r.ok]
        with_seq = [r for r in ok if r.sequence is not None and len(r.sequence) > 0]
        if with_seq:
            self._write_shard(feature_set, task_id, with_seq, sequence_attrs or {})
        rows = [{"item_id": r.item_id, **r.row} for r in ok if r.row is not None]
        if rows:
            atomic.write_parquet(_rows_to_table(rows), self.layout.clips(feature_set), task_id)
        # A failure identical to the one already recorded is not logged again, so
        # re-running over files that are broken for good changes nothing on disk.
        prev = self.status(feature_set)
        prev_by_item = dict(zip(prev["item_id"], zip(prev["status"], prev["message"])))
        now = utcnow()
        status = [
            {"item_id": r.item_id, "status": Status(r.status).value,
             "message": r.message, "task_id": task_id, "run_id": run_id, "n_frames": int(r.n_frames),
             "wall_s": float(r.wall_s), "attempted_at": now}
            for r in results
            if r.ok or prev_by_item.get(r.item_id) != (Status(r.status).value, r.message)
        ]
        if status:
            atomic.write_parquet(pa.Table.from_pylist(status, schema=STATUS_SCHEMA),
                                 self.layout.status_dir(feature_set), task_id)
        return len(status)

    def _write_shard(self, feature_set: str, task_id: str, results: list[ExtractResult],
                     attrs: dict[str, Any]) -> None:
        names = list(results[0].sequence.arrays)
        for r in results:
            if list(r.sequence.arrays) != names:
                raise ValueError(f"item {r.item_id}: sequence arrays {list(r.sequence.arrays)} != {names}")
        times = np.concatenate([r.sequence.times for r in results])
        arrays = {n: np.concatenate([np.asarray(r.sequence.arrays[n]) for r in results]) for n in names}
        atomic.write_zarr_shard(self.layout.shard(feature_set, task_id), times, arrays,
                                {**attrs, "feature_set": feature_set, "task_id": task_id})
        index, offset = [], 0
        for r in results:
            n = len(r.sequence)
            index.append({"item_id": r.item_id, "shard": task_id, "offset": offset, "length": n,
                          "t_start": float(r.sequence.times[0]), "t_end": float(r.sequence.times[-1])})
            offset += n
        atomic.write_parquet(pa.Table.from_pylist(index, schema=SEQ_INDEX_SCHEMA),
                             self.layout.seq_index(feature_set), task_id)

    # -- reading features ---------------------------------------------------------
    def clips(self, feature_set: str) -> pd.DataFrame:
        """Per-clip rows of a feature set (one per item, committed tasks only)."""
        df = self._committed(self.layout.clips(feature_set), feature_set, None)
        return df.drop_duplicates("item_id", keep="last").reset_index(drop=True) if len(df) else df

    def sequence_index(self, feature_set: str) -> pd.DataFrame:
        df = self._committed(self.layout.seq_index(feature_set), feature_set, SEQ_INDEX_SCHEMA)
        return df.drop_duplicates("item_id", keep="last").reset_index(drop=True) if len(df) else df

    def _committed(self, folder: str, feature_set: str, schema: pa.Schema | None) -> pd.DataFrame:
        """Rows of a folder whose part belongs to a committed task (orphans are invisible)."""
        if not self.exists(folder):
            return schema.empty_table().to_pandas() if schema is not None else pd.DataFrame()
        committed = self.committed_tasks(feature_set)
        frames = []
        fs = self.layout.fs
        for name in self.listdir(folder):
            if not (name.startswith("part-") and name.endswith(".parquet")):
                continue
            if name[len("part-"):-len(".parquet")] not in committed:
                continue
            frames.append(ds.dataset(self._p(f"{folder}/{name}"), filesystem=fs, format="parquet",
                                     schema=schema).to_table().to_pandas())
        if not frames:
            return schema.empty_table().to_pandas() if schema is not None else pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def open_shard(self, feature_set: str, shard: str) -> zarr.Group:
        return zarr.open_group(self.layout.shard(feature_set, shard), mode="r")

    def load_sequences(self, feature_set: str, item_ids: Iterable[str] | None = None,
                       arrays: Iterable[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
        """item_id -> {"times": …, "values": …, …}, reading each shard once."""
        idx = self.sequence_index(feature_set)
        if item_ids is not None:
            wanted = set(item_ids)
            idx = idx[idx["item_id"].isin(wanted)]
        out: dict[str, dict[str, np.ndarray]] = {}
        for shard, rows in idx.groupby("shard"):
            g = self.open_shard(feature_set, shard)
            names = ["times", *(arrays if arrays is not None else [n for n in g.array_keys() if n != "times"])]
            data = {n: g[n][:] for n in names}
            for item, off, length in zip(rows["item_id"], rows["offset"], rows["length"]):
                out[item] = {n: a[off:off + length] for n, a in data.items()}
        return out

    # -- maintenance --------------------------------------------------------------
    def repair(self, *, grace_s: float = 3600.0) -> list[str]:
        """Delete what crashed tasks left: parts and shards of uncommitted tasks with no live claim,
        and temporary files older than ``grace_s``. Returns the removed paths."""
        removed: list[str] = []
        fs = self.layout.fs
        now = time.time()
        for key in self.feature_sets():
            committed = self.committed_tasks(key)
            for folder, prefix, suffix in ((self.layout.clips(key), "part-", ".parquet"),
                                           (self.layout.seq_index(key), "part-", ".parquet"),
                                           (self.layout.shards(key), "", ".zarr")):
                for name in self.listdir(folder):
                    path = f"{folder}/{name}"
                    if name.startswith(".tmp-"):
                        if now - _mtime(fs, self._p(path)) > grace_s:
                            fs.rm(self._p(path), recursive=True)
                            removed.append(path)
                        continue
                    if not (name.startswith(prefix) and name.endswith(suffix)):
                        continue
                    task = name[len(prefix):-len(suffix)]
                    if task in committed or self._task_alive(task):
                        continue
                    fs.rm(self._p(path), recursive=True)
                    removed.append(path)
        for folder in (self.layout.media,):
            for name in self.listdir(folder):
                if name.startswith(".tmp-") and now - _mtime(fs, self._p(f"{folder}/{name}")) > grace_s:
                    fs.rm(self._p(f"{folder}/{name}"))
                    removed.append(f"{folder}/{name}")
        if removed:
            log.warning("repair removed %d leftovers of crashed tasks", len(removed))
        return removed

    def _task_alive(self, task_id: str) -> bool:
        if not self.local:
            return False
        claim = locks.read_claim(self.task_claim_path(task_id))
        return claim is not None and not claim.stale()

    def tables(self) -> pd.DataFrame:
        """Every table of the catalog with its path and row count (for ``emofuse catalog ls``)."""
        rows = [{"table": "media", "path": self.layout.media, "rows": len(self.media(dedupe=False)),
                 "items": len(self.media())}]
        st = self.status()
        for key in self.feature_sets():
            sub = st[st["feature_set"] == key]
            counts = sub["status"].value_counts().to_dict()
            rows.append({"table": f"features/{key}/clips", "path": self.layout.clips(key),
                         "rows": len(self.clips(key)), "items": int(counts.get("ok", 0)),
                         "status": ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))})
            idx = self.sequence_index(key)
            if len(idx):
                rows.append({"table": f"features/{key}/index", "path": self.layout.seq_index(key),
                             "rows": int(idx["length"].sum()), "items": len(idx),
                             "status": f"{idx['shard'].nunique()} shards"})
        if self.exists(self.layout.predictions):
            preds = read_table(self.layout.predictions, partitioning="hive")
            rows.append({"table": "predictions", "path": self.layout.predictions, "rows": len(preds),
                         "items": preds["item_id"].nunique() if len(preds) else 0})
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


def _rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Per-clip rows to Arrow: numpy vectors become list<float32>, names stay as given."""
    cols: dict[str, list[Any]] = defaultdict(list)
    names = list(rows[0])
    for r in rows:
        if list(r) != names:
            raise ValueError(f"per-clip rows disagree on columns: {list(r)} vs {names}")
        for k, v in r.items():
            cols[k].append(v)
    arrays = {}
    for k, vals in cols.items():
        first = vals[0]
        if isinstance(first, np.ndarray) and first.ndim == 1:
            arrays[k] = pa.array([np.asarray(v, np.float32) for v in vals], type=pa.list_(pa.float32()))
        elif isinstance(first, (np.floating, float)):
            arrays[k] = pa.array(np.asarray(vals, np.float64))
        else:
            arrays[k] = pa.array(vals)
    return pa.table(arrays)
