"""catalog.locks under real concurrency: processes racing for claims and for the catalog lock."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from emofuse.catalog import locks

CTX = mp.get_context("fork")  # children only touch files; fork keeps them cheap
RACERS = 4


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def _race_claims(paths: list[str], owner: str, barrier, queue) -> None:
    won = []
    for i, p in enumerate(paths):
        barrier.wait(timeout=120)  # if a racer dies, the others time out instead of hanging
        if locks.try_claim(p, owner):
            won.append(i)
    barrier.wait(timeout=120)  # every racer stays alive (its claims live) until all have tried the last path
    queue.put(won)


def _winners(paths: list[str], ctx=CTX, racers: int = RACERS) -> Counter:
    """How often each path was won when ``racers`` processes race for every path in turn."""
    barrier, queue = ctx.Barrier(racers), ctx.Queue()
    procs = [ctx.Process(target=_race_claims, args=(paths, f"task-{k}", barrier, queue), daemon=True)
             for k in range(racers)]
    for p in procs:
        p.start()
    won = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    return Counter(i for w in won for i in w)


def test_racing_claims_have_exactly_one_winner(tmp_path):
    paths = [str(tmp_path / "locks" / f"item-{i}.lock") for i in range(150)]
    wins = _winners(paths)
    assert [wins[i] for i in range(len(paths))] == [1] * len(paths)


def test_racing_takeovers_of_a_stale_claim_have_exactly_one_winner(tmp_path):
    pid = _dead_pid()
    paths = [str(tmp_path / "locks" / f"item-{i}.lock") for i in range(100)]
    os.makedirs(tmp_path / "locks")
    for p in paths:
        with open(p, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": pid, "owner": "task-dead", "created": 0}, f)
    wins = _winners(paths)
    assert [wins[i] for i in range(len(paths))] == [1] * len(paths)
    assert all(locks.read_claim(p).owner.startswith("task-") for p in paths)
    assert not [n for n in os.listdir(tmp_path / "locks") if ".stale-" in n or n.startswith(".tmp-")]


def _count(path: str, counter: str, n: int) -> None:
    for _ in range(n):
        with locks.held(path):
            with open(counter) as f:
                value = int(f.read())
            with open(counter, "w") as f:
                f.write(str(value + 1))


def test_held_excludes_other_processes(tmp_path):
    path, counter = str(tmp_path / "locks" / "media.lock"), str(tmp_path / "counter")
    with open(counter, "w") as f:
        f.write("0")
    procs = [CTX.Process(target=_count, args=(path, counter, 100)) for _ in range(RACERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with open(counter) as f:
        assert int(f.read()) == RACERS * 100


def _hold(path: str, ready) -> None:
    with locks.held(path):
        ready.set()
        time.sleep(60)


def test_held_waits_for_a_live_holder_and_not_for_a_dead_one(tmp_path):
    path = str(tmp_path / "locks" / "media.lock")
    ready = CTX.Event()
    holder = CTX.Process(target=_hold, args=(path, ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(TimeoutError, match="media.lock"):
            with locks.held(path, timeout_s=0.3):
                pass
    finally:
        holder.kill()
        holder.join()
    t0 = time.monotonic()
    with locks.held(path, timeout_s=5):
        pass
    assert time.monotonic() - t0 < 1.0  # the kernel dropped the dead holder's lock


def _claim_and_stay(path: str, owner: str, drop: bool, ready) -> None:
    assert locks.try_claim(path, owner)
    if drop:  # what a task does when its release failed (the store went away): it lets go all the same
        locks.drop_owner(owner)
    ready.set()
    time.sleep(60)


@pytest.mark.parametrize("dropped", [False, True])
def test_a_claim_of_a_live_process_is_stale_once_its_owner_let_go(tmp_path, dropped):
    """A Dask worker outlives its tasks: its pid alone cannot tell whether a claim is still held."""
    path = str(tmp_path / "locks" / "item.lock")
    ready = CTX.Event()
    holder = CTX.Process(target=_claim_and_stay, args=(path, f"task-{dropped}", dropped, ready))
    holder.start()
    try:
        assert ready.wait(30)
        assert locks.read_claim(path).stale() is dropped
        assert locks.try_claim(path, "next-run") is dropped
    finally:
        holder.kill()
        holder.join()
    if not dropped:  # once the worker is gone, its claim is stale too
        assert locks.try_claim(path, "after-the-worker-died")
