"""A corpus from another package, registered through the ``emofuse.corpora`` entry point, works end to
end with the real command line: ``emofuse extract --corpus``, ``emofuse train`` (on the recipe's own plan
and class order) and ``emofuse score``.

The package is made here: ``emofuse_testcorpus`` with one recipe module, and a ``*.dist-info`` folder
whose ``entry_points.txt`` names the recipe, on ``PYTHONPATH`` of the commands (as an installed
distribution would be); nothing of it is imported by this process.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

pytestmark = pytest.mark.slow

RECIPE = '''
"""A corpus of ``<speaker>/<emotion>_<take>.wav`` files: an emofuse corpus recipe from another package."""
import os

from emofuse.catalog.corpora import CorpusRecipe, Entry, EvaluationPlan, Fold


class ToyCorpus(CorpusRecipe):
    name = "toy-entry-point"
    naming_hint = "<speaker>/<emotion>_<take>.wav (emotion: sad, angry or neutral)"
    classes = ("sad", "angry", "neutral")  # not sorted: a run must keep this order

    def discover(self, source, selection=None):
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for f in sorted(filenames):
                path = os.path.abspath(os.path.join(dirpath, f))
                emotion = f.rsplit("_", 1)[0]
                if not f.endswith(".wav") or emotion not in self.classes:
                    yield Entry(path, {}, f"{f!r} is not named {self.naming_hint}")
                    continue
                yield Entry(path, {"corpus": self.name, "speaker": os.path.basename(dirpath), "emotion": emotion})

    def evaluation_plan(self, media):
        # one fold, unlike the 4-fold speaker plan a corpus without a plan would get
        return EvaluationPlan((Fold(0, train=("spkA", "spkB"), val=("spkC",), test=("spkD",)),))
'''

SPEAKERS = ("spkA", "spkB", "spkC", "spkD")
#: emotion -> RAVDESS emotion code whose prosody the generated speech takes
EMOTIONS = {"sad": 4, "angry": 5, "neutral": 1}


def _package(site) -> None:  # noqa: ANN001 - a pathlib.Path
    pkg = site / "emofuse_testcorpus"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "recipe.py").write_text(RECIPE)
    info = site / "emofuse_testcorpus-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: emofuse-testcorpus\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[emofuse.corpora]\ntoy-entry-point = emofuse_testcorpus.recipe:ToyCorpus\n")
    (info / "RECORD").write_text("")


def _clips(root) -> int:  # noqa: ANN001 - a pathlib.Path
    """Speech of four speakers in three emotions (the demo corpus's TTS voices and prosody), 16 kHz WAV."""
    from emofuse.catalog.corpora.demo.actors import actor_identity, clip_prosody
    from emofuse.catalog.corpora.demo.speech import synthesize

    n = 0
    for k, spk in enumerate(SPEAKERS, 1):
        actor = actor_identity(k)
        (root / spk).mkdir(parents=True)
        for emotion, code in EMOTIONS.items():
            prosody = clip_prosody(actor, code, 1, np.random.default_rng([k, code]))
            audio = synthesize("Kids are talking by the door", voice=actor.voice, prosody=prosody, sample_rate=16000)
            buf = io.BytesIO()
            with wave.open(buf, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
            (root / spk / f"{emotion}_1.wav").write_bytes(buf.getvalue())
            n += 1
    (root / "spkA" / "notes.txt").write_text("not a clip")
    return n


def _emofuse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "emofuse.flows.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"emofuse {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_a_corpus_from_an_entry_point_extracts_trains_on_its_plan_and_scores(tmp_path, prefect_server):
    from emofuse.catalog.runs import RunFolder
    from emofuse.catalog.store import Catalog
    from emofuse.fusion.run_config import RunConfig

    site, src, catalog = tmp_path / "site", tmp_path / "toy", str(tmp_path / "catalog")
    _package(site)
    n = _clips(src)
    # the session's Prefect server: no temporary server per command
    env = {**os.environ, **prefect_server["env"],
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    # --corpus takes the entry point's corpus (argparse's choices would refuse an unknown one)
    _emofuse(env, "extract", str(src), "--corpus", "toy-entry-point", "--catalog", catalog,
             "--feature-sets", "egemaps", "--workers", "1")
    cat = Catalog(catalog)
    media = cat.media()
    assert len(media) == n and set(media["corpus"]) == {"toy-entry-point"}
    assert sorted(media["speaker"].unique()) == list(SPEAKERS) and set(media["emotion"]) == set(EMOTIONS)
    assert (cat.status()["status"] == "ok").all()

    proc = _emofuse(env, "train", "--catalog", catalog, "--model", "unimodal_audio", "--epochs", "2",
                    "--threads", "1")
    run_id = proc.stdout.split()[1].rstrip(":")
    cfg = RunConfig.load(RunFolder(cat.layout.run(run_id)))
    assert cfg.classes == ["sad", "angry", "neutral"]  # the recipe's class order
    assert cfg.folds.to_dicts() == [{"fold": 0, "by": "speaker", "train": ["spkA", "spkB"], "val": ["spkC"],
                                     "test": ["spkD"]}]  # the recipe's plan, not a generic speaker k-fold
    saved = json.loads(open(os.path.join(cat.layout.run(run_id), "config.json")).read())
    assert saved["folds"] == cfg.folds.to_dicts()

    _emofuse(env, "score", "--run", run_id, "--catalog", catalog, "--threads", "1")
    preds = cat.predictions(model="unimodal_audio", run_id=run_id)
    clip = preds[preds["window"] == "clip"]
    assert set(clip["item_id"]) == set(media["item_id"]) and set(clip["label"]) <= set(EMOTIONS)
    assert [c for c in preds.columns if c.startswith("p_")] == ["p_sad", "p_angry", "p_neutral"]
