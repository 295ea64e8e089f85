"""Claims on work in progress, so two runs on one catalog never do one item twice.

A claim is a small JSON file holding host, pid, owner and time, created whole and
only if absent, so the first creator wins and nobody reads half a claim:
locally by hard-linking a finished temporary file into place, on object storage by
a conditional PUT (``If-None-Match: *`` — S3 and the S3 API servers that follow it,
through s3fs's exclusive-create mode ``xb``; GCS through generation preconditions).
A claim is *stale* when its owner is done on this host — its process is gone, or the
process lives on (a Dask worker runs many tasks) but the owner let go of its host-local
owner lock (:func:`drop_owner`; a task whose release failed midway still lets go) — or,
for claims made on other hosts, when it is older than ``ttl_s``; a stale claim is taken over by exactly one taker: locally
under an OS lock, remotely by whoever first creates the take-over marker
``<claim>.takeover-<digest of the stale claim's bytes>`` (again an exclusive
create), so two takers who saw the same stale claim never both win, and a claim
that changed in between has another digest.

Short catalog-wide critical sections (:func:`held`) use an OS file lock on local
catalogs (``filelock``: ``flock`` on POSIX, dropped by the kernel when its process
dies) and a claim with a short lease on object storage (a holder that died on this
host is seen at once; on another host after ``LEASE_TTL_S``).

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "locks", "tasks", "t1.json")
    >>> try_claim(path, "t1"), try_claim(path, "t2")
    (True, False)
    >>> read_claim(path).owner
    't1'
    >>> release(path, "t1"); read_claim(path) is None
    True
    >>> with held(os.path.join(os.path.dirname(path), "media.lock")):
    ...     pass
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import filelock
from emofuse.catalog import atomic, urls
from emofuse.catalog.urls import url_to_fs

DEFAULT_TTL_S = 6 * 3600.0
#: How long a critical-section lock on object storage held from another host counts as live.
LEASE_TTL_S = 600.0
#: Lock file, one per claims folder, that serialises take-overs of stale claims (local catalogs).
TAKEOVER_LOCK = ".takeover.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Claim:
    """The content of a claim file."""

    host: str
    pid: int
    owner: str
    created: float

    def stale(self, ttl_s: float = DEFAULT_TTL_S) -> bool:
        if self.host == socket.gethostname():
            return not _pid_alive(self.pid) or not _owner_active(self.owner, self.pid)
        return time.time() - self.created > ttl_s


#: Host-local owner locks this process holds ((owner, pid) -> lock), see :func:`drop_owner`.
_OWNED: dict[tuple[str, int], filelock.FileLock] = {}
_OWNED_GUARD = threading.Lock()


def owner_lock_dir() -> str:
    """Where this host's owner lock files are: ``$TMPDIR/emofuse-owners``."""
    return os.path.join(tempfile.gettempdir(), "emofuse-owners")


def _owner_lock_path(owner: str, pid: int) -> str:
    """One lock file per (owner, process): owner names need not be unique across processes."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in owner)
    return os.path.join(owner_lock_dir(), f"{safe}.{pid}.lock")


def remove_dead_owner_locks() -> list[str]:
    """Remove the owner lock files of processes that are gone; return their paths.

    A file is removed only when its process (the pid in its name) is not alive and its lock
    can be taken, so a live owner's file, or one a live process is about to lock, stays.
    """
    folder = owner_lock_dir()
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        try:
            pid = int(name[:-len(".lock")].rsplit(".", 1)[1])
        except (IndexError, ValueError):
            continue
        if not name.endswith(".lock") or pid == os.getpid() or _pid_alive(pid):
            continue
        path = os.path.join(folder, name)
        probe = filelock.FileLock(path, timeout=0)
        try:
            probe.acquire()
        except filelock.Timeout:
            continue
        try:
            _remove(path)
            removed.append(path)
        finally:
            probe.release()
    return removed


def stale_takeover_markers(folder: str, ttl_s: float = DEFAULT_TTL_S) -> list[str]:
    """Take-over markers (``<claim>.takeover-<digest>``) under ``folder`` that no taker needs any more.

    A marker only stops a second taker of the same stale claim while that claim stands; it
    is stale once the claim is gone (released, or taken over again) or older than ``ttl_s``
    (the claim lifetime; its age is the ``created`` time of the claim body it holds).
    """
    fs, path = url_to_fs(folder)
    if not fs.exists(path):
        return []
    out = []
    for p in fs.find(path):
        claim, sep, digest = p.rpartition(".takeover-")
        if not sep or "/" in digest:  # a marker's own name, not a folder above it that looks like one
            continue
        url = urls.url_of(folder, p)
        raw = _read_raw(url)
        if raw is None:
            continue
        if not fs.exists(claim) or time.time() - _parse(raw).created > ttl_s:
            out.append(url)
    return out


def _hold_owner(owner: str) -> None:
    """Hold ``owner``'s host-local lock (before its first claim, so a claim never looks abandoned)."""
    key = (owner, os.getpid())  # a forked child holds its own, not its parent's
    with _OWNED_GUARD:
        if key in _OWNED:
            return
        path = _owner_lock_path(*key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lock = filelock.FileLock(path, timeout=10)
        lock.acquire()
        _OWNED[key] = lock


def drop_owner(owner: str) -> None:
    """Let go of ``owner``'s host-local lock: its remaining claims (if a release failed) become stale."""
    with _OWNED_GUARD:
        lock = _OWNED.pop((owner, os.getpid()), None)
    if lock is not None:
        lock.release()
        _remove(lock.lock_file)


def _owner_active(owner: str, pid: int) -> bool:
    """Whether process ``pid`` of this host still holds ``owner``'s lock (the kernel drops it when it dies)."""
    with _OWNED_GUARD:
        if (owner, pid) in _OWNED:
            return True
    path = _owner_lock_path(owner, pid)
    if not os.path.exists(path):
        return False
    probe = filelock.FileLock(path, timeout=0)
    try:
        probe.acquire()
    except filelock.Timeout:
        return True
    probe.release()
    return False


def _read_raw(path: str) -> bytes | None:
    try:
        if atomic.is_local(path):
            with open(atomic.local_path(path), "rb") as f:
                return f.read()
        fs, p = url_to_fs(path)
        return fs.cat_file(p)
    except FileNotFoundError:
        return None


def _parse(raw: bytes) -> Claim:
    try:
        d = json.loads(raw)
        return Claim(d["host"], int(d["pid"]), d["owner"], float(d["created"]))
    except (ValueError, KeyError, TypeError):
        # Claims appear complete (see try_claim): an unreadable one is damaged, hence stale.
        return Claim("?", -1, "?", 0.0)


def read_claim(path: str) -> Claim | None:
    """The claim at ``path`` (a local path or fsspec URL), or None when there is none."""
    raw = _read_raw(path)
    return None if raw is None else _parse(raw)


def try_claim(path: str, owner: str, ttl_s: float = DEFAULT_TTL_S) -> bool:
    """Create the claim at ``path`` for ``owner``; take it over if stale. True when we hold it.

    The claim is created whole and only if absent (see the module), so no one ever
    reads a half-written claim (and mistakes it for a stale one); take-overs of a
    stale claim have exactly one winner.
    """
    _hold_owner(owner)
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "owner": owner,
                       "created": time.time()}).encode()
    for _ in range(3):
        if atomic.write_bytes(path, body, overwrite=False):
            return True
        raw = _read_raw(path)
        if raw is None:
            continue
        seen = _parse(raw)
        if seen.owner == owner:
            return True
        if not seen.stale(ttl_s):
            return False
        if not atomic.is_local(path):
            if _take_over_remote(path, raw, body):
                return True
            continue
        path = atomic.local_path(path)
        with held(os.path.join(os.path.dirname(path), TAKEOVER_LOCK)):
            if read_claim(path) == seen:  # nobody took it over meanwhile
                try:
                    os.rename(path, f"{path}.stale-{os.getpid()}-{time.time_ns()}")
                except FileNotFoundError:
                    pass
        for leftover in _stale_leftovers(path):
            _remove(leftover)
    return False


def _take_over_remote(path: str, stale_raw: bytes, body: bytes) -> bool:
    """Replace a stale remote claim: the first to create its take-over marker wins.

    The winner replaces the claim only while it still holds the stale bytes: a claim seen
    stale because its owner had just released it may since have been released and claimed
    afresh by someone else (whose claim has other bytes), and overwriting that would make two
    holders. The winner deletes the stale claim and creates its own exclusively, so a
    newcomer in between keeps the claim and the winner does not get it.
    """
    marker = f"{path}.takeover-{hashlib.sha256(stale_raw).hexdigest()[:16]}"
    if not atomic.write_bytes(marker, body, overwrite=False):
        return False
    if _read_raw(path) != stale_raw:
        return False
    _remove(path)
    return atomic.write_bytes(path, body, overwrite=False)


@contextlib.contextmanager
def held(path: str, *, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for a short critical section (waits for other holders).

    Local paths: an OS lock (not reentrant: a thread that holds ``path`` and asks again
    waits for itself until ``timeout_s``). fsspec URLs: a claim with a lease of
    :data:`LEASE_TTL_S`, polled until free. Raises :class:`TimeoutError` naming the file.
    """
    if not atomic.is_local(path):
        owner = f"held-{uuid.uuid4().hex}"
        deadline = time.monotonic() + timeout_s
        while not try_claim(path, owner, ttl_s=LEASE_TTL_S):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} stayed locked for {timeout_s:.0f} s by {read_claim(path)}; "
                                   "is another emofuse run writing to this catalog?")
            time.sleep(0.1)
        try:
            yield
        finally:
            try:
                release(path, owner)
            finally:
                drop_owner(owner)
        return
    path = atomic.local_path(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    lock = filelock.FileLock(path, timeout=timeout_s)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise TimeoutError(f"{path} stayed locked for {timeout_s:.0f} s by a live process; "
                           "is another emofuse run writing to this catalog?") from None
    try:
        yield
    finally:
        lock.release()


def release(path: str, owner: str) -> None:
    """Remove the claim at ``path`` if ``owner`` holds it (anyone else's claim stays)."""
    claim = read_claim(path)
    if claim is not None and claim.owner == owner:
        _remove(path)


def _stale_leftovers(path: str) -> list[str]:
    d, base = os.path.split(path)
    try:
        return [os.path.join(d, n) for n in os.listdir(d) if n.startswith(base + ".stale-")]
    except FileNotFoundError:
        return []


def remove(path: str) -> None:
    """Remove a claim, marker or lock file (gone already: nothing to do)."""
    _remove(path)


def _remove(path: str) -> None:
    try:
        if atomic.is_local(path):
            os.remove(atomic.local_path(path))
        else:
            fs, p = url_to_fs(path)
            fs.rm_file(p)
    except FileNotFoundError:
        pass
