"""Cross-corpus evaluation from files on disk: generated corpora in two layouts, extracted, trained, evaluated.

The other results tests (``tests/test_results_cross_corpus.py``) write items of two named corpora
straight into a catalog. Here the corpora are media files in their own layouts, as a user has them:
a RAVDESS-layout demo corpus (``Actor_XX/01-01-EE-…mp4``: neutral, happy, sad, angry) and a
CREMA-D-layout one (``VideoFlash/1001_IEO_NEU_HI.flv`` + ``AudioWAV``: the same four and fearful,
which maps to no shared class). ``emofuse extract`` reads both recipes' layouts into one catalog
(eGeMAPS only, to stay small), a run is trained on the RAVDESS items only, and ``emofuse evaluate``
scores it on the CREMA-D items: the results rows carry the shared classes, and every CREMA-D item is
either scored with its label mapped through the recipe's class map or left out and counted.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora.recipe import SHARED_CLASSES
from emofuse.catalog.corpora.registry import get_corpus
from tests.results_corpora import run_cli

#: RAVDESS emotion codes (neutral, happy, sad, angry) and CREMA-D's (the same and fearful).
RAVDESS_EMOTIONS = (1, 3, 4, 5)
CREMA_EMOTIONS = ("NEU", "HAP", "SAD", "ANG", "FEA")
CREMA_ACTORS = (1001, 1002)
PLAN = [{"fold": 0, "train": ["Actor_01"], "val": ["Actor_03"], "test": ["Actor_02"]},
        {"fold": 1, "train": ["Actor_02"], "val": ["Actor_03"], "test": ["Actor_01"]}]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, prefect_server) -> dict:
    from emofuse.catalog.corpora.demo import crema_d, generate
    from emofuse.fusion.training_run import train

    base = tmp_path_factory.mktemp("layouts")
    ravdess, crema, root = str(base / "ravdess"), str(base / "crema-d"), str(base / "catalog")
    generate(ravdess, actors=[1, 2, 3], emotions=RAVDESS_EMOTIONS, statements=(1,), duration_limit=1.5)
    crema_d.generate(crema, actors=list(CREMA_ACTORS), sentences=("IEO",), emotions=CREMA_EMOTIONS,
                     duration_limit=1.5)
    env = {**os.environ, **prefect_server["env"]}
    for source, corpus in ((ravdess, "ravdess"), (crema, "crema-d")):
        run_cli(env, "extract", source, "--corpus", corpus, "--catalog", root, "--feature-sets", "egemaps",
                "--workers", "1")
    run = train(root, model="unimodal_audio", epochs=1, folds=PLAN, seed=0, threads=1, corpus="ravdess").run_id
    out = run_cli(env, "evaluate", "--run", run, "--corpus", "crema-d", "--catalog", root)
    return {"root": root, "run": run, "out": out.stdout + out.stderr}


@pytest.mark.slow
def test_both_layouts_are_read_into_one_catalog(evaluated):
    media = pd.read_parquet(os.path.join(evaluated["root"], "media")).drop_duplicates("item_id")
    counts = media.groupby("corpus").size().to_dict()
    assert counts == {"ravdess": 3 * len(RAVDESS_EMOTIONS), "crema-d": len(CREMA_ACTORS) * len(CREMA_EMOTIONS)}
    crema = media[media.corpus == "crema-d"]
    assert set(crema.speaker) == {str(a) for a in CREMA_ACTORS}
    assert set(crema.emotion) == {"neutral", "happy", "sad", "angry", "fearful"}


@pytest.mark.slow
def test_a_run_trained_on_one_layout_is_evaluated_on_the_other_through_the_class_maps(evaluated):
    from emofuse.catalog.store import Catalog
    from emofuse.fusion.evaluate import corpus_predictions

    results = pd.read_parquet(os.path.join(evaluated["root"], "results"))  # plain pandas, the whole table
    own = results[(results.run == evaluated["run"]) & (results.kind == "train")]
    assert set(own.fold) == {"0", "1", "pooled"} and set(own.n_left_out) == {0}
    assert set(own.train_corpus) == set(own.test_corpus) == {"ravdess"}
    assert all(list(c) == ["neutral", "happy", "sad", "angry"] for c in own.classes)  # the run's own classes
    cross = results[results.evaluation == f"{evaluated['run']}@crema-d"]
    assert len(cross) and set(cross.kind) == {"cross-corpus"} and set(cross.run) == {evaluated["run"]}
    assert set(cross.train_corpus) == {"ravdess"} and set(cross.test_corpus) == {"crema-d"}
    assert all(list(c) == list(SHARED_CLASSES) for c in cross.classes)
    # the four shared emotions of each actor are scored; fearful maps to no shared class: left out, counted
    n_shared = len(CREMA_ACTORS) * 4
    assert set(cross.n_items) == {n_shared} and set(cross.n_left_out) == {len(CREMA_ACTORS)}
    # the scored items' labels are the CREMA-D labels through CREMA-D's class map, the predictions
    # RAVDESS run's classes through RAVDESS's, and the accuracy row is what they give
    cat = Catalog(evaluated["root"])
    _config, scored, left_out, unscored = corpus_predictions(cat, evaluated["run"], "crema-d")
    media = cat.media().drop_duplicates("item_id").set_index("item_id")
    assert (left_out, unscored, len(scored.item_id)) == (len(CREMA_ACTORS), 0, n_shared)
    assert set(media.loc[list(scored.item_id), "corpus"]) == {"crema-d"}
    crema_map = get_corpus("crema-d").class_map
    assert list(scored.true) == [crema_map[e] for e in media.loc[list(scored.item_id), "emotion"]]
    assert set(scored.true) == set(SHARED_CLASSES) and set(scored.pred) <= set(SHARED_CLASSES)
    acc = cross[cross.metric == "accuracy"].value.item()
    assert acc == pytest.approx(float(np.mean(scored.true == scored.pred)))
    assert "crema-d" in evaluated["out"] and "left out" in evaluated["out"]
