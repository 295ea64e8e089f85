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


def test_same_failure_is_not_logged_twice_and_latest_wins(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")])
    assert cat.commit_task(KEY, "t2", [ExtractResult.failed("c", Status.NO_AUDIO, "no audio stream")]) == 0
    assert len(cat.status(KEY, latest=False)) == 1
    cat.commit_task(KEY, "t3", [_result("c")])
    assert cat.status(KEY)["status"].tolist() == ["ok"]
    assert cat.done(KEY) == {"c"}


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
