"""Claims on work in progress, so two runs on one catalog never do one item twice.

A claim is a small JSON file (local catalogs) holding host, pid and time,
written whole and linked into place, so the first creator wins and nobody reads
half a claim. A claim is *stale* when its process is gone (same host) or it is
older than ``ttl_s`` (other hosts); stale claims are taken over by one taker.
Remote (fsspec) catalogs have no claims and no locks: one writer at a time there.

Short catalog-wide critical sections (:func:`held`) use an OS file lock
(``filelock``: ``flock`` on POSIX), which the kernel drops when its process
dies, so a crashed writer never leaves the catalog locked.

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
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Iterator

import filelock

from emofuse.catalog import atomic

DEFAULT_TTL_S = 6 * 3600.0
#: Lock file, one per claims folder, that serialises take-overs of stale claims.
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
            return not _pid_alive(self.pid)
        return time.time() - self.created > ttl_s


def read_claim(path: str) -> Claim | None:
    """The claim at ``path``, or None when there is none."""
    try:
        with open(path) as f:
            d = json.load(f)
        return Claim(d["host"], int(d["pid"]), d["owner"], float(d["created"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, OSError):
        # Claims appear complete (see try_claim): an unreadable one is damaged, hence stale.
        return Claim("?", -1, "?", 0.0)


def try_claim(path: str, owner: str, ttl_s: float = DEFAULT_TTL_S) -> bool:
    """Create the claim at ``path`` for ``owner``; take it over if stale. True when we hold it.

    The claim is written whole under a temporary name and linked into place, so
    no one ever reads a half-written claim (and mistakes it for a stale one);
    take-overs of one folder's stale claims are serialised, so two takers never
    both win.
    """
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "owner": owner,
                       "created": time.time()}).encode()
    for _ in range(3):
        if atomic.write_bytes(path, body, overwrite=False):
            return True
        seen = read_claim(path)
        if seen is None:
            continue
        if seen.owner == owner:
            return True
        if not seen.stale(ttl_s):
            return False
        with held(os.path.join(os.path.dirname(path), TAKEOVER_LOCK)):
            if read_claim(path) == seen:  # nobody took it over meanwhile
                try:
                    os.rename(path, f"{path}.stale-{os.getpid()}-{time.time_ns()}")
                except FileNotFoundError:
                    pass
        for leftover in _stale_leftovers(path):
            _remove(leftover)
    return False


@contextlib.contextmanager
def held(path: str, *, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold an exclusive lock on the local file ``path`` for a short critical section (waits for other holders).

    Not reentrant: a thread that holds ``path`` and asks again waits for itself
    until ``timeout_s``. Raises :class:`TimeoutError` naming the file.
    """
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


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
