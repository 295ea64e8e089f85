"""Catalog upkeep: one helper for catalog URLs, no global state changed by an import, and what
``repair`` cleans besides crashed tasks' parts (orphaned attribution shards, stale take-over
markers, owner lock files of processes that are gone)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.catalog import atomic, locks
from emofuse.catalog.store import Catalog

CATALOG = Path(__file__).resolve().parent.parent / "catalog"


def test_catalog_urls_are_taken_apart_in_one_module():
    """Only catalog/urls.py strips a scheme or opens a filesystem from a URL."""
    by_hand = re.compile(r'split\("://"|"://" (not )?in |strip_protocol|from fsspec.core import url_to_fs')
    offenders = [f"{p.relative_to(CATALOG)}:{n}" for p in sorted(CATALOG.rglob("*.py")) if p.name != "urls.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if by_hand.search(line)]
    assert offenders == []


def test_importing_the_catalog_changes_no_global_state():
    """fsspec's config and the environment are the same after the import; opening a catalog on an
    object store is what turns its listing cache off (for pandas in the same process too)."""
    code = """
import copy, os, fsspec.config
conf, env = copy.deepcopy(fsspec.config.conf), dict(os.environ)
import emofuse.catalog, emofuse.catalog.store, emofuse.catalog.maintenance, emofuse.catalog.predictions
assert fsspec.config.conf == conf, fsspec.config.conf
assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())
from emofuse.catalog.store import Catalog
fs = Catalog("s3://bucket/cat").layout.fs
assert fs.dircache.use_listings_cache is False
assert fsspec.config.conf["s3"]["use_listings_cache"] is False
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _profile(weight: float) -> pd.DataFrame:
    return pd.DataFrame({"item_id": "a", "fold": "ensemble", "window": "clip", "window_start": 0.0,
                         "window_end": 2.0, "start": [0.0, 1.0], "end": [1.0, 2.0], "weight": [weight, 1 - weight],
                         "kind": "attention", "target": "happy"})


def test_repair_removes_attribution_shards_no_index_names(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    cat.write_time_attributions("r1", _profile(0.25), fold="ensemble", window="clip")
    cat.write_time_attributions("r1", _profile(0.75), fold="ensemble", window="clip")  # replaces the index part
    atomic.write_zarr_shard(cat.layout.attribution_shard("r1", "crashed-before-index"), np.zeros(2),
                            {"end": np.ones(2), "weight": np.ones(2, np.float32)})
    shards = f"{cat.layout.attributions_dir('r1')}/shards"
    before = set(os.listdir(shards))
    kept = pd.read_parquet(cat.layout.attribution_index("r1"))["shard"].iloc[0] + ".zarr"
    assert len(before) == 3 and kept in before
    assert cat.repair() == []                                     # younger than the grace period: kept
    removed = cat.repair(grace_s=0)
    assert sorted(os.path.basename(p) for p in removed) == sorted(before - {kept})
    assert os.listdir(shards) == [kept]
    assert cat.time_attributions("r1")["weight"].tolist() == [0.75, 0.25]


def _marker(claim: str, digest: str, created: float) -> str:
    path = f"{claim}.takeover-{digest}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"host": "other-host", "pid": 1, "owner": "taker", "created": created}, f)
    return path


def test_repair_removes_take_over_markers_no_taker_needs(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    held = cat.task_claim_path("held")
    assert locks.try_claim(held, "held")
    old = cat.task_claim_path("old")
    assert locks.try_claim(old, "old")
    gone = _marker(cat.task_claim_path("released"), "aaaa", time.time())     # its claim was released
    needed = _marker(held, "bbbb", time.time())                                # its claim stands: kept
    expired = _marker(old, "cccc", time.time() - locks.DEFAULT_TTL_S - 60)     # older than a claim lives
    removed = cat.repair(grace_s=0)
    assert sorted(removed) == sorted([gone, expired])
    assert os.path.exists(needed) and not os.path.exists(gone) and not os.path.exists(expired)
    locks.release(held, "held")
    locks.release(old, "old")
    locks.drop_owner("held")
    locks.drop_owner("old")


def test_repair_removes_owner_lock_files_of_dead_processes(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    folder = locks.owner_lock_dir()
    os.makedirs(folder, exist_ok=True)
    dead_file = os.path.join(folder, f"task-of-a-dead-process.{dead}.lock")
    open(dead_file, "w").close()
    cat = Catalog(tmp_path / "cat").init()
    assert locks.try_claim(cat.task_claim_path("alive"), "alive")       # this process holds its owner lock
    alive_file = os.path.join(folder, f"alive.{os.getpid()}.lock")
    assert os.path.exists(alive_file)
    cat.repair(grace_s=0)
    assert not os.path.exists(dead_file) and os.path.exists(alive_file)
    assert not locks.read_claim(cat.task_claim_path("alive")).stale()
    cat.release("x", "alive", [])
    assert not os.path.exists(alive_file)
