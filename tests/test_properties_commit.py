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
