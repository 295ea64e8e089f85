"""Property-based checks (Hypothesis) of the commit protocol: status rows and task commits.

A model of the status table (the newest (status, message) per item) is run beside the real
one for random sequences of :func:`record_status` calls; random task results are committed
with :func:`commit_task` and read back through the index, the shard and the clip parts.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emofuse.catalog.commit import commit_task
from emofuse.catalog.layout import Layout
from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.schemas import FINAL_FAILURES, Status
from emofuse.catalog.status import StatusEntry, committed_tasks, read_status, record_status, settled
from emofuse.catalog.tables import read_table

SOME = settings(max_examples=25, deadline=None, database=None)
ITEMS = ["a", "b", "c", "d"]
entries = st.builds(StatusEntry, st.sampled_from(ITEMS), st.sampled_from([s.value for s in Status]),
                    st.sampled_from(["", "no audio stream", "worker lost"]))
calls = st.lists(st.tuples(st.lists(entries, max_size=4, unique_by=lambda e: e.item_id), st.booleans(),
                           st.booleans()), min_size=1, max_size=6)


@SOME
@given(calls)
def test_status_rows_follow_a_model_of_the_newest_status_per_item(calls):
    layout = Layout.at(tempfile.mkdtemp())
    model: dict[str, tuple[str, str]] = {}
    for k, (batch, keep_ok, named) in enumerate(calls):
        changed = [e for e in batch if (keep_ok and e.status == "ok") or model.get(e.item_id) != (e.status, e.message)]
        task = f"task-{k}" if named else None
        assert record_status(layout, "fs-v1", batch, task_id=task, keep_ok=keep_ok) == len(changed)
        for e in changed:
            model[e.item_id] = (e.status, e.message)
        if task is not None and changed:
            assert task in committed_tasks(layout, "fs-v1")  # the rows are the task's commit record
        current = read_status(layout, "fs-v1")
        assert {i: (s, m) for i, s, m in current[["item_id", "status", "message"]].values} == model
        assert settled(current) == {i for i, (s, _) in model.items() if s == "ok" or s in FINAL_FAILURES}
        assert settled(current, retry_failed=True) == {i for i, (s, _) in model.items() if s == "ok"}
    # the same unchanged batch again writes nothing
    assert record_status(layout, "fs-v1", [StatusEntry(i, s, m) for i, (s, m) in model.items() if s != "ok"]) == 0


results = st.lists(st.tuples(st.sampled_from(["seq", "row", "both", "failed"]), st.integers(1, 6)),
                   min_size=1, max_size=5)


@SOME
@given(results)
def test_a_committed_task_is_read_back_whole(spec):
    layout = Layout.at(tempfile.mkdtemp())
    res, t0 = [], 0.0
    for i, (kind, n) in enumerate(spec):
        item = f"item-{i}"
        if kind == "failed":
            res.append(ExtractResult.failed(item, Status.NO_FACE, "no face in any frame"))
            continue
        seq = (Sequence(t0 + np.arange(n) * 0.1, {"values": np.full((n, 2), i, np.float32)})
               if kind in ("seq", "both") else None)
        row = {"mean": float(i)} if kind in ("row", "both") else None
        res.append(ExtractResult(item, row=row, sequence=seq, n_frames=n))
    assert commit_task(layout, "fs-v1", "task-1", res) == len(res)
    status = read_status(layout, "fs-v1")
    assert dict(zip(status["item_id"], status["status"])) == {r.item_id: Status(r.status).value for r in res}
    with_seq = [r for r in res if r.ok and r.sequence is not None]
    index = read_table(layout.seq_index("fs-v1")) if with_seq else None
    if with_seq:
        assert index["item_id"].tolist() == [r.item_id for r in with_seq]
        lengths = [len(r.sequence) for r in with_seq]
        assert index["length"].tolist() == lengths and index["offset"].tolist() == list(np.cumsum([0] + lengths[:-1]))
        assert (index["shard"] == "task-1").all()
        assert index["t_start"].tolist() == pytest.approx([r.sequence.times[0] for r in with_seq])
        assert index["t_end"].tolist() == pytest.approx([r.sequence.times[-1] for r in with_seq])
    else:
        assert not os.path.exists(layout.seq_index("fs-v1"))
    rows = [r for r in res if r.ok and r.row is not None]
    if rows:
        clips = read_table(layout.clips("fs-v1"))
        assert clips["item_id"].tolist() == [r.item_id for r in rows]
        assert clips["mean"].tolist() == [r.row["mean"] for r in rows]
    # committing the same task again changes no status (ok rows are the commit record, failures repeat)
    again = commit_task(layout, "fs-v1", "task-1", res)
    assert again == sum(r.ok for r in res)


@SOME
@given(results)
def test_a_commit_that_fails_after_its_shard_leaves_nothing_of_the_task(spec):
    layout = Layout.at(tempfile.mkdtemp())
    res = [ExtractResult(f"item-{i}", row={"mean": float(i)}, n_frames=n,
                         sequence=Sequence(np.arange(n) * 0.1, {"values": np.ones((n, 2), np.float32)}))
           for i, (_, n) in enumerate(spec)]
    res[-1].row = {"mean": object()}  # no Parquet type: the clip part fails after the shard and index are written
    with pytest.raises(Exception, match="convert|type"):
        commit_task(layout, "fs-v1", "task-1", res)
    assert committed_tasks(layout, "fs-v1") == set()
    for folder in (layout.clips("fs-v1"), layout.seq_index("fs-v1"), os.path.dirname(layout.shard("fs-v1", "t"))):
        assert not os.path.exists(folder) or not [f for f in os.listdir(folder) if not f.startswith(".")], folder


def test_a_commit_records_what_each_result_says_and_its_shard_says_whose_it_is(tmp_path):
    """What the mutation run found unchecked: run id, messages, frame counts and times in the status rows,
    the shard's attributes, the index schema, empty sequences, and parts conformed to the folder's schema."""
    import zarr

    from emofuse.catalog.schemas import SEQ_INDEX_SCHEMA
    from emofuse.catalog.tables import read_table as read

    layout = Layout.at(str(tmp_path))
    seq = Sequence(np.arange(3) * 0.1, {"values": np.ones((3, 2), np.float32)})
    empty = Sequence(np.zeros(0), {"values": np.zeros((0, 2), np.float32)})
    res = [ExtractResult("a", row={"mean": 1.0}, sequence=seq, n_frames=3, wall_s=0.25),
           ExtractResult("e", row={"mean": 0.5}, sequence=empty, n_frames=0, wall_s=0.5),
           ExtractResult.failed("b", Status.NO_AUDIO, "no audio stream")]
    commit_task(layout, "fs-v1", "task-1", res, run_id="run-7", sequence_attrs={"fps": 5.0})
    status = read_status(layout, "fs-v1").set_index("item_id")
    assert status.loc["b", "message"] == "no audio stream" and (status["run_id"] == "run-7").all()
    assert status.loc["a", "n_frames"] == 3 and status.loc["a", "wall_s"] == pytest.approx(0.25)
    index = read(layout.seq_index("fs-v1"))
    assert index["item_id"].tolist() == ["a"]  # an empty sequence has no rows to index
    assert pq_schema(layout.seq_index("fs-v1")).equals(SEQ_INDEX_SCHEMA)
    attrs = dict(zarr.open_group(layout.shard("fs-v1", "task-1"), mode="r").attrs)
    assert attrs == {"fps": 5.0, "feature_set": "fs-v1", "task_id": "task-1"}
    # a later task's rows take the folder's types (an int mean is stored as the first part's double)
    commit_task(layout, "fs-v1", "task-2", [ExtractResult("c", row={"mean": 2})])
    assert read(layout.clips("fs-v1")).set_index("item_id")["mean"].to_dict() == {"a": 1.0, "e": 0.5, "c": 2.0}
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert pq.read_schema(f"{layout.clips('fs-v1')}/part-task-2.parquet").field("mean").type == pa.float64()
    assert commit_task(layout, "fs-v1", "task-3", []) == 0 and read_status(layout, "fs-v1")["run_id"].tolist().count("") == 1


def test_a_failed_recommit_keeps_the_parts_of_the_earlier_commit_under_its_id(tmp_path):
    layout = Layout.at(str(tmp_path))
    seq = Sequence(np.arange(2) * 0.1, {"values": np.ones((2, 1), np.float32)})
    commit_task(layout, "fs-v1", "task-1", [ExtractResult("a", row={"mean": 1.0}, sequence=seq, n_frames=2)])
    before = sorted(os.listdir(layout.clips("fs-v1"))), sorted(os.listdir(layout.seq_index("fs-v1")))
    with pytest.raises(Exception, match="convert|type"):
        commit_task(layout, "fs-v1", "task-1", [ExtractResult("a", row={"mean": object()}, sequence=seq, n_frames=2)])
    assert (sorted(os.listdir(layout.clips("fs-v1"))), sorted(os.listdir(layout.seq_index("fs-v1")))) == before
    assert read_table(layout.clips("fs-v1"))["item_id"].tolist() == ["a"]


def test_sequences_of_one_task_must_have_the_same_arrays(tmp_path):
    layout = Layout.at(str(tmp_path))
    a = Sequence(np.arange(2) * 0.1, {"values": np.ones((2, 1), np.float32)})
    b = Sequence(np.arange(2) * 0.1, {"values": np.ones((2, 1), np.float32), "mask": np.ones(2, bool)})
    with pytest.raises(ValueError, match=r"item y: sequence arrays \['values', 'mask'\] != \['values'\]"):
        commit_task(layout, "fs-v1", "task-1", [ExtractResult("x", sequence=a), ExtractResult("y", sequence=b)])


def pq_schema(folder: str):
    import pyarrow.parquet as pq

    files = sorted(f for f in os.listdir(folder) if f.endswith(".parquet"))
    return pq.read_schema(os.path.join(folder, files[0])).remove_metadata()
