"""What ``fusion/folds.py`` promises beyond speaker independence (found by its mutation run).

* The validation speakers of fold i are taken from the training speakers starting at group
  i+1 (the next fold's test group), ``n_val`` defaulting to the size of a test group.
* The default seed is 0: a plan made without a seed is the seed-0 plan.
* Media rows without a ``corpus`` column get the generic speaker plan.
* The error for items without a speaker says what to do instead, word for word.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from emofuse.fusion.folds import default_plan, generic_plan


@pytest.mark.parametrize("n,k", [(5, 5), (6, 3), (7, 3), (10, 4), (24, 5)])
def test_validation_comes_from_the_next_group_and_is_a_group_large(n, k):
    speakers = [f"S{i:02d}" for i in range(n)]
    plan = generic_plan(speakers, k=k, seed=1)
    size = math.ceil(n / k)
    for i, fold in enumerate(plan):
        assert len(fold.val) == size, fold
        nxt = set(plan[(i + 1) % k].test)
        assert set(fold.val) <= nxt or nxt <= set(fold.val), (fold, nxt)
        assert set(fold.train) | set(fold.val) | set(fold.test) == set(speakers)


def test_the_default_seed_is_zero():
    speakers = [f"S{i:02d}" for i in range(12)]
    assert generic_plan(speakers) == generic_plan(speakers, seed=0) != generic_plan(speakers, seed=1)
    media = pd.DataFrame({"corpus": ["a", "b"] * 6, "speaker": speakers})
    assert default_plan(media) == generic_plan(speakers, seed=0)


def test_media_without_a_corpus_column_get_speaker_folds():
    speakers = [f"S{i}" for i in range(6)]
    plan = default_plan(pd.DataFrame({"speaker": speakers}), seed=2)
    assert plan == generic_plan(speakers, k=5, seed=2)


def test_items_without_a_speaker_are_refused_with_what_to_do_instead():
    media = pd.DataFrame({"corpus": ["x", "y", "y"], "speaker": ["a", None, "b"]})
    with pytest.raises(ValueError) as err:
        default_plan(media)
    assert str(err.value) == ("speaker-independent folds need a speaker for every labelled item; some have none "
                              "(give a fold plan with another 'by' column, e.g. the official 'split')")
