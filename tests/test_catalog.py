"""Catalog storage rules: atomic parts, commit order, orphan repair, claims, latest status."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import zarr

from emofuse.catalog import atomic, locks
from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog

KEY = "toy-v1-00000000-none"


def _result(item: str, n: int = 5, value: float = 1.0) -> ExtractResult:
    seq = Sequence(times=np.arange(n) * 0.01, arrays={"values": np.full((n, 3), value, np.float32),
                                                      "mask": np.ones(n, bool)})
    return ExtractResult(item_id=item, row={"mean": value, "vec": np.full(4, value, np.float32)}, sequence=seq,
                         n_frames=n)


def test_temp_parts_are_invisible_to_pandas(tmp_path):
    folder = str(tmp_path / "t")
    atomic.write_parquet(pa.table({"a": [1, 2]}), folder, "one")
    # a writer that died mid-way leaves only a hidden temporary file
    (tmp_path / "t" / ".tmp-dead.parquet").write_bytes(b"PAR1 half written")
    assert pd.read_parquet(folder)["a"].tolist() == [1, 2]


def test_commit_and_read_back(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    results = [_result("a", 5, 1.0), _result("b", 3, 2.0),
               ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")]
    assert cat.commit_task(KEY, "t1", results) == 3
    clips = cat.clips(KEY)
    assert sorted(clips["item_id"]) == ["a", "b"]
    assert clips.set_index("item_id").loc["b", "vec"].tolist() == [2.0] * 4
    seqs = cat.load_sequences(KEY)
    assert seqs["a"]["values"].shape == (5, 3) and seqs["b"]["values"].shape == (3, 3)
    assert np.all(seqs["b"]["values"] == 2.0) and seqs["b"]["mask"].dtype == np.uint8
    st = cat.status(KEY).set_index("item_id")
    assert st.loc["c", "status"] == "no_audio" and st.loc["a", "status"] == "ok"
    # the same folders read without emofuse
    idx = pd.read_parquet(cat.layout.seq_index(KEY))
    g = zarr.open_group(cat.layout.shard(KEY, "t1"), mode="r")
    row = idx.set_index("item_id").loc["b"]
    assert np.all(g["values"][row.offset:row.offset + row.length] == 2.0)
    assert set(pd.read_parquet(cat.layout.status)["feature_set"]) == {KEY}


def test_a_few_columns_of_clips_and_index_are_the_same_rows_as_the_whole_tables(tmp_path):
    """What `catalog ls` reads: only the columns it counts, from committed tasks only, one row per item."""
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [_result("a", 5, 1.0), _result("b", 3, 2.0)])
    cat.commit_task(KEY, "t2", [_result("b", 4, 3.0), _result("c", 2, 4.0)])
    cat._write_shard(KEY, "crashed", [_result("d", 2, 5.0)], {})  # index part without status: invisible
    atomic.write_parquet(pa.table({"item_id": ["d"], "mean": [5.0]}), cat.layout.clips(KEY), "crashed")
    for read, cols in ((cat.clips, ["mean"]), (cat.sequence_index, ["length", "shard"])):
        whole = read(KEY).sort_values("item_id").reset_index(drop=True)
        few = read(KEY, columns=cols).sort_values("item_id").reset_index(drop=True)
        assert list(few.columns) == ["item_id", *cols] and list(few["item_id"]) == ["a", "b", "c"]
        pd.testing.assert_frame_equal(few, whole[["item_id", *cols]])
    lengths = cat.sequence_index(KEY, columns=["length"]).set_index("item_id")["length"]
    assert (lengths["a"], lengths["c"]) == (5, 2)


def test_same_failure_is_not_logged_twice_and_latest_wins(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")])
    assert cat.commit_task(KEY, "t2", [ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")]) == 0
    assert len(cat.status(KEY, latest=False)) == 1
    cat.commit_task(KEY, "t3", [_result("c")])
    assert cat.status(KEY)["status"].tolist() == ["ok"]
    assert cat.done(KEY) == {"c"}


def test_a_commit_of_ok_items_only_reads_no_status_and_one_with_a_failure_does(tmp_path, monkeypatch):
    """Reading the status is O(items in the catalog): an all-``ok`` task, the common one, must not pay it."""
    from emofuse.catalog import status as status_mod

    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")])

    def whole_status_read(*args, **kwargs):
        raise AssertionError("the whole status table was read")

    monkeypatch.setattr(status_mod, "read_status", whole_status_read)
    assert cat.commit_task(KEY, "t2", [_result("a"), _result("b")]) == 2
    with pytest.raises(AssertionError, match="whole status"):  # a failure may repeat: it needs the current rows
        cat.commit_task(KEY, "t3", [_result("d"), ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")])
    monkeypatch.undo()
    assert cat.done(KEY) == {"a", "b"} and len(cat.status(KEY, latest=False)) == 3


def test_a_claim_leaves_out_items_now_ok_without_reading_the_whole_status(tmp_path, monkeypatch):
    from emofuse.catalog import status as status_mod

    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [_result("a"), ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")])
    cat.commit_task(KEY, "t2", [ExtractResult.failed("a", Status.ERROR, "a later attempt failed")])
    cat.commit_task(KEY, "t3", [_result("b")])

    def whole_status_read(*args, **kwargs):
        raise AssertionError("the whole status table was read")

    monkeypatch.setattr(status_mod, "read_status", whole_status_read)
    # b is ok now (another run finished it); a's newest row is an error, c a final failure: both theirs to try
    assert cat.claim(KEY, "t4", ["a", "b", "c", "d"]) == ["a", "c", "d"]
    assert not os.path.exists(cat.item_claim_path(KEY, "b"))  # what it left out is not held
    cat.release(KEY, "t4", ["a", "c", "d"])


def test_orphans_of_a_crashed_task_are_invisible_then_repaired(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "good", [_result("a")])
    # simulate a crash after the shard and parts were written but before the status commit
    crashed = Catalog(tmp_path / "cat")
    crashed._write_shard(KEY, "dead", [_result("b")], {})
    atomic.write_parquet(pa.table({"item_id": ["b"], "mean": [1.0]}), cat.layout.clips(KEY), "dead")
    assert sorted(cat.clips(KEY)["item_id"]) == ["a"]
    assert sorted(cat.sequence_index(KEY)["item_id"]) == ["a"]
    removed = cat.repair(grace_s=0)
    assert len(removed) == 3 and all("dead" in r for r in removed)
    assert len(pd.read_parquet(cat.layout.clips(KEY))) == 1
    assert not os.path.exists(cat.layout.shard(KEY, "dead"))


def test_repair_spares_a_live_task(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    assert cat.claim(KEY, "live", ["x"]) == ["x"]
    cat._write_shard(KEY, "live", [_result("x")], {})
    assert cat.repair(grace_s=0) == []
    cat.release(KEY, "live", ["x"])
    assert len(cat.repair(grace_s=0)) == 2


def test_repair_spares_a_task_that_commits_while_repair_runs(tmp_path, monkeypatch):
    """Another run's task commits (status first, then its claim goes) between repair's reads: its parts stay."""
    cat = Catalog(tmp_path / "cat").init()
    other = Catalog(tmp_path / "cat")
    assert other.claim(KEY, "other-run", ["x"]) == ["x"]
    other._write_shard(KEY, "other-run", [_result("x")], {})
    alive = Catalog.task_alive

    def finishing_now(self, task_id):  # the moment repair looks at the claim, the other task finishes
        if task_id == "other-run" and "other-run" not in other.committed_tasks(KEY):
            other.commit_task(KEY, "other-run", [_result("x")])
            other.release(KEY, "other-run", ["x"])
        return alive(self, task_id)

    monkeypatch.setattr(Catalog, "task_alive", finishing_now)
    assert cat.repair(grace_s=0) == []
    assert set(cat.load_sequences(KEY)) == {"x"}


def test_claims_exclude_a_second_owner_until_stale(tmp_path):
    path = str(tmp_path / "locks" / "item.lock")
    assert locks.try_claim(path, "task-1")
    assert not locks.try_claim(path, "task-2")
    # a claim whose process is gone is stale and taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    import json
    import socket
    with open(path, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": pid, "owner": "task-dead", "created": 0}, f)
    assert locks.try_claim(path, "task-2")
    assert locks.read_claim(path).owner == "task-2"
    locks.release(path, "task-1")  # not the owner: nothing happens
    assert locks.read_claim(path).owner == "task-2"
    locks.release(path, "task-2")
    assert locks.read_claim(path) is None


def test_claim_skips_items_already_done(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [_result("a")])
    assert cat.claim(KEY, "t2", ["a", "b"]) == ["b"]


def test_sequence_must_have_values():
    with pytest.raises(ValueError, match="values"):
        Sequence(times=np.zeros(2), arrays={"mask": np.zeros(2)})
    with pytest.raises(ValueError, match="rows"):
        Sequence(times=np.zeros(2), arrays={"values": np.zeros((3, 1))})


def test_one_status_writer_for_commits_and_scoring(tmp_path):
    from emofuse.catalog.status import StatusEntry

    cat = Catalog(tmp_path / "cat").init()
    # an extraction commit: ok rows are written even when they repeat (they are the commit record)
    cat.commit_task(KEY, "t1", [_result("a")])
    assert cat.commit_task(KEY, "t2", [_result("a")]) == 1 and cat.committed_tasks(KEY) == {"t1", "t2"}
    # scoring: only changes are written, in a part named after its rows (the same change is the same part)
    key = "score-run-1"
    entries = [StatusEntry("a", "ok"), StatusEntry("b", "no_features", "faces: no_face")]
    assert cat.record_status(key, entries, run_id="run-1") == 2
    parts = sorted(os.listdir(cat.layout.status_dir(key)))
    assert cat.record_status(key, entries, run_id="run-1") == 0
    assert sorted(os.listdir(cat.layout.status_dir(key))) == parts and len(parts) == 1
    assert cat.record_status(key, [StatusEntry("a", "ok"), StatusEntry("b", "ok")], run_id="run-1") == 1
    st = cat.status(key).set_index("item_id")
    assert st.loc["b", "status"] == "ok" and st.loc["b", "run_id"] == "run-1"
    assert set(pd.read_parquet(cat.layout.status)["feature_set"]) == {KEY, key}


def test_prediction_parts_are_named_by_their_items(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    rows = pd.DataFrame({"item_id": ["b", "a"], "fold": "ensemble", "window": "clip", "start": 0.0, "end": 2.0,
                         "label": "happy", "score": 0.9, "valence": np.nan, "arousal": np.nan,
                         "scored_at": pd.Timestamp.now(tz="UTC"), "p_happy": 0.9, "p_sad": 0.1})
    first = cat.write_predictions("tacfn", "r1", rows, ["happy", "sad"], fold="ensemble")
    again = cat.write_predictions("tacfn", "r1", rows.iloc[::-1], ["happy", "sad"], fold="ensemble")
    windowed = cat.write_predictions("tacfn", "r1", rows.assign(window="4s/2s"), ["happy", "sad"],
                                     fold="ensemble", window="4s/2s")
    assert first == again and os.path.basename(windowed).startswith("part-ensemble-w4s_2s-")
    assert sorted(os.listdir(cat.layout.predictions_dir("tacfn", "r1"))) == sorted(
        os.path.basename(p) for p in (first, windowed))
    done = cat.existing_predictions("tacfn", "r1")
    assert sorted(map(tuple, done.values.tolist())) == [("a", "ensemble", "4s/2s"), ("a", "ensemble", "clip"),
                                                        ("b", "ensemble", "4s/2s"), ("b", "ensemble", "clip")]
    assert cat.existing_predictions("tacfn", "other").empty
    cat.write_predictions("rcma", "r2", rows.head(1), ["happy", "sad"], fold="0")
    assert len(cat.predictions()) == 5 and len(cat.predictions(model="rcma")) == 1
    assert set(cat.predictions(model="tacfn", run_id="r1")["run"]) == {"r1"}
    assert cat.tables().set_index("table").loc["predictions", "rows"] == 5


def test_run_folder_verifies_files_and_keeps_checkpoints_apart(tmp_path):
    from emofuse.catalog.runs import RunIntegrityError

    cat = Catalog(tmp_path / "cat").init()
    run = cat.run("tacfn-1")
    run.write_json("config.json", {"model": "tacfn"})
    run.write_bytes("w.safetensors", b"\x80\x04K\x01.")  # a pickle under a safetensors name
    assert cat.runs() == ["tacfn-1"] and run.read_json("config.json") == {"model": "tacfn"}
    with pytest.raises(RunIntegrityError, match="pickle"):
        run.read_verified("w.safetensors")
    with pytest.raises(RunIntegrityError, match="not recorded"):
        run.read_verified("other.json")
    ckpt = run.checkpoints
    assert ckpt.load(0) is None
    ckpt.save(0, 1, b"one", {"epoch": 1})
    ckpt.save(0, 2, b"two", {"epoch": 2})
    ckpt.save(1, 1, b"fold one", {"epoch": 1})
    assert sorted(os.listdir(ckpt.path)) == ["fold-0.epoch-0002.safetensors", "fold-0.json",
                                             "fold-1.epoch-0001.safetensors", "fold-1.json"]
    meta, data = ckpt.load(0)
    assert (meta["epoch"], meta["checkpoint"], data) == (2, "fold-0.epoch-0002.safetensors", b"two")
    with open(os.path.join(ckpt.path, "fold-0.epoch-0002.safetensors"), "ab") as f:
        f.write(b"!")
    with pytest.raises(ValueError, match="sha256"):
        ckpt.load(0)
    ckpt.clear(0)
    ckpt.remove_if_empty()
    assert ckpt.load(1)[1] == b"fold one"  # another fold's checkpoint is kept
    ckpt.clear(1)
    ckpt.remove_if_empty()
    assert not os.path.exists(ckpt.path) and "checkpoints" not in run.manifest()["files"]
