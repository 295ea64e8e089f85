"""Plan an extract run before any worker starts: what to register, what each feature set still needs, in which tasks.

A run over a corpus the catalog already holds finds nothing to do here, so the flow
never starts a Dask cluster for it. Tasks are sized by media duration as well as by
item count (``max_items``, ``max_seconds``), so a task of long files and a task of
short ones cost about the same and the per-task cost of the orchestrator stays small
next to the work.

Example:
    >>> items = [{"item_id": str(i), "duration": d} for i, d in enumerate([3.0, 3.0, 50.0, 3.0, 3.0])]
    >>> [[it["item_id"] for it in b] for b in batches(items, max_items=3, max_seconds=10.0)]
    [['0', '1'], ['2'], ['3', '4']]
    >>> split_known(["/nowhere/x.mp4"], {})
    ({}, ['/nowhere/x.mp4'])
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from emofuse.catalog.corpora import recipes
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.pipeline import ingest
from emofuse.pipeline.registry import Extractor

#: MediaRef fields a task gets per item (paths and ids, never arrays).
ITEM_FIELDS = ("item_id", "path", "duration", "has_audio", "has_video", "transcript")
#: MediaRef fields of an item that is a time range of a file (absent from whole-file items' dicts).
SEGMENT_FIELDS = ("segment_start", "segment_end")


def item_ref(row: Any) -> dict[str, Any]:
    """The MediaRef fields (a dict) of one media row (a ``DataFrame.itertuples`` tuple); a part of a
    file adds its range (``segment_start``/``segment_end``) and/or its subject's ``face_side``.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"item_id": ["a", "b"], "path": ["/x.avi"] * 2, "duration": [9.0, 1.5],
    ...                      "has_audio": True, "has_video": True, "transcript": [None, "Hi."],
    ...                      "segment_start": [None, 2.0], "segment_end": [None, 3.5]})
    >>> [sorted(set(item_ref(r)) - set(ITEM_FIELDS)) for r in rows.itertuples()]
    [[], ['segment_end', 'segment_start']]
    """
    ref = {f: getattr(row, f) for f in ITEM_FIELDS}
    start, end = (getattr(row, f, None) for f in SEGMENT_FIELDS)
    if pd.notna(start) or pd.notna(end):
        ref.update(segment_start=None if pd.isna(start) else float(start),
                   segment_end=None if pd.isna(end) else float(end))
    side = getattr(row, "face_side", None)
    if isinstance(side, str):
        ref["face_side"] = side
    return ref


def unchanged(path: str, known: tuple[int, int, str] | None) -> str | None:
    """The known item id of ``path`` when its size and mtime (µs) are what the catalog recorded, else None."""
    if known is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return known[2] if (st.st_size, st.st_mtime_ns // 1000) == known[:2] else None


def split_known(paths: Iterable[str], known: dict[str, tuple[int, int, str]]) -> tuple[dict[str, str], list[str]]:
    """(path -> item id of files the catalog holds unchanged, paths that need hashing and probing)."""
    same: dict[str, str] = {}
    other: list[str] = []
    for p in paths:
        item = unchanged(p, known.get(p))
        if item is None:
            other.append(p)
        else:
            same[p] = item
    return same, other


def batches(items: list[dict[str, Any]], *, max_items: int, max_seconds: float | None) -> list[list[dict[str, Any]]]:
    """Consecutive runs of ``items`` with at most ``max_items`` items and ``max_seconds`` of media each.

    An item longer than ``max_seconds`` is a task of its own; unknown durations count as 0.
    """
    out: list[list[dict[str, Any]]] = []
    cur: list[dict[str, Any]] = []
    secs = 0.0
    for it in items:
        d = float(it.get("duration") or 0.0)
        if cur and (len(cur) >= max_items or (max_seconds is not None and secs + d > max_seconds)):
            out.append(cur)
            cur, secs = [], 0.0
        cur.append(it)
        secs += d
    if cur:
        out.append(cur)
    return out


@dataclass
class FeatureSetPlan:
    """What one feature set still needs among a run's items."""

    name: str
    key: str
    items: int
    already_done: int
    #: Items whose media did not probe, with the probe's message (a status, no task).
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: MediaRef fields of the items to extract.
    todo: list[dict[str, Any]] = field(default_factory=list)
    #: How many of ``unreadable`` the status table does not say yet.
    unrecorded: int = 0

    @property
    def idle(self) -> bool:
        """Nothing to extract and no status to record."""
        return not self.todo and not self.unrecorded


def plan_feature_set(cat: Catalog, name: str, extractor: Extractor, media: pd.DataFrame) -> FeatureSetPlan:
    """Items of ``media`` (one row per item) that ``extractor``'s feature set has not got ``ok`` yet.

    Unreadable items (``probe_error``) become ``decode_error`` statuses unless the catalog
    already says exactly that.
    """
    key = extractor.key
    st = cat.status(key)
    current = dict(zip(st["item_id"], zip(st["status"], st["message"])))
    done = {i for i, (s, _m) in current.items() if s == Status.OK.value}
    todo = media[~media["item_id"].isin(done)]
    bad = todo["probe_error"].notna() if "probe_error" in todo else pd.Series(False, index=todo.index)
    unreadable = list(zip(todo.loc[bad, "item_id"], todo.loc[bad, "probe_error"]))
    unrecorded = sum(current.get(i) != (Status.DECODE_ERROR.value, m) for i, m in unreadable)
    items = [item_ref(r) for r in todo[~bad].itertuples()]
    return FeatureSetPlan(name=name, key=key, items=len(media), already_done=len(media) - len(todo),
                          unreadable=unreadable, todo=items, unrecorded=unrecorded)


@dataclass
class RunPlan:
    """An extract run before any worker starts: files to register, and each feature set's remaining work.

    ``media`` holds the run's items the catalog already knows (one row per item);
    ``feature_sets`` is planned over those only, so files still to register add work.
    """

    rejected: list[str] = field(default_factory=list)
    #: Files to hash and probe: ``{"path", "columns"}`` (new, or changed since registered).
    register: list[dict[str, Any]] = field(default_factory=list)
    #: Media rows this plan added (``plan_run(register=True)``).
    added: int = 0
    media: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_sets: list[FeatureSetPlan] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        """Nothing to register, extract or record: the run needs no worker."""
        return not self.register and all(f.idle for f in self.feature_sets)


def plan_run(cat: Catalog, source: str | None, corpus: str, selection: list[str] | None,
             extractors: dict[str, Extractor], *, register: bool = False, threads: int | None = None) -> RunPlan:
    """Plan a run over ``source`` (None: every item the catalog holds) for ``extractors`` (name -> extractor).

    ``register``: hash and probe new or changed files here, ``threads`` at a time (hashing and
    PyAV's probe release the GIL), and add them to the media table, so the plan covers every
    file; a moved or copied file is then known by its content and needs no work. Without it,
    such files stay in ``RunPlan.register`` and the plan covers known files only.
    """
    plan = RunPlan()
    if source:
        entries = list(recipes.discover(corpus, source, selection))
        plan.rejected = [f"{e.path}: {e.error}" for e in entries if e.error]
        good = {e.path: e.columns for e in entries if not e.error and not ingest.is_part(e.columns)}
        parts = {(e.path, e.columns.get("segment_start"), e.columns.get("segment_end"), e.columns.get("face_side")): e
                 for e in entries if not e.error and ingest.is_part(e.columns)}
        known = cat.known_files()
        same, other = split_known(dict.fromkeys([*good, *(e.path for e in parts.values())]), known)
        plan.register = [{"path": p, "columns": good[p]} for p in other if p in good]
        media = cat.media(dedupe=False)
        segments, known_todo = _unregistered_items(good, list(parts.values()), same, media)
        plan.register += known_todo + [{"path": e.path, "columns": e.columns} for e in parts.values()
                                       if e.path not in same]
        if register and plan.register:
            rows = describe_all(plan.register, source, threads=threads, known=known)
            # per-frame labels first: an item is registered (media row) only once its labels are stored
            annotated = [e for e in entries if e.annotations and not e.error]
            cat.add_frame_labels(ingest.frame_labels(corpus, annotated, rows, threads=threads))
            plan.added = cat.add_media(rows)
            same.update({p: "" for p in other})
            segments |= {(r["item_id"], r["path"]) for r in rows if r.get("parent_id") is not None}
            plan.register = []
            media = cat.media(dedupe=False)
        whole = media["path"].isin({p for p in same if p in good}) & media["parent_id"].isna()
        part = pd.Series([k in segments for k in zip(media["item_id"], media["path"])], index=media.index, dtype=bool)
        plan.media = media[whole | part].drop_duplicates("item_id")
    else:
        plan.media = cat.media()
    plan.feature_sets = [plan_feature_set(cat, name, ex, plan.media) for name, ex in extractors.items()]
    return plan


def _unregistered_items(whole: dict[str, dict[str, Any]], parts: list[Any], same: dict[str, str],
                        media: pd.DataFrame) -> tuple[set[tuple[str, str]], list[dict[str, Any]]]:
    """Items of unchanged files (``same``: path -> content id) that the media table lacks: a file known
    only by its segments taken whole, a new segment of a known file. Returns ((item id, path) of the
    registered segment items, entries to register); ids follow from the known content id: nothing is hashed.
    """
    have = set(zip(media["item_id"], media["path"]))
    todo = [{"path": p, "columns": cols} for p, cols in whole.items() if p in same and (same[p], p) not in have]
    known: set[tuple[str, str]] = set()
    for e in parts:
        if e.path not in same:
            continue
        key = (ingest.segment_id(same[e.path], e.columns), e.path)
        if key in have:
            known.add(key)
        else:
            todo.append({"path": e.path, "columns": e.columns})
    return known, todo


def describe_all(entries: list[dict[str, Any]], source: str, *, threads: int | None = None,
                 known: dict[str, tuple[int, int, str]] | None = None) -> list[dict[str, Any]]:
    """Media rows of ``entries`` (``{"path", "columns"}``): content hash and probe, ``threads`` files at a time.

    Entries of one file (the segments of a dialog) share one hash and one probe; ``known``
    (path -> size, mtime, content id, as :meth:`Catalog.known_files` gives) spares hashing
    files that have not changed.
    """
    from concurrent.futures import ThreadPoolExecutor

    by_path: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_path.setdefault(e["path"], []).append(e["columns"])

    def one(path: str) -> list[dict[str, Any]]:
        return ingest.describe_parts(path, by_path[path], root=source, known=(known or {}).get(path))

    with ThreadPoolExecutor(max_workers=threads or min(8, 2 * (os.cpu_count() or 1))) as pool:
        return [row for rows in pool.map(one, list(by_path)) for row in rows]


def feature_configs(feature_sets: list[str], fps: float, configs: dict[str, dict] | None) -> dict[str, dict]:
    """Per-set config overrides; ``fps`` applies to frame-sampling extractors (faces)."""
    out = {name: dict((configs or {}).get(name, {})) for name in feature_sets}
    if "faces" in out:
        out["faces"].setdefault("fps", fps)
    return out


def idle_summary(*, catalog: str, source: str | None, corpus: str, selection: list[str] | None, run_id: str,
                 extractors: dict[str, Extractor], register: bool = False) -> tuple[ExtractRunSummary | None, int]:
    """(The summary of a run that has nothing to extract or record, else None; media rows it registered).

    Cheap (catalog reads and a ``stat`` per file, no worker, no orchestrator), so a caller can
    answer a finished corpus without starting anything. ``register``: register new or changed
    files first (see :func:`plan_run`), so moved or copied files are no work either.
    """
    t0 = time.perf_counter()
    cat = Catalog(catalog).init()
    plan = plan_run(cat, source, corpus, selection, extractors, register=register)
    if not plan.idle:
        return None, plan.added
    summary = ExtractRunSummary(run_id=run_id, catalog=cat.root, source=source, corpus=corpus,
                                rejected=plan.rejected, registered=plan.added)
    for fs in plan.feature_sets:
        summary.start(fs.key, name=fs.name, items=fs.items, already_done=fs.already_done,
                      counts={Status.DECODE_ERROR.value: len(fs.unreadable)} if fs.unreadable else {})
    summary.wall_s = time.perf_counter() - t0
    return summary, plan.added


__all__ = ["FeatureSetPlan", "RunPlan", "describe_all", "feature_configs", "idle_summary", "plan_run", "ITEM_FIELDS",
           "SEGMENT_FIELDS", "batches", "item_ref", "plan_feature_set", "split_known", "unchanged"]
