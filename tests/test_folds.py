"""fusion.folds: the official RAVDESS plan, speaker-independent generic plans, corpus plans and the
column a plan selects items by."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora import EvaluationPlan, Fold, crema_d, ravdess_plan
from emofuse.fusion.data_config import DataConfig, ModalitySpec
from emofuse.fusion.dataset import AlignedData
from emofuse.fusion.folds import check_plan, default_plan, generic_plan


def _assert_disjoint(plan):
    assert isinstance(check_plan(plan), EvaluationPlan)
    for f in plan:
        assert isinstance(f, Fold)
        tr, va, te = set(f.train), set(f.val), set(f.test)
        assert not (tr & va or tr & te or va & te)


def test_ravdess_fold_plan_is_the_official_one_with_validation():
    actors = [f"Actor_{i:02d}" for i in range(1, 25)]
    plan = default_plan(pd.DataFrame({"corpus": "ravdess", "speaker": actors}))
    assert plan == ravdess_plan()
    _assert_disjoint(plan)
    assert [f.test for f in plan] == [tuple(f"Actor_{a:02d}" for a in range(4 * k + 1, 4 * k + 5)) for k in range(5)]
    for f in plan:
        assert {"Actor_21", "Actor_22", "Actor_23", "Actor_24"} <= set(f.train)
        assert len(f.train) == 16 and len(f.val) == 4
        assert set(f.train) | set(f.val) | set(f.test) == set(actors)


def test_generic_fold_plan_is_speaker_independent():
    speakers = [f"spk{i}" for i in range(7)]
    plan = generic_plan(speakers, k=3, seed=1)
    _assert_disjoint(plan)
    tested = [s for f in plan for s in f.test]
    assert sorted(tested) == sorted(speakers)  # every speaker tested exactly once
    assert len(generic_plan(speakers[:4], k=10)) == 4  # k capped at the number of speakers
    for f in generic_plan(speakers[:3], k=3):
        assert len(f.train) == len(f.val) == len(f.test) == 1
    assert generic_plan(speakers, seed=3) == generic_plan(speakers, seed=3)
    with pytest.raises(ValueError):
        generic_plan(["a", "b"])
    with pytest.raises(ValueError):
        check_plan([{"fold": 0, "train": ["a", "b"], "val": ["b"], "test": ["c"]}])


def test_plans_name_the_column_they_select_by():
    old = check_plan([{"fold": 0, "train": ["a"], "val": ["b"], "test": ["c"]}])  # a plan saved before "by"
    assert old[0].by == "speaker"
    split = [{"fold": 0, "by": "split", "train": ["train"], "val": ["dev"], "test": ["test"]}]
    assert check_plan(split).to_dicts() == split  # saved and read back unchanged
    with pytest.raises(ValueError, match="split values \\['dev'\\] are in both val and test"):
        check_plan([{**split[0], "test": ["dev"]}])
    with pytest.raises(ValueError, match="by='emotion' is not a column"):
        check_plan([{**split[0], "by": "emotion"}])


def test_default_plan_is_the_corpus_plan_when_all_items_come_from_one_corpus():
    crema = pd.DataFrame({"corpus": "crema-d", "speaker": [str(a) for a in range(1001, 1011)]})
    plan = default_plan(crema)
    assert plan == crema_d.evaluation_plan(crema) and len(plan) == 5 and plan[0].by == "speaker"
    _assert_disjoint(plan)
    assert sorted(s for f in plan for s in f.test) == sorted(crema["speaker"])  # every actor tested once
    assert default_plan(crema, k=3, seed=0) == generic_plan(crema["speaker"], k=3, seed=0)  # k given: generic
    meld = pd.DataFrame({"corpus": "meld", "speaker": ["Ross", "Rachel", "Joey"], "split": ["train", "dev", "test"]})
    assert default_plan(meld).to_dicts() == [{"fold": 0, "by": "split", "train": ["train"], "val": ["dev"],
                                              "test": ["test"]}]
    with pytest.raises(ValueError, match="no labelled items of \\['test'\\]"):
        default_plan(meld.head(2))
    mixed = pd.concat([crema, meld])  # two corpora: a speaker k-fold over all speakers
    assert default_plan(mixed, seed=1) == generic_plan(mixed["speaker"], seed=1)
    ravdess = pd.DataFrame({"corpus": "ravdess", "speaker": [f"Actor_{i:02d}" for i in range(1, 25)]})
    assert default_plan(ravdess) == ravdess_plan()
    with pytest.raises(ValueError, match="need a speaker for every labelled item"):
        default_plan(pd.DataFrame({"corpus": "archive", "speaker": ["a", None, "b", "c"]}))


def test_items_are_selected_by_the_plans_column():
    items = pd.DataFrame({"item_id": list("abcd"), "speaker": ["s1", "s1", "s2", "s3"],
                          "split": ["train", "dev", "train", "test"], "label": [0, 1, 0, -1]})
    data = AlignedData(DataConfig([ModalitySpec("audio", "egemaps")]), items, row_item=np.arange(4),
                       row_start=np.zeros(4), row_end=np.ones(4), x={"audio": np.zeros((4, 2, 1), np.float32)},
                       mask={"audio": np.ones((4, 2), bool)}, classes=["x", "y"], dims={"audio": 1},
                       feature_sets={"audio": "egemaps"})
    assert data.items_of(["train"], by="split").tolist() == [0, 2]
    assert data.items_of(["test"], by="split").tolist() == []  # unlabelled
    assert data.items_of(["s1"]).tolist() == data.items_of_speakers(["s1"]).tolist() == [0, 1]
    with pytest.raises(ValueError, match="selects items by 'session'"):
        data.items_of(["Session1"], by="session")
