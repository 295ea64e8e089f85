"""The results table, cross-corpus evaluation and paired comparisons, end to end.

Two labelled corpora share one catalog (``tests/results_corpora.py``: RAVDESS- and CREMA-D-named
items with features written through the catalog, the same class signal in both): two runs are
trained on the RAVDESS items, then scored on the CREMA-D items by ``emofuse evaluate`` through the
recipes' class maps. The checks read the ``results/`` table whole with plain pandas.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora.recipe import SHARED_CLASSES
from emofuse.catalog.corpora.registry import get_corpus
from emofuse.catalog.results import part_stem
from emofuse.catalog.store import Catalog
from emofuse.fusion.evaluate import compare, to_shared
from tests.results_corpora import CREMA_LABELS, PLAN, REPS, SPEAKERS, run_cli, two_runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prefect_server) -> dict:
    root = str(tmp_path_factory.mktemp("results") / "catalog")
    runs = two_runs(root)
    env = {**os.environ, **prefect_server["env"]}
    out = run_cli(env, "evaluate", "--run", runs[0], "--corpus", "crema-d", "--catalog", root)
    return {"root": root, "runs": runs, "env": env, "evaluate_out": out.stdout + out.stderr}


def results(root: str) -> pd.DataFrame:
    return pd.read_parquet(os.path.join(root, "results"))  # plain pandas, the whole folder


def test_training_writes_intervals_per_fold_and_pooled(trained):
    df = results(trained["root"])
    for run in trained["runs"]:
        own = df[(df["run"] == run) & (df["kind"] == "train")]
        assert set(own["fold"]) == {"0", "1", "pooled"}
        assert set(own["metric"]) == {"accuracy", "uar", "macro_f1"}
        assert (own["train_corpus"] == "ravdess").all() and (own["test_corpus"] == "ravdess").all()
        per_fold = own[(own["metric"] == "accuracy") & (own["fold"] != "pooled")]
        pooled = own[(own["metric"] == "accuracy") & (own["fold"] == "pooled")].iloc[0]
        assert pooled["n_items"] == per_fold["n_items"].sum() == len(PLAN) * len(["neutral", "calm", "happy", "sad",
                                                                                  "angry"]) * REPS
        assert (own["low"] <= own["value"] + 1e-12).all() and (own["value"] <= own["high"] + 1e-12).all()
        assert (own["high"] > own["low"]).any()  # real intervals, not points
        assert [list(c) for c in own["classes"]][0] == ["neutral", "calm", "happy", "sad", "angry"]


def test_cross_corpus_rows_score_the_shared_classes_and_count_what_is_left_out(trained):
    run = trained["runs"][0]
    df = results(trained["root"])
    cross = df[df["evaluation"] == f"{run}@crema-d"]
    assert set(cross["metric"]) == {"accuracy", "uar", "macro_f1"}
    assert (cross["kind"] == "cross-corpus").all() and (cross["fold"] == "ensemble").all()
    assert (cross["train_corpus"] == "ravdess").all() and (cross["test_corpus"] == "crema-d").all()
    assert all(list(c) == list(SHARED_CLASSES) for c in cross["classes"])
    unmapped = sum(lab not in get_corpus("crema-d").class_map for lab in CREMA_LABELS) * SPEAKERS * REPS
    assert (cross["n_left_out"] == unmapped).all() and unmapped == 24
    assert (cross["n_items"] == len(CREMA_LABELS) * SPEAKERS * REPS - unmapped).all()
    acc = cross[cross["metric"] == "accuracy"].iloc[0]
    assert acc["low"] <= acc["value"] <= acc["high"]
    assert acc["value"] > 0.5  # the shared signal holds on the other corpus (chance: 0.25)
    assert "48 items scored, 24 left out (no shared class)" in trained["evaluate_out"]


def test_evaluating_again_changes_nothing(trained):
    part = os.path.join(trained["root"], "results", f"part-{part_stem(trained['runs'][0] + '@crema-d')}.parquet")
    before = (os.stat(part).st_mtime_ns, open(part, "rb").read(), len(results(trained["root"])))
    run_cli(trained["env"], "evaluate", "--run", trained["runs"][0], "--corpus", "crema-d",
            "--catalog", trained["root"])
    assert (os.stat(part).st_mtime_ns, open(part, "rb").read(), len(results(trained["root"]))) == before


def test_the_matrix_fills_every_run_on_every_other_corpus(trained):
    run_cli(trained["env"], "evaluate", "--matrix", "--catalog", trained["root"])
    df = results(trained["root"])
    cells = set(zip(df["run"], df["test_corpus"]))
    assert cells == {(r, c) for r in trained["runs"] for c in ("ravdess", "crema-d")}
    assert df.groupby(["evaluation", "fold", "metric"]).size().max() == 1  # no duplicated rows


def test_a_meld_run_maps_its_classes_into_the_shared_ones():
    meld = get_corpus("meld")
    probs = np.array([[0.1, 0.6, 0.1, 0.1, 0.05, 0.05, 0.0]])  # neutral, joy, surprise, anger, sadness, …
    shared = to_shared(probs, list(meld.classes), meld.class_map)
    assert SHARED_CLASSES[int(shared.argmax())] == "happy"
    assert shared.sum() == pytest.approx(1.0) and shared[0, SHARED_CLASSES.index("angry")] == pytest.approx(0.1 / 0.85)


def test_compare_pairs_the_same_items(trained):
    root, (a, b) = trained["root"], trained["runs"]
    same = compare(root, a, a, n_boot=200)
    acc = same[same["metric"] == "accuracy"].iloc[0]
    assert acc["difference"] == 0 and acc["p_value"] == 1.0 and acc["mcnemar_p"] == 1.0
    diff = compare(root, a, b, n_boot=200)
    own = Catalog(root).results()
    pooled = own[(own["kind"] == "train") & (own["fold"] == "pooled") & (own["metric"] == "accuracy")]
    va, vb = (pooled.loc[pooled["run"] == r, "value"].iloc[0] for r in (a, b))
    row = diff[diff["metric"] == "accuracy"].iloc[0]
    assert row["difference"] == pytest.approx(vb - va) and row["n_items"] == 30
    assert row["low"] <= row["difference"] <= row["high"]
    assert row["a_only"] + row["b_only"] > 0


def test_compare_command_prints_the_table(trained):
    a, b = trained["runs"]
    out = run_cli(trained["env"], "compare", a, b, "--catalog", trained["root"], "--corpus", "crema-d").stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"accuracy", "uar", "macro_f1"} <= set(lines)
    assert "McNemar" in out and "items" in out and lines["accuracy"].split()[-1] == "48"


def test_training_on_a_corpus_the_catalog_lacks_says_which_it_has(trained):
    from emofuse.fusion.training_run import train

    with pytest.raises(ValueError, match=r"no items of corpus meld \(it has: crema-d, ravdess\)"):
        train(trained["root"], model="concat_mlp", epochs=1, folds=PLAN, corpus="meld", threads=1)
