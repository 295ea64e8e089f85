"""Fault tests: a killed Dask worker, two runs at once, a crash before the commit, hostile inputs."""
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
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr

from emofuse.catalog import atomic, locks
from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from tests.conftest import write_silent_video

FAST_SETS = ["egemaps", "logmel"]


def _extract_cmd(source: str, catalog: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "emofuse.flows.cli", "extract", source, "--catalog", catalog,
            "--feature-sets", *FAST_SETS, *extra]


def _assert_consistent(catalog: str, n_items: int) -> None:
    """Every part and shard reads; every item is once in every table; all ok."""
    root = catalog
    for part in glob.glob(f"{root}/**/part-*.parquet", recursive=True):
        pq.read_table(part)
    cat = Catalog(catalog)
    assert len(pd.read_parquet(f"{root}/media")) == n_items
    for key in cat.feature_sets():
        clips = pd.read_parquet(f"{root}/features/{key}/clips") if os.path.isdir(f"{root}/features/{key}/clips") else None
        if clips is not None:
            assert clips["item_id"].is_unique and len(clips) == n_items, key
        idx = pd.read_parquet(f"{root}/features/{key}/index")
        assert idx["item_id"].is_unique and len(idx) == n_items, key
        for shard in idx["shard"].unique():
            g = zarr.open_group(f"{root}/features/{key}/shards/{shard}.zarr", mode="r")
            n = idx[idx["shard"] == shard]["length"].sum()
            assert g["values"].shape[0] == n and np.isfinite(g["values"][:]).all()
        st = cat.status(key)
        assert len(st) == n_items and set(st["status"]) == {"ok"}, st["status"].value_counts()


@pytest.mark.slow
def test_killing_a_dask_worker_mid_run_loses_nothing(tmp_path, demo_corpus, prefect_server):
    from distributed import Client, LocalCluster

    catalog = str(tmp_path / "catalog")
    env = dict(prefect_server["env"])
    old = dict(os.environ)
    os.environ.update({"PREFECT_API_URL": prefect_server["api"], "PREFECT_HOME": prefect_server["home"]})
    try:  # worker processes inherit the server address from this environment
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    finally:
        os.environ.clear()
        os.environ.update(old)
    client = Client(cluster)
    try:
        proc = subprocess.Popen(_extract_cmd(demo_corpus, catalog, "--dask-address", cluster.scheduler_address,
                                             "--batch-size", "2"),
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        status_dir = os.path.join(catalog, "status")
        deadline = time.time() + 300
        while time.time() < deadline and not glob.glob(f"{status_dir}/*/part-*.parquet"):
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read()
        victim_addr, victim_pid = next(iter(client.run(os.getpid).items()))
        os.kill(victim_pid, signal.SIGKILL)  # the nanny restarts it; its running task is lost
        out, _ = proc.communicate(timeout=600)
        # completes, or fails cleanly with a message; either way the next run completes
        assert proc.returncode == 0 or "Error" in out, out[-3000:]
        second = subprocess.run(_extract_cmd(demo_corpus, catalog, "--dask-address", cluster.scheduler_address),
                                env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    finally:
        client.close()
        cluster.close()
    _assert_consistent(catalog, 32)


@pytest.mark.slow
def test_two_runs_at_once_on_one_catalog(tmp_path, demo_corpus, prefect_server):
    catalog = str(tmp_path / "catalog")
    env = prefect_server["env"]  # two runs against one server, as two users of one deployment would
    procs = [subprocess.Popen(_extract_cmd(demo_corpus, catalog, "--batch-size", "2"), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    _assert_consistent(catalog, 32)


def test_a_crash_between_shard_and_record_is_repaired_by_the_next_run(tmp_path, demo_corpus):
    from emofuse.flows.extract import extract

    catalog = str(tmp_path / "catalog")
    src = str(tmp_path / "src")
    shutil.copytree(os.path.join(demo_corpus, "Actor_01"), os.path.join(src, "Actor_01"))
    for f in sorted(os.listdir(os.path.join(src, "Actor_01")))[4:]:
        os.remove(os.path.join(src, "Actor_01", f))
    extract(source=src, catalog=catalog, feature_sets=["egemaps"])
    cat = Catalog(catalog)
    key = cat.find_feature_set("egemaps")
    item = cat.media()["item_id"].iloc[0]
    # a task that claimed, wrote its shard, index and clip parts, then died before its status commit
    # (its process gone: the task claim it took first stays behind, stale)
    cat.claim(key, "crashed", [item])
    seq = Sequence(times=np.zeros(3), arrays={"values": np.zeros((3, 25), np.float32)})
    cat._write_shard(key, "crashed", [ExtractResult(item_id=item, sequence=seq)], {})
    atomic.write_parquet(pa.Table.from_pandas(cat.clips(key).head(1), preserve_index=False),
                         cat.layout.clips(key), "crashed")
    assert len(pd.read_parquet(cat.layout.clips(key))) == 5  # visible to plain pandas until repaired…
    assert len(cat.clips(key)) == 4  # …but never to emofuse readers
    locks.drop_owner("crashed")
    extract(source=src, catalog=catalog, feature_sets=["egemaps"])
    assert not os.path.exists(cat.layout.shard(key, "crashed"))
    assert not os.path.exists(cat.task_claim_path("crashed"))
    assert len(pd.read_parquet(cat.layout.clips(key))) == 4
    assert len(pd.read_parquet(cat.layout.seq_index(key))) == 4


def _write_video(path: str, frames: list[np.ndarray], *, audio_samples: int | None = None, rate: int = 25) -> None:
    with av.open(path, "w") as c:
        h, w = frames[0].shape[:2]
        vs = c.add_stream("mpeg4", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a = None
        if audio_samples is not None:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        for img in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if a is not None:
            if audio_samples:
                fr = av.AudioFrame.from_ndarray(np.zeros((1, audio_samples), np.float32), format="flt", layout="mono")
                fr.sample_rate, fr.pts = 16000, 0
                for p in a.encode(fr):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)


def test_hostile_inputs_each_get_a_status_and_nothing_escapes(tmp_path, demo_corpus):
    from emofuse.flows.extract import extract
    from skimage import data

    src = tmp_path / "archive"
    (src / "nested" / "déjà vu").mkdir(parents=True)
    clips = sorted(glob.glob(os.path.join(demo_corpus, "Actor_01", "*.mp4")))
    shutil.copy(clips[0], src / "a b $(touch PWNED); rm -rf x `id` 'q'.mp4")
    shutil.copy(clips[0], src / "nested" / "copy of the first.mp4")  # same bytes: same item
    shutil.copy(clips[1], src / "nested" / "déjà vu" / "émotion 日本.mp4")
    os.symlink(src, src / "nested" / "loop")  # a symlink loop in the source tree
    outside = tmp_path / "outside.srt"
    outside.write_text("1\n00:00:00,000 --> 00:00:01,000\nsecret\n")
    shutil.copy(clips[2], src / "sidecar.mp4")
    os.symlink(outside, src / "sidecar.srt")  # a sidecar that leads outside the media's folder
    _write_video(str(src / "one_frame.mp4"), [np.full((64, 64, 3), 90, np.uint8)])
    face4k = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).fromarray(data.astronaut()).resize((3840, 2160)))
    _write_video(str(src / "uhd.mp4"), [face4k] * 3, rate=5)
    _write_video(str(src / "zero_audio.mp4"), [np.full((64, 64, 3), 90, np.uint8)] * 10, audio_samples=0)
    write_silent_video(str(src / "silent.mp4"))

    before = {p for p in glob.glob(str(tmp_path / "**"), recursive=True)}
    catalog = str(tmp_path / "catalog")
    extract(source=str(src), catalog=catalog, corpus="archive")
    after = {p for p in glob.glob(str(tmp_path / "**"), recursive=True)}
    assert {p for p in after - before if not p.startswith(catalog)} == set(), "wrote outside the catalog"
    assert not os.path.exists("PWNED") and not (src / "PWNED").exists()

    cat = Catalog(catalog)
    media = cat.media()
    assert len(media) == 7  # the two copies of one clip are one item; the loop is not followed
    st = cat.status()
    names = dict(zip(media["item_id"], media["relpath"]))
    st["file"] = st["item_id"].map(names)
    st["set"] = st["feature_set"].str.split("-v").str[0]
    got = {(r.file, r.set): r.status for r in st.itertuples()}
    assert len(got) == 7 * 4  # every item has a status in every feature set
    assert got[("sidecar.mp4", "text")] == "error"
    assert "outside" in st[(st.file == "sidecar.mp4") & (st.set == "text")]["message"].iloc[0]
    assert got[("one_frame.mp4", "egemaps")] == "no_audio"
    assert got[("one_frame.mp4", "faces")] == "no_face"
    assert got[("uhd.mp4", "faces")] == "ok"
    assert got[("zero_audio.mp4", "egemaps")] in ("no_audio", "decode_error")
    assert got[("silent.mp4", "logmel")] == "no_speech"
    weird = [f for f in names.values() if f.startswith(("a b", "nested/copy"))][0]
    assert got[(weird, "egemaps")] == "ok" and got[("nested/déjà vu/émotion 日本.mp4", "faces")] == "ok"
    assert len(cat.media(dedupe=False)) == 8
