"""The RAVDESS recipe: every field parsed, malformed names rejected with a clear message, selection,
class order and the official fold plan."""
from __future__ import annotations

import os

import pytest

from emofuse.catalog.corpora import EMOTION_CLASSES, ravdess, ravdess_plan
from emofuse.catalog.corpora.recipes import discover


def test_parse_every_field():
    f = ravdess.parse_name("02-01-06-01-02-01-12.mp4")
    assert f["modality"] == "video-only" and f["modality_code"] == 2
    assert f["vocal_channel"] == "speech" and f["vocal_channel_code"] == 1
    assert f["emotion"] == "fearful" and f["emotion_code"] == 6
    assert f["intensity"] == "normal"
    assert f["statement"] == 2 and f["transcript"] == "Dogs are sitting by the door"
    assert f["repetition"] == 1
    assert f["actor"] == 12 and f["speaker"] == "Actor_12" and f["sex"] == "female"
    assert f["ext"] == ".mp4"
    g = ravdess.parse_name("/x/Actor_01/03-02-08-02-01-02-01.WAV")
    assert (g["modality"], g["vocal_channel"], g["emotion"], g["intensity"], g["sex"]) == (
        "audio-only", "song", "surprised", "strong", "male")


@pytest.mark.parametrize("codes", [
    dict(modality=1, vocal_channel=1, emotion=e, intensity=i, statement=s, repetition=r, actor=a)
    for e in range(1, 9) for i in (1, 2) for s in (1, 2) for r in (1, 2) for a in (1, 24)
    if not (e == 1 and i == 2)
])
def test_make_name_round_trips(codes):
    f = ravdess.parse_name(ravdess.make_name(**codes))
    assert (f["modality_code"], f["vocal_channel_code"], f["emotion_code"], f["statement"],
            f["repetition"], f["actor"]) == (codes["modality"], codes["vocal_channel"], codes["emotion"],
                                             codes["statement"], codes["repetition"], codes["actor"])
    assert f["intensity"] == ravdess.INTENSITIES[codes["intensity"]]


@pytest.mark.parametrize("name, words", [
    ("01-01-05-01-01-01.mp4", "seven two-digit codes"),
    ("01-01-05-01-01-01-1.mp4", "seven two-digit codes"),
    ("clip.mp4", "not a RAVDESS name"),
    ("04-01-05-01-01-01-01.mp4", "modality code 04"),
    ("01-03-05-01-01-01-01.mp4", "vocal channel code 03"),
    ("01-01-09-01-01-01-01.mp4", "emotion code 09"),
    ("01-01-05-03-01-01-01.mp4", "intensity code 03"),
    ("01-01-05-01-03-01-01.mp4", "statement code 03"),
    ("01-01-05-01-01-03-01.mp4", "repetition code 03"),
    ("01-01-05-01-01-01-00.mp4", "actor code 00"),
    ("01-01-01-02-01-01-01.mp4", "neutral emotion has no strong intensity"),
])
def test_malformed_names_say_why(name, words):
    with pytest.raises(ravdess.RavdessNameError, match=words):
        ravdess.parse_name(name)


def test_discover_selection_and_rejects(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_02").mkdir()
    names = {
        "Actor_01/01-01-03-01-01-01-01.mp4": "selected",
        "Actor_01/02-01-03-01-01-01-01.mp4": "video-only: not selected by default",
        "Actor_01/03-01-03-01-01-01-01.wav": "audio-only",
        "Actor_01/01-02-03-01-01-01-01.mp4": "song",
        "Actor_01/bad-name.mp4": "malformed",
        "Actor_02/01-01-03-01-01-01-01.mp4": "wrong folder for actor 01",
        "Actor_01/notes.txt": "not media",
    }
    for rel in names:
        (tmp_path / rel).write_bytes(b"x")
    found = list(ravdess.discover(str(tmp_path)))
    ok = [os.path.relpath(f.path, tmp_path) for f in found if f.fields]
    bad = {os.path.relpath(f.path, tmp_path): f.error for f in found if f.error}
    assert ok == ["Actor_01/01-01-03-01-01-01-01.mp4"]
    assert set(bad) == {"Actor_01/bad-name.mp4", "Actor_02/01-01-03-01-01-01-01.mp4"}
    assert "lies in Actor_02" in bad["Actor_02/01-01-03-01-01-01-01.mp4"]

    audio = [os.path.relpath(e.path, tmp_path) for e in discover("ravdess", str(tmp_path), ["audio-only"]) if not e.error]
    assert audio == ["Actor_01/03-01-03-01-01-01-01.wav"]
    both = [e for e in discover("ravdess", str(tmp_path), ["full-AV", "speech", "song"]) if not e.error]
    assert len(both) == 2 and all(e.columns["corpus"] == "ravdess" for e in both)
    with pytest.raises(ValueError, match="unknown RAVDESS selection"):
        list(discover("ravdess", str(tmp_path), ["bogus"]))


def test_emotion_classes_follow_the_emotion_codes():
    assert EMOTION_CLASSES == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert [ravdess.parse_name(ravdess.make_name(modality=1, vocal_channel=1, emotion=c, intensity=1, statement=1,
                                                 repetition=1, actor=1))["emotion"] for c in range(1, 9)] == EMOTION_CLASSES


def test_fold_plan_is_the_official_one_with_a_validation_group():
    plan = ravdess_plan()
    assert [f.index for f in plan] == list(range(5))
    assert [f.test for f in plan] == [tuple(f"Actor_{a:02d}" for a in range(4 * k + 1, 4 * k + 5)) for k in range(5)]
    for k, f in enumerate(plan):
        assert f.val == plan[(k + 1) % 5].test  # fold k validates on fold k+1's test actors
        tr, va, te = set(f.train), set(f.val), set(f.test)
        assert not (tr & va or tr & te or va & te)
        assert tr | va | te == set(ravdess.RAVDESS_ACTORS)
        assert {"Actor_21", "Actor_22", "Actor_23", "Actor_24"} <= tr and len(tr) == 16
    assert ravdess.is_ravdess(ravdess.RAVDESS_ACTORS + ["Extra"]) and not ravdess.is_ravdess(ravdess.RAVDESS_ACTORS[1:])
