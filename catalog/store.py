"""The catalog: read and write media, status, feature sets and their sequences.

A catalog is a folder (or fsspec URL) laid out as :mod:`emofuse.catalog.layout` says.
:class:`Catalog` is the one door to it: media (:mod:`~emofuse.catalog.media`), claims, feature
sets, status rows (:mod:`~emofuse.catalog.status`), task commits (:mod:`~emofuse.catalog.commit`: Zarr shard,
per-clip part, index part, and last the status part, which is the commit record; anything
of a task without status rows is an orphan of a crashed task: readers here ignore it and
:meth:`Catalog.repair` deletes it once the task's claim is gone), sequences
(:mod:`~emofuse.catalog.sequences`), predictions (:mod:`~emofuse.catalog.predictions`) and
run folders (:mod:`~emofuse.catalog.runs`). The methods here delegate to those modules.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> import pandas as pd
    >>> from emofuse.catalog.records import ExtractResult
    >>> cat = Catalog(tempfile.mkdtemp()).init()
    >>> cat.add_media([{"item_id": "a", "path": "/videos/a.mp4", "relpath": "a.mp4", "emotion": "happy"}])
    1
    >>> cat.media()[["item_id", "emotion"]].values.tolist()
    [['a', 'happy']]
    >>> cat.item_ids(["/videos/a.mp4", "/videos/not-registered.mp4"])
    ['a']
    >>> cat.commit_task("demo-v1", "task-1", [ExtractResult("a", row={"mean": np.float32(0.5)})])
    1
    >>> cat.done("demo-v1")
    {'a'}
    >>> pd.read_parquet(cat.layout.clips("demo-v1"))["mean"].tolist()   # the same, without emofuse
    [0.5]
"""
from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from emofuse.catalog import (atomic, attributions, commit, compaction, labels, locks, maintenance, media,
                              predictions, results, sequences, urls)
from emofuse.catalog.layout import Layout
from emofuse.catalog.records import ExtractResult, FeatureSetDescription
from emofuse.catalog.runs import RunFolder
from emofuse.catalog.schemas import CLIP_WINDOW, LAYOUT_VERSION, SEQ_INDEX_SCHEMA, Status
from emofuse.catalog.status import StatusEntry, committed_tasks, read_status, record_status
from emofuse.catalog.pending import pending
from emofuse.catalog.summaries import ExtractRunSummary, read_extract_runs, write_extract_run
from emofuse.catalog.tables import utcnow


class Catalog:
    """One catalog root. Cheap to construct; every method reads what is on disk now."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.layout = Layout.at(root)
        self.local = urls.is_local(self.layout.root)

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
        return urls.fs_path(path)

    def exists(self, path: str) -> bool:
        """Whether ``path`` (a path inside this catalog, as Layout gives it) exists."""
        return self.layout.fs.exists(self._p(path))

    def listdir(self, path: str) -> list[str]:
        """Sorted entry names of a folder of this catalog (empty when it does not exist)."""
        if self.local and os.path.isdir(self._p(path)):  # fsspec's local ls makes a full path per entry
            return sorted(os.listdir(self._p(path)))
        if not self.exists(path):
            return []
        return sorted(os.path.basename(p.rstrip("/")) for p in self.layout.fs.ls(self._p(path), detail=False))

    # -- media --------------------------------------------------------------------
    def media(self, *, dedupe: bool = True) -> pd.DataFrame:
        """The media table; with ``dedupe`` one row per item (its most recently registered path)."""
        return media.read_media(self.layout, dedupe=dedupe)

    def known_files(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime in µs, content id) of every registered path, to skip re-hashing
        (see :func:`~emofuse.catalog.media.known_files`)."""
        return media.known_files(self.layout)

    def add_media(self, rows: list[dict[str, Any]]) -> int:
        """Append media rows whose (item_id, path) pair is new; returns how many were added."""
        if not rows:
            return 0
        with self._locked("media"):
            return media.append_media(self.layout, rows)

    def _locked(self, name: str):
        """A catalog-wide critical section (an OS lock locally, a leased claim on object storage)."""
        return locks.held(self._lock_path("locks", f"{name}.lock"))

    def _lock_path(self, *parts: str) -> str:
        """A path under ``locks/``: an OS path for local catalogs, the URL for remote ones."""
        return self._lock_form(self.layout.join(*parts))

    def _lock_form(self, path: str) -> str:
        """A catalog path in the form :mod:`~emofuse.catalog.locks` takes: an OS path locally, else the URL."""
        return self._p(path) if self.local else path

    def item_ids(self, paths: Iterable[str]) -> list[str]:
        """Distinct item ids of the registered ``paths``, in path order (unregistered paths are absent)."""
        return media.registered_items(self.layout, paths)

    # -- time-continuous labels -----------------------------------------------------
    def add_frame_labels(self, rows: pd.DataFrame) -> int:
        """Store per-frame labels (FRAME_LABELS_SCHEMA columns) of items that have none yet."""
        with self._locked("labels"):
            return labels.write_frame_labels(self.layout, rows)

    def frame_labels(self, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-frame label rows (item_id, frame, time, valence, arousal, expression) of ``item_ids`` or all."""
        return labels.read_frame_labels(self.layout, item_ids)

    # -- status -------------------------------------------------------------------
    def status(self, feature_set: str | None = None, *, latest: bool = True) -> pd.DataFrame:
        """Status rows (all feature sets or one); with ``latest`` the newest row per (item, set)."""
        return read_status(self.layout, feature_set, latest=latest)

    def record_status(self, feature_set: str, entries: Iterable[StatusEntry], *, task_id: str | None = None,
                      run_id: str = "", keep_ok: bool = False) -> int:
        """Append the status rows that change what the table says (see :func:`~emofuse.catalog.status.record_status`)."""
        return record_status(self.layout, feature_set, entries, task_id=task_id, run_id=run_id, keep_ok=keep_ok)

    def done(self, feature_set: str) -> set[str]:
        """Items whose current status for this feature set is ``ok``."""
        st = self.status(feature_set)
        return set(st.loc[st["status"] == Status.OK.value, "item_id"])

    def committed_tasks(self, feature_set: str) -> set[str]:
        """Tasks with status rows for ``feature_set``: their parts are visible."""
        return committed_tasks(self.layout, feature_set)

    # -- feature sets -------------------------------------------------------------
    def register_feature_set(self, description: FeatureSetDescription) -> None:
        """Record a feature set's description once (its key fixes its content)."""
        atomic.write_bytes(self.layout.feature_set_info(description.key), description.to_json().encode(),
                           overwrite=False)

    def describes(self, key: str) -> bool:
        """Whether feature set ``key``'s description is recorded (then registering it again does nothing)."""
        return self.exists(self.layout.feature_set_info(key))

    def feature_sets(self) -> list[str]:
        return [k for k in self.listdir(self.layout.features) if not k.startswith(".")]

    def feature_set_info(self, key: str) -> FeatureSetDescription:
        """The description of feature set ``key`` (its ``feature_set.json``)."""
        with self.layout.fs.open(self._p(self.layout.feature_set_info(key))) as f:
            return FeatureSetDescription.from_json(f.read())

    def find_feature_set(self, name_or_key: str) -> str:
        """Resolve a feature-set name (``egemaps``) or key to a key present in the catalog."""
        keys = self.feature_sets()
        if name_or_key in keys:
            return name_or_key
        matches = [k for k in keys if self.feature_set_info(k).name == name_or_key]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise KeyError(f"no feature set {name_or_key!r} in {self.root}; present: {keys or 'none'}. "
                           "Run `emofuse extract` first.")
        raise KeyError(f"{name_or_key!r} names several feature sets {matches}; pass the full key")

    # -- writing a task -----------------------------------------------------------
    def task_claim_path(self, task_id: str) -> str:
        return self._lock_form(f"{self.layout.task_claims}/{task_id}.json")

    def item_claim_path(self, feature_set: str, item_id: str) -> str:
        return self._lock_path("locks", feature_set, f"{item_id}.lock")

    def claim(self, feature_set: str, task_id: str, item_ids: Iterable[str]) -> list[str]:
        """Claim items for a task; returns those claimed and not already done.

        Items claimed by a live task elsewhere (another run, on this machine or another
        one sharing the catalog) are left to it; see :mod:`~emofuse.catalog.locks` for how
        claims are made atomic on local disks and object stores.
        """
        ids = list(item_ids)
        try:
            locks.try_claim(self.task_claim_path(task_id), task_id)
            ids = [i for i in ids if locks.try_claim(self.item_claim_path(feature_set, i), task_id)]
            # re-read after claiming: another run may have finished some (only these items' newest rows
            # matter: pending() reads three columns in Arrow, where done() builds the whole status in pandas)
            not_ok = pending(self.layout, [feature_set], ids, retry_failed=True)[feature_set] if ids else []
            mine = [i for i, todo in zip(ids, not_ok) if todo]
            for i in set(ids) - set(mine):
                self._release_item(feature_set, i, task_id)
        except BaseException:
            locks.drop_owner(task_id)  # what it claimed before failing is free for the next run
            raise
        return mine

    def _release_item(self, feature_set: str, item_id: str, task_id: str) -> None:
        locks.release(self.item_claim_path(feature_set, item_id), task_id)

    def release(self, feature_set: str, task_id: str, item_ids: Iterable[str], *, finished: bool = True) -> None:
        """Remove a task's claims; if that fails (storage gone), they are stale all the same.

        ``finished=False`` (it failed before or during its commit): its items are free at once, and
        its task claim stays, stale, for :meth:`repair` to find the task's parts by.
        """
        try:
            for i in item_ids:
                self._release_item(feature_set, i, task_id)
            if finished:
                locks.release(self.task_claim_path(task_id), task_id)
        finally:
            locks.drop_owner(task_id)

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

        Returns the number of status rows written (0 when nothing changed); see
        :func:`emofuse.catalog.commit.commit_task`.
        """
        return commit.commit_task(self.layout, feature_set, task_id, results, run_id=run_id,
                                  sequence_attrs=sequence_attrs)

    def _write_shard(self, feature_set: str, task_id: str, results: list[ExtractResult],
                     attrs: dict[str, Any]) -> None:
        """The first half of a commit (shard and index part, no status): what a crashed task leaves."""
        commit.write_shard(self.layout, feature_set, task_id, results, attrs)

    # -- reading features ---------------------------------------------------------
    def clips(self, feature_set: str, *, columns: list[str] | None = None) -> pd.DataFrame:
        """Per-clip rows of a feature set (one per item, committed tasks only); only ``columns``
        (and ``item_id``) when given."""
        df = self._committed(self.layout.clips(feature_set), feature_set, None, columns)
        return df.drop_duplicates("item_id", keep="last").reset_index(drop=True) if len(df) else df

    def sequence_index(self, feature_set: str, *, columns: list[str] | None = None) -> pd.DataFrame:
        """The sequence index of a feature set (one row per item: shard, offset, length, …); only
        ``columns`` (and ``item_id``) when given."""
        df = self._committed(self.layout.seq_index(feature_set), feature_set, SEQ_INDEX_SCHEMA, columns)
        return df.drop_duplicates("item_id", keep="last").reset_index(drop=True) if len(df) else df

    def _committed(self, folder: str, feature_set: str, schema: pa.Schema | None,
                   columns: list[str] | None = None) -> pd.DataFrame:
        """Rows of a folder whose part belongs to a committed task (orphans are invisible), read as one
        dataset (pyarrow's threads over the parts; every part of a folder has one schema, see
        :func:`~emofuse.catalog.tables.conform`); only ``columns`` and ``item_id`` when given."""
        cols = None if columns is None else ["item_id", *(c for c in columns if c != "item_id")]
        empty = (schema.empty_table().to_pandas() if schema is not None else pd.DataFrame())
        empty = empty if cols is None or not len(empty.columns) else empty[cols]
        if not self.exists(folder):
            return empty
        committed = self.committed_tasks(feature_set)
        paths = [self._p(f"{folder}/{name}") for name in sorted(self.listdir(folder))
                 if name.startswith("part-") and name.endswith(".parquet")
                 and name[len("part-"):-len(".parquet")] in committed]
        if not paths:
            return empty
        dataset = ds.dataset(paths, filesystem=self.layout.fs, format="parquet", schema=schema)
        return dataset.to_table(columns=cols).to_pandas()

    def load_sequences(self, feature_set: str, item_ids: Iterable[str] | None = None,
                       arrays: Iterable[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
        """item_id -> {"times": …, "values": …, …}, reading each shard once, whole."""
        idx = self.sequence_index(feature_set)
        if item_ids is not None:
            idx = idx[idx["item_id"].isin(set(item_ids))]
        return sequences.load_sequences(self.layout, feature_set, idx, arrays)

    def sequence_arrays(self, feature_set: str, item_ids: Iterable[str] | None = None) -> list[str]:
        """Sorted names of the arrays besides ``times`` that every shard (holding ``item_ids``) has."""
        idx = self.sequence_index(feature_set)
        if item_ids is not None:
            idx = idx[idx["item_id"].isin(set(item_ids))]
        return sequences.shard_arrays(self.layout, feature_set, idx["shard"])

    def read_sequences(self, feature_set: str, item_ids: Iterable[str], *, arrays: Iterable[str] | None = None,
                       max_item_rows: int = sequences.MAX_ITEM_ROWS, index: pd.DataFrame | None = None
                       ) -> dict[str, dict[str, np.ndarray] | sequences.LazySequence]:
        """item_id -> arrays, or a :class:`~emofuse.catalog.sequences.LazySequence` for items
        longer than ``max_item_rows`` (see :func:`emofuse.catalog.sequences.read_sequences`).

        ``arrays``: the arrays besides ``times`` (None: those every shard of these items has).
        ``index``: the feature set's whole :meth:`sequence_index`, when the caller reads many
        batches of items (read here otherwise). Items without sequence rows are absent.
        """
        ids = set(item_ids)
        names = list(arrays) if arrays is not None else self.sequence_arrays(feature_set, ids)
        index = self.sequence_index(feature_set) if index is None else index
        return sequences.read_sequences(self.layout, feature_set, index, ids, names, max_item_rows=max_item_rows)

    def clip_vectors(self, feature_set: str, item_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """item_id -> per-clip vector of a feature set (see :func:`emofuse.catalog.sequences.clip_vectors`)."""
        clips = self.clips(feature_set)
        if not len(clips):
            return {}
        try:
            cols = self.feature_set_info(feature_set).row_columns or []
        except FileNotFoundError:
            cols = []
        return sequences.clip_vectors(clips[clips["item_id"].isin(set(item_ids))], cols)

    def status_counts(self, feature_set: str, item_ids: Iterable[str]) -> dict[str, int]:
        """status -> number of ``item_ids`` with that current status (``not extracted`` without one)."""
        st = self.status(feature_set).set_index("item_id")["status"]
        out: dict[str, int] = {}
        for i in item_ids:
            s = str(st.get(i, "not extracted"))
            out[s] = out.get(s, 0) + 1
        return out

    # -- predictions --------------------------------------------------------------
    def write_predictions(self, model: str, run_id: str, rows: pd.DataFrame, classes: list[str], *,
                          fold: str, window: str = CLIP_WINDOW, attributions: list[str] | tuple[str, ...] = ()) -> str:
        """Write one part of a run's predictions; see :func:`emofuse.catalog.predictions.write_predictions`."""
        return predictions.write_predictions(self.layout, model, run_id, rows, classes, fold=fold, window=window,
                                             attributions=attributions)

    def existing_predictions(self, model: str, run_id: str, *, parts: bool = False) -> pd.DataFrame:
        """(item_id, fold, window) already written for a run (with ``parts``: also ``part``, ``explained``)."""
        return predictions.existing_predictions(self.layout, model, run_id, parts=parts)

    def predictions(self, *, model: str | None = None, run_id: str | None = None) -> pd.DataFrame:
        """Predictions of every run (or one model / run), with ``model`` and ``run`` columns."""
        return predictions.read_predictions(self.layout, model=model, run_id=run_id)

    def write_time_attributions(self, run_id: str, rows: pd.DataFrame, *, fold: str, window: str) -> str | None:
        """Store the time attributions of one prediction part; see :mod:`emofuse.catalog.attributions`."""
        return attributions.write_time_attributions(self.layout, run_id, rows, fold=fold, window=window)

    def time_attributions(self, run_id: str, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-step weights of a run's explained predictions (item_id, fold, window, window_start,
        window_end, start, end, weight, kind, target); see :mod:`emofuse.catalog.attributions`."""
        return attributions.read_time_attributions(self.layout, run_id, item_ids)

    # -- results ------------------------------------------------------------------
    def write_results(self, evaluation: str, rows: pd.DataFrame) -> str:
        """Write an evaluation's metric rows (kept as they are when ``evaluation`` is written already);
        see :mod:`emofuse.catalog.results`."""
        return results.write_results(self.layout, evaluation, rows)

    def results(self) -> pd.DataFrame:
        """Every metric row of the results table (RESULTS_SCHEMA columns)."""
        return results.read_results(self.layout)

    # -- runs ---------------------------------------------------------------------
    def run(self, run_id: str) -> RunFolder:
        """The folder of a fusion run (it need not exist yet)."""
        return RunFolder(self.layout.run(run_id))

    def runs(self) -> list[str]:
        """Ids of the run folders of this catalog, sorted."""
        return [r for r in self.listdir(self.layout.runs) if not r.startswith(".")]

    # -- run summaries ------------------------------------------------------------
    def record_extract_run(self, summary: ExtractRunSummary) -> str:
        """Keep an extract run's summary as ``extract_runs/<run_id>.json`` (see :mod:`~emofuse.catalog.summaries`)."""
        return write_extract_run(self.layout, summary)

    def extract_runs(self) -> list[ExtractRunSummary]:
        """The recorded summaries of every extract run that changed the catalog, oldest first."""
        return read_extract_runs(self.layout)

    # -- maintenance --------------------------------------------------------------
    def repair(self, *, grace_s: float = 3600.0, sweep: bool = True) -> list[str]:
        """Migrate parts of an older layout, delete what crashed tasks left (see
        :func:`emofuse.catalog.maintenance.repair`; ``sweep=False``: found by their claims only, as a
        run's start does); returns the removed paths."""
        return maintenance.repair(self, grace_s=grace_s, sweep=sweep)

    def compact(self, *, min_parts: int = compaction.DEFAULT_MIN_PARTS) -> list[compaction.Compacted]:
        """Merge many small parts of media, labels, status into one per folder (:mod:`~emofuse.catalog.compaction`)."""
        return compaction.compact(self, min_parts=min_parts)

    def task_alive(self, task_id: str) -> bool:
        """Whether a task's claim is held by a live process."""
        claim = locks.read_claim(self.task_claim_path(task_id))
        return claim is not None and not claim.stale()

    def tables(self) -> pd.DataFrame:
        """Every table of the catalog: path, rows it holds, what a row is, items (for ``emofuse catalog ls``)."""
        return maintenance.table_summary(self)
