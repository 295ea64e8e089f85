"""Thumbnails of the main face per time window, cropped from the stored face boxes.

The faces feature set keeps, per sampled frame, the main face's box (``bbox``: x1, y1, x2,
y2 in the frame's pixels), a ``mask`` of frames where it was found and its detector score.
:func:`pick_faces` chooses one such frame per window (at most :data:`MAX_THUMBS` windows
per file, evenly spread); :func:`grab_frames` decodes exactly those frames with PyAV
(:func:`emofuse.pipeline.decode.frames_at`); :func:`crop_jpeg` cuts a square around the box
and encodes a small JPEG.

Decoding is the cost. A file up to :data:`SEEK_ABOVE_S` seconds is decoded in one pass
up to its last pick, and each window shows the face frame nearest its middle. In a longer
file each window shows its first face frame within :data:`KEY_SLACK_S` after a key frame
(the file is sought there, and a few frames are decoded), and windows without one show
none: a face every key-frame interval (typically 2–10 s), at a cost that does not grow with
the file's length.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from emofuse.pipeline.dummies import write_video
    >>> d = tempfile.mkdtemp()
    >>> frames = [np.full((64, 96, 3), 10 * k, np.uint8) for k in range(10)]
    >>> clip = str(write_video(os.path.join(d, "clip.mp4"), frames, fps=5))
    >>> faces = {"times": np.arange(10) * 0.2, "bbox": np.tile([[30, 10, 60, 40]], (10, 1)).astype(np.float32),
    ...          "mask": np.arange(10) != 2, "det_score": np.ones(10, np.float32)}
    >>> picks = pick_faces(faces, [(0.0, 1.2), (1.2, 2.0)])     # the face frames nearest 0.6 s and 1.6 s
    >>> [(p.span, round(p.time, 1)) for p in picks]
    [(0, 0.6), (1, 1.6)]
    >>> [(p.span, round(p.time, 1)) for p in pick_faces(faces, [(0.0, 1.2), (1.2, 2.0)], key_frames=np.array([0.0]))]
    [(0, 0.0)]
    >>> got = grab_frames(clip, [p.time for p in picks], sequential=True)
    >>> sorted(round(t, 1) for t in got), got[picks[0].time].shape
    ([0.6, 1.6], (64, 96, 3))
    >>> crop_jpeg(got[picks[0].time], picks[0].box)[:2]      # JPEG bytes
    b'\\xff\\xd8'
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from emofuse.catalog.sequences import LazySequence
from emofuse.pipeline.decode import DecodeError, frame_times, frames_at

#: Side of a thumbnail in pixels (shown at 64 CSS pixels: sharp on high-density screens).
THUMB_PX = 96
#: At most this many thumbnails per file (windows evenly spread over it beyond that).
MAX_THUMBS = 48
#: Files longer than this take their thumbnails at key frames (see the module's text).
SEEK_ABOVE_S = 30.0
#: A face frame at most this long after a key frame is cheap to decode (25 frames at 25 fps).
KEY_SLACK_S = 1.0
JPEG_QUALITY = 80


@dataclass(frozen=True)
class FacePick:
    """The face frame chosen for window ``span``: its time on the item's timeline and its box."""

    span: int
    time: float
    box: tuple[float, float, float, float]


def _rows(faces: dict[str, np.ndarray] | LazySequence, a: float, b: float) -> dict[str, np.ndarray] | None:
    if isinstance(faces, LazySequence):
        return faces.read(a, b)
    t = faces["times"]
    sel = (t >= a) & (t < b)
    return {k: v[sel] for k, v in faces.items()} if sel.any() else None


def pick_faces(faces: dict[str, np.ndarray] | LazySequence, spans: Sequence[tuple[float, float]], *,
               max_n: int = MAX_THUMBS, key_frames: np.ndarray | None = None) -> list[FacePick]:
    """One face frame per window (``spans``: (start, end) seconds), for at most ``max_n`` windows
    (evenly spread over those that have one).

    Without ``key_frames``: the frame with the main face closest to the window's middle
    (ties: the higher detector score). With ``key_frames`` (times on the item's timeline):
    the first face frame at most :data:`KEY_SLACK_S` after a key frame, if any. The last
    window includes its end.
    """
    n = len(spans)
    kf = None if key_frames is None else np.sort(np.asarray(key_frames, float))
    if kf is not None and not len(kf):
        return []
    out = []
    for k in range(n):
        a, b = spans[k]
        rows = _rows(faces, a, b + (1e-6 if k == n - 1 else 0.0))
        if rows is None:
            continue
        mask = np.asarray(rows["mask"]).astype(bool)
        t = np.asarray(rows["times"], float)[mask]
        if not len(t):
            continue
        det = np.asarray(rows["det_score"], float)[mask] if "det_score" in rows else np.zeros(len(t))
        box = np.asarray(rows["bbox"], float)[mask]
        if kf is None:
            best = int(np.lexsort((-det, np.abs(t - (a + b) / 2)))[0])
        else:
            i = np.searchsorted(kf, t + 1e-6) - 1  # the key frame at or before each face frame
            after = np.where(i >= 0, t - kf[np.clip(i, 0, None)], np.inf)
            ok = np.flatnonzero(after <= KEY_SLACK_S)
            if not len(ok):
                continue
            best = int(ok[np.argmin(after[ok])])
        out.append(FacePick(int(k), float(t[best]), tuple(float(v) for v in box[best])))
    if len(out) > max_n:  # evenly spread over the windows that have one
        out = [out[i] for i in sorted(set(np.linspace(0, len(out) - 1, max_n).round().astype(int).tolist()))]
    return out


def grab_frames(path: str, times: Sequence[float], *, sequential: bool, offset: float = 0.0) -> dict[float, np.ndarray]:
    """time -> RGB frame at each of ``times`` (seconds on the item's timeline; ``offset``: where the
    item starts in the file). ``sequential``: one decoding pass, else a seek per time. Frames that
    cannot be decoded are absent."""
    out: dict[float, np.ndarray] = {}
    try:
        for t, rgb in frames_at(path, [offset + t for t in times], seek_gap=math.inf if sequential else 1.0):
            out[round(t - offset, 6)] = rgb
    except DecodeError:
        pass
    return {t: out[round(t, 6)] for t in times if round(t, 6) in out}


def key_frames(path: str, offset: float = 0.0) -> np.ndarray:
    """Key frame times of ``path`` on an item's timeline (empty when the file cannot be read)."""
    try:
        return frame_times(path, key_frames=True) - offset
    except DecodeError:
        return np.zeros(0)


def crop_jpeg(rgb: np.ndarray, box: Sequence[float], *, size: int = THUMB_PX, margin: float = 1.4) -> bytes:
    """A square JPEG of ``size`` pixels around ``box`` (x1, y1, x2, y2), ``margin`` times its larger side."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = min(max(x2 - x1, y2 - y1, 4.0) * margin, float(min(h, w)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = int(round(min(max(cx - side / 2, 0.0), max(w - side, 0.0))))
    top = int(round(min(max(cy - side / 2, 0.0), max(h - side, 0.0))))
    s = int(round(side))
    crop = rgb[top:top + s, left:left + s]
    img = Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


__all__ = ["FacePick", "JPEG_QUALITY", "KEY_SLACK_S", "MAX_THUMBS", "SEEK_ABOVE_S", "THUMB_PX", "crop_jpeg",
           "grab_frames", "key_frames", "pick_faces"]
