"""Plan an extract run before any worker starts: what to register, what each feature set still needs, in which tasks.

A run over a corpus the catalog already holds finds nothing to do here, so the flow
never starts a Dask cluster for it. What is left to do follows from the status table
(:func:`emofuse.catalog.status.settled`): items already ``ok``, and failures the content
decided (``no_face``, ``decode_error``, … of unchanged bytes), are settled; ``error`` and
items without a status are attempted again; ``retry_failed`` attempts the final failures
too. Tasks are sized by media duration as well as by item count (``max_items``,
``max_seconds``), so a task of long files and a task of short ones cost about the same
and the per-task cost of the orchestrator stays small next to the work.

Planned items are :class:`~emofuse.pipeline.registry.MediaRef` records (paths and ids,
never arrays): what the tasks get and the extractors read.

Example:
    >>> items = [MediaRef(str(i), f"/v/{i}.mp4", duration=d) for i, d in enumerate([3.0, 3.0, 50.0, 3.0, 3.0])]
    >>> [[it.item_id for it in b] for b in batches(items, max_items=3, max_seconds=10.0)]
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

import numpy as np
import pandas as pd

from emofuse.catalog.corpora import recipes
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.schemas import Status
from emofuse.catalog.pending import pending
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.pipeline import ingest
from emofuse.pipeline.intake import Intake, explain_nothing_taken
from emofuse.pipeline.registry import Extractor, MediaRef
from emofuse.pipeline.request import ExtractRequest


def item_ref(row: Any, *, probed: bool = True) -> MediaRef:
    """The :class:`MediaRef` of one media row (a ``DataFrame.itertuples`` tuple); a part of a file
    carries its range (``segment_start``/``segment_end``) and/or its subject's ``face_side``.
    ``probed=False``: the row's probe failed, so its streams are unknown (the extractor finds out).

    >>> rows = pd.DataFrame({"item_id": ["a", "b"], "path": ["/x.avi"] * 2, "duration": [9.0, 1.5],
    ...                      "has_audio": True, "has_video": True, "transcript": [None, "Hi."],
    ...                      "segment_start": [None, 2.0], "segment_end": [None, 3.5]})
    >>> [(r.item_id, r.segment_start, r.segment_end) for r in map(item_ref, rows.itertuples())]
    [('a', None, None), ('b', 2.0, 3.5)]
    """
    def value(name: str) -> Any:
        v = getattr(row, name, None)
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v

    duration, start, end = (value(f) for f in ("duration", "segment_start", "segment_end"))
    side = value("face_side")
    return MediaRef(item_id=row.item_id, path=row.path, duration=None if duration is None else float(duration),
                    has_audio=bool(value("has_audio")) if probed and value("has_audio") is not None else None,
                    has_video=bool(value("has_video")) if probed and value("has_video") is not None else None,
                    transcript=value("transcript"),
                    segment_start=None if start is None else float(start), segment_end=None if end is None else float(end),
                    face_side=side if isinstance(side, str) else None)


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


def batches(items: list[MediaRef], *, max_items: int, max_seconds: float | None) -> list[list[MediaRef]]:
    """Consecutive runs of ``items`` with at most ``max_items`` items and ``max_seconds`` of media each.

    An item longer than ``max_seconds`` is a task of its own; unknown durations count as 0.
    """
    out: list[list[MediaRef]] = []
    cur: list[MediaRef] = []
    secs = 0.0
    for it in items:
        d = float(it.duration or 0.0)
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
    #: The items to extract.
    todo: list[MediaRef] = field(default_factory=list)
    #: How many of ``unreadable`` the status table does not say yet.
    unrecorded: int = 0

    @property
    def idle(self) -> bool:
        """Nothing to extract and no status to record."""
        return not self.todo and not self.unrecorded

    @property
    def known_counts(self) -> dict[str, int]:
        """Outcomes known before any task: the probe's decode errors."""
        return {Status.DECODE_ERROR.value: len(self.unreadable)} if self.unreadable else {}


def plan_feature_set(cat: Catalog, name: str, extractor: Extractor, media: pd.DataFrame, *,
                     retry_failed: bool = False, unsettled: np.ndarray | None = None) -> FeatureSetPlan:
    """Items of ``media`` (one row per item) that ``extractor``'s feature set has not settled yet.

    Settled: ``ok``, or a failure the content decided (unless ``retry_failed``; see
    :func:`~emofuse.catalog.status.settled`). Unsettled items that did not probe
    (``probe_error``) become ``decode_error`` statuses without a task; with ``retry_failed``
    they go to the extractor, which decodes them itself. ``unsettled``: the mask over ``media``'s rows
    that :func:`~emofuse.catalog.pending.pending` gives for this set (read here when None).
    """
    key = extractor.key
    if unsettled is None:
        unsettled = pending(cat.layout, [key], media["item_id"], retry_failed=retry_failed)[key]
    todo = media[unsettled]
    bad = todo["probe_error"].notna() if "probe_error" in todo else pd.Series(False, index=todo.index)
    if retry_failed:
        items = [item_ref(r, probed=not b) for r, b in zip(todo.itertuples(), bad)]
        unreadable: list[tuple[str, str]] = []
    else:
        items = [item_ref(r) for r in todo[~bad].itertuples()]
        unreadable = list(zip(todo.loc[bad, "item_id"], todo.loc[bad, "probe_error"]))
    # a recorded decode_error is final, so settled: every unreadable item still lacks its status
    return FeatureSetPlan(name=name, key=key, items=len(media), already_done=len(media) - len(todo),
                          unreadable=unreadable, todo=items, unrecorded=len(unreadable))


@dataclass
class RunPlan:
    """An extract run before any worker starts: files to register, and each feature set's remaining work.

    ``media`` holds the run's items the catalog already knows (one row per item);
    ``feature_sets`` is planned over those only, so files still to register add work.
    """

    #: What the recipe took from the source (empty without a source).
    intake: Intake = field(default_factory=Intake)
    #: ``"<path>: <reason>"`` of every rejected entry.
    rejected: list[str] = field(default_factory=list)
    #: Entries to hash and probe (new files, or changed since registered).
    register: list[Entry] = field(default_factory=list)
    #: Media rows this plan added (``plan_run(register=True)``).
    added: int = 0
    media: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_sets: list[FeatureSetPlan] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        """Nothing to register, extract or record: the run needs no worker."""
        return not self.register and all(f.idle for f in self.feature_sets)


@dataclass
class _Source:
    """A source's entries as the plan sorts them: whole files and parts (segments, sides) the recipe took."""

    entries: list[Entry]
    whole: dict[str, dict[str, Any]]
    parts: list[Entry]

    @classmethod
    def discover(cls, source: str, corpus: str, selection: list[str] | tuple[str, ...] | None) -> "_Source":
        entries = list(recipes.discover(corpus, source, list(selection) if selection else None))
        good = [e for e in entries if not e.error]
        parts = {(e.path, e.columns.get("segment_start"), e.columns.get("segment_end"), e.columns.get("face_side")): e
                 for e in good if ingest.is_part(e.columns)}
        return cls(entries, {e.path: e.columns for e in good if not ingest.is_part(e.columns)}, list(parts.values()))

    @property
    def paths(self) -> list[str]:
        return list(dict.fromkeys([*self.whole, *(e.path for e in self.parts)]))


def plan_run(cat: Catalog, source: str | None, corpus: str, selection: list[str] | tuple[str, ...] | None,
             extractors: dict[str, Extractor], *, register: bool = False, threads: int | None = None,
             retry_failed: bool = False) -> RunPlan:
    """Plan a run over ``source`` (None: every item the catalog holds) for ``extractors`` (name -> extractor).

    ``register``: hash and probe new or changed files here, ``threads`` at a time (hashing and
    PyAV's probe release the GIL), and add them to the media table, so the plan covers every
    file; a moved or copied file is then known by its content and needs no work. Without it,
    such files stay in ``RunPlan.register`` and the plan covers known files only.
    ``retry_failed``: plan the failures the content decided again (see :func:`plan_feature_set`).
    Raises :class:`~emofuse.pipeline.intake.NothingTaken` when the recipe took no file of ``source``.
    """
    plan = RunPlan()
    if source:
        src = _Source.discover(source, corpus, selection)
        plan.intake = Intake.of(src.entries)
        explain_nothing_taken(plan.intake, source, corpus)
        plan.rejected = [f"{e.path}: {e.error}" for e in src.entries if e.error]
        plan.media = _source_media(cat, plan, src, source, corpus, register=register, threads=threads)
    else:
        plan.media = cat.media()
    keys = {name: ex.key for name, ex in extractors.items()}
    unsettled = pending(cat.layout, list(keys.values()), plan.media["item_id"], retry_failed=retry_failed)
    plan.feature_sets = [plan_feature_set(cat, name, ex, plan.media, retry_failed=retry_failed,
                                          unsettled=unsettled[keys[name]]) for name, ex in extractors.items()]
    return plan


def _source_media(cat: Catalog, plan: RunPlan, src: _Source, source: str, corpus: str, *, register: bool,
                  threads: int | None) -> pd.DataFrame:
    """The media rows (one per item) of the files ``src`` took that the catalog knows; sets ``plan.register``
    (entries still to hash and probe) or, with ``register``, registers them and sets ``plan.added``."""
    known = cat.known_files()
    same, other = split_known(src.paths, known)
    media = cat.media(dedupe=False)
    segments, known_todo = _unregistered_items(src.whole, src.parts, same, media)
    plan.register = [Entry(p, src.whole[p]) for p in other if p in src.whole]
    plan.register += known_todo + [e for e in src.parts if e.path not in same]
    if register and plan.register:
        rows = describe_all(plan.register, source, threads=threads, known=known)
        # per-frame labels first: an item is registered (media row) only once its labels are stored
        annotated = [e for e in src.entries if e.annotations and not e.error]
        cat.add_frame_labels(ingest.frame_labels(corpus, annotated, rows, threads=threads))
        plan.added = cat.add_media(rows)
        same.update({p: "" for p in other})
        segments |= {(r["item_id"], r["path"]) for r in rows if r.get("parent_id") is not None}
        plan.register = []
        media = cat.media(dedupe=False)
    whole = media["path"].isin({p for p in same if p in src.whole}) & media["parent_id"].isna()
    part = pd.Series(False, index=media.index)  # (item, path) pairs of segment items, hashed in pandas
    if segments:
        part[:] = pd.MultiIndex.from_arrays([media["item_id"], media["path"]]).isin(list(segments))
    return media[whole | part].drop_duplicates("item_id")


def _unregistered_items(whole: dict[str, dict[str, Any]], parts: list[Entry], same: dict[str, str],
                        media: pd.DataFrame) -> tuple[set[tuple[str, str]], list[Entry]]:
    """Items of unchanged files (``same``: path -> content id) that the media table lacks: a file known
    only by its segments taken whole, a new segment of a known file. Returns ((item id, path) of the
    registered segment items, entries to register); ids follow from the known content id: nothing is hashed.
    """
    have = set(zip(media["item_id"], media["path"]))
    todo = [Entry(p, cols) for p, cols in whole.items() if p in same and (same[p], p) not in have]
    known: set[tuple[str, str]] = set()
    for e in parts:
        if e.path not in same:
            continue
        key = (ingest.segment_id(same[e.path], e.columns), e.path)
        if key in have:
            known.add(key)
        else:
            todo.append(e)
    return known, todo


def describe_all(entries: list[Entry], source: str, *, threads: int | None = None,
                 known: dict[str, tuple[int, int, str]] | None = None) -> list[dict[str, Any]]:
    """Media rows of ``entries``: content hash and probe, ``threads`` files at a time.

    Entries of one file (the segments of a dialog) share one hash and one probe; ``known``
    (path -> size, mtime, content id, as :meth:`Catalog.known_files` gives) spares hashing
    files that have not changed.
    """
    from concurrent.futures import ThreadPoolExecutor

    by_path: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_path.setdefault(e.path, []).append(e.columns)

    def one(path: str) -> list[dict[str, Any]]:
        return ingest.describe_parts(path, by_path[path], root=source, known=(known or {}).get(path))

    with ThreadPoolExecutor(max_workers=threads or min(8, 2 * (os.cpu_count() or 1))) as pool:
        return [row for rows in pool.map(one, list(by_path)) for row in rows]


def new_summary(request: ExtractRequest, plan: RunPlan, **fields: Any) -> ExtractRunSummary:
    """The summary of a planned run, with what its recipe took and rejected (``fields``: more of its fields)."""
    return ExtractRunSummary(run_id=request.run_id, catalog=request.catalog, source=request.source,
                             corpus=request.corpus, rejected=plan.rejected, seen=plan.intake.seen,
                             taken=plan.intake.taken, rejections=plan.intake.rejections, **fields)


def idle_summary(request: ExtractRequest, *, register: bool = False) -> tuple[ExtractRunSummary | None, int]:
    """(The summary of a run that has nothing to extract or record, else None; media rows it registered).

    Cheap (catalog reads and a ``stat`` per file, no worker, no orchestrator), so a caller can
    answer a finished corpus without starting anything. ``register``: register new or changed
    files first (see :func:`plan_run`), so moved or copied files are no work either.
    """
    t0 = time.perf_counter()
    cat = Catalog(request.catalog).init()
    plan = plan_run(cat, request.source, request.corpus, request.selection, request.extractors(),
                    register=register, retry_failed=request.retry_failed)
    if not plan.idle:
        return None, plan.added
    summary = new_summary(request, plan, registered=plan.added)
    for fs in plan.feature_sets:
        summary.start(fs.key, name=fs.name, items=fs.items, already_done=fs.already_done, counts=fs.known_counts)
    summary.wall_s = time.perf_counter() - t0
    return summary, plan.added


__all__ = ["FeatureSetPlan", "RunPlan", "batches", "describe_all", "idle_summary", "item_ref", "new_summary",
           "plan_feature_set", "plan_run", "split_known", "unchanged"]
