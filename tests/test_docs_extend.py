"""The "how to extend" pages' worked examples (docs/examples/*.py), built and run.

Each page includes its example file whole (pymdownx.snippets), so what a reader copies is what
runs here: the loudness extractor extracts generated media into a catalog, the toy corpus finds
and rejects files and plans its fold, the pool model trains on a small catalog and scores it.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from synthetic_catalog import build_synthetic_catalog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAN = [{"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03", "Actor_06"], "val": ["Actor_04"],
         "test": ["Actor_05"]}]


def load_example(name: str):
    """Import docs/examples/<name>.py as a module (which registers its plug-in)."""
    path = os.path.join(REPO, "docs", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page, example", [("extractor", "loudness"), ("corpus", "toy_corpus"),
                                           ("model", "pool_model")])
def test_each_extend_page_includes_its_example_file(page, example):
    text = open(os.path.join(REPO, "docs", "extend", f"{page}.md")).read()
    assert f'--8<-- "examples/{example}.py"' in text


def test_the_loudness_extractor_extracts_into_a_catalog(tmp_path):
    from emofuse.catalog.store import Catalog
    from emofuse.pipeline.batch import run_batch
    from emofuse.pipeline.dummies import tone, write_audio, write_video
    from emofuse.pipeline.registry import MediaRef, extractor_class

    mod = load_example("loudness")
    assert extractor_class("loudness") is mod.LoudnessExtractor
    loud = str(write_audio(str(tmp_path / "loud.wav"), 0.8 * tone(1.0), sr=16_000))
    quiet = str(write_audio(str(tmp_path / "quiet.wav"), 0.1 * tone(1.0), sr=16_000))
    mute = str(write_video(str(tmp_path / "mute.mp4"), [np.zeros((32, 32, 3), np.uint8)] * 5, fps=5))
    cat = Catalog(str(tmp_path / "cat")).init()
    ext = mod.LoudnessExtractor()
    assert ext.key.startswith("loudness-v1-") and ext.key.endswith("-none")
    cat.register_feature_set(ext.describe())
    refs = [MediaRef("loud", loud, 1.0), MediaRef("quiet", quiet, 1.0), MediaRef("mute", mute, 1.0)]
    summary = run_batch(cat.root, "loudness", None, refs)
    assert summary.counts == {"ok": 2, "no_audio": 1}
    rms = cat.clips(ext.key).set_index("item_id").rms
    assert set(rms.index) == {"loud", "quiet"} and rms["loud"] > 4 * rms["quiet"] > 0
    status = cat.status(ext.key).set_index("item_id").status
    assert status["mute"] == "no_audio"


def test_the_toy_corpus_finds_its_items_and_plans_its_fold(tmp_path):
    from emofuse.catalog.corpora.registry import get_corpus, unregister_corpus
    from emofuse.pipeline.dummies import tone, write_audio

    mod = load_example("toy_corpus")
    try:
        recipe = get_corpus("toy")
        assert isinstance(recipe, mod.ToyCorpus)
        for spk in ("s1", "s2", "s3", "s4"):
            os.makedirs(tmp_path / spk)
            for emotion in ("neutral", "happy", "sad"):
                write_audio(str(tmp_path / spk / f"{emotion}_1.wav"), tone(0.3), sr=16_000)
        write_audio(str(tmp_path / "s1" / "bored_1.wav"), tone(0.3), sr=16_000)
        entries = list(recipe.discover(str(tmp_path)))
        taken = [e for e in entries if e.error is None]
        rejected = [e for e in entries if e.error is not None]
        assert len(taken) == 12 and {e.columns["speaker"] for e in taken} == {"s1", "s2", "s3", "s4"}
        assert len(rejected) == 1 and "bored_1.wav" in rejected[0].error
        assert recipe.class_order() == ("neutral", "happy", "sad")
        (fold,) = recipe.evaluation_plan(None).folds
        assert (fold.train, fold.val, fold.test) == (("s1", "s2"), ("s3",), ("s4",))
    finally:
        unregister_corpus("toy")


def test_the_pool_model_trains_and_scores(tmp_path):
    from emofuse.catalog.store import Catalog
    from emofuse.fusion import training_run
    from emofuse.fusion.models.registry import get_model, unregister_model
    from emofuse.fusion.score import score_items

    mod = load_example("pool_model")
    try:
        assert isinstance(get_model("pool"), mod.PoolModel)
        root = str(tmp_path / "cat")
        build_synthetic_catalog(root, n_speakers=6, reps=2)
        res = training_run.train(root, model="pool", epochs=2, folds=PLAN, seed=0, threads=1)
        scored = score_items(root, res.run_id, device="cpu")
        assert scored.n_written > 0
        p = Catalog(root).predictions(run_id=res.run_id)
        assert len(p) and {"p_neutral", "p_happy", "p_sad", "p_angry"} <= set(p.columns)
    finally:
        unregister_model("pool")
