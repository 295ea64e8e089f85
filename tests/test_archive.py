"""Batch scoring of a video archive, end to end: `emofuse score-archive` and the `score` flow.

A tiny TACFN is trained once on a small RAVDESS-layout catalog (demo clips of two actors plus
a generated third actor; eGeMAPS + faces only), then an archive of hostile and ordinary files
(nested folders, mp4 + mkv, an audio-only wav, a video without audio, a blank video, a
zero-byte file, a truncated mp4, a text file named .mkv, a ~30 s video built by concatenating
demo clips) is registered, extracted and scored per clip and in 4 s windows every 2 s.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.store import Catalog
from tests.conftest import strip_audio, write_silent_video
from tests.snapshots import file_snapshot

TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
#: Two speaker-independent folds over three actors (the demo corpus has two; a third is generated).
PLAN = [{"fold": 0, "train": ["Actor_01"], "val": ["Actor_03"], "test": ["Actor_02"]},
        {"fold": 1, "train": ["Actor_02"], "val": ["Actor_03"], "test": ["Actor_01"]}]
EMOTIONS = (1, 3, 4, 5)
WINDOW, HOP = 4.0, 2.0
FEATURE_SETS = ["egemaps", "faces"]


# --------------------------------------------------------------------------- media helpers
def remux(src: str, dst: str) -> None:
    """Copy the audio and video packets of ``src`` into another container (by ``dst``'s extension)."""
    with av.open(src) as inp, av.open(dst, "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("audio", "video")}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def to_wav(src: str, dst: str) -> None:
    """The audio track of ``src`` as 16 kHz mono PCM WAV (an audio-only file)."""
    with av.open(src) as inp, av.open(dst, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                for p in stream.encode(f):
                    out.mux(p)
        for p in stream.encode():
            out.mux(p)


def concat(srcs: list[str], dst: str, gap: float = 0.2) -> None:
    """Clips one after another in one file, packets copied with shifted timestamps (no re-encoding)."""
    with av.open(dst, "w") as out:
        streams: dict[str, object] = {}
        offset = 0.0
        for src in srcs:
            with av.open(src) as inp:
                ins = [s for s in inp.streams if s.type in ("audio", "video")]
                if not streams:
                    streams = {s.type: out.add_stream_from_template(s) for s in ins}
                end = offset
                for packet in inp.demux(*ins):
                    if packet.dts is None:
                        continue
                    tb = packet.stream.time_base
                    shift = int(round(offset / tb))
                    packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                    end = max(end, float((packet.pts + (packet.duration or 0)) * tb))
                    packet.stream = streams[packet.stream.type]
                    out.mux(packet)
            offset = end + gap  # a small gap keeps decode timestamps increasing across the joins


def _demo_clips(root: str, statement: str, emotions: tuple[int, ...] | None = None) -> list[str]:
    out = []
    for p in sorted(glob.glob(os.path.join(root, "Actor_*", "*.mp4"))):
        parts = os.path.basename(p)[:-4].split("-")
        if parts[4] == statement and (emotions is None or int(parts[2]) in emotions):
            out.append(p)
    return out


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_corpus) -> dict:
    """A catalog with eGeMAPS + faces of 12 labelled clips and a tiny 2-fold TACFN run trained on them."""
    from emofuse.catalog.corpora.demo import generate
    from emofuse.flows.extract import extract
    from emofuse.fusion import training_run

    base = tmp_path_factory.mktemp("archive")
    src = str(base / "train")
    for p in _demo_clips(demo_corpus, "01", EMOTIONS):
        dst = os.path.join(src, os.path.basename(os.path.dirname(p)), os.path.basename(p))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(p, dst)
    generate(src, actors=[3], emotions=EMOTIONS, statements=(1,))
    catalog = str(base / "catalog")
    extract(source=src, catalog=catalog, corpus="ravdess", feature_sets=FEATURE_SETS, n_workers=2)
    res = training_run.train(catalog, model="tacfn", feature_sets=FEATURE_SETS, model_config=TINY_TACFN, epochs=2,
                             folds=PLAN, seed=0, threads=1)
    pristine = str(base / "catalog-after-training")
    shutil.copytree(catalog, pristine)
    return {"base": base, "catalog": catalog, "pristine": pristine, "run_id": res.run_id}


@pytest.fixture(scope="module")
def archive(trained, demo_corpus) -> dict[str, str]:
    """Nested folders of ordinary and hostile files (demo clips the run was not trained on)."""
    root = str(trained["base"] / "videos")
    spare = _demo_clips(demo_corpus, "02")
    files = {
        "mp4": os.path.join(root, "2024", "interviews", "anna.mp4"),
        "mkv": os.path.join(root, "2025", "b.mkv"),
        "wav": os.path.join(root, "2025", "voice memos", "memo.wav"),
        "mute": os.path.join(root, "2024", "mute.mp4"),
        "blank": os.path.join(root, "2025", "blank.mp4"),
        "empty": os.path.join(root, "broken", "empty.mp4"),
        "truncated": os.path.join(root, "broken", "truncated.mp4"),
        "text": os.path.join(root, "broken", "notes.mkv"),
        "long": os.path.join(root, "long", "talk.mp4"),
    }
    for p in files.values():
        os.makedirs(os.path.dirname(p), exist_ok=True)
    shutil.copy(spare[0], files["mp4"])
    remux(spare[1], files["mkv"])
    to_wav(spare[2], files["wav"])
    strip_audio(spare[3], files["mute"])
    write_silent_video(files["blank"])
    open(files["empty"], "wb").close()
    data = open(spare[4], "rb").read()
    open(files["truncated"], "wb").write(data[: len(data) // 2])
    with open(files["text"], "w") as f:
        f.write("meeting notes, not a video\n")
    concat(spare[4:16], files["long"])
    with open(os.path.join(root, "README.txt"), "w") as f:  # not media: not an item
        f.write("archive\n")
    return {"root": root, **files}


@pytest.fixture(scope="module")
def scored(trained, archive) -> dict:
    """The first `score` call over the archive: extraction on 2 local Dask workers, clips + 4 s windows."""
    from emofuse.flows.score import score

    t0 = time.perf_counter()
    out = score(source=archive["root"], catalog=trained["catalog"], run_id=trained["run_id"], window=WINDOW,
                hop=HOP, n_workers=2, batch_size=1)
    return {**out, "seconds": time.perf_counter() - t0}


def _tables(catalog: str, run_id: str) -> dict[str, pd.DataFrame]:
    media = pd.read_parquet(os.path.join(catalog, "media"))
    preds = Catalog(catalog).predictions(run_id=run_id)  # the wide frame: p_<class> columns
    status = pd.read_parquet(os.path.join(catalog, "status"))
    return {"media": media, "preds": preds, "status": status,
            "score_status": status[status["feature_set"] == f"score-{run_id}"]}


# --------------------------------------------------------------------------- tests
def test_clip_windows_cover_the_clip():
    from emofuse.fusion.timeline import clip_windows

    w = clip_windows(30.9, 4.0, 2.0)
    assert w[0, 0] == 0.0 and w[-1, 1] == pytest.approx(30.9) and np.allclose(w[:, 1] - w[:, 0], 4.0)
    assert np.allclose(np.diff(w[:-1, 0]), 2.0) and 0 < w[-1, 0] - w[-2, 0] <= 2.0
    assert clip_windows(3.0, 4.0, 2.0).tolist() == [[0.0, 3.0]]
    assert clip_windows(8.0, 4.0, 2.0).tolist() == [[0.0, 4.0], [2.0, 6.0], [4.0, 8.0]]
    with pytest.raises(ValueError):
        clip_windows(8.0, 4.0, 0.0)


def test_score_archive_cli_takes_window_and_hop():
    from emofuse.flows.cli import build_parser

    args = build_parser().parse_args(["score-archive", "/videos", "--model", "tacfn", "--window", "4", "--hop", "2"])
    assert (args.source, args.model, args.window, args.hop) == ("/videos", "tacfn", 4.0, 2.0)


@pytest.mark.slow
def test_every_file_ends_with_a_prediction_or_a_status_with_a_reason(trained, archive, scored):
    t = _tables(trained["catalog"], trained["run_id"])
    media = t["media"][t["media"]["path"].str.startswith(archive["root"] + os.sep)]
    assert len(media) == 9 and media["item_id"].is_unique  # README.txt is not media
    item = dict(zip(media["path"], media["item_id"]))
    st = t["score_status"].set_index("item_id")
    assert len(st) == 9 and st.index.is_unique
    status = {k: st.loc[item[p], "status"] for k, p in archive.items() if k != "root"}
    message = {k: st.loc[item[p], "message"] for k, p in archive.items() if k != "root"}
    assert status == {"mp4": "ok", "mkv": "ok", "wav": "ok", "mute": "ok", "long": "ok", "blank": "no_features",
                      "empty": "no_features", "truncated": "no_features", "text": "no_features"}, message
    assert message["mp4"] == message["mkv"] == message["long"] == ""
    assert "faces: no_video" in message["wav"] and message["wav"].startswith("scored without")
    assert "egemaps: no_audio" in message["mute"] and message["mute"].startswith("scored without")
    assert "no_face" in message["blank"] and "no_speech" in message["blank"]
    assert "egemaps, faces: decode_error (empty file (0 bytes))" == message["empty"]
    assert "decode_error" in message["truncated"] and "decode_error" in message["text"]
    assert scored["statuses"] == {"ok": 5, "no_features": 4}
    assert scored["files"] == 9 and scored["written"] == 5

    preds = t["preds"]
    clip = preds[preds["window"] == "clip"].set_index("item_id")
    ok_items = {item[archive[k]] for k in ("mp4", "mkv", "wav", "mute", "long")}
    assert set(clip.index) == ok_items and clip.index.is_unique
    dur = media.set_index("item_id")["duration"]
    assert (clip["start"] == 0).all() and np.allclose(clip["end"], dur.loc[clip.index])
    probs = preds[[c for c in preds if c.startswith("p_")]]
    assert probs.shape[1] == len(EMOTIONS) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert not preds.duplicated(["item_id", "fold", "window", "start"]).any()
    assert set(preds["window"]) == {"clip", "4s/2s"} and set(preds["model"].astype(str)) == {"tacfn"}


@pytest.mark.slow
def test_windows_of_a_long_video_cover_its_whole_duration(trained, archive, scored):
    t = _tables(trained["catalog"], trained["run_id"])
    media = t["media"].set_index("path")
    long_id, duration = media.loc[archive["long"], "item_id"], float(media.loc[archive["long"], "duration"])
    assert 28.0 < duration < 40.0
    w = t["preds"][(t["preds"]["item_id"] == long_id) & (t["preds"]["window"] == "4s/2s")].sort_values("start")
    start, end = w["start"].to_numpy(), w["end"].to_numpy()
    assert start[0] == 0.0 and end[-1] == pytest.approx(duration)
    assert np.allclose(end - start, WINDOW)
    overlap = end[:-1] - start[1:]
    assert np.allclose(overlap[:-1], WINDOW - HOP) and WINDOW - HOP <= overlap[-1] + 1e-9 < WINDOW
    assert len(w) == int(np.ceil((duration - WINDOW) / HOP)) + 1
    # a clip shorter than one window is one window over the whole clip
    short = t["preds"][(t["preds"]["item_id"] == media.loc[archive["mkv"], "item_id"]) & (t["preds"]["window"] != "clip")]
    assert len(short) == 1 and short["start"].iloc[0] == 0.0
    assert short["end"].iloc[0] == pytest.approx(media.loc[archive["mkv"], "duration"])


@pytest.mark.slow
def test_long_items_give_the_same_rows_block_by_block_and_range_by_range(trained, archive, scored):
    from emofuse.fusion.align import load_aligned
    from emofuse.fusion.predict import load_run, predict

    cat = Catalog(trained["catalog"])
    run = load_run(trained["catalog"], trained["run_id"])
    media = cat.media()
    ids = list(media.loc[media["path"].str.startswith(archive["root"]), "item_id"])
    kw = {"classes": run.classes, "dims": run.dims}
    whole = load_aligned(cat, run.data_config, ids, **kw)
    blocks = load_aligned(cat, run.data_config, ids, max_item_rows=300, **kw)  # LLDs of every clip read lazily
    for m in whole.x:
        np.testing.assert_allclose(whole.x[m], blocks.x[m], atol=1e-5)
        assert (whole.mask[m] == blocks.mask[m]).all()
    long_id = cat.media().set_index("path").loc[archive["long"], "item_id"]
    windows = predict(run, load_aligned(cat, run.data_config, [long_id], windows=(WINDOW, HOP), **kw))
    pieces = pd.concat([predict(run, load_aligned(cat, run.data_config, [long_id], windows=(WINDOW, HOP),
                                                  time_range=(t0, t0 + 10.0), max_item_rows=500, **kw))
                        for t0 in np.arange(0.0, 40.0, 10.0)], ignore_index=True)
    cols = ["start", "end", *[c for c in windows if c.startswith("p_")]]
    np.testing.assert_allclose(windows[cols].to_numpy(np.float64), pieces[cols].to_numpy(np.float64), atol=1e-5)


@pytest.mark.slow
def test_a_second_run_changes_no_file(trained, archive, scored):
    from emofuse.flows.score import score

    before = file_snapshot(trained["catalog"])
    out = score(source=archive["root"], catalog=trained["catalog"], run_id=trained["run_id"], window=WINDOW,
                hop=HOP, n_workers=2, batch_size=1)
    assert (out["written"], out["window_rows"], out["skipped"]) == (0, 0, 5)  # the 4 unscorable are retried
    assert out["statuses"] == scored["statuses"]
    assert file_snapshot(trained["catalog"]) == before


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_predictions(trained, archive, scored, tmp_path):
    from emofuse.flows.score import score

    catalog = str(tmp_path / "catalog")
    shutil.copytree(trained["pristine"], catalog)
    # the archive without its long video (the same bytes, so the same items; half the extraction time)
    source = str(tmp_path / "videos")
    shutil.copytree(archive["root"], source, ignore=shutil.ignore_patterns("long"))
    parts = lambda: set(glob.glob(os.path.join(catalog, "status", "*", "part-*.parquet")))  # noqa: E731
    initial = parts()
    cmd = [sys.executable, "-m", "emofuse.flows.cli", "score-archive", source, "--catalog", catalog,
           "--run", trained["run_id"], "--window", str(WINDOW), "--hop", str(HOP), "--workers", "2",
           "--batch-size", "1"]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own group: the temporary Prefect server dies with it
    try:
        deadline = time.time() + 240
        # two parts record the unreadable files at once; a third is the first extraction task's commit
        while time.time() < deadline and len(parts() - initial) < 3 and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert not os.path.exists(os.path.join(catalog, "predictions"))  # killed midway: nothing scored yet
    out = score(source=source, catalog=catalog, run_id=trained["run_id"], window=WINDOW, hop=HOP,
                n_workers=2, batch_size=1)
    assert out["statuses"] == {"ok": 4, "no_features": 4} and out["files"] == 8
    key = ["item_id", "fold", "window", "start"]
    a = _tables(trained["catalog"], trained["run_id"])
    b = _tables(catalog, trained["run_id"])
    long_id = a["media"].set_index("path").loc[archive["long"], "item_id"]
    a["preds"] = a["preds"][a["preds"]["item_id"] != long_id]
    a["score_status"] = a["score_status"][a["score_status"]["item_id"] != long_id]
    pa_, pb = (x["preds"].sort_values(key).reset_index(drop=True) for x in (a, b))
    assert len(pa_) == len(pb) and not pb.duplicated(key).any()
    assert (pa_[key + ["label"]].to_numpy() == pb[key + ["label"]].to_numpy()).all()
    probs = [c for c in pa_ if c.startswith("p_")]
    np.testing.assert_allclose(pa_[probs].to_numpy(), pb[probs].to_numpy(), atol=1e-5)
    sa = a["score_status"].set_index("item_id")[["status", "message"]].sort_index()
    sb = b["score_status"].set_index("item_id")[["status", "message"]].sort_index()
    sa["message"] = sa["message"].str.replace(archive["root"], "<root>", regex=False).str[:100]
    sb["message"] = sb["message"].str.replace(source, "<root>", regex=False).str[:100]
    pd.testing.assert_frame_equal(sa, sb)
    cat = Catalog(catalog)
    for key_ in cat.feature_sets():  # every item once in every table, no leftovers of the killed tasks visible
        assert cat.clips(key_)["item_id"].is_unique
        idx = pd.read_parquet(cat.layout.seq_index(key_))
        assert idx["item_id"].is_unique


def test_egemaps_of_long_audio_in_chunks_matches_the_whole_file(tmp_path, demo_corpus):
    from emofuse.pipeline.egemaps import EgemapsConfig
    from emofuse.pipeline.registry import MediaRef, config_to_dict, feature_set_key, get_extractor

    path = str(tmp_path / "long.mp4")
    concat(_demo_clips(demo_corpus, "02")[:8], path)  # ~20 s
    ref = MediaRef(item_id="long", path=path)
    whole = get_extractor("egemaps", {"chunk_seconds": None}).extract(ref)
    chunked = get_extractor("egemaps", {"chunk_seconds": 6.0}).extract(ref)
    assert whole.ok and chunked.ok
    assert np.array_equal(whole.sequence.times, chunked.sequence.times)
    np.testing.assert_allclose(whole.sequence.arrays["values"], chunked.sequence.arrays["values"], atol=1e-5)
    assert chunked.row["duration"] == whole.row["duration"] > 15.0
    f = "loudness_sma3_amean"
    assert chunked.row[f] == pytest.approx(whole.row[f], rel=0.05)
    assert set(chunked.row) == set(whole.row)
    # the default configuration keeps the key it had before chunking existed
    v1 = {k: v for k, v in config_to_dict(EgemapsConfig()).items() if k != "chunk_seconds"}
    ex = get_extractor("egemaps")
    assert ex.key == feature_set_key("egemaps", 1, v1, ex.weights_checksum())
    assert get_extractor("egemaps", {"chunk_seconds": 6.0}).key != ex.key
