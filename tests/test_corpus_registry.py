"""A corpus is one registered recipe: the registry lists the built-ins, every built-in plan is a typed,
disjoint plan, and deployments, CLI choices, class orders and plans come from the registry (a corpus
registered in-process shows up in all of them)."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora import (CorpusRecipe, Entry, EvaluationPlan, Fold, class_order, corpus_names,
                                     evaluation_plan, get_corpus, labelled_corpora, register_corpus)
from emofuse.catalog.corpora.registry import demo_layouts, unregister_corpus

BUILT_IN = ["ravdess", "archive", "crema-d", "iemocap", "meld", "affwild2"]

#: Labelled media rows of each built-in corpus, as a whole corpus would give them.
MEDIA = {
    "ravdess": pd.DataFrame({"speaker": [f"Actor_{i:02d}" for i in range(1, 25)]}),
    "crema-d": pd.DataFrame({"speaker": [str(a) for a in range(1001, 1092)]}),
    "iemocap": pd.DataFrame({"session": [f"Session{i}" for i in range(1, 6)],
                             "speaker": [f"Ses0{i}_F" for i in range(1, 6)]}),
    "meld": pd.DataFrame({"split": ["train", "dev", "test"], "speaker": ["Ross", "Rachel", "Joey"]}),
    "affwild2": pd.DataFrame({"speaker": [f"v{i}" for i in range(20)] + ["w_left", "w_right"],
                              "split": ["train"] * 15 + ["validation"] * 5 + ["train"] * 2}),
}


class ToyRecipe(CorpusRecipe):
    """A labelled corpus registered in-process: ``<speaker>/<emotion>.wav``."""

    name = "toy-inprocess"
    naming_hint = "<speaker>/<emotion>.wav"
    classes = ("sad", "angry", "calm")
    demo_options = ("size",)

    def discover(self, source, selection=None):  # noqa: ANN001, ANN201
        yield Entry(source, {"corpus": self.name})

    def evaluation_plan(self, media):  # noqa: ANN001, ANN201
        return EvaluationPlan((Fold(0, train=("a",), val=("b",), test=("c",)),))

    def generate_demo(self, out, *, actors=None, seed=0, progress=None, **options):  # noqa: ANN001, ANN201
        self.generated = {"out": out, "actors": actors, "seed": seed, **options}
        return [out]


@pytest.fixture
def toy():
    register_corpus(ToyRecipe)
    yield get_corpus(ToyRecipe.name)
    unregister_corpus(ToyRecipe.name)


def test_registry_lists_the_built_ins_each_with_what_it_declares():
    assert corpus_names()[:6] == BUILT_IN
    assert labelled_corpora()[:5] == ["ravdess", "crema-d", "iemocap", "meld", "affwild2"]
    assert demo_layouts()[:5] == labelled_corpora()[:5]
    for name in BUILT_IN:
        recipe = get_corpus(name)
        assert isinstance(recipe, CorpusRecipe) and recipe.name == name
        assert recipe.naming_hint and "\n" not in recipe.naming_hint  # one line, for "matches nothing" messages
        assert recipe.root_env.startswith("EMOFUSE_") and recipe.root_env.endswith("_ROOT")
        assert (recipe.class_order() is None) == (not recipe.labelled)
    assert [n for n in BUILT_IN if get_corpus(n).has_frame_labels] == ["affwild2"]
    assert get_corpus("ravdess").demo_folder == "demo-corpus"  # where `emofuse demo` always put it
    with pytest.raises(ValueError, match="unknown corpus recipe 'sewa'"):
        get_corpus("sewa")


@pytest.mark.parametrize("name", list(MEDIA))
def test_every_built_in_plan_is_typed_and_disjoint(name):
    plan = get_corpus(name).evaluation_plan(MEDIA[name])
    assert isinstance(plan, EvaluationPlan) and len(plan) >= 1
    plan.check()
    column = MEDIA[name][plan[0].by]
    for fold in plan:
        assert isinstance(fold, Fold) and all(isinstance(v, str) for p in ("train", "val", "test")
                                              for v in fold.part(p))
        parts = [set(fold.train), set(fold.val), set(fold.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert set().union(*parts) <= set(column)  # values of the column the fold selects by
    assert EvaluationPlan.from_dicts(json.loads(json.dumps(plan.to_dicts()))) == plan  # as a run saves it
    assert evaluation_plan(name, MEDIA[name]) == plan


def test_a_run_config_saved_with_plain_fold_dicts_reads_as_a_typed_plan():
    from emofuse.fusion.run_config import RunConfig

    saved = {"run_id": "r", "model": "tacfn", "registry_model": "tacfn", "model_config": {}, "feature_sets": {},
             "data": {"modalities": [{"name": "audio", "feature_set": "egemaps-v1-x"}]}, "dims": {"audio": 25},
             "classes": ["a", "b"], "task": {"n_classes": 2, "dimensional": []},
             "folds": [{"fold": 0, "train": ["s1"], "val": ["s2"], "test": ["s3"]}],  # saved before "by" existed
             "fold_ids": [0], "train": {"epochs": 1}}
    cfg = RunConfig.from_dict(saved)
    assert cfg.folds == EvaluationPlan((Fold(0, train=("s1",), val=("s2",), test=("s3",), by="speaker"),))
    assert json.loads(cfg.to_json())["folds"] == [{"fold": 0, "by": "speaker", "train": ["s1"], "val": ["s2"],
                                                   "test": ["s3"]}]


def test_deployments_come_from_the_registry(toy):
    from emofuse.flows.deployments import corpus_root_env, demo_corpus_dir, deployments

    names = [f"{d.flow_name}/{d.name}" for d in deployments("/data/RAVDESS", "catalog")]
    assert [n for n in names if n.startswith("extract/")] == [f"extract/{c}" for c in labelled_corpora()]
    assert "extract/toy-inprocess" in names and "extract/archive" not in names
    assert corpus_root_env("toy-inprocess") == "EMOFUSE_TOY_INPROCESS_ROOT"
    assert demo_corpus_dir("toy-inprocess").endswith("demo-toy-inprocess")


def _choices(parser: argparse.ArgumentParser, command: str, dest: str) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices[command]._actions if a.dest == dest).choices


def test_cli_choices_come_from_the_registry(toy, tmp_path):
    from emofuse.flows import cli

    parser = cli.build_parser(only="extract")
    assert _choices(parser, "extract", "corpus") == corpus_names() and "toy-inprocess" in corpus_names()
    assert _choices(parser, "demo-corpus", "layout") == demo_layouts() and "toy-inprocess" in demo_layouts()
    help_text = next(a for a in next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
                     .choices["extract"]._actions if a.dest == "corpus").help
    assert "ravdess or archive" not in help_text
    assert cli.main(["demo-corpus", str(tmp_path / "d"), "--layout", "toy-inprocess", "--size", "64x48",
                     "--seed", "3"]) == 0
    assert toy.generated == {"out": str(tmp_path / "d"), "actors": None, "seed": 3, "size": (64, 48)}
    assert cli.main(["demo-corpus", str(tmp_path / "d"), "--layout", "toy-inprocess", "--fps", "30"]) == 2


def test_class_order_and_plan_come_from_the_registry(toy):
    from emofuse.fusion.data_config import DataConfig, ModalitySpec
    from emofuse.fusion.features import label_items
    from emofuse.fusion.folds import default_plan

    assert class_order("toy-inprocess") == ("sad", "angry", "calm")
    media = pd.DataFrame({"item_id": list("abcd"), "corpus": "toy-inprocess", "speaker": list("abcd"),
                          "emotion": ["calm", "sad", "angry", "sad"]})
    assert default_plan(media) == toy.evaluation_plan(media)
    _, classes = label_items(media, DataConfig([ModalitySpec("audio", "egemaps")]), np.ones(4),
                             {"audio": np.ones(4, bool)})
    assert classes == ["sad", "angry", "calm"]  # the recipe's order, not sorted, not RAVDESS's
    unregister_corpus("toy-inprocess")
    _, classes = label_items(media, DataConfig([ModalitySpec("audio", "egemaps")]), np.ones(4),
                             {"audio": np.ones(4, bool)})
    assert classes == ["angry", "calm", "sad"]  # a corpus nobody registered: sorted, never RAVDESS's order
