"""Every labelled corpus's standard plan keeps each fold's training, validation and test items apart.

For random media tables (speakers, official splits and sessions drawn from pools that every
recipe recognises, an item possibly in several columns' groups at once), each registered
labelled recipe's plan (:func:`emofuse.catalog.corpora.recipes.evaluation_plan`) is applied the
way training selects items (by the fold's ``by`` column) and no item may land in two parts of
a fold. A recipe may refuse the rows (ValueError saying why) or have no plan for them (None), and
training refuses a plan that :func:`~emofuse.fusion.folds.check_plan` rejects (e.g. Aff-Wild2 rows
whose speaker is in both the official train and validation sets).
"""
from __future__ import annotations

import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emofuse.catalog.corpora.recipes import evaluation_plan
from emofuse.catalog.corpora.registry import labelled_corpora
from emofuse.fusion.folds import check_plan

SPEAKERS = ([f"Actor_{i:02d}" for i in range(1, 25)] + [str(1001 + i) for i in range(8)]
            + [f"v{i}" for i in range(6)] + ["v9_left", "v9_right"])
SPLITS = ["train", "dev", "test", "validation"]
SESSIONS = [f"Session{i}" for i in range(1, 6)]
rows = st.lists(st.tuples(st.sampled_from(SPEAKERS), st.sampled_from(SPLITS), st.sampled_from(SESSIONS)),
                min_size=1, max_size=120)
EVERYONE = [(s, SPLITS[i % 4], SESSIONS[i % 5]) for i, s in enumerate(SPEAKERS)]  # each recipe can plan this


@settings(max_examples=60, deadline=None, database=None)
@given(rows)
@example(EVERYONE)
@example([(s, sp, se) for s, sp, se in EVERYONE] + [(s, "validation", "Session1") for s in SPEAKERS[:6]])
def test_no_item_is_in_two_parts_of_a_fold_of_any_corpus_plan(rows):
    planned = []
    for corpus in labelled_corpora():
        media = pd.DataFrame(rows, columns=["speaker", "split", "session"]).assign(corpus=corpus)
        media["item_id"] = [f"item-{i}" for i in range(len(media))]
        try:  # training checks every plan before it selects items
            plan = evaluation_plan(corpus, media)
            if plan is None:
                continue
            check_plan(plan)
        except ValueError:
            continue  # the recipe (or the check) says why these rows cannot be planned: nothing trains
        planned.append(corpus)
        for fold in plan.to_dicts():
            by = fold.get("by", "speaker")
            parts = {p: set(media.loc[media[by].isin(fold[p]), "item_id"]) for p in ("train", "val", "test")}
            assert parts["train"] and parts["test"], (corpus, fold)
            for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
                assert not parts[a] & parts[b], f"{corpus} fold {fold['fold']}: items in {a} and {b}"
    if rows == EVERYONE:
        assert sorted(planned) == sorted(labelled_corpora())  # every recipe's plan was exercised
