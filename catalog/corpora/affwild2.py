"""Aff-Wild2 recipe (the ABAW release): videos, per-frame valence/arousal and expression annotations.

Layout (the folder names of the release; videos may lie in any sub-folder)::

    videos/batch1/1-30-1280x720.mp4, videos/batch2/video59.avi, …
    Annotations/VA_Estimation_Challenge/Train_Set/<video>.txt            valence,arousal per frame
    Annotations/VA_Estimation_Challenge/Validation_Set/<video>_left.txt  (two subjects: _left/_right)
    Annotations/EXPR_Classification_Challenge/Train_Set/<video>.txt      one class index per frame

A VA file starts with ``valence,arousal`` and has one ``v,a`` line per video frame, values in
[-1, 1], ``-5`` where the frame was not annotated. An expression file starts with the 8 class
names (:data:`CLASSES`, the official order) and has one class index per frame, ``-1`` where
unannotated. A video with two subjects has ``<video>_left.txt`` and ``<video>_right.txt``
instead of ``<video>.txt``: each is an item of its own (``face_side`` left/right, the faces
extractor takes the face on that side; item id :func:`~emofuse.catalog.identity.part_id` of
the file's content id and the side, ``parent_id`` the file's).

Items and columns: one :class:`~.entry.Entry` per annotated (video, side) with ``speaker``
(the annotation file's stem: one subject per file), ``split`` (``train``/``validation``,
from the folder: the official ABAW sets), ``face_side`` and the annotation files
(``annotations``: ``{"va": path, "expr": path}``). The per-frame rows are read at
registration (:func:`frame_labels`: one row per video frame, times from the container's
frame timestamps, NaN / null where unannotated); the media table's ``valence``,
``arousal`` and ``emotion`` are then the item's means and most frequent expression
(:func:`clip_columns`), a summary for browsing, not a training target.

Reported, not guessed: a video annotated in no set (a Test_Set video), an annotation file
without a video, a video whose VA and expression files sit in different sets, and a name in
two folders come back as rejected entries; a malformed line is a ``ValueError`` naming
``file:line``. An annotation file may have up to :data:`LINE_TOLERANCE` lines more or fewer
than the video has frames (the ABAW files sometimes do): extra lines are dropped, missing
ones are unannotated frames, and a warning says so; a larger difference is an error.

:func:`evaluation_plan` gives one fold: test = the official validation set (the ABAW
convention: its test labels are not public); train = the official train set minus a
validation set for early stopping of about :data:`VAL_FRACTION` of its videos, chosen by a
hash of the video name (both sides of a two-subject video, and ``<name>_1``/``<name>_2`` parts
of one recording, stay together), as lists of ``speaker`` values (``"by": "speaker"``).

Example:
    >>> d = tempfile.mkdtemp()
    >>> va = os.path.join(d, "Annotations", VA_FOLDER, "Train_Set")
    >>> os.makedirs(va); os.makedirs(os.path.join(d, "videos"))
    >>> for name in ("videos/1-30-640x360.mp4", "videos/9-30-1280x360.mp4", "videos/test.mp4"):
    ...     open(os.path.join(d, name), "wb").close()
    >>> for stem in ("1-30-640x360", "9-30-1280x360_left", "9-30-1280x360_right", "gone"):
    ...     with open(os.path.join(va, stem + ".txt"), "w") as f:
    ...         _ = f.write("valence,arousal\\n0.5,0.25\\n-5,-5\\n")
    >>> for e in discover(d):
    ...     print(os.path.basename(e.path), e.columns.get("face_side"), e.columns.get("split"), bool(e.error))
    gone.txt None None True
    1-30-640x360.mp4 None train False
    9-30-1280x360.mp4 left train False
    9-30-1280x360.mp4 right train False
    test.mp4 None None True
    >>> frame_labels({"va": os.path.join(va, "1-30-640x360.txt")}, np.array([0.0, 1 / 30]))
       frame      time  valence  arousal expression
    0      0  0.000000      0.5     0.25       None
    1      1  0.033333      NaN      NaN       None
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile  # noqa: F401 - used by the doctests
from typing import Any, Iterator

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan, Fold
from emofuse.catalog.corpora.recipe import CorpusRecipe
from emofuse.catalog.corpora.registry import register_corpus

log = logging.getLogger(__name__)

#: The 8 expression classes in the official order (an expression file's header; index = label).
CLASSES: list[str] = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
VA_FOLDER = "VA_Estimation_Challenge"
EXPR_FOLDER = "EXPR_Classification_Challenge"
#: Our split name -> the release's folder.
SPLIT_FOLDERS = {"train": "Train_Set", "validation": "Validation_Set"}
#: Annotation folders by kind (later ABAW releases call the expression one EXPR_Recognition_Challenge).
_CHALLENGE = re.compile(r"^(VA|EXPR)_\w*Challenge$", re.IGNORECASE)
VIDEO_EXTENSIONS = (".mp4", ".avi")
#: Most annotation lines more or fewer than video frames that are reconciled (see module).
LINE_TOLERANCE = 3
#: Share of the official train set's videos held out for early stopping.
VAL_FRACTION = 0.15
UNANNOTATED_VA = -5.0
UNANNOTATED_EXPR = -1


def _walk(root: str) -> Iterator[tuple[str, list[str], list[str]]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        yield dirpath, dirnames, sorted(f for f in filenames if not f.startswith("."))


def _annotation_files(root: str) -> Iterator[tuple[str, str, str]]:
    """(kind ``va``/``expr``, split, path) of every annotation file under a ``*_Challenge/<Set>`` folder."""
    folders = {v.lower(): k for k, v in SPLIT_FOLDERS.items()}
    for dirpath, _dirs, files in _walk(root):
        split = folders.get(os.path.basename(dirpath).lower())
        m = _CHALLENGE.match(os.path.basename(os.path.dirname(dirpath)))
        if split and m:
            for f in files:
                if f.lower().endswith(".txt"):
                    yield m.group(1).lower(), split, os.path.join(dirpath, f)


def discover(source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """One entry per annotated (video, side) under ``source``, and the files that are not items (see module).

    ``selection``: split names to keep (``["train"]``, ``["validation"]``); default both.
    """
    if not os.path.isdir(source):
        raise FileNotFoundError(f"Aff-Wild2 root {source!r} is not a folder")
    keep = set(selection or SPLIT_FOLDERS)
    if keep - set(SPLIT_FOLDERS):
        raise ValueError(f"unknown Aff-Wild2 selection {sorted(keep - set(SPLIT_FOLDERS))}: "
                         f"use split names {list(SPLIT_FOLDERS)}")
    videos: dict[str, list[str]] = {}
    for dirpath, _dirs, files in _walk(source):
        for f in files:
            if f.lower().endswith(VIDEO_EXTENSIONS):
                videos.setdefault(os.path.splitext(f)[0], []).append(os.path.abspath(os.path.join(dirpath, f)))
    # (video stem, side) -> kind -> [(split, path)]
    found: dict[tuple[str, str | None], dict[str, list[tuple[str, str]]]] = {}
    orphans = []
    for kind, split, path in _annotation_files(source):
        stem = os.path.splitext(os.path.basename(path))[0]
        side = None
        if stem not in videos:
            m = re.match(r"^(.*)_(left|right)$", stem)
            if m and m.group(1) in videos:
                stem, side = m.group(1), m.group(2)
            else:
                orphans.append(path)
                continue
        found.setdefault((stem, side), {}).setdefault(kind, []).append((split, os.path.abspath(path)))
    out: list[Entry] = []
    for path in orphans:
        out.append(Entry(os.path.abspath(path), {}, "annotation file without a video: no "
                         f"{os.path.splitext(os.path.basename(path))[0]}.mp4/.avi (nor <video>_left/_right) under {source}"))
    for stem, paths in videos.items():
        if len(paths) > 1:
            out += [Entry(p, {}, f"{len(paths)} videos named {stem!r} ({', '.join(paths)}): rename or remove one")
                    for p in paths]
            continue
        parts = sorted(((side, kinds) for (s, side), kinds in found.items() if s == stem), key=lambda x: str(x[0]))
        if not parts:
            out.append(Entry(paths[0], {}, "no annotation file in any Train_Set/Validation_Set folder "
                             "(a Test_Set video?): not an item"))
        for side, kinds in parts:
            entry = _entry(paths[0], stem, side, kinds)
            if entry.error or entry.columns["split"] in keep:
                out.append(entry)
    yield from sorted(out, key=lambda e: (e.path, str(e.columns.get("face_side"))))


def _entry(path: str, stem: str, side: str | None, kinds: dict[str, list[tuple[str, str]]]) -> Entry:
    doubled = [p for lst in kinds.values() if len(lst) > 1 for _s, p in lst]
    if doubled:
        return Entry(path, {"face_side": side}, f"annotation files in two sets: {', '.join(doubled)}; keep one")
    splits = {lst[0][0] for lst in kinds.values()}
    if len(splits) > 1:
        where = ", ".join(f"{k}: {lst[0][1]}" for k, lst in sorted(kinds.items()))
        return Entry(path, {"face_side": side}, f"annotations in different sets ({where}); move them to one set")
    speaker = f"{stem}_{side}" if side else stem
    columns = {"corpus": "affwild2", "speaker": speaker, "split": splits.pop(), "face_side": side}
    return Entry(path, columns, annotations={k: lst[0][1] for k, lst in sorted(kinds.items())})


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of a text file; trailing empty lines are dropped, inner ones are errors."""
    with open(path, encoding="utf-8-sig") as f:
        lines = [ln.strip() for ln in f]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ValueError(f"{path}:1: empty annotation file")
    return enumerate(lines, 1)


def read_va(path: str) -> np.ndarray:
    """(frames, 2) float32 valence, arousal of a VA file; NaN where unannotated (-5)."""
    it = _lines(path)
    _n, header = next(it)
    if header.replace(" ", "").lower() != "valence,arousal":
        raise ValueError(f"{path}:1: header {header!r} is not 'valence,arousal'")
    rows = []
    for n, line in it:
        parts = line.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            v, a = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{n}: {line!r} is not 'valence,arousal' (two numbers)") from None
        for x in (v, a):
            if not (-1.0 <= x <= 1.0 or x == UNANNOTATED_VA):
                raise ValueError(f"{path}:{n}: {x} is outside [-1, 1] and not {UNANNOTATED_VA:g} (unannotated)")
        rows.append((v, a))
    arr = np.asarray(rows, np.float32).reshape(-1, 2)
    arr[arr == UNANNOTATED_VA] = np.nan
    return arr


def read_expr(path: str) -> np.ndarray:
    """Class index into :data:`CLASSES` per frame of an expression file (int8; -1 where unannotated)."""
    it = _lines(path)
    _n, header = next(it)
    names = [h.strip().lower() for h in header.split(",")]
    if sorted(names) != sorted(c.lower() for c in CLASSES):
        raise ValueError(f"{path}:1: header {header!r} does not name the 8 classes {','.join(CLASSES)}")
    to_ours = [[c.lower() for c in CLASSES].index(h) for h in names]
    out = []
    for n, line in it:
        try:
            k = int(line)
        except ValueError:
            raise ValueError(f"{path}:{n}: {line!r} is not a class index (0-7, or -1 unannotated)") from None
        if not -1 <= k < len(CLASSES):
            raise ValueError(f"{path}:{n}: class index {k} is not 0-7 (or -1 unannotated)")
        out.append(-1 if k < 0 else to_ours[k])
    return np.asarray(out, np.int8)


def _fit(values: np.ndarray, n: int, path: str, fill: Any) -> np.ndarray:
    """``values`` cut or padded with ``fill`` to ``n`` frames (see :data:`LINE_TOLERANCE`)."""
    if len(values) == n:
        return values
    if abs(len(values) - n) > LINE_TOLERANCE:
        raise ValueError(f"{path}: {len(values)} annotation lines for a video of {n} frames (more than "
                         f"{LINE_TOLERANCE} apart): is it the annotation of another video?")
    log.warning("%s: %d annotation lines for %d video frames: %s", path, len(values), n,
                "extra lines dropped" if len(values) > n else "the last frames are unannotated")
    if len(values) > n:
        return values[:n]
    pad = np.full((n - len(values), *values.shape[1:]), fill, values.dtype)
    return np.concatenate([values, pad])


def frame_labels(annotations: dict[str, str], times: np.ndarray) -> pd.DataFrame:
    """One row per video frame (``frame``, ``time``, ``valence``, ``arousal``, ``expression``).

    ``annotations``: ``{"va": path, "expr": path}`` (either may be absent); ``times``: the
    frames' presentation times in seconds, in order (their count is the frame count).
    """
    n = len(times)
    va = np.full((n, 2), np.nan, np.float32)
    expr = np.full(n, -1, np.int8)
    if "va" in annotations:
        va = _fit(read_va(annotations["va"]), n, annotations["va"], np.nan)
    if "expr" in annotations:
        expr = _fit(read_expr(annotations["expr"]), n, annotations["expr"], -1)
    names = np.array(CLASSES + [None], dtype=object)
    return pd.DataFrame({"frame": np.arange(n, dtype=np.int32), "time": np.asarray(times, np.float64),
                         "valence": va[:, 0], "arousal": va[:, 1], "expression": names[expr]})


def clip_columns(labels: pd.DataFrame) -> dict[str, Any]:
    """Media columns summarising an item's frame labels: mean valence/arousal, most frequent expression.

    >>> clip_columns(pd.DataFrame({"valence": [0.2, np.nan, 0.4], "arousal": [np.nan] * 3,
    ...                            "expression": ["Anger", None, "Anger"]}))
    {'valence': 0.3, 'arousal': None, 'emotion': 'Anger'}
    """
    def mean(col: str) -> float | None:
        x = labels[col].dropna()
        return round(float(x.mean()), 6) if len(x) else None

    counts = labels["expression"].dropna().value_counts()
    return {"valence": mean("valence"), "arousal": mean("arousal"),
            "emotion": str(counts.index[0]) if len(counts) else None}


def video_group(speaker: str) -> str:
    """The recording a speaker's item comes from: side suffix and a ``_<n>`` part number removed.

    >>> video_group("9-30-1280x360_left"), video_group("video10_2"), video_group("1-30-640x360")
    ('9-30-1280x360', 'video10', '1-30-640x360')
    """
    return re.sub(r"_\d+$", "", re.sub(r"_(left|right)$", "", speaker))


def evaluation_plan(media: pd.DataFrame) -> EvaluationPlan:
    """One fold over ``media`` (its ``speaker`` and ``split`` columns; see module for the choice of val).

    >>> media = pd.DataFrame({"speaker": [f"v{i}" for i in range(8)] + ["v9_left", "v9_right"],
    ...                       "split": ["train"] * 6 + ["validation"] * 2 + ["train"] * 2})
    >>> fold = evaluation_plan(media)[0]
    >>> fold.by, fold.test, fold.val, len(fold.train)
    ('speaker', ('v6', 'v7'), ('v9_left', 'v9_right'), 6)
    """
    for col in ("speaker", "split"):
        if col not in media:
            raise ValueError(f"Aff-Wild2 evaluation plan: the media table has no {col!r} column")
    train = sorted(set(media.loc[media["split"] == "train", "speaker"].dropna()))
    test = sorted(set(media.loc[media["split"] == "validation", "speaker"].dropna()))
    if not train or not test:
        raise ValueError("Aff-Wild2 evaluation plan: need items of both the official train and validation sets "
                         f"(have {len(train)} train and {len(test)} validation speakers)")
    groups = sorted({video_group(s) for s in train}, key=lambda g: hashlib.blake2b(g.encode(), digest_size=8).digest())
    n_val = min(len(groups) - 1, max(1, round(VAL_FRACTION * len(groups))))
    held = set(groups[:n_val])
    val = [s for s in train if video_group(s) in held]
    kept = tuple(s for s in train if s not in set(val))
    return EvaluationPlan((Fold(0, train=kept, val=tuple(val), test=tuple(test)),))


@register_corpus
class AffWild2Recipe(CorpusRecipe):
    """Aff-Wild2 (ABAW): videos with per-frame valence/arousal and expression files, the official sets."""

    name = "affwild2"
    naming_hint = ("Aff-Wild2 layout: <name>.mp4/.avi videos and Annotations/VA_Estimation_Challenge or "
                   "EXPR_Classification_Challenge/Train_Set|Validation_Set/<name>.txt (or <name>_left/_right.txt)")
    classes = tuple(CLASSES)
    class_map = {"Neutral": "neutral", "Happiness": "happy", "Sadness": "sad", "Anger": "angry"}
    demo_module = "affwild2"

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
        return discover(source, selection)

    def evaluation_plan(self, media: pd.DataFrame) -> EvaluationPlan:
        return evaluation_plan(media)

    def frame_labels(self, annotations: dict[str, str], times: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
        rows = frame_labels(annotations, times)
        return rows, clip_columns(rows)


__all__ = ["CLASSES", "EXPR_FOLDER", "LINE_TOLERANCE", "SPLIT_FOLDERS", "VA_FOLDER", "AffWild2Recipe", "clip_columns",
           "discover", "evaluation_plan", "frame_labels", "read_expr", "read_va", "video_group"]
