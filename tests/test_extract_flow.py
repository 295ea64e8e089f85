"""End to end: the extract flow on a real local Dask cluster over a generated corpus with bad files."""
from __future__ import annotations

import json
import os

import numpy as np
import opensmile
import pandas as pd
import xarray as xr
import zarr

from emofuse.catalog.store import Catalog
from emofuse.flows.extract import extract
from emofuse.pipeline.decode import load_audio
from tests.snapshots import file_snapshot


def _key(cat: Catalog, name: str) -> str:
    return cat.find_feature_set(name)


def test_outputs_read_with_plain_pandas_and_zarr(extracted):
    root = extracted["catalog"]
    media = pd.read_parquet(os.path.join(root, "media"))
    assert len(media) == 2 * 8 * 2 + 4
    assert {"item_id", "path", "duration", "emotion", "speaker", "sex", "statement", "transcript"} <= set(media)
    cat = Catalog(root)
    key = _key(cat, "egemaps")
    clips = pd.read_parquet(os.path.join(root, "features", key, "clips"))
    assert len(clips) == 2 * 8 * 2  # the silent clip has no speech; the broken ones fail
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    assert list(smile.feature_names) == [c for c in clips.columns if c not in ("item_id", "duration")]
    assert len(smile.feature_names) == 88

    index = pd.read_parquet(os.path.join(root, "features", key, "index"))
    row = index.iloc[0]
    shard = os.path.join(root, "features", key, "shards", f"{row['shard']}.zarr")
    g = zarr.open_group(shard, mode="r")
    values = g["values"][row["offset"]:row["offset"] + row["length"]]
    times = g["times"][row["offset"]:row["offset"] + row["length"]]
    assert values.shape == (row["length"], 25)
    assert np.allclose(np.diff(times), 0.01)
    ds = xr.open_zarr(shard, consolidated=False)
    assert ds["values"].shape[1] == 25 and len(g.attrs["columns"]) == 25


def test_egemaps_equals_opensmile_on_the_same_audio(extracted):
    cat = Catalog(extracted["catalog"])
    key = _key(cat, "egemaps")
    clips = cat.clips(key).set_index("item_id")
    media = cat.media().set_index("item_id")
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    lld = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    seqs = cat.load_sequences(key, list(clips.index[:3]))
    for item in clips.index[:3]:
        audio = load_audio(media.loc[item, "path"], sr=16000)
        ref = smile.process_signal(audio, 16000).iloc[0]
        got = clips.loc[item, list(ref.index)].astype(float)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(seqs[item]["values"], lld.process_signal(audio, 16000).to_numpy(), rtol=1e-6,
                                   atol=1e-6)


def test_bad_files_end_with_a_status_and_the_rest_succeed(extracted):
    cat = Catalog(extracted["catalog"])
    media = cat.media()
    by_path = dict(zip(media["path"], media["item_id"]))
    st = cat.status()
    status = {(r.item_id, r.feature_set.split("-v")[0]): (r.status, r.message) for r in st.itertuples()}

    def of(kind: str, fs: str) -> tuple[str, str]:
        return status[(by_path[extracted[kind]], fs)]

    for fs in ("egemaps", "faces", "text", "logmel"):
        assert of("corrupt", fs)[0] == "decode_error", fs
        assert of("empty", fs)[0] == "decode_error" and "empty file" in of("empty", fs)[1]
    assert of("no_audio", "egemaps") == ("no_audio", of("no_audio", "egemaps")[1])
    assert "no audio stream" in of("no_audio", "egemaps")[1]
    assert of("no_audio", "logmel")[0] == "no_audio"
    assert of("no_audio", "faces")[0] == "ok"  # the video is fine
    assert of("silent", "egemaps")[0] == "no_speech" and "silent" in of("silent", "egemaps")[1]
    assert of("silent", "faces")[0] == "no_face"
    bad = {by_path[extracted[k]] for k in ("corrupt", "empty", "no_audio", "silent")}
    good = st[~st["item_id"].isin(bad)]
    assert len(good) == 32 * 4
    assert (good["status"] == "ok").all(), good[good["status"] != "ok"][["feature_set", "status", "message"]]


def test_rerun_extracts_nothing_and_changes_no_file(extracted):
    before = file_snapshot(extracted["catalog"], content=True)
    record = extract(source=extracted["root"], catalog=extracted["catalog"], n_workers=2)
    assert file_snapshot(extracted["catalog"], content=True) == before
    cat = Catalog(extracted["catalog"])
    st = cat.status()
    for key, agg in record["feature_sets"].items():
        assert (st[st["feature_set"] == key]["status"] != "ok").sum() > 0
        # the failures are the content's (decode errors, no audio, no speech, no face): final, not tried again
        assert agg["already_done"] == agg["items"] == len(cat.media())
        assert agg["counts"] == {}


def test_a_changed_config_is_a_new_feature_set(extracted, tmp_path):
    cat = Catalog(extracted["catalog"])
    before = set(cat.feature_sets())
    from emofuse.pipeline.registry import get_extractor

    other = get_extractor("egemaps", {"min_duration": 0.75}).key
    assert other not in before and other.startswith("egemaps-v1-")
    assert get_extractor("egemaps").key in before


def test_the_run_summary_is_recorded_where_the_layout_says(extracted):
    from emofuse.catalog.layout import Layout
    from emofuse.catalog.summaries import read_extract_runs

    layout = Layout.at(extracted["catalog"])
    runs = read_extract_runs(layout)  # one: the rerun of an earlier test changed nothing, so it left none
    assert os.listdir(layout.extract_runs) == [f"{runs[0].run_id}.json"]
    record = extracted["record"]
    assert runs[0].to_dict() == json.loads(json.dumps(record, default=str))
    media = Catalog(extracted["catalog"]).media()
    for fs in record["feature_sets"].values():
        assert fs["items"] == len(media) and fs["already_done"] == 0
        assert sum(fs["counts"].values()) == len(media)  # every item was attempted once, decode errors included
        assert fs["written"] == len(media)


def test_a_run_with_nothing_to_do_writes_no_file_and_starts_no_cluster(demo_corpus, tmp_path, monkeypatch, capsys):
    import emofuse.flows.extract as flow_module

    catalog = str(tmp_path / "cat")
    first = extract(source=demo_corpus, catalog=catalog, feature_sets=["egemaps"], n_workers=1)
    (agg,) = first["feature_sets"].values()
    assert agg["counts"] == {"ok": agg["items"]} and agg["items"] > 0
    before = file_snapshot(catalog, content=True)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a run with nothing to do started a Dask cluster")

    monkeypatch.setattr(flow_module, "dask_runner", no_cluster)
    again = extract(source=demo_corpus, catalog=catalog, feature_sets=["egemaps"], n_workers=1)
    assert file_snapshot(catalog, content=True) == before
    (agg,) = again["feature_sets"].values()
    assert agg["already_done"] == agg["items"] == first["feature_sets"][next(iter(first["feature_sets"]))]["items"]
    assert agg["counts"] == {}
    # the command line answers it without a flow run (no Prefect server, no cluster)
    from emofuse.flows import cli

    capsys.readouterr()
    assert cli.main(["extract", demo_corpus, "--catalog", catalog, "--feature-sets", "egemaps"]) == 0
    assert "no flow run started" in capsys.readouterr().out
    assert file_snapshot(catalog, content=True) == before
    # a moved copy of the corpus is known by content: its paths are registered, nothing is extracted
    import shutil

    src = tmp_path / "src"
    shutil.copytree(demo_corpus, src)
    moved = extract(source=str(src), catalog=catalog, feature_sets=["egemaps"], n_workers=1)
    (agg,) = moved["feature_sets"].values()
    assert moved["registered"] == agg["items"] == agg["already_done"] and agg["counts"] == {}
    # a new file is work again: registered and extracted, the rest stays as it was
    monkeypatch.undo()
    clip = sorted(src.rglob("*.mp4"))[0]
    clip.write_bytes(clip.read_bytes() + b"\0")  # changed bytes: a new item
    third = extract(source=str(src), catalog=catalog, feature_sets=["egemaps"], n_workers=1)
    (agg,) = third["feature_sets"].values()
    assert agg["counts"] == {"ok": 1}
