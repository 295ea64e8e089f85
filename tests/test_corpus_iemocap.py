"""The IEMOCAP recipe: annotation parsing with its quirks, errors naming file:line, and the recipe end to
end on a generated corpus (extract flow with the real extractors, then TACFN leave-one-session-out)."""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora import recipes
from emofuse.catalog.corpora.demo import iemocap as demo
from emofuse.catalog.corpora.iemocap import (CLASSES, IemocapFormatError, discover, evaluation_plan,
                                             parse_evaluation, parse_transcription)
from emofuse.catalog.store import Catalog

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
TURN = "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
EVALUATORS = "C-E2:\tNeutral;\t()\nC-F1:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  3;\t()\n\n"


def _write(path, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def _dialog(root, evaluation: str, transcription: str | None = None, *, video: bool = True) -> str:
    base = os.path.join(root, "Session1", "dialog")
    if video:
        _write(os.path.join(base, "avi", "DivX", "Ses01F_impro01.avi"), "")
    if transcription is not None:
        _write(os.path.join(base, "transcriptions", "Ses01F_impro01.txt"), transcription)
    return _write(os.path.join(base, "EmoEvaluation", "Ses01F_impro01.txt"), evaluation)


def test_turns_labels_and_transcripts_with_the_quirks(tmp_path):
    second = "[9.0000 - 10.5000]\tSes01F_impro01_M000\texc\t[4.0000, 3.5000, 3.0000]\n"
    _dialog(tmp_path, HEADER + TURN + EVALUATORS + second + EVALUATORS,
            "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse  me.\nM: [LAUGHTER]\n"
            "Ses01F_impro01_MXX0 [008.3000-008.5000]: [BREATHING]\nSes01F_impro01_M000 [009.0000-010.5000]: Hi!\n")
    first, other = (e.columns for e in discover(str(tmp_path)))
    assert first["speaker"] == "Ses01_F" and other["speaker"] == "Ses01_M" and other["sex"] == "male"
    assert (first["emotion"], first["emotion_full"], other["emotion"], other["emotion_full"]) == \
        ("neutral", "neutral", "happy", "excited")
    assert (other["valence"], other["arousal"], other["dominance"]) == (4.0, 3.5, 3.0)
    assert (first["transcript"], other["transcript"]) == ("Excuse me.", "Hi!")
    assert (first["segment_start"], first["segment_end"], first["session"], first["dialogue"], first["utterance"]) == \
        (6.2901, 8.2357, "Session1", "Ses01F_impro01", "Ses01F_impro01_F000")
    assert [e.columns["utterance"] for e in discover(str(tmp_path), ["scripted"])] == []
    with pytest.raises(ValueError, match="unknown IEMOCAP selection"):
        list(discover(str(tmp_path), ["Session 1"]))


@pytest.mark.parametrize("bad, line", [
    ("[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000]\n", 3),  # two of V, A, D
    ("[6.2901 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n", 3),  # no dash
    ("[6.2901 - 8.2357]\tSes01F_impro01_F000\thappy\t[2.5000, 2.5000, 2.5000]\n", 3),  # not a label code
    ("[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 7.0000, 2.5000]\n", 3),  # off the 1-5 scale
    (TURN + "Neutral; ()\n", 4),  # neither a turn nor an evaluator line
])
def test_a_malformed_evaluation_line_is_an_error_naming_file_and_line(tmp_path, bad, line):
    path = _dialog(tmp_path, HEADER + bad + EVALUATORS)
    with pytest.raises(IemocapFormatError, match=re.escape(f"{path}:{line}:")):
        parse_evaluation(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}:{line}:")):
        list(discover(str(tmp_path)))


def test_a_malformed_transcription_line_is_an_error_naming_file_and_line(tmp_path):
    path = _write(tmp_path / "t.txt", "F: [LAUGHTER]\nSes01F_impro01_F000 006.2901-008.2357: Excuse me.\n")
    with pytest.raises(IemocapFormatError, match=re.escape(f"{path}:2:")):
        parse_transcription(path, "Ses01F_impro01")


def test_missing_files_are_rejected_entries(tmp_path):
    _dialog(tmp_path, HEADER + TURN + EVALUATORS, video=False)
    _write(tmp_path / "Session2" / "dialog" / "avi" / "DivX" / "Ses02M_impro01.avi", "")
    errors = [(os.path.basename(e.path), e.error) for e in discover(str(tmp_path))]
    assert [name for name, _ in errors] == ["Ses01F_impro01.avi", "Ses02M_impro01.avi"]
    assert "video is missing" in errors[0][1] and "no EmoEvaluation file" in errors[1][1]


def test_leave_one_session_out():
    media = pd.DataFrame({"corpus": "iemocap", "session": [f"Session{i}" for i in (1, 2, 3, 4, 5, 10)]})
    plan = evaluation_plan(media)
    assert [f.test for f in plan] == [(s,) for s in media["session"]]
    assert plan[0].val == ("Session2",) and plan[-1].val == ("Session1",) and plan[0].by == "session"
    assert recipes.evaluation_plan("iemocap", media) == plan and recipes.class_order("iemocap") == tuple(CLASSES)
    with pytest.raises(ValueError, match="at least 3 sessions"):
        evaluation_plan(media.head(2))


# -- end to end -----------------------------------------------------------------------------------
LABEL_COLUMNS = ["corpus", "speaker", "sex", "emotion_full", "valence", "arousal", "dominance", "session", "dialogue",
                 "utterance", "transcript", "parent_id", "segment_start", "segment_end", "duration"]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    """The default demo corpus (3 sessions x 2 dialogs x 10 turns) through the extract flow."""
    from emofuse.flows.extract import extract

    root = tmp_path_factory.mktemp("iemocap")
    src = str(root / "IEMOCAP_full_release")
    files = demo.generate(src, seed=0)
    catalog = str(root / "catalog")
    record = extract(source=src, catalog=catalog, corpus="iemocap", feature_sets=["egemaps", "faces", "text"],
                     n_workers=2)
    return {"source": src, "files": files, "catalog": catalog, "record": record}


@pytest.mark.slow
def test_every_turn_is_an_item_with_every_label_column(extracted):
    media = Catalog(extracted["catalog"]).media()
    assert len(media) == 3 * 2 * 10 and set(media["corpus"]) == {"iemocap"}
    assert media[LABEL_COLUMNS].notna().all().all(), media[LABEL_COLUMNS].isna().sum()
    four = media["emotion_full"].isin(["neutral", "happy", "excited", "sad", "angry"])
    assert media.loc[four, "emotion"].notna().all() and media.loc[~four, "emotion"].isna().all()
    assert media.groupby("speaker")["emotion"].value_counts().unstack().eq(2).all().all()  # balanced per actor
    assert set(media["speaker"]) == {f"Ses0{s}_{x}" for s in (1, 2, 3) for x in "FM"}
    assert np.allclose(media["duration"], media["segment_end"] - media["segment_start"])
    assert media.groupby("dialogue")["parent_id"].nunique().eq(1).all()
    assert os.path.basename(media["path"].iloc[0]).endswith(".avi")


@pytest.mark.slow
def test_every_turn_is_extracted_on_its_own_timeline(extracted):
    cat = Catalog(extracted["catalog"])
    media = cat.media().set_index("item_id")
    st = cat.status()
    assert set(st["status"]) == {"ok"} and len(st) == 3 * len(media)
    for name in ("egemaps", "faces"):
        index = cat.sequence_index(cat.find_feature_set(name)).set_index("item_id").join(media["duration"])
        assert (index["t_start"] >= 0).all() and (index["t_start"] < 0.05).all()
        assert (index["t_end"] <= index["duration"]).all() and (index["t_end"] > 0.8 * index["duration"]).all()
    text = cat.clips(cat.find_feature_set("text")).set_index("item_id")
    assert (text["transcript"] == media.loc[text.index, "transcript"]).all()


@pytest.mark.slow
def test_tacfn_beats_chance_on_held_out_sessions(extracted):
    from emofuse.fusion import training_run

    res = training_run.train(extracted["catalog"], model="tacfn", model_config={"n_layers": 1, "d_ff": 64, "n_heads": 4},
                             align={"steps": 16}, epochs=30, lr=3e-3, seed=0, threads=1)
    assert [f["test_speakers"] for f in res.folds] == [["Session1"], ["Session2"], ["Session3"]]  # the plan's values
    assert all(f["n_test_items"] == 16 for f in res.folds)
    assert res.metrics["accuracy"]["mean"] >= 0.45, res.markdown  # chance is 0.25
