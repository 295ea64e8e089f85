"""Segment items (a time range of a file): identity, range decoding, extraction and registration.

The test video shows its own frame number (two grey levels) and plays a chirp, so a frame or
a sample taken from the wrong place of the file is detected, not just a wrong length.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.corpora.demo.design import MediaFormat
from emofuse.catalog.corpora.demo.video import encode_av
from emofuse.catalog.identity import content_id, part_id
from emofuse.catalog.store import Catalog
from emofuse.pipeline import decode, ingest
from emofuse.pipeline.decode import iter_frames, load_audio
from emofuse.pipeline.plan import plan_run
from emofuse.pipeline.registry import MediaRef, get_extractor

FPS, SR, SECONDS = 25, 16_000, 20
FORMAT = MediaFormat(width=64, height=64, fps=FPS, sample_rate=SR)
#: Containers of the test video: IEMOCAP's (MPEG-4 Part 2 + MP2 in AVI) and an mp4 (H.264 + AAC).
CONTAINERS = {"avi": dict(fmt="avi", codec="mpeg4", audio_codec="mp2"), "mp4": dict(fmt="mp4", audio_codec="aac")}


def frame_image(i: int) -> np.ndarray:
    """Frame ``i``: the left half's grey level counts frames within 2 s, the right half's the 2 s blocks."""
    img = np.empty((64, 64, 3), np.uint8)
    img[:, :32] = 10 + (i % 50) * 4
    img[:, 32:] = 10 + (i // 50) * 20
    return img


def frame_number(rgb: np.ndarray) -> int:
    return int(round((rgb[8:56, 4:28].mean() - 10) / 4)) + 50 * int(round((rgb[8:56, 36:60].mean() - 10) / 20))


def chirp(n: int) -> np.ndarray:
    """A rising tone (tonal, so lossy codecs decode it the same way wherever decoding starts)."""
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * (150 + 20 * t) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, str]:
    """The test video in each container of :data:`CONTAINERS`."""
    n = SECONDS * FPS
    folder = tmp_path_factory.mktemp("segments")
    out = {}
    for kind, options in CONTAINERS.items():
        path = folder / f"ramp.{kind}"
        path.write_bytes(encode_av((frame_image(i) for i in range(n)), chirp(n * SR // FPS), FORMAT, **options))
        out[kind] = str(path)
    return out


@pytest.fixture(params=sorted(CONTAINERS))
def video(request, videos) -> str:
    return videos[request.param]


def test_a_segment_is_named_by_the_content_and_the_range(video, tmp_path):
    cid = content_id(video)
    a, b, c = ingest.describe_parts(video, [{"segment_start": 2.0, "segment_end": 3.5},
                                            {"segment_start": 2.0, "segment_end": 3.5},
                                            {"segment_start": 2.0, "segment_end": 3.6}])
    assert a["item_id"] == b["item_id"] == part_id(cid, start=2.0, end=3.5) != c["item_id"]
    assert a["parent_id"] == cid and a["path"] == os.path.abspath(video) and a["duration"] == pytest.approx(1.5)
    assert ingest.describe(video)["item_id"] == cid  # the whole file stays its content id
    moved = tmp_path / "elsewhere" / os.path.basename(video)
    moved.parent.mkdir()
    shutil.copy(video, moved)
    assert ingest.describe(str(moved), extra={"segment_start": 2.0, "segment_end": 3.5})["item_id"] == a["item_id"]
    late = ingest.describe(video, extra={"segment_start": SECONDS + 1.0, "segment_end": SECONDS + 2.0})
    assert "after the end of the file" in late["probe_error"]


def test_frames_of_a_range_come_from_that_range_on_its_own_timeline(video):
    start, end = 7.3, 9.1
    got = list(iter_frames(video, fps=5, start=start, end=end))
    times = np.array([t for t, _ in got])
    assert 0.0 <= times[0] < 1.0 / FPS and times[-1] < end - start and times[-1] > end - start - 0.2 - 1.0 / FPS
    np.testing.assert_allclose(np.diff(times), 0.2, atol=1e-6)
    assert [frame_number(rgb) for _, rgb in got] == [int(round((start + t) * FPS)) for t in times]
    whole = list(iter_frames(video, fps=5))  # the whole file: times from 0 of the file, as before
    assert whole[0][0] == 0.0 and frame_number(whole[10][1]) == 50


def test_audio_of_a_range_is_the_same_samples_as_the_whole_track_there(video):
    whole = load_audio(video)
    for start, end in ((0.0, 1.25), (3.3, 4.1), (11.01, 13.5)):
        seg = load_audio(video, start=start, end=end)
        ref = whole[int(round(start * SR)):int(round(end * SR))]
        assert seg.size == ref.size == int(round((end - start) * SR))
        np.testing.assert_allclose(seg, ref, atol=1e-4)


def test_a_late_range_seeks_instead_of_decoding_from_the_start(video, monkeypatch):
    decoded = {"video": 0, "audio": 0}
    frames = decode._frames

    def counting(c, stream):
        for f in frames(c, stream):
            decoded[stream.type] += 1
            yield f

    monkeypatch.setattr(decode, "_frames", counting)
    assert len(list(iter_frames(video, fps=5, start=16.0, end=17.0))) == 5
    assert len(load_audio(video, start=16.0, end=17.0)) == SR
    assert decoded["video"] < 3 * FPS  # from the key frame before 16 s, not 400 frames from 0
    assert 0 < decoded["audio"] * 1024 < 3 * SR  # a packet holds at most ~1152 samples


def test_extractors_see_only_the_range_with_times_from_zero(video):
    start, end = 5.0, 7.5
    ref = MediaRef(item_id="seg", path=video, duration=end - start, has_audio=True, has_video=True,
                   segment_start=start, segment_end=end)
    eg = get_extractor("egemaps")
    r = eg.extract(ref)
    assert r.status.value == "ok" and r.sequence.times[0] == 0.0 and r.sequence.times[-1] < end - start
    whole = load_audio(video)
    same = eg.process("seg", whole[int(start * SR):int(end * SR)])  # the same samples, decoded from 0
    later = eg.process("seg", whole[int((start + 0.5) * SR):int((end + 0.5) * SR)])
    for name in ("F0semitoneFrom27.5Hz_sma3nz_amean", "loudness_sma3_amean"):  # (decoders differ by an LSB)
        assert r.row[name] == pytest.approx(same.row[name], rel=1e-3)
    assert r.row["F0semitoneFrom27.5Hz_sma3nz_amean"] != pytest.approx(later.row["F0semitoneFrom27.5Hz_sma3nz_amean"],
                                                                        rel=1e-2)  # the chirp has risen
    mel = get_extractor("logmel").extract(ref)
    assert abs(len(mel.sequence.times) - 100 * (end - start)) <= 2 and mel.sequence.times[0] == 0.0
    faces = get_extractor("faces", {"fps": 5.0}).extract(ref)
    assert faces.status.value == "no_face" and faces.n_frames == 13  # 0, 0.2, ..., 2.4 s of the range


def _iemocap_tree(root, video: str, turns: list[tuple[float, float, str]]) -> str:
    """A one-dialog IEMOCAP layout around ``video`` with these (start, end, label) turns."""
    dialog = os.path.join(root, "Session1", "dialog")
    for d in ("avi/DivX", "EmoEvaluation", "transcriptions"):
        os.makedirs(os.path.join(dialog, d), exist_ok=True)
    target = os.path.join(dialog, "avi", "DivX", "Ses01F_impro01.avi")
    if not os.path.exists(target):
        shutil.copy2(video, target)
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for k, (s, e, label) in enumerate(turns):
        lines += [f"[{s:.4f} - {e:.4f}]\tSes01F_impro01_{'FM'[k % 2]}{k // 2:03d}\t{label}\t[2.5000, 3.0000, 3.5000]",
                  "C-E1:\tNeutral;\t()", "A-E1:\tval 3; act 2; dom  3;\t()", ""]
    with open(os.path.join(dialog, "EmoEvaluation", "Ses01F_impro01.txt"), "w") as f:
        f.write("\n".join(lines))
    return root


def test_plan_registers_segments_once_and_knows_them_by_content(videos, tmp_path, monkeypatch):
    video = videos["avi"]  # the IEMOCAP layout has AVI dialogs
    src = _iemocap_tree(str(tmp_path / "iemocap"), video, [(1.0, 2.5, "neu"), (3.0, 4.0, "ang")])
    cat = Catalog(str(tmp_path / "cat")).init()
    ex = {"egemaps": get_extractor("egemaps")}
    plan = plan_run(cat, src, "iemocap", None, ex, register=True)
    cid = content_id(video)
    assert plan.added == 2 and set(plan.media["parent_id"]) == {cid}
    assert sorted(plan.media["item_id"]) == sorted(part_id(cid, start=s, end=e) for s, e in ((1.0, 2.5), (3.0, 4.0)))
    todo = sorted(plan.feature_sets[0].todo, key=lambda it: it.segment_start)
    assert [(it.segment_start, it.segment_end, it.duration) for it in todo] == [(1.0, 2.5, 1.5), (3.0, 4.0, 1.0)]

    # again: nothing to register; a new turn of the same (unchanged) video is registered without hashing it
    assert plan_run(cat, src, "iemocap", None, ex).register == []
    _iemocap_tree(src, video, [(1.0, 2.5, "neu"), (3.0, 4.0, "ang"), (5.0, 6.0, "sad")])
    monkeypatch.setattr(ingest, "content_id", lambda path: pytest.fail(f"{path} hashed again"))
    plan = plan_run(cat, src, "iemocap", None, ex, register=True)
    assert plan.added == 1 and len(plan.media) == 3
    monkeypatch.undo()

    # a moved copy of the corpus: new paths, the same items
    moved = shutil.copytree(src, tmp_path / "moved")
    again = plan_run(cat, str(moved), "iemocap", None, ex, register=True)
    assert again.added == 3 and set(again.media["item_id"]) == set(plan.media["item_id"])
    # the archive recipe on the same folder takes the whole file, not the turns
    whole = plan_run(cat, src, "archive", None, ex, register=True)
    assert list(whole.media["item_id"]) == [cid] and whole.media["parent_id"].isna().all()
    media = cat.media()
    assert media.loc[media["parent_id"].notna(), "segment_start"].notna().all()
    assert isinstance(media, pd.DataFrame) and media["item_id"].is_unique
