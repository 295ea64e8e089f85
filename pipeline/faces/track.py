"""Main-face selection and tracking over the sampled frames of one clip.

Choosing: over the first ``init_frames`` frames with faces, faces are chained
into tracks by box overlap; the main face is the track with the highest summed
prominence (insightface's metric: normalised box area minus twice the
normalised squared offset of its centre from the image centre), and its
reference embedding is the mean of that track's embeddings.

Following: a face continues the main track when its embedding is close to the
track's mean embedding (``sim_high``), or when its box overlaps the last main
box (``iou_min``, at most ``max_gap`` frames back) and its embedding is not
clearly another person's (``sim_low``).

Embeddings are computed lazily, in batches, through a callback: the tracker
first proposes one face per frame from box continuity, embeds all proposals of
a chunk in one call and verifies them; only frames whose proposal fails get
their other faces embedded. With one face per frame (the usual case) every
frame costs exactly one embedding and each chunk one batched call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from emofuse.pipeline.vectors import l2_normalize


@dataclass
class FrameFaces:
    """Faces of one sampled frame: boxes (N,4), scores (N,), aligned crops; embeddings filled on demand."""

    t: float
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    crops: list[np.ndarray]
    n_faces: int
    emb: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)


#: Callback: embed aligned crops in one batch; returns (n, D) L2-normalised float32 rows.
EmbedFn = Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class TrackParams:
    """Thresholds in cosine similarity of L2-normalised embeddings and box IoU; ``chunk`` in frames."""

    sim_high: float
    sim_low: float
    iou_min: float = 0.3
    max_gap: int = 10
    init_frames: int = 5
    iou_weight: float = 0.5
    chunk: int = 32


def prominence(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised area minus twice the normalised squared offset of the box centre from the image centre."""
    if len(boxes) == 0:
        return np.zeros(0, np.float64)
    wh = float(width * height)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / wh
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - width / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 - height / 2
    return area - 2.0 * (cx**2 + cy**2) / wh


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) against boxes (N,4)."""
    if len(boxes) == 0:
        return np.zeros(0, np.float64)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(a + b - inter, 1e-9)


class MainFaceTracker:
    """Online main-face tracking: :meth:`push` frames in time order, collect ``(frame, index or -1)`` pairs.

    Frames are held back until the main face is chosen and then in chunks of
    ``params.chunk`` (so the embedder sees batches); memory stays bounded.
    Each returned frame's ``emb[index]`` holds the main face's embedding.
    """

    def __init__(self, params: TrackParams, embed: EmbedFn) -> None:
        self.p = params
        self._embed_fn = embed
        self._pending: list[FrameFaces] = []
        self._n_pending_faces = 0
        self._idx = 0  # global index of _pending[0]
        self.ref_sum: np.ndarray | None = None
        self.last_box: np.ndarray | None = None
        self.last_idx = -(10**9)
        self.n_embedded = 0
        self.n_calls = 0

    # -- public ------------------------------------------------------------------
    def push(self, frame: FrameFaces) -> list[tuple[FrameFaces, int]]:
        self._pending.append(frame)
        self._n_pending_faces += bool(len(frame))
        if self.ref_sum is None:
            if self._n_pending_faces < self.p.init_frames:
                return []
            return self._flush(init=True)
        if len(self._pending) < self.p.chunk:
            return []
        return self._flush(init=False)

    def finish(self) -> list[tuple[FrameFaces, int]]:
        """Everything still held back (call once, at the end of the clip)."""
        return self._flush(init=self.ref_sum is None)

    @property
    def ref(self) -> np.ndarray | None:
        if self.ref_sum is None:
            return None
        return l2_normalize(self.ref_sum, dtype=np.float64)

    # -- internals ---------------------------------------------------------------
    def _embed(self, pairs: list[tuple[FrameFaces, int]]) -> None:
        seen: set[tuple[int, int]] = set()
        todo = []
        for f, j in pairs:
            if j not in f.emb and (id(f), j) not in seen:
                seen.add((id(f), j))
                todo.append((f, j))
        if not todo:
            return
        vecs = self._embed_fn([f.crops[j] for f, j in todo])
        self.n_embedded += len(todo)
        self.n_calls += 1
        for (f, j), v in zip(todo, vecs):
            f.emb[j] = np.asarray(v, np.float32)

    def _flush(self, init: bool) -> list[tuple[FrameFaces, int]]:
        frames, self._pending = self._pending, []
        self._n_pending_faces = 0
        start = self._idx
        self._idx += len(frames)
        hints: dict[int, int] = {}
        if init:
            hints = self._choose_main(frames, start)
            if self.ref_sum is None:  # no face at all
                return [(f, -1) for f in frames]
        return self._process(frames, start, hints)

    def _choose_main(self, frames: list[FrameFaces], start: int) -> dict[int, int]:
        """Chain the window's faces by box overlap; embed the most prominent chain; set the reference."""
        p = self.p
        tracks: list[dict] = []  # box, last, members [(k, j)], prom
        for k, f in enumerate(frames):
            if not len(f):
                continue
            prom = prominence(f.boxes, f.width, f.height)
            pairs = []
            for ti, tr in enumerate(tracks):
                if k - tr["last"] > p.max_gap:
                    continue
                for j, v in enumerate(iou(tr["box"], f.boxes)):
                    if v >= p.iou_min:
                        pairs.append((v, ti, j))
            pairs.sort(key=lambda x: -x[0])
            used_t: set[int] = set()
            used_f: set[int] = set()
            for _v, ti, j in pairs:
                if ti in used_t or j in used_f:
                    continue
                used_t.add(ti)
                used_f.add(j)
                tr = tracks[ti]
                tr.update(box=f.boxes[j], last=k, prom=tr["prom"] + prom[j])
                tr["members"].append((k, j))
            for j in range(len(f)):
                if j not in used_f:
                    tracks.append({"box": f.boxes[j], "last": k, "members": [(k, j)], "prom": float(prom[j])})
        if not tracks:
            return {}
        best = max(tracks, key=lambda t: t["prom"])
        self._embed([(frames[k], j) for k, j in best["members"]])
        self.ref_sum = np.sum([frames[k].emb[j] for k, j in best["members"]], axis=0).astype(np.float64)
        return {k: j for k, j in best["members"]}

    def _propose(self, frames: list[FrameFaces], start: int, hints: dict[int, int]) -> list[int]:
        """One candidate per frame from box continuity (or the most prominent face); -1 for empty frames."""
        box, last = self.last_box, self.last_idx
        out = []
        for k, f in enumerate(frames):
            idx = start + k
            j = -1
            if k in hints:
                j = hints[k]
            elif len(f):
                if box is not None and idx - last <= self.p.max_gap:
                    ov = iou(box, f.boxes)
                    if ov.max() >= self.p.iou_min:
                        j = int(np.argmax(ov))
                if j < 0:
                    j = int(np.argmax(prominence(f.boxes, f.width, f.height)))
            if j >= 0:
                box, last = f.boxes[j], idx
            out.append(j)
        return out

    def _decide(self, f: FrameFaces, idx: int, cands: list[int], hinted: bool) -> int:
        """Best candidate that continues the track (see module doc), or -1."""
        ref = self.ref
        best, best_score = -1, -np.inf
        cont = self.last_box is not None and idx - self.last_idx <= self.p.max_gap
        ious = iou(self.last_box, f.boxes) if cont else np.zeros(len(f))
        for j in cands:
            sim = float(f.emb[j] @ ref)
            near = hinted or ious[j] >= self.p.iou_min
            if sim >= self.p.sim_high or (near and sim >= self.p.sim_low):
                score = sim + self.p.iou_weight * float(ious[j])
                if score > best_score:
                    best, best_score = j, score
        return best

    def _commit(self, f: FrameFaces, idx: int, j: int) -> None:
        if j >= 0:
            self.ref_sum = self.ref_sum + f.emb[j]
            self.last_box = f.boxes[j].copy()
            self.last_idx = idx

    def _process(self, frames: list[FrameFaces], start: int, hints: dict[int, int]) -> list[tuple[FrameFaces, int]]:
        out: list[int] = []
        k = 0
        while k < len(frames):
            props = self._propose(frames[k:], start + k, {h - k: j for h, j in hints.items() if h >= k})
            self._embed([(f, j) for f, j in zip(frames[k:], props) if j >= 0])
            for i in range(k, len(frames)):
                f, prop, idx = frames[i], props[i - k], start + i
                j = self._decide(f, idx, [prop], hinted=i in hints) if prop >= 0 else -1
                if j < 0 and len(f) > (prop >= 0):
                    others = [jj for jj in range(len(f)) if jj != prop]
                    self._embed([(f, jj) for jj in others])
                    j = self._decide(f, idx, list(range(len(f))), hinted=False)
                self._commit(f, idx, j)
                out.append(j)
                if j != prop:  # proposals after this frame were chained from another box
                    k = i + 1
                    break
            else:
                k = len(frames)
        for f, j in zip(frames, out):  # crops are no longer needed
            f.crops = []
        return list(zip(frames, out))


def track_all(frames: list[FrameFaces], params: TrackParams, embed: EmbedFn) -> np.ndarray:
    """Main-face index per frame (-1 where absent) for frames already in memory."""
    tr = MainFaceTracker(params, embed)
    pairs = [x for f in frames for x in tr.push(f)] + tr.finish()
    return np.array([j for _f, j in pairs], dtype=np.int64)
