"""catalog.status: what a status row holds, which row is current, and how parts are named.

Written for the survivors of a mutation run of ``catalog/status.py`` (docs/mutation.md): the
model-based property test checks the (status, message) the table ends with; these check the
rest of each row, the reads across feature sets, and the names of the parts.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os

import pandas as pd

from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import FINAL_FAILURES, STATUS_SCHEMA, Status
from emofuse.catalog.status import (StatusEntry, committed_tasks, read_status, record_status, score_status_key,
                                    settled)


def _parts(layout: Layout, feature_set: str) -> list[str]:
    return sorted(os.listdir(layout.status_dir(feature_set)))


def test_an_entry_holds_plain_strings_and_zero_defaults():
    e = StatusEntry("a", Status.NO_FACE, None)  # an enum member and a missing message
    assert (e.status, e.message, e.n_frames, e.wall_s) == ("no_face", "", 0, 0.0)
    assert type(e.status) is str
    assert StatusEntry("b", "ok").message == ""
    assert score_status_key("run-1") == "score-run-1"


def test_a_row_holds_every_field_of_its_entry_and_one_time(tmp_path):
    layout = Layout.at(str(tmp_path))
    before = dt.datetime.now(dt.timezone.utc)
    n = record_status(layout, "fs-v1", [StatusEntry("a", "ok", "fine", n_frames=7, wall_s=1.5),
                                        StatusEntry("b", Status.ERROR, "worker lost")],
                      task_id="task-1", run_id="run-9")
    assert n == 2
    assert _parts(layout, "fs-v1") == ["part-task-1.parquet"]
    df = read_status(layout, "fs-v1", latest=False)
    assert list(df.columns[:2]) == ["item_id", "feature_set"]
    rows = df.sort_values("item_id").to_dict("records")
    assert [(r["item_id"], r["feature_set"], r["status"], r["message"], r["task_id"], r["run_id"], r["n_frames"],
             r["wall_s"]) for r in rows] == [("a", "fs-v1", "ok", "fine", "task-1", "run-9", 7, 1.5),
                                             ("b", "fs-v1", "error", "worker lost", "task-1", "run-9", 0, 0.0)]
    times = {r["attempted_at"] for r in rows}
    assert len(times) == 1 and before <= times.pop() <= dt.datetime.now(dt.timezone.utc)
    # defaults: no run id
    record_status(layout, "fs-v2", [StatusEntry("a", "ok")])
    assert read_status(layout, "fs-v2")["run_id"].tolist() == [""]


def test_the_current_row_is_the_newest_per_item_and_feature_set(tmp_path):
    layout = Layout.at(str(tmp_path))
    assert sorted(read_status(layout).columns) == sorted([*STATUS_SCHEMA.names, "feature_set"])  # empty, typed
    # the older part sorts last by name: the newest row must win by its time, not by file order
    record_status(layout, "fs-v1", [StatusEntry("a", "error", "old"), StatusEntry("b", "ok")], task_id="z-older")
    record_status(layout, "fs-v1", [StatusEntry("a", "no_face", "new")], task_id="a-newer")
    record_status(layout, "fs-v2", [StatusEntry("a", "ok")], task_id="t")
    one = read_status(layout, "fs-v1")
    assert one.sort_values("item_id")[["item_id", "status", "message"]].values.tolist() == [
        ["a", "no_face", "new"], ["b", "ok", ""]]
    assert list(one.index) == list(range(len(one)))
    assert list(one.columns) == ["item_id", "feature_set", *STATUS_SCHEMA.names[1:]]  # no old index kept as a column
    assert len(read_status(layout, "fs-v1", latest=False)) == 3
    every = read_status(layout)
    assert sorted(map(tuple, every[["feature_set", "item_id", "status"]].values.tolist())) == [
        ("fs-v1", "a", "no_face"), ("fs-v1", "b", "ok"), ("fs-v2", "a", "ok")]
    assert list(every.index) == list(range(3))
    assert sorted(every.columns) == sorted(["feature_set", *STATUS_SCHEMA.names])
    assert len(read_status(layout, latest=False)) == 4
    # a change is judged within its own feature set: fs-v1's row for "b" says nothing about fs-v3
    assert record_status(layout, "fs-v3", [StatusEntry("b", "ok")]) == 1
    assert committed_tasks(layout, "fs-v1") == {"z-older", "a-newer"}
    assert committed_tasks(layout, "fs-v2") == {"t"}
    assert read_status(layout, "fs-v4").empty and committed_tasks(layout, "fs-v4") == set()


def test_keep_ok_writes_repeated_ok_rows_only(tmp_path):
    layout = Layout.at(str(tmp_path))
    record_status(layout, "fs", [StatusEntry("a", "ok"), StatusEntry("b", "no_audio", "none")], task_id="t1")
    again = [StatusEntry("a", "ok"), StatusEntry("b", "no_audio", "none")]
    assert record_status(layout, "fs", again) == 0
    assert record_status(layout, "fs", again, task_id="t2", keep_ok=True) == 1
    assert read_status(layout, "fs", latest=False).query("task_id == 't2'")["item_id"].tolist() == ["a"]
    # a changed ok row is written without keep_ok; a changed message is a change
    assert record_status(layout, "fs", [StatusEntry("c", "ok"), StatusEntry("b", "no_audio", "other")]) == 2


def test_an_unnamed_change_is_named_by_a_hash_of_its_sorted_rows(tmp_path):
    layout = Layout.at(str(tmp_path))
    rows = [StatusEntry("b", "no_face", "x"), StatusEntry("a", "ok")]
    assert record_status(layout, "fs", rows) == 2
    text = "a\tok\t\nb\tno_face\tx"
    name = hashlib.sha256(text.encode()).hexdigest()[:20]
    assert _parts(layout, "fs") == [f"part-{name}.parquet"]
    assert committed_tasks(layout, "fs") == {name}
    # the same change in another order, in another catalog: the same name
    other = Layout.at(str(tmp_path / "other"))
    record_status(other, "fs", rows[::-1])
    assert _parts(other, "fs") == [f"part-{name}.parquet"]


def test_settled_items_are_ok_and_final_failures_unless_retried():
    current = pd.DataFrame({"item_id": ["o", "f", "e", "d"],
                            "status": ["ok", sorted(FINAL_FAILURES)[0], "error", "decode_error"]})
    assert settled(current) == {"o", "f", "d"}
    assert settled(current, retry_failed=False) == {"o", "f", "d"}
    assert settled(current, retry_failed=True) == {"o"}
