"""catalog.locks, one process: claim contents, staleness, take-overs, owner locks and their clean-up.

Written for the survivors of a mutation run of ``catalog/locks.py`` (docs/mutation.md);
tests/test_locks.py races real processes. The object-storage branches run on fsspec's
in-memory filesystem (exclusive create included), since the S3 server of
tests/test_locks_s3.py cannot run inside the mutation runner.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import filelock
import fsspec
import pytest

from emofuse.catalog import locks


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def _write(path: str, host: str, pid: int, owner: str, created: float) -> bytes:
    raw = json.dumps({"host": host, "pid": pid, "owner": owner, "created": created}).encode()
    with fsspec.open(path, "wb") as f:
        f.write(raw)
    return raw


@pytest.fixture
def mem():
    """A fresh folder on fsspec's in-memory filesystem."""
    root = f"memory://locks-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root[len("memory://"):]):
        fs.rm(root[len("memory://"):], recursive=True)


@pytest.fixture
def owner_dir(tmp_path, monkeypatch):
    """Owner lock files in a folder of this test's own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    return locks.owner_lock_dir()


def test_a_claim_holds_host_pid_owner_and_time(tmp_path):
    path = str(tmp_path / "locks" / "a.json")
    t0 = time.time()
    assert locks.try_claim(path, "owner-1")
    c = locks.read_claim(path)
    assert (c.host, c.pid, c.owner) == (socket.gethostname(), os.getpid(), "owner-1")
    assert t0 <= c.created <= time.time()
    assert not c.stale()
    assert locks.try_claim(path, "owner-1")  # the owner asks again: it holds it
    assert not locks.try_claim(path, "owner-2")
    locks.release(path, "owner-2")  # not its claim: it stays
    assert locks.read_claim(path).owner == "owner-1"
    locks.release(path, "owner-1")
    assert locks.read_claim(path) is None
    locks.release(path, "owner-1")  # nothing there: nothing to do
    locks.remove(path)
    locks.drop_owner("owner-1")


def test_claims_of_other_hosts_age_out_after_their_ttl():
    now = time.time()
    other = "not-" + socket.gethostname()
    assert not locks.Claim(other, 1, "o", now - 10).stale(ttl_s=60)
    assert locks.Claim(other, 1, "o", now - 100).stale(ttl_s=60)
    assert not locks.Claim(other, 1, "o", now - locks.DEFAULT_TTL_S + 60).stale()
    assert locks.Claim(other, 1, "o", now - locks.DEFAULT_TTL_S - 60).stale()
    assert locks.DEFAULT_TTL_S == 6 * 3600.0  # the lifetime the docs promise
    # this host: the process decides, not the age
    assert locks.Claim(socket.gethostname(), _dead_pid(), "o", now).stale()
    assert not locks.Claim(other, _dead_pid(), "o", now).stale()


def test_a_damaged_claim_reads_as_stale_and_is_taken_over(tmp_path):
    path = str(tmp_path / "locks" / "a.json")
    os.makedirs(tmp_path / "locks")
    with open(path, "w") as f:
        f.write('{"host": "h", "pid": 1')  # cut short
    assert locks.read_claim(path) == locks.Claim("?", -1, "?", 0.0)
    assert locks.read_claim(path).stale()
    for broken in (b"\xff\xfe\x00 torn", b'{"host": "h"}', b'{"host": "h", "pid": "x", "owner": "o", "created": 1}', b'[1, 2]'):
        with open(path, "wb") as f:
            f.write(broken)
        assert locks.read_claim(path).owner == "?"
    assert locks.try_claim(path, "new")
    assert locks.read_claim(path).owner == "new"
    assert sorted(os.listdir(tmp_path / "locks")) == [locks.TAKEOVER_LOCK, "a.json"]
    locks.drop_owner("new")


def test_a_local_stale_claim_is_replaced_and_its_leftovers_go(tmp_path):
    path = str(tmp_path / "locks" / "a.json")
    os.makedirs(tmp_path / "locks")
    _write(path, socket.gethostname(), _dead_pid(), "dead", time.time())
    leftover = f"{path}.stale-1-2"  # from a taker that died before cleaning up
    open(leftover, "w").close()
    assert locks.try_claim(path, "taker")
    assert locks.read_claim(path).owner == "taker"
    assert not [n for n in os.listdir(tmp_path / "locks") if ".stale-" in n]
    locks.drop_owner("taker")


def test_a_remote_claim_is_created_once_and_a_stale_one_taken_over_by_one_marker(mem):
    path = f"{mem}/tasks/t.json"
    assert locks.try_claim(path, "first")
    assert locks.read_claim(path).owner == "first"
    assert not locks.try_claim(path, "second")  # live, and on this host
    locks.release(path, "first")
    assert locks.read_claim(path) is None
    locks.drop_owner("first")

    raw = _write(path, "elsewhere", 1, "gone", time.time() - 100)
    assert not locks.try_claim(path, "young", ttl_s=1000)  # another host's claim within its ttl
    assert locks.try_claim(path, "taker", ttl_s=50)
    assert locks.read_claim(path).owner == "taker"
    marker = f"{path}.takeover-{hashlib.sha256(raw).hexdigest()[:16]}"
    assert locks.read_claim(marker).owner == "taker"
    fs = fsspec.filesystem("memory")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(mem[len("memory://"):])) == sorted(
        ["t.json", marker.rsplit("/", 1)[1]])
    # a second taker that saw the same stale claim loses to the marker
    with fsspec.open(path, "wb") as f:
        f.write(raw)
    assert not locks.try_claim(path, "late", ttl_s=50)
    assert locks.read_claim(path).owner == "gone"
    locks.remove(marker)
    assert locks.read_claim(marker) is None
    locks.remove(marker)  # gone already
    for o in ("young", "taker", "late"):
        locks.drop_owner(o)


def test_held_on_object_storage_claims_and_lets_go(mem):
    path = f"{mem}/media.lock"
    with locks.held(path):
        c = locks.read_claim(path)
        assert c.owner.startswith("held-") and c.host == socket.gethostname()
        assert (c.owner, os.getpid()) in locks._OWNED
    assert locks.read_claim(path) is None
    assert not [k for k in locks._OWNED if k[0] == c.owner]

    _write(path, "elsewhere", 1, "busy", time.time())  # another host's live lease
    with pytest.raises(TimeoutError, match=rf"^{re.escape(path)} stayed locked for 0 s by Claim\(.*'busy'.*\); is another"):
        with locks.held(path, timeout_s=0.3):
            pass
    assert locks.read_claim(path).owner == "busy"
    _write(path, "elsewhere", 1, "busy", time.time() - locks.LEASE_TTL_S - 60)  # its lease ran out
    with locks.held(path, timeout_s=5):
        assert locks.read_claim(path).owner.startswith("held-")
    assert locks.read_claim(path) is None


def test_held_on_object_storage_waits_for_a_lease_that_is_let_go(mem):
    import threading

    path = f"{mem}/media.lock"
    _write(path, "elsewhere", 1, "busy", time.time())
    threading.Timer(0.3, lambda: locks.remove(path)).start()
    with locks.held(path, timeout_s=30):
        assert locks.read_claim(path).owner.startswith("held-")


def test_a_held_local_lock_times_out_naming_its_file(tmp_path):
    path = str(tmp_path / "new" / "dir" / "media.lock")
    other = filelock.FileLock(path + "-other")
    with locks.held(path):
        assert os.path.exists(path)
        blocker = filelock.FileLock(path, timeout=0)
        with pytest.raises(filelock.Timeout):
            blocker.acquire()
    with filelock.FileLock(path, timeout=0):  # let go after the block
        with pytest.raises(TimeoutError, match=rf"^{re.escape(path)} stayed locked for 0 s by a live process; is another"):
            with locks.held(path, timeout_s=0.2):
                pass
    del other


def test_owner_locks_are_per_owner_and_process_with_safe_names(owner_dir):
    assert owner_dir == os.path.join(tempfile.gettempdir(), "emofuse-owners")
    assert locks._owner_lock_path("a/b c.d-e_f:9", 42) == os.path.join(owner_dir, "a_b_c.d-e_f_9.42.lock")
    path = locks._owner_lock_path("o1", os.getpid())
    locks._hold_owner("o1")
    assert os.path.exists(path)
    assert locks._owner_active("o1", os.getpid())
    locks._hold_owner("o1")  # held already: nothing changes
    locks.drop_owner("o1")
    assert not os.path.exists(path) and ("o1", os.getpid()) not in locks._OWNED
    assert not locks._owner_active("o1", os.getpid())
    locks.drop_owner("o1")  # dropped already
    # a lock file nobody holds is not an active owner; one another holder keeps locked is
    open(path, "w").close()
    assert not locks._owner_active("o1", os.getpid())
    with filelock.FileLock(path, timeout=0):
        assert locks._owner_active("o1", os.getpid())


def test_dead_owners_lock_files_are_removed_and_no_other(owner_dir):
    assert locks.remove_dead_owner_locks() == []  # no folder yet
    dead = _dead_pid()
    os.makedirs(owner_dir)
    names = {"gone": f"t.{dead}.lock", "dotted": f"held-x.v2.{dead}.lock", "mine": f"t.{os.getpid()}.lock", "alive": "t.1.lock",
             "locked": f"a.{dead}.lock", "other": f"t.{dead}zzzzz", "junk": "junk.lock", "nopid": "x"}
    for n in names.values():
        open(os.path.join(owner_dir, n), "w").close()
    # someone is about to use it (sorted before "gone": a skipped file does not end the clean-up)
    with filelock.FileLock(os.path.join(owner_dir, names["locked"]), timeout=0):
        removed = locks.remove_dead_owner_locks()
    assert sorted(removed) == sorted(os.path.join(owner_dir, names[k]) for k in ("gone", "dotted"))
    assert sorted(os.listdir(owner_dir)) == sorted(n for k, n in names.items() if k not in ("gone", "dotted"))


@pytest.mark.parametrize("parent", ["cat", "cat.takeover-1"])  # a catalog folder whose name looks like a marker's
def test_takeover_markers_are_stale_once_their_claim_is_gone_or_old(tmp_path, parent):
    folder = str(tmp_path / parent / "locks")
    assert locks.stale_takeover_markers(folder) == []  # no folder
    os.makedirs(os.path.join(folder, "tasks"))
    claim = os.path.join(folder, "tasks", "a.json")
    _write(claim, "h", 1, "o", time.time())
    young = _write(f"{claim}.takeover-0000", "h", 1, "t", time.time())
    _write(f"{claim}.takeover-1111", "h", 1, "t", time.time() - 100)
    _write(os.path.join(folder, "tasks", "b.json.takeover-2222"), "h", 1, "t", time.time())  # claim gone
    _write(os.path.join(folder, "tasks", "c.json"), "h", 1, "o", 0.0)  # a claim, not a marker
    os.symlink(str(tmp_path / "nowhere"), os.path.join(folder, "tasks", "0.json.takeover-9"))  # gone while listed
    assert young
    assert sorted(locks.stale_takeover_markers(folder, ttl_s=50)) == sorted(
        [f"{claim}.takeover-1111", os.path.join(folder, "tasks", "b.json.takeover-2222")])
    assert locks.stale_takeover_markers(folder) == [os.path.join(folder, "tasks", "b.json.takeover-2222")]


def test_a_claim_that_vanishes_whenever_it_is_read_is_not_held(tmp_path):
    """Creating fails (the name exists) and reading finds nothing, every time: after its retries
    ``try_claim`` must not say it holds the claim. A dangling link stands for the race."""
    path = str(tmp_path / "locks" / "a.json")
    os.makedirs(tmp_path / "locks")
    os.symlink(str(tmp_path / "nowhere"), path)
    assert not locks.try_claim(path, "me")
    assert locks.read_claim(path) is None
    locks.drop_owner("me")


def test_a_claim_seen_stale_just_as_it_was_released_and_claimed_afresh_is_not_taken(mem, monkeypatch):
    """The interleaving behind two holders of one object-storage lock: B reads A's claim, A
    releases it and lets go of its owner lock, C claims the path anew; B then finds A's claim
    stale and must not replace C's (it did, with an unconditional overwrite)."""
    path = f"{mem}/locks/media.lock"
    assert locks.try_claim(path, "a")
    a_raw = locks._read_raw(path)
    locks.release(path, "a")
    locks.drop_owner("a")
    assert locks.try_claim(path, "c")
    c_raw = locks._read_raw(path)

    real = locks._read_raw
    reads = []

    def b_reads_a_first(p: str) -> bytes | None:  # B's first look happened before A let go
        reads.append(p)
        return a_raw if len(reads) == 1 else real(p)

    monkeypatch.setattr(locks, "_read_raw", b_reads_a_first)
    assert not locks.try_claim(path, "b")
    monkeypatch.setattr(locks, "_read_raw", real)
    assert locks._read_raw(path) == c_raw
    assert locks.read_claim(path).owner == "c"
    locks.release(path, "c")
    locks.drop_owner("c")
    locks.drop_owner("b")
