"""Claims and locks on object storage, against a real S3-API server on loopback.

The same races as tests/test_locks.py (processes racing for claims, for take-overs of
a stale claim, for a critical section), with the claims on ``s3://``: the store's
conditional writes must give exactly one winner each time.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import socket
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from tests.scaleout_servers import s3_server  # noqa: F401 - a fixture
from tests.test_locks import _winners as race_winners

CTX = mp.get_context("spawn")  # s3fs runs an event loop in a thread: never fork it
RACERS = 3


@pytest.fixture(scope="module")
def s3_root(s3_server):
    return f"s3://{s3_server.bucket}"


def _winners(paths: list[str]) -> Counter:
    return race_winners(paths, CTX, RACERS)


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def test_racing_claims_on_s3_have_exactly_one_winner(s3_root):
    from emofuse.catalog import locks

    paths = [f"{s3_root}/{uuid.uuid4().hex}/item-{i}.lock" for i in range(40)]
    wins = _winners(paths)
    assert [wins[i] for i in range(len(paths))] == [1] * len(paths)
    assert all(locks.read_claim(p).owner.startswith("task-") for p in paths)


def test_racing_takeovers_of_a_stale_claim_on_s3_have_exactly_one_winner(s3_root):
    import fsspec

    from emofuse.catalog import locks

    fs = fsspec.filesystem("s3")
    base = f"{s3_root}/{uuid.uuid4().hex}"
    paths = [f"{base}/item-{i}.lock" for i in range(30)]
    stale = json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "owner": "task-dead", "created": 0})
    for p in paths:
        fs.pipe_file(p, stale.encode())
    wins = _winners(paths)
    assert [wins[i] for i in range(len(paths))] == [1] * len(paths)
    assert all(locks.read_claim(p).owner.startswith("task-") for p in paths)
    # a live claim from another host is not stale before its ttl, so it is never taken over
    live = f"{base}/live.lock"
    fs.pipe_file(live, json.dumps({"host": "elsewhere", "pid": 1, "owner": "remote-task",
                                   "created": __import__("time").time()}).encode())
    assert not locks.try_claim(live, "me")
    assert locks.read_claim(live).owner == "remote-task"


def _count(path: str, counter: str, n: int) -> None:
    import fsspec

    from emofuse.catalog import locks

    fs = fsspec.filesystem("s3")
    for _ in range(n):
        with locks.held(path):
            value = int(fs.cat_file(counter))
            fs.pipe_file(counter, str(value + 1).encode())


def test_held_on_s3_excludes_other_processes(s3_root):
    import fsspec

    base = f"{s3_root}/{uuid.uuid4().hex}"
    path, counter = f"{base}/locks/media.lock", f"{base}/counter"
    fsspec.filesystem("s3").pipe_file(counter, b"0")
    procs = [CTX.Process(target=_count, args=(path, counter, 15)) for _ in range(RACERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert int(fsspec.filesystem("s3").cat_file(counter)) == RACERS * 15


def test_two_runs_claim_disjoint_items_of_an_s3_catalog(s3_root):
    from emofuse.catalog.store import Catalog

    cat = Catalog(f"{s3_root}/{uuid.uuid4().hex}/cat").init()
    items = [f"item-{i}" for i in range(10)]
    first = cat.claim("demo-v1", "task-a", items)
    second = cat.claim("demo-v1", "task-b", items)
    assert first == items and second == []
    assert cat.task_alive("task-a")
    cat.release("demo-v1", "task-a", first)
    assert not cat.task_alive("task-a")
    assert cat.claim("demo-v1", "task-b", items) == items
