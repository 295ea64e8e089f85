"""A generated scored catalog to render, written through the Catalog API: for examples, tests and the benchmark.

:func:`scored_catalog` writes what a ``score-archive`` run leaves behind, without training
or extracting: media rows of real generated videos (a drawn face moving over a gradient,
H.264 via PyAV; the report decodes them for its thumbnails), the faces feature set with
the face's box per sampled frame, extraction and scoring statuses (a few files broken, a
few audio-only, a few without a face), a run folder, predictions per clip and per time
window whose probabilities drift smoothly, and, with ``explain``, the modality attribution
columns and TACFN-like attention profiles. Videos are generated once per distinct duration
into ``media_dir`` and hard-linked per file, so a 400-file archive costs a few videos.

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> run_id = scored_catalog(root, n_files=4, durations=(3.0, 9.0), explain=False)
    >>> cat = Catalog(root)
    >>> p = cat.predictions(run_id=run_id)
    >>> sorted(set(p["window"])), len(cat.media())
    (['4s/2s', 'clip'], 4)
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emofuse.catalog.predictions import window_label
from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.status import StatusEntry, score_status_key
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.fusion.timeline import clip_windows
from emofuse.pipeline.dummies import tone, write_audio, write_video

CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
FACES, EGEMAPS = "faces-v1-dummy", "egemaps-v1-dummy"
#: Every n-th file is broken (an empty file), audio-only (a WAV), or a video without a face.
EVERY = (29, 23, 31)
#: Face sampling rate of the faces feature set (as extraction's default).
FACE_FPS = 5.0


class _Frames(SequenceABC):
    """Frames drawn on demand (``write_video`` iterates; a long video never sits in memory)."""

    def __init__(self, n: int, fps: int, size: tuple[int, int]) -> None:
        self.n, self.fps, (self.w, self.h) = n, fps, size
        y, x = np.mgrid[0:self.h, 0:self.w]
        self.bg = np.stack([40 + 60 * x / self.w, 60 + 40 * y / self.h, np.full_like(x, 90.0)], -1).astype(np.uint8)
        s = int(self.h * 0.36) // 2 * 2
        yy, xx = np.mgrid[0:s, 0:s] / s - 0.5
        face = np.zeros((s, s, 3), np.uint8)
        face[...] = (224, 182, 150)
        for ex in (-0.17, 0.17):  # eyes
            face[((xx - ex) ** 2 + (yy + 0.1) ** 2) < 0.005] = (40, 30, 30)
        face[(np.abs(xx) < 0.18) & (np.abs(yy - 0.2) < 0.03)] = (150, 60, 60)  # mouth
        self.face, self.alpha, self.side = face, (xx ** 2 / 0.2 + yy ** 2 / 0.25) < 1.0, s

    def box(self, t: float) -> tuple[float, float, float, float]:
        """The face's box (x1, y1, x2, y2) at ``t`` seconds."""
        cx = self.w / 2 + self.w * 0.2 * np.sin(2 * np.pi * t / 7.0)
        cy = self.h / 2 + self.h * 0.1 * np.sin(2 * np.pi * t / 5.0)
        x1, y1 = int(cx - self.side / 2), int(cy - self.side / 2)
        return float(x1), float(y1), float(x1 + self.side), float(y1 + self.side)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        if not 0 <= i < self.n:
            raise IndexError(i)
        x1, y1, _, _ = (int(v) for v in self.box(i / self.fps))
        img = self.bg.copy()
        patch = img[y1:y1 + self.side, x1:x1 + self.side]
        patch[self.alpha] = self.face[self.alpha]
        return img


def face_video(path: str, seconds: float, *, fps: int = 25, size: tuple[int, int] = (320, 240)) -> _Frames:
    """Write an H.264 video of a moving drawn face (once: an existing file is kept); return its frames' drawer."""
    frames = _Frames(max(1, int(round(seconds * fps))), fps, size)
    if not os.path.exists(path):
        tmp = f"{path}.tmp-{os.getpid()}.mp4"
        write_video(tmp, frames, fps=fps)
        os.replace(tmp, path)
    return frames


@dataclass
class _File:
    k: int
    item_id: str
    path: str
    relpath: str
    duration: float
    kind: str  # video | audio | broken | no_face


def _fresh(path: str) -> str:
    """``path`` with its folder made and no file at it (a file there may be a hard link to a source video)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    return path


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, _fresh(dst))
    except OSError:
        import shutil

        shutil.copy(src, dst)


def _files(media_dir: str, n: int, durations: SequenceABC[float], fps: int, size: tuple[int, int],
           every: tuple[int, int, int], names: SequenceABC[str] = ()) -> tuple[list[_File], dict[float, _Frames]]:
    drawers = {}
    out = []
    for k in range(n):
        d = float(durations[k % len(durations)])
        item = hashlib.sha1(f"dummy-{k}".encode()).hexdigest()
        folder = ("2024", "2025", "interviews", "street")[k % 4]
        kind = next((name for name, e in zip(("broken", "audio", "no_face"), every) if k % e == e - 1), "video")
        stem = names[k] if k < len(names) else f"clip-{k:04d}"
        rel = f"{folder}/{stem}.{'wav' if kind == 'audio' else 'mp4'}"
        path = os.path.join(media_dir, "archive", rel)
        if kind == "broken":
            open(_fresh(path), "wb").close()
        elif kind == "audio":
            write_audio(_fresh(path), tone(min(d, 5.0)))
        else:
            if d not in drawers:
                drawers[d] = face_video(os.path.join(media_dir, f"face-{d:g}s-{fps}fps-{size[0]}x{size[1]}.mp4"), d,
                                        fps=fps, size=size)
            _link(os.path.join(media_dir, f"face-{d:g}s-{fps}fps-{size[0]}x{size[1]}.mp4"), path)
        out.append(_File(k, item, path, rel, d, kind))
    return out, drawers


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def scored_catalog(root: str, *, n_files: int = 6, media_dir: str | None = None,
                   durations: SequenceABC[float] = (3.0, 4.5, 12.0), windows: tuple[float, float] | None = (4.0, 2.0),
                   explain: bool = True, fps: int = 25, size: tuple[int, int] = (320, 240),
                   every: tuple[int, int, int] = EVERY, seed: int = 0, names: SequenceABC[str] = ()) -> str:
    """Write a scored catalog of ``n_files`` generated files under ``root``; return the run id.

    ``durations``: cycled over the files (one video is generated per distinct duration,
    under ``media_dir``, default ``<root>/_media``); ``windows``: (length, hop) of the
    windowed predictions (None: clip rows only); ``explain``: attribution columns and
    attention profiles; ``every``: every n-th file is broken, audio-only, without a face; ``names``:
    the first files' names without extension (default ``clip-NNNN``; a ``/`` makes a sub-folder).
    """
    rng = np.random.default_rng(seed)
    cat = Catalog(root).init()
    media_dir = os.path.abspath(media_dir or os.path.join(root, "_media"))
    os.makedirs(media_dir, exist_ok=True)
    files, drawers = _files(media_dir, n_files, durations, fps, size, every, names)
    run_id = "tacfn-20250101-120000-d0d0d0"
    now = pd.Timestamp("2025-01-01 12:00", tz="UTC")
    cat.add_media([{"item_id": f.item_id, "path": f.path, "relpath": f.relpath, "size": os.path.getsize(f.path),
                    "mtime": now, "corpus": "archive", "container": None if f.kind == "broken" else "mov,mp4",
                    "duration": None if f.kind == "broken" else (min(f.duration, 5.0) if f.kind == "audio" else f.duration),
                    "has_audio": f.kind != "broken", "has_video": f.kind in ("video", "no_face"),
                    "fps": float(fps) if f.kind in ("video", "no_face") else None,
                    "width": size[0] if f.kind in ("video", "no_face") else None,
                    "height": size[1] if f.kind in ("video", "no_face") else None,
                    "probe_error": "empty file (0 bytes)" if f.kind == "broken" else None} for f in files])
    for f in files:
        if f.kind == "audio":
            f.duration = min(f.duration, 5.0)
    # -- extraction: face boxes per sampled frame, statuses of both feature sets
    for key, name in ((FACES, "faces"), (EGEMAPS, "egemaps")):
        cat.register_feature_set(FeatureSetDescription(key=key, name=name, version=1, config={"fps": FACE_FPS}))
    results = []
    for f in files:
        if f.kind == "video":
            t = np.round(np.arange(int(f.duration * FACE_FPS - 1e-9) + 1) / FACE_FPS, 6)
            t = t[t < f.duration]
            boxes = np.array([drawers[f.duration].box(x) for x in t], np.float32)
            seq = Sequence(t, {"values": np.zeros((len(t), 4), np.float32), "mask": np.ones(len(t), bool),
                               "bbox": boxes, "det_score": np.full(len(t), 0.9, np.float32),
                               "n_faces": np.ones(len(t), np.int16)})
            results.append(ExtractResult(f.item_id, sequence=seq, row={"n_frames": len(t)}, n_frames=len(t)))
        elif f.kind == "no_face":
            results.append(ExtractResult.failed(f.item_id, "no_face", f"{f.path}: no face in any sampled frame"))
        elif f.kind == "audio":
            results.append(ExtractResult.failed(f.item_id, "no_video", f"{f.path}: no video stream"))
        else:
            results.append(ExtractResult.failed(f.item_id, "decode_error", f"{f.path}: empty file (0 bytes)"))
    for start in range(0, len(results), 100):
        cat.commit_task(FACES, f"faces-{start // 100}", results[start:start + 100])
    cat.record_status(EGEMAPS, [StatusEntry(f.item_id, "decode_error" if f.kind == "broken" else "ok",
                                            f"{f.path}: empty file (0 bytes)" if f.kind == "broken" else "")
                                for f in files], task_id="egemaps-0", keep_ok=True)
    summary = ExtractRunSummary(run_id="20250101-115000-d0d0d0", catalog=cat.root, source=media_dir, corpus="archive")
    media_s = sum(f.duration for f in files if f.kind != "broken")
    for key, name in ((FACES, "faces"), (EGEMAPS, "egemaps")):
        summary.start(key, name=name, items=len(files), already_done=0)
        fs = summary.feature_sets[key]
        fs.counts = {str(k): int(v) for k, v in cat.status(key)["status"].value_counts().items()}
        fs.media_seconds, fs.task_wall_s = media_s, media_s / 8
    summary.wall_s = media_s / 12
    cat.record_extract_run(summary)
    # -- the run and its predictions
    run = cat.run(run_id)
    run.write_json("config.json", {"run_id": run_id, "model": "tacfn", "classes": CLASSES,
                                   "feature_sets": {"audio": EGEMAPS, "face": FACES},
                                   "feature_set_names": {"audio": "egemaps", "face": "faces"},
                                   "task": {"n_classes": len(CLASSES), "dimensional": []},
                                   "created": "2025-01-01T11:40:00+00:00"})
    run.write_json("metrics.json", {"summary": {"accuracy": {"mean": 0.9, "std": 0.06, "n": 5},
                                                "uar": {"mean": 0.89, "std": 0.06, "n": 5}}})
    scored = [f for f in files if f.kind != "broken"]
    attrs = ["attr_audio", "attr_face"] if explain else []
    clip_rows, window_rows, profiles = [], [], []
    for f in scored:
        spans = clip_windows(f.duration, *windows) if windows else np.zeros((0, 2))
        base = rng.normal(0, 1.0, len(CLASSES))
        base[rng.integers(len(CLASSES))] += 2.0
        drift = np.cumsum(rng.normal(0, 0.35, (max(len(spans), 1), len(CLASSES))), axis=0)
        probs = _softmax(base + drift)
        face = f.kind == "video"
        for i, (a, b) in enumerate([(0.0, f.duration)] + [tuple(s) for s in spans]):
            p = probs.mean(axis=0) if i == 0 else probs[i - 1]
            row = {"item_id": f.item_id, "fold": "ensemble", "window": "clip" if i == 0 else window_label(windows),
                   "start": float(a), "end": float(b), "label": CLASSES[int(p.argmax())], "score": float(p.max()),
                   "valence": np.nan, "arousal": np.nan, "scored_at": now + pd.Timedelta(seconds=f.k * 0.05),
                   **{f"p_{c}": float(v) for c, v in zip(CLASSES, p)}}
            if explain:
                row["attr_audio"] = float(np.clip(rng.normal(0.08, 0.05), -0.1, 0.5))
                row["attr_face"] = float(np.clip(rng.normal(0.25, 0.1), -0.1, 0.8)) if face else np.nan
                if face:
                    edges = np.linspace(a, b, 33)
                    w = _softmax(np.cumsum(rng.normal(0, 0.3, 32)))
                    profiles.append(pd.DataFrame({
                        "item_id": f.item_id, "fold": "ensemble", "window": row["window"], "window_start": float(a),
                        "window_end": float(b), "start": edges[:-1], "end": edges[1:], "weight": w,
                        "kind": "attention", "target": row["label"]}))
            (clip_rows if i == 0 else window_rows).append(row)
    for rows, window in ((clip_rows, "clip"), (window_rows, window_label(windows) if windows else None)):
        frame = pd.DataFrame(rows)
        for start in range(0, len(scored), 100):
            ids = {f.item_id for f in scored[start:start + 100]}
            part = frame[frame["item_id"].isin(ids)] if len(frame) else frame
            if not len(part):
                continue
            cat.write_predictions("tacfn", run_id, part, CLASSES, fold="ensemble", window=window, attributions=attrs)
            if profiles:
                prof = pd.concat(profiles, ignore_index=True)
                prof = prof[prof["item_id"].isin(ids) & (prof["window"] == window)]
                if len(prof):
                    cat.write_time_attributions(run_id, prof, fold="ensemble", window=window)
    entries = []
    for f in files:
        if f.kind == "broken":
            entries.append(StatusEntry(f.item_id, "no_features", "egemaps, faces: decode_error (empty file (0 bytes))"))
        elif f.kind == "audio":
            entries.append(StatusEntry(f.item_id, "ok", "scored without faces: no_video (no video stream)"))
        elif f.kind == "no_face":
            entries.append(StatusEntry(f.item_id, "ok", "scored without faces: no_face (no face in any sampled frame)"))
        else:
            entries.append(StatusEntry(f.item_id, "ok"))
    cat.record_status(score_status_key(run_id), entries, run_id=run_id)
    return run_id


__all__ = ["CLASSES", "face_video", "scored_catalog"]
