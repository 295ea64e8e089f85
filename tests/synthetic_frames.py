"""A synthetic catalog with per-frame valence/arousal labels (a helper module, not a test file).

:func:`build_frame_catalog` makes real catalog writes (``Catalog.add_media``,
``Catalog.commit_task``, ``Catalog.add_frame_labels``): per clip, two smooth latent signals
drive the labels (valence, arousal at the label frame rate, with a run of unannotated frames
in every clip) and the features (the face embedding moves along a valence direction, the
eGeMAPS-like audio along an arousal direction, both noisy, with per-speaker offsets). Most of
the label variance is within clips, so a per-clip constant predicts it badly.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.store import Catalog

KEYS = {"egemaps": "egemaps-v1-frames", "faces": "faces-v1-frames"}
FACE_DIM = 32
AUDIO_DIM = 25


def latent(t: np.ndarray, seed: int) -> np.ndarray:
    """A smooth signal in about [-1, 1] (the same one for a seed, at any sampling times): a small
    clip offset plus three slow sinusoids."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=0.15) * np.ones_like(t)
    for _ in range(3):
        z += rng.uniform(0.2, 0.4) * np.sin(2 * np.pi * rng.uniform(0.04, 0.25) * t + rng.uniform(0, 2 * np.pi))
    return np.tanh(z)


def build_frame_catalog(root, *, n_speakers: int = 6, clips: int = 2, seed: int = 0,
                        duration: tuple[float, float] = (24.0, 36.0), label_fps: float = 10.0,
                        audio_hz: float = 25.0, face_fps: float = 5.0) -> tuple[Catalog, pd.DataFrame]:
    """Write the catalog; return it with its per-frame label rows (NaN = unannotated)."""
    rng = np.random.default_rng(seed)
    cat = Catalog(root).init()
    a_dir = rng.normal(size=AUDIO_DIM)
    a_dir /= np.linalg.norm(a_dir)
    v_dir = rng.normal(size=FACE_DIM)
    v_dir /= np.linalg.norm(v_dir)
    media, eg, fa, labels = [], [], [], []
    for s in range(1, n_speakers + 1):
        spk = f"S{s:02d}"
        ident = rng.normal(size=FACE_DIM)
        ident /= np.linalg.norm(ident)
        voice = rng.normal(scale=0.5, size=AUDIO_DIM)
        for c in range(clips):
            item = hashlib.sha1(f"frames-{seed}-{spk}-{c}".encode()).hexdigest()[:16]
            dur = float(rng.uniform(*duration))
            sv, sa = (int(x) for x in rng.integers(2**32, size=2))  # valence and arousal signals

            media.append({"item_id": item, "path": f"/frames/{spk}/{c}.mp4", "relpath": f"{spk}/{c}.mp4",
                          "size": 1000 + len(media), "corpus": "synthetic-frames", "duration": dur,
                          "has_audio": True, "has_video": True, "speaker": spk})
            # labels at the video frame rate; a run of frames nobody annotated
            t_l = np.arange(int(dur * label_fps)) / label_fps
            val, aro = latent(t_l, sv), latent(t_l, sa)
            gap = int(rng.integers(0, len(t_l) - 20))
            val[gap:gap + 20] = np.nan
            aro[gap:gap + 20] = np.nan
            labels.append(pd.DataFrame({"item_id": item, "frame": np.arange(len(t_l), dtype=np.int32), "time": t_l,
                                        "valence": val.astype(np.float32), "arousal": aro.astype(np.float32),
                                        "expression": None}))
            # audio: noisy LLD-like frames moving along the arousal direction
            t_a = np.arange(int(dur * audio_hz)) / audio_hz
            lld = rng.normal(size=(len(t_a), AUDIO_DIM)) + voice + 2.0 * latent(t_a, sa)[:, None] * a_dir
            eg.append(ExtractResult(item, sequence=Sequence(t_a, {"values": lld.astype(np.float32)}),
                                    n_frames=len(t_a)))
            # face: identity + valence direction, some frames without a face
            t_v = np.arange(int(dur * face_fps)) / face_fps
            emb = ident + 0.5 * latent(t_v, sv)[:, None] * v_dir + rng.normal(scale=0.06, size=(len(t_v), FACE_DIM))
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            mask = rng.random(len(t_v)) > 0.1
            emb[~mask] = 0.0
            fa.append(ExtractResult(item, sequence=Sequence(t_v, {"values": emb.astype(np.float32), "mask": mask}),
                                    n_frames=len(t_v)))
    cat.add_media(media)
    for name, results, dim in (("egemaps", eg, AUDIO_DIM), ("faces", fa, FACE_DIM)):
        cat.register_feature_set(FeatureSetDescription(name=name, key=KEYS[name], version=1, sequence_dim=dim))
        cat.commit_task(KEYS[name], f"{name}-task", results)
    rows = pd.concat(labels, ignore_index=True)
    cat.add_frame_labels(rows)
    return cat, rows
