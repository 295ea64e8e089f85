"""What a report shows, read from the catalog: a run, its scored files, statuses, predictions, attributions, faces.

:func:`load_report_data` reads everything through :class:`~emofuse.catalog.store.Catalog`
(no file is opened here) into a :class:`ReportData`: the run's classes and feature sets,
one :class:`ItemData` per file the run scored or tried to score (its score status and
reason, the clip-level prediction, the rows of one kind of time window, the modality
attribution columns and time attributions when the run was scored with ``--explain``, the
main face's boxes), the extraction statuses of the run's feature sets and the recorded
extract runs (throughput). Rendering is :mod:`emofuse.flows.report.page`.

Example (on a generated scored catalog, :mod:`emofuse.flows.report.dummies`):
    >>> import tempfile
    >>> from emofuse.flows.report.dummies import scored_catalog
    >>> root = tempfile.mkdtemp()
    >>> run_id = scored_catalog(root, n_files=3, durations=(3.0, 9.0), every=(3, 99, 99))
    >>> data = load_report_data(Catalog(root), run_id)
    >>> [(i.relpath, i.status, len(i.windows)) for i in data.items]
    [('2024/clip-0000.mp4', 'ok', 1), ('2025/clip-0001.mp4', 'ok', 4), ('interviews/clip-0002.mp4', 'no_features', 0)]
    >>> data.window, data.attr_columns, data.status_counts()
    ('4s/2s', ['attr_audio', 'attr_face'], {'ok': 2, 'no_features': 1})
    >>> pick_window(pd.Series(["clip", "4s/2s", "4s/2s", "frame"]))
    '4s/2s'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from emofuse.catalog.schemas import CLIP_WINDOW
from emofuse.catalog.sequences import LazySequence
from emofuse.catalog.status import score_status_key
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary

#: Arrays of the faces feature set the thumbnails need (not the embeddings).
FACE_ARRAYS = ["bbox", "mask", "det_score"]


@dataclass
class RunInfo:
    """The run whose predictions the report shows (from its verified ``config.json``/``metrics.json``)."""

    run_id: str
    model: str
    classes: list[str]
    dimensional: list[str]
    #: modality -> feature-set key, and modality -> extractor name (``faces``, ``egemaps``, …).
    feature_sets: dict[str, str]
    names: dict[str, str]
    created: str = ""
    #: metric -> {"mean", "std", "n"} over the folds' test splits (empty when unknown).
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def face_key(self) -> str | None:
        """The run's faces feature set (whose boxes give the thumbnails), if it has one."""
        for modality, key in self.feature_sets.items():
            if self.names.get(modality) == "faces" or modality == "face":
                return key
        return None


@dataclass
class ItemData:
    """One file (item) of the report."""

    item_id: str
    relpath: str
    paths: list[str]
    duration: float | None
    has_video: bool
    status: str
    message: str
    #: The clip-level prediction row (None: the item has no prediction).
    clip: dict[str, Any] | None = None
    #: Prediction rows of the report's time window kind, sorted by start (empty: clip only).
    windows: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Time attribution rows of this item (empty without ``--explain``).
    time_attr: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The main face's per-frame arrays (times, bbox, mask, det_score), when extracted.
    faces: dict[str, np.ndarray] | LazySequence | None = None
    #: Where the item lies in its file (segment items); 0 for whole files.
    offset: float = 0.0

    @property
    def anchor(self) -> str:
        """The HTML id of the item's section."""
        return f"item-{self.item_id[:16]}"

    @property
    def scored(self) -> bool:
        return self.clip is not None


@dataclass
class ReportData:
    """Everything :func:`emofuse.flows.report.page.render` needs."""

    catalog: str
    run: RunInfo
    fold: str
    #: The ``window`` label of the time rows shown (None: the run has clip rows only).
    window: str | None
    items: list[ItemData]
    #: Number of registered paths of the items (copies of one file are one item).
    n_files: int
    #: modality -> status -> items, for the items of the report.
    extraction: dict[str, dict[str, int]]
    #: The extract runs that extracted one of the run's feature sets, oldest first.
    extract_runs: list[ExtractRunSummary]
    #: ``attr_<modality>`` columns present (empty: the run was not scored with ``--explain``).
    attr_columns: list[str]
    #: First and last ``scored_at`` of the shown predictions.
    scored_span: tuple[pd.Timestamp, pd.Timestamp] | None = None

    def status_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.items:
            out[i.status] = out.get(i.status, 0) + 1
        return out


def run_info(cat: Catalog, run_id: str) -> RunInfo:
    """The run's classes, feature sets and held-out metrics, from its verified files."""
    run = cat.run(run_id)
    if not run.exists("config.json"):
        raise FileNotFoundError(f"no run {run_id!r} in {cat.layout.runs}; list the runs with "
                                f"`ls {cat.layout.runs}` or train one with `emofuse train`")
    cfg = run.read_json("config.json")
    metrics: dict[str, dict[str, float]] = {}
    if run.exists("metrics.json"):
        metrics = dict(run.read_json("metrics.json").get("summary") or {})
    return RunInfo(run_id=run_id, model=str(cfg["model"]), classes=list(cfg.get("classes") or []),
                   dimensional=list((cfg.get("task") or {}).get("dimensional") or []),
                   feature_sets=dict(cfg.get("feature_sets") or {}),
                   names={k: str(v) for k, v in (cfg.get("feature_set_names") or {}).items() if v},
                   created=str(cfg.get("created") or ""), metrics=metrics)


def pick_window(windows: pd.Series) -> str | None:
    """The time-window kind to plot: the most frequent non-clip ``window`` label (ties: sorted first)."""
    timed = windows[windows != CLIP_WINDOW]
    if not len(timed):
        return None
    counts = timed.value_counts()
    return sorted(counts[counts == counts.max()].index)[0]


def _pick_fold(folds: pd.Series, fold: str | None) -> str:
    present = sorted(set(folds.astype(str)))
    if fold is not None:
        if str(fold) not in present:
            raise ValueError(f"no predictions of fold {fold!r}; present: {present}")
        return str(fold)
    return "ensemble" if "ensemble" in present else present[0]


def load_report_data(cat: Catalog, run_id: str, *, fold: str | None = None, window: str | None = None) -> ReportData:
    """Read what the report of ``run_id`` shows (``fold``/``window``: which predictions, default the
    ensemble and the most frequent window kind)."""
    info = run_info(cat, run_id)
    preds = cat.predictions(model=info.model, run_id=run_id)
    status = cat.status(score_status_key(run_id))
    if not len(preds) and not len(status):
        raise ValueError(f"run {run_id} has no predictions and no scoring statuses in {cat.root}; score first: "
                         f"emofuse score-archive DIR --run {run_id} (or emofuse score --run {run_id})")
    if len(preds):
        preds = preds[preds["fold"].astype(str) == _pick_fold(preds["fold"], fold)]
        shown = window if window is not None else pick_window(preds["window"])
        if window is not None and window not in set(preds["window"]):
            raise ValueError(f"no predictions with window {window!r}; present: {sorted(set(preds['window']))}")
    else:
        shown = None
    fold_label = str(preds["fold"].iloc[0]) if len(preds) else (fold or "ensemble")
    ids = sorted(set(status["item_id"]) | set(preds["item_id"]))
    media = cat.media(dedupe=False)
    media = media[media["item_id"].isin(set(ids))]
    st = status.set_index("item_id")
    clip = preds[preds["window"] == CLIP_WINDOW].drop_duplicates("item_id", keep="last").set_index("item_id")
    timed = preds[preds["window"] == shown].sort_values(["item_id", "start"]) if shown else preds.iloc[:0]
    timed_by_item = dict(tuple(timed.groupby("item_id", sort=False))) if len(timed) else {}
    attr_cols = [c for c in preds.columns if c.startswith("attr_") and preds[c].notna().any()]
    time_attr = _time_attributions(cat, run_id, ids, fold_label)
    face_key = info.face_key
    faces: dict[str, Any] = {}
    if face_key is not None and face_key in cat.feature_sets():
        with_face = set(cat.done(face_key)) & set(ids)
        if with_face:
            faces = cat.read_sequences(face_key, with_face, arrays=FACE_ARRAYS)
    items = []
    for item_id, rows in media.groupby("item_id", sort=False):
        rows = rows.sort_values("relpath", na_position="last")
        first = rows.iloc[0]
        relpath = str(first["relpath"] if pd.notna(first["relpath"]) else first["path"])
        seg = first.get("segment_start")
        offset = float(seg) if seg is not None and pd.notna(seg) else 0.0
        if offset or pd.notna(first.get("segment_end")):
            relpath += f" [{offset:g}–{float(first['segment_end']):g} s]"
        s = st.loc[item_id] if item_id in st.index else None
        items.append(ItemData(
            item_id=item_id, relpath=relpath, paths=list(dict.fromkeys(rows["path"].astype(str))),
            duration=float(first["duration"]) if pd.notna(first["duration"]) else None,
            has_video=bool(first["has_video"]) if pd.notna(first["has_video"]) else False,
            status=str(s["status"]) if s is not None else ("ok" if item_id in clip.index else "not scored"),
            message=str(s["message"] or "") if s is not None else "",
            clip=clip.loc[item_id].to_dict() if item_id in clip.index else None,
            windows=timed_by_item.get(item_id, timed.iloc[:0]).reset_index(drop=True),
            time_attr=time_attr.get(item_id, pd.DataFrame()),
            faces=faces.get(item_id), offset=offset))
    items.sort(key=lambda i: i.relpath)
    extraction = {m: cat.status_counts(key, ids) for m, key in info.feature_sets.items()}
    keys = set(info.feature_sets.values())
    runs = [r for r in cat.extract_runs() if keys & set(r.feature_sets)]
    span = None
    if len(preds) and "scored_at" in preds and preds["scored_at"].notna().any():
        span = (preds["scored_at"].min(), preds["scored_at"].max())
    return ReportData(catalog=cat.root, run=info, fold=fold_label, window=shown, items=items, n_files=len(media),
                      extraction=extraction, extract_runs=runs, attr_columns=attr_cols, scored_span=span)


def _time_attributions(cat: Catalog, run_id: str, ids: list[str], fold: str) -> dict[str, pd.DataFrame]:
    """item_id -> its time attribution rows of ``fold`` (empty without an explained scoring)."""
    rows = cat.time_attributions(run_id, ids)
    if not len(rows):
        return {}
    rows = rows[rows["fold"].astype(str) == fold]
    return {k: v.reset_index(drop=True) for k, v in rows.groupby("item_id", sort=False)}


def merge_profiles(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows' profiles on one timeline: each scaled by its largest |weight|, then averaged where they overlap.

    >>> rows = pd.DataFrame({"window_start": [0.0, 0.0, 1.0, 1.0], "start": [0.0, 1.0, 1.0, 2.0],
    ...                      "end": [1.0, 2.0, 2.0, 3.0], "weight": [0.2, 0.4, 0.5, 0.5]})
    >>> [a.tolist() for a in merge_profiles(rows)]
    [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [0.5, 1.0, 1.0]]
    """
    scaled = rows[np.isfinite(rows["weight"].to_numpy(float))].copy()  # steps without a face have none
    peak = scaled.groupby("window_start")["weight"].transform(lambda w: np.abs(w).max())
    scaled["w"] = np.where(peak > 0, scaled["weight"] / peak.replace(0, np.nan), 0.0)
    edges = np.unique(np.concatenate([scaled["start"].to_numpy(float), scaled["end"].to_numpy(float)]))
    if len(edges) < 2:
        return scaled["start"].to_numpy(), scaled["end"].to_numpy(), scaled["w"].to_numpy()
    a, b = edges[:-1], edges[1:]
    mid = (a + b) / 2
    s, e, w = (scaled[c].to_numpy(float) for c in ("start", "end", "w"))
    total, count = np.zeros(len(mid)), np.zeros(len(mid))
    for lo, hi, v in zip(s, e, w):  # each step adds to the bins it covers
        i0, i1 = np.searchsorted(mid, [lo, hi])
        total[i0:i1] += v
        count[i0:i1] += 1
    keep = count > 0
    return a[keep], b[keep], total[keep] / count[keep]


__all__ = ["FACE_ARRAYS", "ItemData", "ReportData", "RunInfo", "load_report_data", "merge_profiles", "pick_window",
           "run_info"]
