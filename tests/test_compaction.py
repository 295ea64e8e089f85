"""Compaction (``emofuse catalog compact``): every row kept, a crash at any step finished by the next
compaction or ``repair``, and compaction racing a real extract run with readers in a loop."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog import compaction
from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog
from emofuse.catalog.urls import fs_path
from tests.scaleout_servers import s3_server  # noqa: F401 - a fixture

KEY = "demo-v1"


def _catalog(root: str) -> Catalog:
    """A catalog whose status log has attempt history (failures, retries) and media in several parts."""
    cat = Catalog(root).init()
    for run in range(3):
        cat.add_media([{"item_id": f"i{run}-{k}", "path": f"/v/{run}-{k}.mp4", "relpath": f"{run}-{k}.mp4",
                        "emotion": "happy", "duration": 1.5} for k in range(4)])
    for t in range(6):
        results = [ExtractResult(f"i{t % 3}-{k}", row={"mean": float(t + k), "vec": np.arange(3, dtype=np.float32)},
                                 sequence=Sequence(np.arange(2) * 0.1, {"values": np.ones((2, 2), np.float32)}),
                                 n_frames=2) for k in range(2)]
        results.append(ExtractResult.failed(f"i{t % 3}-3", Status.ERROR if t < 3 else Status.NO_FACE, f"attempt {t}"))
        cat.commit_task(KEY, f"task-{t}", results, run_id=f"run-{t // 2}")
    return cat


def _plain(folder: str) -> pd.DataFrame:
    """The folder as plain pandas reads it, rows in a canonical order (no emofuse rule involved)."""
    df = pd.read_parquet(folder)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _parts(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".parquet") and not n.startswith((".", "_")))


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)


def test_compaction_keeps_every_row_and_column(tmp_path):
    cat = _catalog(str(tmp_path / "cat"))
    folders = [cat.layout.media, cat.layout.status_dir(KEY)]
    before = {f: _plain(f) for f in folders}
    log_before = cat.status(latest=False)
    assert len(_parts(cat.layout.status_dir(KEY))) == 6 and len(log_before) == 18
    done = cat.compact(min_parts=2)
    assert sorted(c.folder for c in done) == sorted(folders)
    for f in folders:
        assert len(_parts(f)) == 1  # plain parts only: one per folder
        _frames_equal(_plain(f), before[f])
    _frames_equal(cat.status(latest=False).sort_values(["task_id", "item_id"]).reset_index(drop=True),
                  log_before.sort_values(["task_id", "item_id"]).reset_index(drop=True))
    assert cat.done(KEY) == {f"i{t}-{k}" for t in range(3) for k in range(2)}
    assert len(cat.clips(KEY)) == 6  # clips are shown by their task's status rows, which are kept
    # a second compaction merges the merged part with new parts; a folder under min_parts is left alone
    cat.commit_task(KEY, "task-late", [ExtractResult("late", row={"mean": 1.0, "vec": np.zeros(3, np.float32)})])
    assert [c.parts for c in cat.compact(min_parts=2)] == [2]
    assert len(cat.status(latest=False)) == 19 and cat.compact(min_parts=2) == []


def test_compaction_on_object_storage_keeps_every_row_and_repair_finishes_a_crash(s3_server):
    """On S3 (moto on loopback) the merged part is one PUT and the old parts one bulk delete."""
    cat = _catalog(f"s3://{s3_server.bucket}/compaction-{os.getpid()}")
    folder = cat.layout.status_dir(KEY)
    before = cat.status(latest=False).sort_values(["task_id", "item_id"]).reset_index(drop=True)
    media = len(cat.media(dedupe=False))

    def crash(name: str) -> None:
        if name == "merged":
            raise Crash(name)

    with pytest.raises(Crash):
        compaction.compact_folder(folder, compaction.STATUS_SCHEMA, on_step=crash)
    fs = cat.layout.fs
    assert len(fs.ls(fs_path(folder))) == 7  # the merged part and the six it replaces
    pd.testing.assert_frame_equal(cat.status(latest=False).sort_values(["task_id", "item_id"]).reset_index(drop=True),
                                  before)
    cat.repair(grace_s=0)
    cat.compact(min_parts=2)
    assert len(fs.ls(fs_path(folder))) == 1 and len(fs.ls(fs_path(cat.layout.media))) == 1
    plain = pd.read_parquet(cat.layout.status).drop(columns="feature_set")
    assert len(plain) == len(before) and len(cat.media(dedupe=False)) == media
    pd.testing.assert_frame_equal(cat.status(latest=False).sort_values(["task_id", "item_id"]).reset_index(drop=True),
                                  before)


class Crash(Exception):
    pass


@pytest.mark.parametrize("finisher", ["compact", "repair"])
@pytest.mark.parametrize("step", compaction.STEPS)
def test_a_crash_between_steps_leaves_a_duplicate_free_folder_that_the_next_run_finishes(tmp_path, step, finisher):
    cat = _catalog(str(tmp_path / "cat"))
    folder = cat.layout.status_dir(KEY)
    before = _plain(folder)

    def crash(name: str) -> None:
        if name == step:
            raise Crash(name)

    with pytest.raises(Crash):
        compaction.compact_folder(folder, compaction.STATUS_SCHEMA, on_step=crash)
    # the catalog's readers: every row exactly once, whatever step the compaction died after
    log = cat.status(latest=False).drop(columns="feature_set")
    assert not log.duplicated(["item_id", "task_id"]).any()
    _frames_equal(_plain_frame(log), before)
    if finisher == "compact":
        cat.compact(min_parts=2)
    else:
        cat.repair(grace_s=0)
    _frames_equal(_plain(folder), before)  # plain pandas: every row once again
    names = _parts(folder)
    assert len(names) == (6 if (step == "listed" and finisher == "repair") else 1)


def test_a_listing_that_a_second_compaction_overtakes_is_listed_again_and_loses_no_row(tmp_path):
    """The race the extract-run test below once caught on a loaded machine: a reader lists the folder
    (compacted part K1 and a newer part C); a second compaction then writes K2, which replaces both, and
    has deleted K1 but not yet C when the reader opens K1's metadata. Dropping just K1 would read C alone."""
    from fsspec.implementations.local import LocalFileSystem

    cat = _catalog(str(tmp_path / "cat"))
    folder = cat.layout.status_dir(KEY)
    compaction.compact_folder(folder, compaction.STATUS_SCHEMA)  # K1
    cat.commit_task(KEY, "task-late", [ExtractResult.failed("i0-3", Status.ERROR, "late attempt")], run_id="run-9")
    before = _plain(folder)
    (k1,) = [n for n in _parts(folder) if n.startswith(compaction.COMPACTED_PREFIX)]

    def second_compaction_midway(name: str) -> None:
        if name == "merged":
            raise Crash(name)

    class OvertakenListing(LocalFileSystem):
        overtaken = False

        def find(self, path, **kwargs):
            listed = super().find(path, **kwargs)
            if not self.overtaken:
                self.overtaken = True
                with pytest.raises(Crash):  # K2 written, nothing deleted yet ...
                    compaction.compact_folder(folder, compaction.STATUS_SCHEMA, on_step=second_compaction_midway)
                os.remove(os.path.join(folder, k1))  # ... then its delete reaches K1 before C
            return listed

    parts = compaction.visible_parts(OvertakenListing(skip_instance_cache=True), fs_path(folder))
    assert len(parts) == 1 and os.path.basename(parts[0]) not in (k1, "part-task-late.parquet")
    _frames_equal(_plain_frame(pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)), before)


def _plain_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns)).reset_index(drop=True)


# --------------------------------------------------------------------------- racing a real extract run
def _keys(df: pd.DataFrame) -> pd.Series:
    if not len(df):  # plain pandas gives a folder without parts yet no partition column
        return pd.Series([], dtype=str)
    return df["feature_set"].astype(str) + "|" + df["item_id"] + "|" + df["task_id"]


def _read_plain(folder: str) -> pd.DataFrame | None:
    """pd.read_parquet of the folder; None when a part it listed was deleted before it was read."""
    try:
        return pd.read_parquet(folder)
    except (FileNotFoundError, OSError):
        return None


@pytest.mark.slow
def test_compaction_racing_an_extract_run_loses_and_duplicates_nothing(demo_corpus, prefect_server, tmp_path):
    catalog = str(tmp_path / "cat")
    cat = Catalog(catalog).init()
    env = {**os.environ, **prefect_server["env"]}
    run = subprocess.Popen([sys.executable, "-m", "emofuse.flows.cli", "extract", demo_corpus, "--catalog", catalog,
                            "--feature-sets", "egemaps", "--batch-size", "1", "--workers", "1"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()
    seen: dict[str, set[str]] = {"catalog": set(), "plain": set()}
    problems: list[str] = []
    stats = {"reads": 0, "plain_reads": 0, "plain_dup_reads": 0, "compactions": 0}

    def guarded(loop):
        def run_loop() -> None:
            try:
                loop()
            except BaseException as e:  # a reader or compactor that dies fails the test
                problems.append(f"{loop.__name__} raised {e!r}")
        return run_loop

    @guarded
    def reader() -> None:
        while not stop.is_set():
            log = cat.status(latest=False)  # the catalog's reader: exact at every instant
            keys = _keys(log)
            if keys.duplicated().any():
                problems.append(f"catalog reader saw duplicated rows: {sorted(keys[keys.duplicated()])[:3]}")
            if not seen["catalog"] <= set(keys):
                problems.append(f"catalog reader lost committed rows: {sorted(seen['catalog'] - set(keys))[:3]}")
            seen["catalog"] |= set(keys)
            stats["reads"] += 1
            plain = _read_plain(cat.layout.status)
            if plain is not None:
                pkeys = _keys(plain)
                stats["plain_reads"] += 1
                stats["plain_dup_reads"] += int(pkeys.duplicated().any())  # the documented window
                if not seen["plain"] <= set(pkeys):
                    problems.append(f"plain reader lost committed rows: {sorted(seen['plain'] - set(pkeys))[:3]}")
                seen["plain"] |= set(pkeys)

    @guarded
    def compactor() -> None:
        while not stop.is_set():
            stats["compactions"] += len(cat.compact(min_parts=2))
            time.sleep(0.05)

    threads = [threading.Thread(target=reader), threading.Thread(target=compactor)]
    for t in threads:
        t.start()
    try:
        out, _ = run.communicate(timeout=900)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert run.returncode == 0, out[-3000:]
    assert not problems, problems[:5]
    cat.compact(min_parts=2)
    media = cat.media(dedupe=False)
    log = cat.status(latest=False)
    assert stats["compactions"] > 0 and stats["reads"] > 0, stats
    # every item of the corpus: registered once, one status row (a fresh run attempts each item once)
    assert len(media) == media["item_id"].nunique() > 0
    assert sorted(log["item_id"]) == sorted(media["item_id"])
    assert set(_keys(log)) == seen["catalog"] | seen["plain"]  # nothing a reader saw committed is gone
    plain = pd.read_parquet(cat.layout.status)  # after compaction: plain parts, every row once
    assert sorted(_keys(plain)) == sorted(_keys(log))
    assert len(_parts(cat.layout.status_dir(log["feature_set"].iloc[0]))) == 1
    clips = cat.clips(log["feature_set"].iloc[0])
    assert sorted(clips["item_id"]) == sorted(log.loc[log["status"] == "ok", "item_id"])
    print(f"race: {stats}")
