"""The small synthetic catalog the fusion tests share (a helper module, not a test file).

:func:`build_synthetic_catalog` makes real catalog writes (``Catalog.add_media`` +
``Catalog.commit_task``) of generated features whose class signal is split across modalities
(audio carries an arousal-like bit, the face a valence-like bit), so neither modality alone
separates the four classes.
"""
from __future__ import annotations

import hashlib

import numpy as np

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec

#: emotion -> (arousal bit in audio, valence bit in face)
SIGNAL = {"neutral": (0, 1), "happy": (1, 1), "sad": (0, 0), "angry": (1, 0)}
KEYS = {"egemaps": "egemaps-v1-synthetic", "faces": "faces-v1-synthetic", "text": "text-v1-synthetic"}
FACE_DIM = 64


def build_synthetic_catalog(root, *, n_speakers: int = 6, reps: int = 3, seed: int = 0,
                            no_face: int = 2, with_text: bool = True, tweak: str | None = None,
                            tweak_scale: float = 1.0, dimensional: bool = False,
                            categorical: bool = True) -> tuple[Catalog, list[dict]]:
    """Write a synthetic catalog (media + egemaps/faces/text feature sets) and return it with its media rows.

    ``no_face`` items get the faces status ``no_face``; ``tweak``: an item id whose egemaps
    values are multiplied by ``tweak_scale`` (everything else identical for one seed).
    ``dimensional``: media rows get valence (the face bit) and arousal (the audio bit) in
    [-1, 1]; ``categorical=False`` leaves the emotion column empty.
    """
    rng = np.random.default_rng(seed)
    cat = Catalog(root).init()
    statements = rng.normal(size=(2, 32)).astype(np.float32)
    arousal_dir = rng.normal(size=25)
    valence_dir = rng.normal(size=FACE_DIM)
    valence_dir /= np.linalg.norm(valence_dir)
    media, eg, fa, tx = [], [], [], []
    n = 0
    for s in range(1, n_speakers + 1):
        spk = f"Actor_{s:02d}"
        ident = rng.normal(size=FACE_DIM)
        ident /= np.linalg.norm(ident)
        voice = rng.normal(scale=0.3, size=25)
        for emotion, (ar, va) in SIGNAL.items():
            for r in range(reps):
                n += 1
                item = hashlib.sha1(f"{seed}-{spk}-{emotion}-{r}".encode()).hexdigest()[:16]
                dur = float(rng.uniform(2.0, 3.0))
                st = int(rng.integers(2))
                media.append({"item_id": item, "path": f"/synthetic/{spk}/{emotion}-{r}.mp4",
                              "relpath": f"{spk}/{emotion}-{r}.mp4", "size": 1000 + n, "corpus": "synthetic",
                              "duration": dur, "has_audio": True, "has_video": True, "speaker": spk,
                              "emotion": emotion if categorical else None, "statement": st + 1})
                if dimensional:
                    media[-1]["valence"] = float(np.clip(1.2 * va - 0.6 + rng.normal(scale=0.15), -1, 1))
                    media[-1]["arousal"] = float(np.clip(1.2 * ar - 0.6 + rng.normal(scale=0.15), -1, 1))
                # audio: 25 LLD at 100 Hz, the arousal bit shifts a fixed direction
                t_a = np.arange(int(dur * 100)) * 0.01
                lld = rng.normal(size=(len(t_a), 25)) + voice + (1.6 * ar - 0.8) * arousal_dir
                if item == tweak:
                    lld = lld * tweak_scale
                eg.append(ExtractResult(item, row={"loudness_sma3_amean": float(lld[:, 0].mean()),
                                                   "F0semitoneFrom27.5Hz_sma3nz_amean": float(lld[:, 1].mean()),
                                                   "duration": dur},
                                        sequence=Sequence(t_a, {"values": lld.astype(np.float32)}),
                                        n_frames=len(t_a)))
                # face: identity + valence direction, 5 fps, some frames without a face
                t_v = np.arange(int(dur * 5)) * 0.2
                if n <= no_face:
                    fa.append(ExtractResult.failed(item, Status.NO_FACE, "no face in any frame"))
                else:
                    emb = ident + (0.6 * va - 0.3) * valence_dir + rng.normal(scale=0.08, size=(len(t_v), FACE_DIM))
                    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
                    mask = rng.random(len(t_v)) > 0.15
                    mask[0] = True
                    emb[~mask] = 0.0
                    fa.append(ExtractResult(item, row={"embedding": emb[mask].mean(0).astype(np.float32),
                                                       "face_ratio": float(mask.mean())},
                                            sequence=Sequence(t_v, {"values": emb.astype(np.float32), "mask": mask,
                                                                    "bbox": np.zeros((len(t_v), 4), np.float32)}),
                                            n_frames=len(t_v)))
                # text: one untimed segment, the statement (no emotion signal)
                nan = np.array([np.nan])
                tx.append(ExtractResult(item, row={"embedding": statements[st]},
                                        sequence=Sequence(nan, {"values": statements[st][None], "start": nan,
                                                                "end": nan.copy()}), n_frames=1))
    cat.add_media(media)
    sets = [("egemaps", eg, 25), ("faces", fa, FACE_DIM)] + ([("text", tx, 32)] if with_text else [])
    for name, results, dim in sets:
        cat.register_feature_set(FeatureSetDescription(name=name, key=KEYS[name], version=1, sequence_dim=dim))
        half = len(results) // 2  # two tasks: two shards per feature set
        cat.commit_task(KEYS[name], f"{name}-task-a", results[:half])
        cat.commit_task(KEYS[name], f"{name}-task-b", results[half:])
    return cat, media


def data_config(mode: str = "fixed", missing: str = "mask", text: bool = False, **align) -> DataConfig:
    """Face + audio (+ text) on the synthetic catalog, ``align`` passed to :class:`AlignConfig`."""
    mods = [ModalitySpec("face", "faces"), ModalitySpec("audio", "egemaps")]
    if text:
        mods.append(ModalitySpec("text", "text"))
    return DataConfig(modalities=mods, align=AlignConfig(mode=mode, **align), missing=missing)
