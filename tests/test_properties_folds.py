"""Property-based checks (Hypothesis) of fold plans: speaker-independent for any speaker list.

Through the public functions of :mod:`emofuse.fusion.folds` and the plans' saved form
(``to_dicts()``, what a run's ``config.json`` holds).
"""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emofuse.fusion.folds import check_plan, default_plan, generic_plan

FAST = settings(max_examples=100, deadline=None, database=None)
names = st.text("abcdefghijklmnopqrstuvwxyz_0123456789 -", min_size=1, max_size=8)
speaker_lists = st.lists(names, min_size=3, max_size=40).filter(lambda s: len(set(s)) >= 3)


def _folds(plan) -> list[dict]:
    return plan.to_dicts()


@FAST
@given(speaker_lists, st.integers(1, 12), st.one_of(st.none(), st.integers(1, 6)), st.integers(0, 2**32 - 1))
def test_every_speaker_is_tested_once_and_never_trained_or_validated_with_itself(speakers, k, n_val, seed):
    every = set(speakers)
    plan = _folds(generic_plan(speakers, k=k, n_val=n_val, seed=seed))
    wanted = max(2, min(k, len(every)))
    assert len(plan) == (3 if len(every) == 3 else wanted)  # 3 speakers need 3 folds for train/val/test
    assert sorted(f["fold"] for f in plan) == list(range(len(plan)))
    tested = [s for f in plan for s in f["test"]]
    assert sorted(tested) == sorted(every)  # each speaker in exactly one test group
    for f in plan:
        parts = [set(f[p]) for p in ("train", "val", "test")]
        assert all(parts), f  # no empty part
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]), f
        assert parts[0] | parts[1] | parts[2] == every  # nobody left out
        assert f.get("by", "speaker") == "speaker"
        if n_val is not None:
            assert len(parts[1]) == max(1, min(n_val, len(every) - len(parts[2]) - 1))
    assert _folds(check_plan(plan)) == plan  # the saved form reads back as the same plan


@FAST
@given(speaker_lists, st.integers(2, 8), st.integers(0, 1000), st.randoms())
def test_plans_depend_on_the_speaker_set_and_seed_only(speakers, k, seed, rnd):
    shuffled = list(speakers) + list(speakers[:2])
    rnd.shuffle(shuffled)
    assert _folds(generic_plan(shuffled, k=k, seed=seed)) == _folds(generic_plan(speakers, k=k, seed=seed))
    media = pd.DataFrame({"corpus": "synthetic", "speaker": shuffled})
    assert _folds(default_plan(media, k=k, seed=seed)) == _folds(generic_plan(speakers, k=k, seed=seed))


@FAST
@given(st.lists(names, min_size=0, max_size=2, unique=True))
def test_fewer_than_three_speakers_cannot_be_split(speakers):
    with pytest.raises(ValueError, match="at least 3 speakers"):
        generic_plan(speakers)


@FAST
@given(speaker_lists, st.sampled_from([("train", "val"), ("train", "test"), ("val", "test")]), st.data())
def test_a_plan_with_a_speaker_in_two_parts_is_refused(speakers, parts, data):
    plan = _folds(generic_plan(speakers, k=3))
    f = data.draw(st.sampled_from(plan))
    who = data.draw(st.sampled_from(sorted(f[parts[0]])))
    f[parts[1]] = sorted(set(f[parts[1]]) | {who})
    with pytest.raises(ValueError, match="in both"):
        check_plan(plan)


def test_three_speakers_in_two_folds_become_three_folds():
    """Two folds of 3 speakers would leave one fold a single non-test speaker: no train part."""
    plan = _folds(generic_plan(["A", "B", "C"], k=2))
    assert len(plan) == 3 and all(f["train"] and f["val"] and f["test"] for f in plan), plan
