"""Two small labelled corpora in one catalog for the results tests (a helper module, not a test file).

:func:`add_corpus` writes media rows of a named corpus (its ``corpus`` column and label names as
the recipe declares them, e.g. RAVDESS's ``calm`` or CREMA-D's ``fearful`` that map to no shared
class) and their egemaps/faces features through real catalog writes (``Catalog.add_media`` +
``Catalog.commit_task``). The class signal is split over the modalities as in
``tests/synthetic_catalog.py``, and it is the same for both corpora, so a run trained on one
holds on the other.
"""
from __future__ import annotations

import hashlib

import numpy as np

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.store import Catalog

#: label -> (arousal bit in audio, valence bit in face); labels outside the shared four get (0.5, 0.5)
SIGNAL = {"neutral": (0, 1), "happy": (1, 1), "sad": (0, 0), "angry": (1, 0)}
KEYS = {"egemaps": "egemaps-v1-synthetic", "faces": "faces-v1-synthetic"}
FACE_DIM = 16


def add_corpus(root: str, corpus: str, labels: list[str], *, speakers: int = 4, reps: int = 3,
               seed: int = 0) -> list[dict]:
    """Add a corpus's items (``speakers`` x ``labels`` x ``reps``) with features to the catalog at ``root``."""
    rng = np.random.default_rng(12345)  # the same feature directions for every corpus
    arousal_dir, valence_dir = rng.normal(size=25), rng.normal(size=FACE_DIM)
    rng = np.random.default_rng(seed)
    cat = Catalog(root).init()
    media, eg, fa = [], [], []
    for s in range(speakers):
        spk = f"{corpus}-{s}"
        for label in labels:
            ar, va = SIGNAL.get(label, (0.5, 0.5))
            for r in range(reps):
                item = hashlib.sha1(f"{corpus}-{spk}-{label}-{r}".encode()).hexdigest()[:16]
                dur = 2.0
                media.append({"item_id": item, "path": f"/{corpus}/{spk}/{label}-{r}.mp4",
                              "relpath": f"{spk}/{label}-{r}.mp4", "size": 1000 + len(media), "corpus": corpus,
                              "duration": dur, "has_audio": True, "has_video": True, "speaker": spk,
                              "emotion": label})
                t_a = np.arange(int(dur * 50)) * 0.02
                lld = rng.normal(size=(len(t_a), 25)) + (2.0 * ar - 1.0) * arousal_dir
                eg.append(ExtractResult(item, row={"duration": dur},
                                        sequence=Sequence(t_a, {"values": lld.astype(np.float32)}), n_frames=len(t_a)))
                t_v = np.arange(int(dur * 5)) * 0.2
                emb = (2.0 * va - 1.0) * valence_dir + rng.normal(scale=0.5, size=(len(t_v), FACE_DIM))
                fa.append(ExtractResult(item, row={"embedding": emb.mean(0).astype(np.float32)},
                                        sequence=Sequence(t_v, {"values": emb.astype(np.float32),
                                                                "mask": np.ones(len(t_v), bool)}),
                                        n_frames=len(t_v)))
    cat.add_media(media)
    for name, results, dim in (("egemaps", eg, 25), ("faces", fa, FACE_DIM)):
        cat.register_feature_set(FeatureSetDescription(name=name, key=KEYS[name], version=1, sequence_dim=dim))
        cat.commit_task(KEYS[name], f"{name}-{corpus}", results)
    return media


#: Labels of the two corpora: RAVDESS's ``calm`` and CREMA-D's ``fearful``/``disgust`` map to no shared class.
RAVDESS_LABELS = ["neutral", "calm", "happy", "sad", "angry"]
CREMA_LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
SPEAKERS, REPS = 4, 3
#: Two speaker folds of the RAVDESS-named corpus.
PLAN = [{"fold": 0, "train": ["ravdess-0", "ravdess-1"], "val": ["ravdess-2"], "test": ["ravdess-3"]},
        {"fold": 1, "train": ["ravdess-2", "ravdess-3"], "val": ["ravdess-1"], "test": ["ravdess-0"]}]


def run_cli(env: dict[str, str], *args: str):
    """``python -m emofuse.flows.cli ARGS`` in ``env``; the completed process (asserting it succeeded)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "emofuse.flows.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"emofuse {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def two_runs(root: str) -> list[str]:
    """Both corpora in a catalog at ``root`` and two small runs trained on its RAVDESS-named items only
    (``corpus="ravdess"``; 3 and 1 epochs, so the first is the better one); the run ids."""
    from emofuse.fusion.training_run import train

    add_corpus(root, "ravdess", RAVDESS_LABELS, speakers=SPEAKERS, reps=REPS, seed=0)
    add_corpus(root, "crema-d", CREMA_LABELS, speakers=SPEAKERS, reps=REPS, seed=1)
    runs = [train(root, model="concat_mlp", epochs=epochs, folds=PLAN, seed=seed, threads=1, corpus="ravdess").run_id
            for epochs, seed in ((4, 0), (1, 1))]
    return runs
