"""Score catalog items with a trained run and write predictions to the catalog.

The run is loaded and applied by :mod:`emofuse.fusion.predict` (verified files, the run's exact
feature-set keys, alignment and per-fold normalisation statistics; the fold ensemble or one
fold). Predictions go to ``<catalog>/predictions/model=<model>/run=<run_id>/`` (see
:mod:`emofuse.catalog.predictions`): one row per item, fold label and ``window``, of four kinds:

* ``window="clip"``: the whole clip (``start`` 0, ``end`` the duration);
* with ``windows=(length_s, hop_s)``, one row per time window of each clip (``window="4s/2s"``,
  ``start``/``end`` its bounds; :func:`emofuse.fusion.timeline.clip_windows`), so emotion over
  time is a plot of those rows; a file longer than ``chunk_seconds`` is read that many seconds
  of windows at a time;
* a run trained per frame (``DataConfig.targets = "frame"``) also writes one row per model step
  of each clip (``window="frame"``, ``start``/``end`` the step's seconds,
  :func:`~emofuse.fusion.predict.predict_steps`), so valence/arousal over time is one query.

``label`` is the most probable class, ``score`` its probability. (item, fold, window) already
present for the run are skipped, part names are a hash of the item ids they hold, and a file's
rows of one kind are written in one part, so re-scoring writes nothing, duplicates nothing, and
a crash never leaves a file half-scored. Every scored item also gets a status row
(``score-<run_id>``, see :mod:`emofuse.fusion.score_report`). With ``explain=True`` the clip and
window rows also carry attributions per modality (``attr_<modality>`` columns) and each row gets
a profile over time (attention or occlusion, ``Catalog.time_attributions``); see
:mod:`emofuse.fusion.explain`.

Example (needs a trained run: see ``tests/test_fusion_runs.py`` for one made from scratch):
    >>> res = score_items("emofuse-data/catalog", "tacfn-20250101-120000-abcdef")   # doctest: +SKIP
    >>> res = score_items("emofuse-data/catalog", "tacfn-20250101-120000-abcdef", windows=(4, 2))  # doctest: +SKIP
    >>> import pandas as pd; pd.read_parquet("emofuse-data/catalog/predictions")     # doctest: +SKIP
    >>> score_windows(4.0, None), score_windows(None, None)
    ((4.0, 2.0), None)
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from emofuse.catalog.predictions import window_label
from emofuse.catalog.schemas import CLIP_WINDOW, FRAME_WINDOW
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.dataset import AlignedData
from emofuse.fusion.explain import explain as explain_rows
from emofuse.fusion.predict import LoadedRun, load_run, predict, predict_steps
from emofuse.fusion.score_report import record_score_status
from emofuse.fusion.torch_threads import torch_threads

log = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    """What a scoring call did: per-clip rows written, items skipped (already scored), items without features."""

    run_id: str
    model: str
    fold: str
    n_written: int
    n_skipped: int
    n_unscorable: int
    path: str
    parts: list[str] = field(default_factory=list)
    #: Window rows written (``windows`` given), and their ``window`` label.
    n_window_rows: int = 0
    windows: str | None = None
    #: Per-step rows written (``window="frame"``: runs trained per frame).
    n_frame_rows: int = 0
    #: Whether attributions were stored with the rows written (``explain``).
    explained: bool = False
    #: Scoring status per requested item, counted (``ok``, ``no_features``), the reason of
    #: each item without predictions (item_id -> message), and the status folder.
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    status_path: str | None = None
    media_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class ScoreProgress:
    """Where a scoring call stands (given to the ``progress`` callback after every chunk)."""

    items_done: int
    items_total: int
    media_s_done: float
    media_s_total: float
    rows_written: int
    elapsed_s: float

    @property
    def items_per_s(self) -> float:
        return self.items_done / max(self.elapsed_s, 1e-9)

    @property
    def media_s_per_s(self) -> float:
        return self.media_s_done / max(self.elapsed_s, 1e-9)

    @property
    def eta_s(self) -> float:
        """Seconds left, from the media seconds still to score (items when durations are unknown)."""
        if self.media_s_total > 0 and self.media_s_done > 0:
            return self.elapsed_s * (self.media_s_total - self.media_s_done) / self.media_s_done
        if self.items_done:
            return self.elapsed_s * (self.items_total - self.items_done) / self.items_done
        return float("nan")

    def line(self) -> str:
        pct = 100.0 * self.items_done / max(self.items_total, 1)
        return (f"scored {self.items_done}/{self.items_total} items ({pct:.0f}%), {self.rows_written} rows; "
                f"{self.items_per_s:.1f} items/s, {self.media_s_per_s:.0f} media-s/s; ETA {self.eta_s:.0f} s")


def score_windows(window: float | None, hop: float | None) -> tuple[float, float] | None:
    """``(length_s, hop_s)`` of windowed scoring from a window length and an optional hop (default half of it).

    >>> score_windows(4, 1), score_windows(None, None)
    ((4.0, 1.0), None)
    >>> score_windows(None, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: hop needs window (seconds per window)
    """
    if window is None:
        if hop is not None:
            raise ValueError("hop needs window (seconds per window)")
        return None
    hop = float(hop) if hop is not None else float(window) / 2
    if not (float(window) > 0 and hop > 0):
        raise ValueError(f"window and hop must be positive seconds, got window={window}, hop={hop}")
    return float(window), hop


def score(catalog_root: str | os.PathLike[str], run_id: str, *, threads: int | None = None,
          **kwargs: Any) -> ScoreResult:
    """:func:`score_items` with ``threads`` torch CPU threads (None: torch's default)."""
    with torch_threads(threads):
        return score_items(catalog_root, run_id, **kwargs)


# --------------------------------------------------------------------------- what to score
@dataclass
class ScorePlan:
    """The work of a scoring call: the row kinds (``window`` labels), what each requested item still
    needs, the items to score, the parts to score again with attributions, the media durations."""

    ids: list[str]
    kinds: list[str]
    done: dict[str, set[str]]
    need: dict[str, list[str]]
    todo: list[str]
    redo: list[tuple[str, list[str]]]
    duration: dict[str, float]

    def work(self, chunk_size: int, chunk_seconds: float) -> Iterator[tuple[list[str], dict[str, list[str]] | None]]:
        """(chunk of items, None) for the items to score, then ([], {kind: items}) per part to redo."""
        for chunk in _chunks(self.todo, self.duration, chunk_size, chunk_seconds):
            yield chunk, None
        for kind, part in self.redo:
            yield [], {kind: part}

    def seconds(self, ids: Iterable[str]) -> float:
        return float(sum(self.duration.get(i, 0.0) for i in ids))


def plan_scoring(cat: Catalog, run: LoadedRun, media: pd.DataFrame, ids: list[str], fold_label: str,
                 kinds: list[str], explain: bool) -> ScorePlan:
    """What is left to score: per item the kinds not written yet for this run and fold; with
    ``explain``, the parts written earlier without attributions."""
    done = cat.existing_predictions(run.model_name, run.run_id, parts=explain)
    done = done[done["fold"] == fold_label]
    done_by_kind = {k: set(done.loc[done["window"] == k, "item_id"]) for k in kinds}
    redo = _unexplained_parts(done, [k for k in kinds if k != FRAME_WINDOW], ids) if explain else []
    need = {i: [k for k in kinds if i not in done_by_kind[k]] for i in ids}
    duration = dict(zip(media["item_id"], media["duration"].astype("float64").fillna(0.0)))
    return ScorePlan(ids, kinds, done_by_kind, need, [i for i in ids if need[i]], redo, duration)


# --------------------------------------------------------------------------- rows of each kind
@dataclass
class RowMaker:
    """Prediction rows of each kind for a list of items (and their time attributions with ``explain``)."""

    cat: Catalog
    run: LoadedRun
    fold: str
    batch_size: int
    scored_at: dt.datetime
    explain: bool
    windows: tuple[float, float] | None
    chunk_seconds: float
    duration: dict[str, float]

    def rows(self, kind: str, ids: list[str]) -> tuple[pd.DataFrame | None, list[pd.DataFrame]]:
        """The rows of ``kind`` for ``ids`` (None: no item had features) and their time attributions."""
        times: list[pd.DataFrame] = []
        if kind == CLIP_WINDOW:
            dfs = self._scored(self._load(ids), times)
        elif kind == FRAME_WINDOW:
            data = self._load(ids)
            dfs = [predict_steps(self.run, data, fold=self.fold, batch_size=self.batch_size,
                                 scored_at=self.scored_at)] if data.n_items else []
        elif len(ids) == 1 and self.duration.get(ids[0], 0.0) > self.chunk_seconds:
            dfs = self._long_file_windows(ids[0], times)
        else:
            dfs = self._scored(self._load(ids, windows=self.windows), times)
        return (pd.concat(dfs, ignore_index=True) if dfs else None), times

    def _load(self, ids: list[str], **kw: Any) -> AlignedData:
        return load_aligned(self.cat, self.run.data_config, ids, classes=self.run.classes, dims=self.run.dims,
                            frame_targets=False, **kw)

    def _scored(self, data: AlignedData, times: list[pd.DataFrame]) -> list[pd.DataFrame]:
        """Clip or window rows of ``data`` (none when it holds no item), with attributions if asked."""
        if not data.n_items:
            return []
        df = predict(self.run, data, fold=self.fold, batch_size=self.batch_size, scored_at=self.scored_at)
        if self.explain:
            ex = explain_rows(self.run, data, fold=self.fold, batch_size=self.batch_size)
            if not np.array_equal(ex.attributions["item_id"].to_numpy(), df["item_id"].to_numpy()):
                raise RuntimeError("attributions and predictions disagree on their rows")  # pragma: no cover
            df = pd.concat([df, ex.attributions.drop(columns="item_id")], axis=1)
            times.append(ex.time)
        return [df]

    def _long_file_windows(self, item: str, times: list[pd.DataFrame]) -> list[pd.DataFrame]:
        """The windows of one long file, ``chunk_seconds`` of them at a time (bounded memory)."""
        dfs: list[pd.DataFrame] = []
        t = 0.0
        while t < self.duration[item]:
            data = self._load([item], windows=self.windows, time_range=(t, t + self.chunk_seconds))
            if data.n_items:
                dfs += self._scored(data, times)
            elif data.dropped.get("no_modality"):
                break
            t += self.chunk_seconds
        return dfs


# --------------------------------------------------------------------------- writing
@dataclass
class Written:
    """What a scoring call wrote: rows per kind, part files, items scored per kind, items without features."""

    rows: dict[str, int]
    parts: list[str] = field(default_factory=list)
    scored: dict[str, set[str]] = field(default_factory=dict)
    unscorable: set[str] = field(default_factory=set)

    @property
    def window_rows(self) -> int:
        return sum(n for k, n in self.rows.items() if k not in (CLIP_WINDOW, FRAME_WINDOW))


def write_rows(cat: Catalog, run: LoadedRun, fold: str, kind: str, ids: list[str], df: pd.DataFrame | None,
               times: list[pd.DataFrame], written: Written, *, redo: bool) -> None:
    """Write one kind's rows of ``ids`` as one part (time attributions first: the part commits them).

    A part scored again for attributions (``redo``) whose items are no longer all scorable keeps its
    old rows (a new part would get another name).
    """
    got = set(df["item_id"]) if df is not None else set()
    written.unscorable |= set(ids) - got
    if df is None or not len(df):
        return
    if redo and got != set(ids):
        log.warning("run %s: %d of a part's items are no longer scorable; its rows keep no attributions",
                    run.run_id, len(set(ids) - got))
        return
    if times:
        cat.write_time_attributions(run.run_id, pd.concat(times, ignore_index=True), fold=fold, window=kind)
    written.parts.append(cat.write_predictions(run.model_name, run.run_id, df, run.classes, fold=fold, window=kind,
                                               attributions=[c for c in df if c.startswith("attr_")]))
    written.scored.setdefault(kind, set()).update(got)
    written.rows[kind] = written.rows.get(kind, 0) + len(df)


# --------------------------------------------------------------------------- the call
def score_items(catalog_root: str | os.PathLike[str], run_id: str, *, item_ids: Iterable[str] | None = None,
                fold: str | int = "ensemble", device: str | torch.device | None = None, batch_size: int = 64,
                chunk_size: int = 1000, windows: tuple[float, float] | Sequence[float] | None = None,
                clip: bool = True, chunk_seconds: float = 600.0,
                progress: Callable[[ScoreProgress], None] | None = None,
                record_status: bool = True, frames: bool | None = None, explain: bool = False) -> ScoreResult:
    """Score items (all media items by default) with a run and write new predictions to the catalog.

    ``clip``: one row per item over the whole clip (``window="clip"``). ``windows``:
    ``(length_s, hop_s)`` also writes one row per time window (``window="<length>s/<hop>s"``).
    ``frames``: one row per model step (``window="frame"``; default: when the run was trained
    per frame; a clip is aligned whole, so its steps fit in memory for files of hours).
    What is already written for this run, fold and window is skipped (nothing replaced,
    nothing duplicated). Work goes in chunks of at most ``chunk_size`` items and
    ``chunk_seconds`` of media; a longer file is its own chunk and its windows are read
    ``chunk_seconds`` at a time, so memory stays bounded whatever a file's length (its
    rows are written as one part, so a file is never half-scored). ``progress`` gets a
    :class:`ScoreProgress` after every chunk. With ``record_status`` every requested item
    gets a status in ``status/feature_set=score-<run_id>/`` (``ok`` or ``no_features`` with
    the extraction statuses that explain it), written only where it changed.
    ``explain``: also store attributions (:mod:`emofuse.fusion.explain`): ``attr_*`` columns
    in the clip and window rows, and time profiles (``Catalog.time_attributions``); rows this
    run wrote earlier without them are scored again, their parts rewritten whole.
    """
    t_start = time.perf_counter()
    cat = Catalog(catalog_root)
    fold_label = str(fold)
    win = None if windows is None else tuple(float(v) for v in windows)
    run = load_run(catalog_root, run_id, folds=None if fold_label == "ensemble" else [int(fold_label)],
                   device=device)
    media = cat.media()
    ids = list(dict.fromkeys(item_ids)) if item_ids is not None else media["item_id"].tolist()
    if frames is None:
        frames = run.data_config.targets == "frame"
    if frames and not run.config.model_spec.abilities.per_frame:
        raise ValueError(f"run {run_id}: model {run.config.registry_model!r} makes no per-frame predictions")
    kinds = ([CLIP_WINDOW] if clip else []) + ([window_label(win)] if win is not None else [])
    kinds += [FRAME_WINDOW] if frames else []
    if not kinds:
        raise ValueError("nothing to score: pass clip=True and/or windows=(length_s, hop_s)")
    plan = plan_scoring(cat, run, media, ids, fold_label, kinds, explain)
    if plan.redo:
        log.info("run %s: %d prediction parts were written without attributions; scoring them again with them",
                 run_id, len(plan.redo))
    maker = RowMaker(cat, run, fold_label, batch_size, dt.datetime.now(dt.timezone.utc), explain, win,
                     chunk_seconds, plan.duration)
    written = Written({k: 0 for k in kinds})
    media_total = plan.seconds(plan.todo)
    items_done, media_done = 0, 0.0
    for chunk, only in plan.work(chunk_size, chunk_seconds):
        for kind in kinds:
            ids_k = [i for i in chunk if kind in plan.need[i]] if only is None else only.get(kind, [])
            if ids_k:
                df, times = maker.rows(kind, ids_k)
                write_rows(cat, run, fold_label, kind, ids_k, df, times, written, redo=only is not None)
        items_done += len(chunk)
        media_done += plan.seconds(chunk)
        if progress is not None:
            progress(ScoreProgress(items_done, len(plan.todo), media_done, media_total, sum(written.rows.values()),
                                   time.perf_counter() - t_start))
    complete = {i for i in ids if all(i in plan.done[k] or i in written.scored.get(k, ()) for k in kinds)}
    statuses, reasons, status_path = {}, {}, None
    if record_status and ids:
        statuses, reasons, status_path = record_score_status(cat, run.config, run_id, ids, complete)
    pred_dir = cat.layout.predictions_dir(run.model_name, run_id)
    n_clip, n_frame = written.rows.get(CLIP_WINDOW, 0), written.rows.get(FRAME_WINDOW, 0)
    log.info("run %s (%s): wrote %d predictions, %d window rows and %d step rows, skipped %d already scored, %d "
             "without features -> %s", run_id, fold_label, n_clip, written.window_rows, n_frame,
             len(ids) - len(plan.todo), len(written.unscorable), pred_dir)
    return ScoreResult(run_id=run_id, model=run.model_name, fold=fold_label, n_written=n_clip,
                       n_skipped=len(ids) - len(plan.todo), n_unscorable=len(written.unscorable), path=pred_dir,
                       parts=written.parts, n_window_rows=written.window_rows,
                       windows=window_label(win) if win is not None else None, n_frame_rows=n_frame,
                       explained=explain, statuses=statuses, reasons=reasons, status_path=status_path,
                       media_seconds=media_total, seconds=time.perf_counter() - t_start)


def _unexplained_parts(done: pd.DataFrame, kinds: list[str], ids: list[str]) -> list[tuple[str, list[str]]]:
    """(window kind, item ids) of each prediction part without attributions that holds one of ``ids``.

    ``done``: ``existing_predictions(..., parts=True)`` of one fold label. A part is scored
    again whole (its items keep one part, under the same name, replaced in one step).
    """
    stale = done[~done["explained"].astype(bool) & done["window"].isin(kinds)]
    wanted = set(ids)
    return [(str(kind), sorted(set(sub["item_id"]))) for (_, kind), sub in stale.groupby(["part", "window"])
            if wanted & set(sub["item_id"])]


def _chunks(ids: list[str], duration: dict[str, float], size: int, seconds: float) -> Iterator[list[str]]:
    """Consecutive groups of at most ``size`` items and ``seconds`` of media (a longer item alone)."""
    chunk: list[str] = []
    held = 0.0
    for i in ids:
        d = float(duration.get(i, 0.0) or 0.0)
        if chunk and (len(chunk) >= size or held + d > seconds):
            yield chunk
            chunk, held = [], 0.0
        chunk.append(i)
        held += d
    if chunk:
        yield chunk


__all__ = ["ScorePlan", "ScoreProgress", "ScoreResult", "plan_scoring", "score", "score_items", "score_windows"]
