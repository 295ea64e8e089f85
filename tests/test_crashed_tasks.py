"""A run's repair finds crashed tasks by the task claims they leave, without listing feature folders.

On object storage a listing of every task's clips, index and shard folders grows with the tasks
(375 requests at a million items); a stale task claim names the parts instead. These tests pin
what that relies on: a task that fails before or during its commit keeps its claim, and the
claims-only repair removes exactly the parts of dead uncommitted tasks.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from emofuse.catalog import atomic, locks
from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from scaleout_servers import BUCKET, s3_server  # noqa: F401

KEY = "demo-v1-abc-none"


def _result(item: str) -> ExtractResult:
    seq = Sequence(np.arange(3) * 0.01, {"values": np.ones((3, 2), np.float32)})
    return ExtractResult(item, row={"mean": 1.0}, sequence=seq, n_frames=3)


def _write_parts(cat: Catalog, task: str, item: str) -> list[str]:
    """What a task writes before its status commit: shard, index part, clip part."""
    cat._write_shard(KEY, task, [_result(item)], {})
    atomic.write_parquet(pa.table({"item_id": [item], "mean": [1.0]}), cat.layout.clips(KEY), task)
    return [f"{cat.layout.clips(KEY)}/part-{task}.parquet", f"{cat.layout.seq_index(KEY)}/part-{task}.parquet",
            cat.layout.shard(KEY, task)]


def _listed(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    listdir = Catalog.listdir
    monkeypatch.setattr(Catalog, "listdir", lambda self, path: seen.append(path) or listdir(self, path))
    return seen


def test_a_dead_tasks_parts_go_by_its_stale_claim_and_no_feature_folder_is_listed(tmp_path, monkeypatch):
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "good", [_result("a")])
    assert cat.claim(KEY, "dead", ["b"]) == ["b"]
    parts = _write_parts(cat, "dead", "b")
    locks.drop_owner("dead")  # its process let go without committing: the claim is stale
    listed = _listed(cat, monkeypatch)
    removed = cat.repair(grace_s=0, sweep=False)
    assert sorted(removed) == sorted(parts)
    assert not any(os.path.exists(p) for p in parts)
    assert not os.path.exists(cat.task_claim_path("dead"))
    assert not any(p.startswith(f"{cat.layout.features}/") for p in listed), listed  # (features/ itself: its keys)
    assert sorted(pd.read_parquet(cat.layout.clips(KEY))["item_id"]) == ["a"]
    assert set(cat.load_sequences(KEY)) == {"a"}


def test_on_object_storage_too(s3_server):  # noqa: F811
    """The same on a moto S3-API server: the claim is a conditional PUT, the parts are objects."""
    cat = Catalog(f"s3://{BUCKET}/crashed-tasks").init()
    cat.commit_task(KEY, "good", [_result("a")])
    assert cat.claim(KEY, "dead", ["b"]) == ["b"]
    parts = _write_parts(cat, "dead", "b")
    locks.drop_owner("dead")
    assert all(cat.exists(p) for p in parts)
    assert sorted(cat.repair(grace_s=0, sweep=False)) == sorted(parts)
    assert not any(cat.exists(p) for p in parts) and locks.read_claim(cat.task_claim_path("dead")) is None
    assert sorted(pd.read_parquet(cat.layout.clips(KEY))["item_id"]) == ["a"]


def test_a_live_task_keeps_its_claim_and_parts(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    assert cat.claim(KEY, "live", ["x"]) == ["x"]
    parts = _write_parts(cat, "live", "x")
    assert cat.repair(grace_s=0, sweep=False) == []
    assert all(os.path.exists(p) for p in parts) and os.path.exists(cat.task_claim_path("live"))
    cat.release(KEY, "live", ["x"])


def test_a_task_that_committed_but_died_before_letting_go_loses_only_its_claim(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    assert cat.claim(KEY, "late", ["x"]) == ["x"]
    cat.commit_task(KEY, "late", [_result("x")])
    locks.drop_owner("late")
    assert cat.repair(grace_s=0, sweep=False) == []
    assert not os.path.exists(cat.task_claim_path("late"))
    assert set(cat.load_sequences(KEY)) == {"x"} and sorted(cat.clips(KEY)["item_id"]) == ["x"]


def test_a_task_whose_commit_fails_keeps_its_claim_for_the_next_repair(tmp_path, monkeypatch):
    """The status write fails and so does taking back the parts (the store went away): the task's
    claim stays, stale, its items are free, and the next run's repair removes the parts by name."""
    from emofuse.catalog import commit
    from emofuse.pipeline.batch import run_batch
    from emofuse.pipeline.dummies import tone, write_audio
    from emofuse.pipeline.registry import MediaRef, get_extractor

    wav = str(write_audio(str(tmp_path / "a.wav"), tone(0.5), sr=16_000))
    cat = Catalog(tmp_path / "cat").init()
    key = get_extractor("logmel").key

    def status_write_fails(*args, **kwargs):
        raise OSError("the store went away")

    monkeypatch.setattr(commit, "record_status", status_write_fails)
    monkeypatch.setattr(commit, "discard_uncommitted", lambda *args, **kwargs: None)
    with pytest.raises(OSError, match="went away"):
        run_batch(cat.root, "logmel", None, [MediaRef("a", wav, 0.5)], task_id="failed-commit")
    monkeypatch.undo()
    claim = locks.read_claim(cat.task_claim_path("failed-commit"))
    assert claim is not None and claim.stale()
    assert cat.claim(key, "next", ["a"]) == ["a"]  # the item is free at once
    cat.release(key, "next", ["a"], finished=False)  # (this one wrote nothing: its claim is harmless)
    left = [cat.layout.shard(key, "failed-commit"), f"{cat.layout.seq_index(key)}/part-failed-commit.parquet"]
    assert [os.path.exists(p) for p in left] == [True, True]  # (log-mel has sequences, no per-clip row)
    removed = cat.repair(sweep=False)
    assert sorted(removed) == sorted(left)
    assert not os.path.exists(cat.task_claim_path("failed-commit")) and not os.path.exists(cat.task_claim_path("next"))


def test_a_task_that_commits_leaves_no_task_claim(tmp_path):
    from emofuse.pipeline.batch import run_batch
    from emofuse.pipeline.dummies import tone, write_audio
    from emofuse.pipeline.registry import MediaRef

    wav = str(write_audio(str(tmp_path / "a.wav"), tone(0.5), sr=16_000))
    cat = Catalog(tmp_path / "cat").init()
    summary = run_batch(cat.root, "logmel", None, [MediaRef("a", wav, 0.5)], task_id="fine")
    assert summary.counts == {"ok": 1}
    assert not os.path.exists(cat.task_claim_path("fine"))


def test_a_sweeping_repair_returns_and_logs_everything_it_removed(tmp_path, caplog):
    """Claims' folder with a live claim and hidden files sorted first; a dead task's parts; a claimless
    orphan; old temporary files in a feature folder and in media; a compaction killed after its merge."""
    import logging
    import time

    from emofuse.catalog import compaction
    from emofuse.catalog.schemas import STATUS_SCHEMA

    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "t1", [_result("a")])
    cat.commit_task(KEY, "t2", [_result("b")])
    status = cat.layout.status_dir(KEY)
    replaced = sorted(f"{status}/{n}" for n in os.listdir(status))

    def killed_after_merge(step: str) -> None:
        if step == "merged":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        compaction.compact_folder(status, STATUS_SCHEMA, on_step=killed_after_merge)
    assert cat.claim(KEY, "alive", ["x"]) == ["x"]  # sorts before "dead": its claim must not end the walk
    claims = os.path.dirname(cat.task_claim_path("alive"))
    with open(os.path.join(claims, ".tmp-0000-half.json"), "w") as f:  # a claim being written: skipped
        f.write("{")
    assert cat.claim(KEY, "dead", ["y"]) == ["y"]
    dead = _write_parts(cat, "dead", "y")
    locks.drop_owner("dead")
    claimless = _write_parts(cat, "no-claim", "z")
    old = time.time() - 7200
    tmps = [f"{cat.layout.clips(KEY)}/.tmp-killed.parquet", f"{cat.layout.media}/.tmp-killed.parquet"]
    for path in tmps:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
        os.utime(path, (old, old))
    with caplog.at_level(logging.WARNING, logger="emofuse.catalog.maintenance"):
        removed = cat.repair()  # the default grace (an hour): the two-hour-old temporary files go
    assert sorted(removed) == sorted(replaced + dead + claimless + tmps)
    assert f"repair removed {len(removed)} leftovers of crashed tasks" in caplog.text
    assert locks.read_claim(cat.task_claim_path("alive")) is not None
    assert not os.path.exists(cat.task_claim_path("dead"))  # (the sweep alone would leave it)
    assert os.path.exists(os.path.join(claims, ".tmp-0000-half.json"))
    assert sorted(cat.status(KEY)["item_id"]) == ["a", "b"]
    cat.release(KEY, "alive", ["x"])
