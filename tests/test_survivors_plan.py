"""pipeline.plan without media decoding: item records, known files, task sizes and what a feature set still needs.

Written for the survivors of a mutation run of ``pipeline/plan.py`` (docs/mutation.md); the
registration of real media (hashing, probing, segments) is tests/test_segments.py's. Media
rows here are written straight into a real catalog, so nothing is probed.
"""
from __future__ import annotations

import datetime as dt
import os
import re

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.status import StatusEntry
from emofuse.catalog.store import Catalog
from emofuse.pipeline.intake import NothingTaken
from emofuse.pipeline.plan import (FeatureSetPlan, RunPlan, batches, item_ref, plan_feature_set, plan_run,
                                   split_known, unchanged)
from emofuse.pipeline.registry import MediaRef, get_extractor


def _refs(*durations):
    return [MediaRef(str(i), f"/v/{i}.mp4", duration=d) for i, d in enumerate(durations)]


def _ids(bs):
    return [[it.item_id for it in b] for b in bs]


def test_batches_respect_item_count_and_seconds():
    assert batches([], max_items=3, max_seconds=10.0) == []
    assert _ids(batches(_refs(5.0, 5.0, 5.0), max_items=3, max_seconds=10.0)) == [["0", "1"], ["2"]]  # 10 s fit
    assert _ids(batches(_refs(1.0, 1.0, 1.0, 1.0), max_items=3, max_seconds=None)) == [["0", "1", "2"], ["3"]]
    assert _ids(batches(_refs(1.0, 1.0, 1.0), max_items=3, max_seconds=10.0)) == [["0", "1", "2"]]
    assert _ids(batches(_refs(50.0, 1.0), max_items=3, max_seconds=10.0)) == [["0"], ["1"]]  # no empty task first
    assert _ids(batches(_refs(None, None, 9.0, None), max_items=9, max_seconds=9.0)) == [["0", "1", "2", "3"]]
    assert _ids(batches(_refs(1e6, 1e6), max_items=2, max_seconds=None)) == [["0", "1"]]
    assert _ids(batches(_refs(4.0, 4.0, 4.0), max_items=1, max_seconds=100.0)) == [["0"], ["1"], ["2"]]
    assert _ids(batches(_refs(6.0, 5.0, 4.5), max_items=9, max_seconds=10.0)) == [["0"], ["1", "2"]]  # a new task starts at 0 s


def test_item_ref_maps_missing_values_to_none_and_types_the_rest():
    rows = pd.DataFrame({"item_id": ["a", "b", "c"], "path": ["/a.mp4", "/b.mp4", "/c.mp4"],
                         "duration": [np.nan, 2, 3.5], "has_audio": [np.nan, 1, 0], "has_video": [True, None, False],
                         "transcript": [None, "Hi.", np.nan], "segment_start": [np.nan, 1, None],
                         "segment_end": [None, 3, np.nan], "face_side": [np.nan, "left", None]})
    a, b, c = map(item_ref, rows.itertuples())
    assert a == MediaRef("a", "/a.mp4", None, None, True, None, None, None, None)
    assert b == MediaRef("b", "/b.mp4", 2.0, True, None, "Hi.", 1.0, 3.0, "left")
    assert c == MediaRef("c", "/c.mp4", 3.5, False, False, None, None, None, None)
    assert [type(v) for v in (b.duration, b.has_audio, b.segment_start, b.segment_end)] == [float, bool, float, float]
    unprobed = item_ref(next(rows.itertuples()), probed=False)
    assert (unprobed.has_audio, unprobed.has_video) == (None, None)
    assert item_ref(list(rows.itertuples())[2], probed=False).has_video is None
    bare = pd.DataFrame({"item_id": ["d"], "path": ["/d.wav"]})  # a table without the optional columns
    assert item_ref(next(bare.itertuples())) == MediaRef("d", "/d.wav")


def test_a_file_is_unchanged_only_with_the_recorded_size_and_microsecond_mtime(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"12345")
    ns = 1_700_000_000_123_456_789
    os.utime(f, ns=(ns, ns))
    us = ns // 1000
    assert unchanged(str(f), (5, us, "id-a")) == "id-a"
    assert unchanged(str(f), (6, us, "id-a")) is None
    assert unchanged(str(f), (5, us + 1, "id-a")) is None
    assert unchanged(str(f), None) is None
    assert unchanged(str(tmp_path / "gone.mp4"), (5, us, "id-a")) is None
    paths = [str(tmp_path / "gone.mp4"), str(f), str(tmp_path / "new.mp4")]
    assert split_known(paths, {str(f): (5, us, "id-a"), paths[0]: (5, us, "x")}) == (
        {str(f): "id-a"}, [paths[0], paths[2]])


def _media_row(item_id: str, path: str, **cols):
    st = os.stat(path) if os.path.exists(path) else None
    mtime = dt.datetime.fromtimestamp(st.st_mtime_ns // 1000 / 1e6, dt.timezone.utc) if st else dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    return {"item_id": item_id, "path": path, "relpath": os.path.basename(path), "size": st.st_size if st else 1,
            "mtime": mtime, "corpus": "archive", "duration": 2.0, "has_audio": True, "has_video": True, **cols}


@pytest.fixture
def cat(tmp_path):
    return Catalog(str(tmp_path / "cat")).init()


def test_a_feature_set_plans_the_unsettled_items_and_unrecorded_probe_errors(tmp_path, cat):
    ex = get_extractor("egemaps")
    rows = [_media_row(i, str(tmp_path / f"{i}.mp4"), probe_error=p)
            for i, p in [("ok", None), ("face", None), ("err", None), ("new", None), ("bad", "no moov atom"),
                         ("bad2", "truncated")]]
    cat.add_media(rows)
    cat.record_status(ex.key, [StatusEntry("ok", "ok"), StatusEntry("face", "no_face"), StatusEntry("err", "error"),
                               StatusEntry("bad2", "error", "worker lost")])
    cat.record_status("other-v1", [StatusEntry("new", "ok"), StatusEntry("err", "no_face")])  # another feature set's
    media = cat.media()
    plan = plan_feature_set(cat, "egemaps", ex, media)
    assert (plan.name, plan.key, plan.items, plan.already_done) == ("egemaps", ex.key, 6, 2)
    assert sorted(it.item_id for it in plan.todo) == ["err", "new"]
    assert all(it.has_audio is True and it.duration == 2.0 for it in plan.todo)
    assert sorted(plan.unreadable) == [("bad", "no moov atom"), ("bad2", "truncated")]
    assert plan.unrecorded == 2 and not plan.idle
    assert plan.known_counts == {"decode_error": 2}

    # once the decode errors are recorded they are settled
    cat.record_status(ex.key, [StatusEntry("bad", "decode_error", "no moov atom")])
    plan = plan_feature_set(cat, "egemaps", ex, media)
    assert plan.unreadable == [("bad2", "truncated")] and plan.unrecorded == 1 and plan.already_done == 3

    retry = plan_feature_set(cat, "egemaps", ex, media, retry_failed=True)
    assert sorted(it.item_id for it in retry.todo) == ["bad", "bad2", "err", "face", "new"]
    by_id = {it.item_id: it for it in retry.todo}
    assert (by_id["bad"].has_audio, by_id["bad"].has_video) == (None, None)  # its probe failed: unknown streams
    assert by_id["face"].has_audio is True
    assert (retry.unreadable, retry.unrecorded, retry.already_done, retry.known_counts) == ([], 0, 1, {})

    # the same through plan_run (no source: the catalog's items)
    assert sorted(it.item_id for it in plan_run(cat, None, "archive", None, {"egemaps": ex}).feature_sets[0].todo) == [
        "err", "new"]
    assert sorted(it.item_id for it in plan_run(cat, None, "archive", None, {"egemaps": ex},
                                                retry_failed=True).feature_sets[0].todo) == sorted(by_id)

    no_probe_column = media[media["item_id"].isin(["new", "err"])].drop(columns="probe_error")
    plan = plan_feature_set(cat, "egemaps", ex, no_probe_column, retry_failed=True)  # rows without a probe column
    assert sorted(it.item_id for it in plan.todo) == ["err", "new"]
    assert all(it.has_audio is True for it in plan.todo)  # probed: their streams are known


def test_idle_means_nothing_to_register_extract_or_record():
    assert FeatureSetPlan("n", "k", 0, 0).idle
    assert not FeatureSetPlan("n", "k", 1, 0, todo=_refs(1.0)).idle
    assert not FeatureSetPlan("n", "k", 1, 0, unreadable=[("a", "x")], unrecorded=1).idle
    assert FeatureSetPlan("n", "k", 1, 0, unreadable=[("a", "x")], unrecorded=0).idle
    assert FeatureSetPlan("n", "k", 0, 0).known_counts == {}
    assert RunPlan().idle and RunPlan(feature_sets=[FeatureSetPlan("n", "k", 0, 0)]).idle
    from emofuse.catalog.corpora.entry import Entry
    assert not RunPlan(register=[Entry("/a.mp4")]).idle
    assert not RunPlan(feature_sets=[FeatureSetPlan("n", "k", 0, 0), FeatureSetPlan("m", "j", 1, 0, todo=_refs(1.0))]).idle


def test_a_run_over_a_source_plans_its_known_unchanged_files_and_lists_the_rest(tmp_path, cat):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for name in ("a.mp4", "b.wav", "sub/c.mkv", "sub/copy-of-a.mp4"):
        (src / name).write_bytes(b"x" * 10)
    elsewhere = tmp_path / "other.mp4"
    elsewhere.write_bytes(b"y")
    cat.add_media([_media_row("id-a", str(src / "a.mp4")), _media_row("id-c", str(src / "sub" / "c.mkv")),
                   _media_row("id-a", str(src / "sub" / "copy-of-a.mp4")),  # the same content twice: one item
                   _media_row("id-o", str(elsewhere)),
                   _media_row("seg-a", str(src / "a.mp4"), parent_id="id-a", segment_start=0.0, segment_end=1.0)])
    ex = {"egemaps": get_extractor("egemaps")}
    plan = plan_run(cat, str(src), "archive", None, ex)
    assert sorted(plan.media["item_id"]) == ["id-a", "id-c"]  # not the other folder's, not a segment of a.mp4
    assert [(e.path, e.columns) for e in plan.register] == [(str(src / "b.wav"), {"corpus": "archive"})]
    assert plan.added == 0 and plan.rejected == [] and plan.intake.taken == 4
    assert [f.name for f in plan.feature_sets] == ["egemaps"]
    assert sorted(it.item_id for it in plan.feature_sets[0].todo) == ["id-a", "id-c"]
    assert not plan.idle

    (src / "sub" / "c.mkv").write_bytes(b"changed!!!!")  # another size: to hash and probe again
    plan = plan_run(cat, str(src), "archive", None, ex)
    assert list(plan.media["item_id"]) == ["id-a"]
    assert sorted(e.path for e in plan.register) == [str(src / "b.wav"), str(src / "sub" / "c.mkv")]

    whole = plan_run(cat, None, "archive", None, ex)  # no source: every item the catalog holds
    assert sorted(whole.media["item_id"]) == sorted(cat.media()["item_id"])
    assert whole.register == [] and whole.intake.seen == 0

    (tmp_path / "empty").mkdir()
    with pytest.raises(NothingTaken, match=re.escape(str(tmp_path / "empty"))):
        plan_run(cat, str(tmp_path / "empty"), "archive", None, ex)


def test_registering_takes_the_selection_names_paths_from_the_source_and_leaves_nothing_to_register(tmp_path, cat):
    """plan_run(register=True) on real (tiny) media: the recipe's selection decides which files are
    items, relpaths are relative to the source, and afterwards the plan covers them and lists none."""
    from emofuse.pipeline.dummies import tone, write_audio

    src = tmp_path / "ravdess"
    (src / "Actor_01").mkdir(parents=True)
    names = ["03-01-01-01-01-01-01.wav", "03-01-05-02-01-01-01.wav", "03-02-01-01-01-01-01.wav"]  # speech, speech, song
    for k, name in enumerate(names):
        write_audio(src / "Actor_01" / name, tone(0.5, freq=220.0 + 40 * k))
    ex = {"egemaps": get_extractor("egemaps")}
    plan = plan_run(cat, str(src), "ravdess", ["audio-only", "speech"], ex, register=True, threads=1)
    assert plan.added == 2 and plan.register == []
    media = cat.media()
    assert sorted(media["relpath"]) == sorted(f"Actor_01/{n}" for n in names[:2])  # the song is not selected
    assert sorted(plan.media["item_id"]) == sorted(media["item_id"])
    assert sorted(it.item_id for it in plan.feature_sets[0].todo) == sorted(media["item_id"])

    again = plan_run(cat, str(src), "ravdess", ["audio-only", "speech"], ex, register=True, threads=1)
    assert again.added == 0 and again.register == [] and sorted(again.media["item_id"]) == sorted(media["item_id"])
    every = plan_run(cat, str(src), "ravdess", ["audio-only", "speech", "song"], ex, register=True, threads=1)
    assert every.added == 1 and len(every.media) == 3 and len(cat.media()) == 3
