"""Aff-Wild2 recipe end to end: a generated ABAW-layout corpus through the extract flow, per-frame labels."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora import affwild2
from emofuse.catalog.corpora.demo import affwild2 as demo
from emofuse.catalog.corpora.recipes import discover
from emofuse.catalog.store import Catalog
from emofuse.pipeline.decode import iter_frames
from emofuse.pipeline.plan import plan_run
from tests.snapshots import file_snapshot

SECONDS = 2.4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    """4 subjects: two single-subject videos (train, validation), one two-subject video, one test-set video."""
    out = str(tmp_path_factory.mktemp("affwild2") / "src")
    demo.generate(out, actors=4, seconds=SECONDS)
    return out


@pytest.fixture(scope="module")
def extracted(corpus, tmp_path_factory) -> dict:
    from emofuse.flows.extract import extract

    catalog = str(tmp_path_factory.mktemp("affwild2-catalog"))
    record = extract(source=corpus, catalog=catalog, corpus="affwild2", feature_sets=["egemaps", "faces"],
                     n_workers=1)
    return {"catalog": catalog, "record": record}


def _va(tmp_path, text: str, name: str = "v.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_malformed_annotation_lines_name_file_and_line(tmp_path):
    cases = [
        ("valence,arousal\n0.1,0.2\n0.1;0.2\n", affwild2.read_va, ":3: '0.1;0.2'"),
        ("valence,arousal\n0.1,0.2\n1.5,0.2\n", affwild2.read_va, ":3: 1.5 is outside"),
        ("valence,arousal\n0.1,0.2\n\n0.1,0.2\n", affwild2.read_va, ":3: '' is not"),
        ("arousal,valence\n0.1,0.2\n", affwild2.read_va, ":1: header"),
        ("Neutral,Anger\n1\n", affwild2.read_expr, ":1: header"),
        (",".join(affwild2.CLASSES) + "\n1\n8\n", affwild2.read_expr, ":3: class index 8"),
        (",".join(affwild2.CLASSES) + "\n1\nhappy\n", affwild2.read_expr, ":3: 'happy'"),
        ("\n\n", affwild2.read_va, ":1: empty"),
    ]
    for k, (text, read, where) in enumerate(cases):
        path = _va(tmp_path, text, f"{k}.txt")
        with pytest.raises(ValueError) as err:
            read(path)
        assert f"{path}{where}" in str(err.value), (text, str(err.value))
    # the real quirks are fine: -5 / -1 frames, a trailing newline, a BOM, another class order in the header
    va = affwild2.read_va(_va(tmp_path, "\ufeffvalence,arousal\n0.5,-5\n-5,-5\n\n"))
    assert np.isnan(va).tolist() == [[False, True], [True, True]]
    shuffled = affwild2.CLASSES[::-1]
    expr = affwild2.read_expr(_va(tmp_path, ",".join(shuffled) + "\n0\n-1\n7\n"))
    assert [affwild2.CLASSES[i] if i >= 0 else None for i in expr] == [shuffled[0], None, shuffled[7]]


def test_line_count_differences_are_reconciled_only_when_small(tmp_path, caplog):
    path = _va(tmp_path, "valence,arousal\n" + "0.1,0.2\n" * 10)
    times = np.arange(12) / 25
    rows = affwild2.frame_labels({"va": path}, times)  # two frames more than lines: unannotated
    assert len(rows) == 12 and rows["valence"].isna().tolist() == [False] * 10 + [True] * 2
    assert "10 annotation lines for 12 video frames" in caplog.text
    assert len(affwild2.frame_labels({"va": path}, times[:9])) == 9  # one line more than frames: dropped
    with pytest.raises(ValueError, match=f"{path}: 10 annotation lines for a video of 20 frames"):
        affwild2.frame_labels({"va": path}, np.arange(20) / 25)


def test_discovery_reports_what_is_not_an_item(corpus, tmp_path):
    src = tmp_path / "copy"
    shutil.copytree(corpus, src)
    va_train = src / "Annotations" / affwild2.VA_FOLDER / "Train_Set"
    (va_train / "no-such-video.txt").write_text("valence,arousal\n0,0\n")
    entries = list(discover("affwild2", str(src)))
    bad = {os.path.basename(e.path): e.error for e in entries if e.error}
    assert set(bad) == {"no-such-video.txt", "video5.mp4"}
    assert "without a video" in bad["no-such-video.txt"] and "Test_Set" in bad["video5.mp4"]
    good = [(os.path.basename(e.path), e.columns["split"], e.columns["face_side"], sorted(e.annotations))
            for e in entries if not e.error]
    assert good == [("1-25-192x192.mp4", "train", None, ["va"]),
                    ("2-25-192x192.mp4", "validation", None, ["expr", "va"]),
                    ("3-25-384x192.mp4", "train", "left", ["expr", "va"]),
                    ("3-25-384x192.mp4", "train", "right", ["expr", "va"])]
    assert [e.columns["speaker"] for e in discover("affwild2", str(src), ["validation"]) if not e.error] == \
        ["2-25-192x192"]
    # a name in two sets is not guessed either
    shutil.copy(va_train / "1-25-192x192.txt", src / "Annotations" / affwild2.VA_FOLDER / "Validation_Set")
    err = {os.path.basename(e.path): e.error for e in discover("affwild2", str(src)) if e.error}
    assert "two sets" in err["1-25-192x192.mp4"]


def test_malformed_line_stops_registration_before_anything_is_written(corpus, tmp_path):
    src = tmp_path / "copy"
    shutil.copytree(corpus, src)
    path = src / "Annotations" / affwild2.EXPR_FOLDER / "Validation_Set" / "2-25-192x192.txt"
    lines = path.read_text().splitlines()
    lines[6] = "3,4"
    path.write_text("\n".join(lines) + "\n")
    cat = Catalog(str(tmp_path / "cat")).init()
    with pytest.raises(ValueError, match=f"{path}:7: '3,4' is not a class index"):
        plan_run(cat, str(src), "affwild2", None, {}, register=True)
    assert cat.media().empty and cat.frame_labels().empty


def test_an_annotation_added_later_registers_that_item_only(corpus, tmp_path):
    src = tmp_path / "copy"
    shutil.copytree(corpus, src)
    moved = tmp_path / "later"
    moved.mkdir()
    for kind in (affwild2.VA_FOLDER, affwild2.EXPR_FOLDER):
        shutil.move(src / "Annotations" / kind / "Train_Set" / "3-25-384x192_right.txt", moved / f"{kind}.txt")
    cat = Catalog(str(tmp_path / "cat")).init()
    assert plan_run(cat, str(src), "affwild2", None, {}, register=True).added == 3
    labels = cat.frame_labels()
    for kind in (affwild2.VA_FOLDER, affwild2.EXPR_FOLDER):
        shutil.move(moved / f"{kind}.txt", src / "Annotations" / kind / "Train_Set" / "3-25-384x192_right.txt")
    assert plan_run(cat, str(src), "affwild2", None, {}, register=True).added == 1
    media = cat.media().set_index("speaker")
    assert media.loc["3-25-384x192_right", "parent_id"] == media.loc["3-25-384x192_left", "parent_id"]
    new = cat.frame_labels()
    assert len(new) == len(labels) + round(SECONDS * demo.FPS)
    assert set(new["item_id"]) - set(labels["item_id"]) == {media.loc["3-25-384x192_right", "item_id"]}
    assert plan_run(cat, str(src), "affwild2", None, {}, register=True).added == 0


def test_media_rows_and_per_frame_labels(corpus, extracted):
    cat = Catalog(extracted["catalog"])
    assert [os.path.basename(r.split(":")[0]) for r in extracted["record"]["rejected"]] == ["video5.mp4"]
    media = cat.media().set_index("speaker")
    assert sorted(media.index) == ["1-25-192x192", "2-25-192x192", "3-25-384x192_left", "3-25-384x192_right"]
    assert (media["corpus"] == "affwild2").all()
    assert media["split"].to_dict() == {"1-25-192x192": "train", "2-25-192x192": "validation",
                                        "3-25-384x192_left": "train", "3-25-384x192_right": "train"}
    left, right = media.loc["3-25-384x192_left"], media.loc["3-25-384x192_right"]
    assert (left["face_side"], right["face_side"]) == ("left", "right")
    assert left["parent_id"] == right["parent_id"] and left.name != right.name
    assert left["item_id"] != right["item_id"] != left["parent_id"]
    assert media["valence"].notna().all() and media["arousal"].notna().all()
    assert media["emotion"].isna().tolist() == [True, False, False, False]  # subject 1 has VA only

    labels = cat.frame_labels()
    assert set(labels["item_id"]) == set(media["item_id"])
    for speaker, row in media.iterrows():
        rows = labels[labels["item_id"] == row["item_id"]]
        decoded = [t for t, _ in iter_frames(row["path"], fps=1000.0)]  # every frame, its own pts
        assert rows["frame"].tolist() == list(range(len(decoded)))
        np.testing.assert_allclose(rows["time"], decoded, atol=1e-9)
        va = affwild2.read_va(os.path.join(corpus, "Annotations", affwild2.VA_FOLDER,
                                           affwild2.SPLIT_FOLDERS[row["split"]], f"{speaker}.txt"))
        n = min(len(va), len(rows))  # subject 2's file has one line more than the video has frames
        np.testing.assert_array_equal(rows["valence"].to_numpy()[:n], va[:n, 0])
        assert 0 < rows["valence"].isna().sum() < len(rows)  # the skipped stretch, and only that
    expr = labels[labels["item_id"] == media.loc["2-25-192x192", "item_id"]]["expression"]
    assert expr.isna().any() and set(expr.dropna()) <= set(affwild2.CLASSES)
    short = labels[labels["item_id"] == media.loc["3-25-384x192_left", "item_id"]]
    assert short["expression"].iloc[-1] is None  # subject 3's expression file is one line short


def test_two_subject_video_gives_each_item_the_face_on_its_side(extracted):
    cat = Catalog(extracted["catalog"])
    media = cat.media().set_index("face_side")
    key = cat.find_feature_set("faces")
    seqs = cat.load_sequences(key, [media.loc["left", "item_id"], media.loc["right", "item_id"]])
    width = int(media.loc["left", "width"])
    centres = {}
    for side in ("left", "right"):
        s = seqs[media.loc[side, "item_id"]]
        assert s["mask"].mean() > 0.8 and (s["n_faces"][s["mask"]] == 2).all()
        centres[side] = (s["bbox"][s["mask"], 0] + s["bbox"][s["mask"], 2]) / 2
    assert (centres["left"] < width / 2).all() and (centres["right"] > width / 2).all()
    emb = {side: seqs[media.loc[side, "item_id"]]["values"][0] for side in ("left", "right")}
    assert float(emb["left"] @ emb["right"]) < 0.9  # two people, not one face twice


def test_evaluation_plan_holds_out_official_validation_and_keeps_videos_together(extracted):
    media = Catalog(extracted["catalog"]).media()
    (fold,) = affwild2.evaluation_plan(media)
    assert fold.by == "speaker" and fold.test == ("2-25-192x192",)
    assert not set(fold.train) & set(fold.val) and fold.val
    sides = {"3-25-384x192_left", "3-25-384x192_right"}
    assert sides <= set(fold.train) or sides <= set(fold.val)


def test_rcma_trains_per_frame_on_the_corpus_and_scores_every_step(extracted):
    """Per-frame RCMA end to end, a 2-epoch smoke run (tests/test_rcma_per_frame.py checks that it learns)."""
    from emofuse.catalog.schemas import FRAME_WINDOW  # noqa: F401 - used by the query string below
    from emofuse.fusion import score as scoring, training_run

    root = extracted["catalog"]
    res = training_run.train(root, model="rcma", epochs=2, threads=1,
                             model_config={"channels": {"face": 16, "audio": 8}, "n_levels": 2, "regressor_hidden": 16})
    (fold,) = res.folds
    assert fold["test_speakers"] == ["2-25-192x192"] and fold["test"]["n_videos"] == 1
    assert np.isfinite([fold["test"]["ccc_valence"], fold["test"]["ccc_arousal"]]).all()
    assert "Trained per frame" in res.markdown
    scored = scoring.score(root, res.run_id, threads=1)
    steps = pd.read_parquet(scored.path).query("window == @FRAME_WINDOW")
    per_item = steps.groupby("item_id").agg(n=("start", "size"), end=("end", "max"))
    assert scored.n_frame_rows == len(steps) and len(per_item) == 4
    assert (per_item["n"] == round(SECONDS * demo.FPS)).all() and np.allclose(per_item["end"], SECONDS)


def test_rerun_writes_nothing_new(corpus, extracted):
    from emofuse.flows.extract import extract

    before = file_snapshot(extracted["catalog"], content=True, skip=("locks", "extract_runs"))
    record = extract(source=corpus, catalog=extracted["catalog"], corpus="affwild2",
                     feature_sets=["egemaps", "faces"], n_workers=1)
    assert record["registered"] == 0
    assert file_snapshot(extracted["catalog"], content=True, skip=("locks", "extract_runs")) == before
    assert len(Catalog(extracted["catalog"]).frame_labels()) == len(pd.read_parquet(
        os.path.join(extracted["catalog"], "labels")))


def test_the_faces_carry_valence_within_a_video(extracted):
    """A linear map fitted on the train videos' face embeddings tracks valence inside the held-out video."""
    cat = Catalog(extracted["catalog"])
    media = cat.media().set_index("item_id")
    seqs = cat.load_sequences(cat.find_feature_set("faces"), list(media.index))
    labels = cat.frame_labels()
    data = {}
    for item, s in seqs.items():
        lab = labels[labels["item_id"] == item]
        frame = np.clip(np.searchsorted(lab["time"].to_numpy(), s["times"] + 1e-6) - 1, 0, len(lab) - 1)
        valence = lab["valence"].to_numpy()[frame]
        ok = s["mask"].astype(bool) & ~np.isnan(valence)
        data[item] = (s["values"][ok], valence[ok])
    train = [i for i in data if media.loc[i, "split"] == "train"]
    (test,) = [i for i in data if media.loc[i, "split"] == "validation"]
    x = np.concatenate([data[i][0] for i in train])
    y = np.concatenate([data[i][1] for i in train])
    mu = x.mean(0)
    w = np.linalg.solve((x - mu).T @ (x - mu) + 0.1 * len(x) * np.eye(x.shape[1]), (x - mu).T @ (y - y.mean()))
    pred = (data[test][0] - mu) @ w
    assert np.corrcoef(pred, data[test][1])[0, 1] > 0.6


def test_the_voice_gets_louder_with_arousal():
    """eGeMAPS loudness (1 s means) of speech generated over an arousal ramp rises with it."""
    import opensmile

    from emofuse.catalog.corpora.demo.actors import actor_identity
    from emofuse.catalog.corpora.demo.continuous import speak

    n = 6 * demo.FPS
    arousal = np.linspace(-0.9, 0.9, n).astype(np.float32)
    audio, (envelope,) = speak([(actor_identity(1), arousal)], n, demo.FPS, demo.SAMPLE_RATE,
                               np.random.default_rng(0))
    assert audio.size == n * demo.SAMPLE_RATE // demo.FPS and envelope.shape == (n,)
    lld = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    loud = lld.process_signal(audio, demo.SAMPLE_RATE)["Loudness_sma3"].to_numpy()
    per_second = loud[: len(loud) // 100 * 100].reshape(-1, 100).mean(1)
    ramp = arousal.reshape(-1, demo.FPS).mean(1)[: len(per_second)]
    assert np.corrcoef(per_second, ramp)[0, 1] > 0.8
