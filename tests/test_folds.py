"""fusion.folds: the official RAVDESS plan and speaker-independent generic plans."""
from __future__ import annotations

import pytest

from emofuse.catalog.corpora import ravdess_plan
from emofuse.fusion.folds import check_plan, generic_plan, make_plan


def _assert_disjoint(plan):
    check_plan(plan)
    for f in plan:
        tr, va, te = set(f["train"]), set(f["val"]), set(f["test"])
        assert not (tr & va or tr & te or va & te)


def test_ravdess_fold_plan_is_the_official_one_with_validation():
    actors = [f"Actor_{i:02d}" for i in range(1, 25)]
    plan = make_plan(actors)
    assert plan == ravdess_plan()
    _assert_disjoint(plan)
    assert [f["test"] for f in plan] == [[f"Actor_{a:02d}" for a in range(4 * k + 1, 4 * k + 5)] for k in range(5)]
    for f in plan:
        assert {"Actor_21", "Actor_22", "Actor_23", "Actor_24"} <= set(f["train"])
        assert len(f["train"]) == 16 and len(f["val"]) == 4
        assert set(f["train"]) | set(f["val"]) | set(f["test"]) == set(actors)


def test_generic_fold_plan_is_speaker_independent():
    speakers = [f"spk{i}" for i in range(7)]
    plan = make_plan(speakers, k=3, seed=1)
    _assert_disjoint(plan)
    tested = [s for f in plan for s in f["test"]]
    assert sorted(tested) == sorted(speakers)  # every speaker tested exactly once
    assert len(make_plan(speakers[:4], k=10)) == 4  # k capped at the number of speakers
    for f in generic_plan(speakers[:3], k=3):
        assert len(f["train"]) == len(f["val"]) == len(f["test"]) == 1
    assert make_plan(speakers, seed=3) == make_plan(speakers, seed=3)
    with pytest.raises(ValueError):
        make_plan(["a", "b"])
    with pytest.raises(ValueError):
        check_plan([{"fold": 0, "train": ["a", "b"], "val": ["b"], "test": ["c"]}])
