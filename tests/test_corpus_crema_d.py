"""The CREMA-D recipe end to end: names and demographics parsed (malformed ones rejected with
``file:line``), a generated CREMA-D-layout corpus extracted by the extract flow with real
extractors, and TACFN trained on the corpus's own speaker folds beating chance on held-out actors."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from emofuse.catalog.corpora import crema_d
from emofuse.catalog.corpora.recipes import discover
from emofuse.catalog.runs import RunFolder
from emofuse.catalog.store import Catalog
from emofuse.fusion.run_config import RunConfig

TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
ACTORS = 6  # five speaker folds: fold 0 tests two actors, the others one
WAV_ONLY = "1006_DFA_SAD_XX"  # its .flv is removed: the AudioWAV file stands in


@pytest.mark.parametrize("name, words", [
    ("1001_DFA_ANG.flv", "not a CREMA-D name"),
    ("1001_XYZ_ANG_XX.flv", "sentence code 'XYZ'"),
    ("1001_DFA_JOY_XX.flv", "emotion code 'JOY'"),
    ("1001_DFA_ANG_ZZ.flv", "level code 'ZZ'"),
    ("1092_DFA_ANG_XX.flv", "actor 1092"),
])
def test_malformed_names_say_why(name, words):
    with pytest.raises(crema_d.CremaNameError, match=words):
        crema_d.parse_name(name)


def test_every_field_of_a_name():
    f = crema_d.parse_name("/x/VideoFlash/1091_ITH_FEA_LO.flv")
    assert (f["speaker"], f["emotion"], f["intensity"], f["statement"]) == ("1091", "fearful", "low", 8)
    assert f["transcript"] == "I think I have a doctor's appointment"
    assert len(crema_d.SENTENCES) == 12 and len(crema_d.ACTORS) == 91


@pytest.mark.parametrize("line, words", [
    ("1002,forty,Female,Asian,Not Hispanic", "Age 'forty'"),
    ("1002,40,F,Asian,Not Hispanic", "Sex 'F'"),
    ("1002,40,Female,Asian", "4 fields"),
    ("2002,40,Female,Asian,Not Hispanic", "ActorID '2002'"),
    ("1001,40,Female,Asian,Not Hispanic", "actor 1001 is listed twice"),
])
def test_malformed_demographics_line_is_rejected_with_file_and_line(tmp_path, line, words):
    table = tmp_path / crema_d.DEMOGRAPHICS
    table.write_text(f"ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n{line}\n")
    with pytest.raises(ValueError, match=f"{table}:3: {words}"):
        crema_d.read_demographics(str(table))
    (tmp_path / "VideoFlash").mkdir()
    (tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.flv").write_bytes(b"")
    with pytest.raises(ValueError, match=f"{table}:3"):  # discovery stops there too: no guessing
        list(discover("crema-d", str(tmp_path)))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    """A 6-actor CREMA-D-layout corpus (six emotions, sentence DFA) through the extract flow."""
    from emofuse.catalog.corpora.demo import crema_d as demo
    from emofuse.flows.extract import extract

    base = tmp_path_factory.mktemp("crema-d")
    src = str(base / "CREMA-D")
    files = demo.generate(src, actors=ACTORS, sentences=("DFA",))
    os.remove(os.path.join(src, "VideoFlash", WAV_ONLY + ".flv"))
    open(os.path.join(src, "VideoFlash", "1001_DFA_ANG.flv"), "wb").close()  # a name that does not parse
    catalog = str(base / "catalog")
    record = extract(source=src, catalog=catalog, corpus="crema-d", feature_sets=["egemaps", "faces"], fps=2.5,
                     n_workers=2)
    return {"src": src, "catalog": catalog, "record": record, "files": files}


def test_extract_fills_every_label_column(extracted):
    media = Catalog(extracted["catalog"]).media()
    assert len(media) == ACTORS * 6
    assert set(media["corpus"]) == {"crema-d"}
    cols = ["speaker", "sex", "age", "emotion", "intensity", "statement", "transcript", "modality"]
    assert media[cols].notna().all().all(), media[cols]
    assert sorted(media["emotion"].unique()) == sorted(crema_d.CLASSES)
    assert set(media["transcript"]) == {"Don't forget a jacket"} and set(media["intensity"]) == {"unspecified"}
    demographics = pd.read_csv(os.path.join(extracted["src"], crema_d.DEMOGRAPHICS))
    by_actor = media.groupby("speaker")[["sex", "age"]].first()
    for row in demographics.itertuples():
        assert by_actor.loc[str(row.ActorID), "sex"] == row.Sex.lower()
        assert by_actor.loc[str(row.ActorID), "age"] == row.Age
    wav = media[media["relpath"] == f"AudioWAV/{WAV_ONLY}.wav"]
    assert len(wav) == 1 and wav["modality"].iloc[0] == "audio-only" and not wav["has_video"].iloc[0]
    assert (media["container"] == "flv").sum() == len(media) - 1
    rejected = extracted["record"]["rejected"]
    assert len(rejected) == 1 and "1001_DFA_ANG.flv" in rejected[0] and "not a CREMA-D name" in rejected[0]
    counts = {k.split("-")[0]: v["counts"] for k, v in extracted["record"]["feature_sets"].items()}
    assert counts["egemaps"] == {"ok": ACTORS * 6}
    assert counts["faces"].get("ok") == ACTORS * 6 - 1  # the audio-only item has no video


def test_tacfn_trains_on_the_corpus_speaker_folds_and_beats_chance(extracted):
    from emofuse.fusion import training_run

    catalog = extracted["catalog"]
    res = training_run.train(catalog, model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=25, lr=3e-3,
                             seed=0, threads=1)
    cfg = RunConfig.load(RunFolder(res.run_dir))
    assert cfg.folds == crema_d.evaluation_plan(Catalog(catalog).media())  # the recipe's plan, saved with the run
    assert cfg.classes == list(crema_d.CLASSES)  # the recipe's class order
    tested = [s for f in res.folds for s in f["test_speakers"]]
    assert sorted(tested) == [str(a) for a in range(1001, 1001 + ACTORS)]  # every actor tested once
    assert {f["by"] for f in res.folds} == {"speaker"}
    assert res.metrics["accuracy"]["mean"] >= 0.4, res.markdown  # chance is 1/6
