"""Claims on work in progress, so two runs on one catalog never do one item twice.

A claim is a small JSON file created with ``O_EXCL`` (local catalogs) holding
host, pid and time. A claim is *stale* when its process is gone (same host) or
it is older than ``ttl_s`` (other hosts); stale claims are taken over.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterator

DEFAULT_TTL_S = 6 * 3600.0


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
    try:
        with open(path) as f:
            d = json.load(f)
        return Claim(d["host"], int(d["pid"]), d["owner"], float(d["created"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, OSError):
        # A half-written claim (crash between open and write): treat as stale.
        return Claim("?", -1, "?", 0.0)


def try_claim(path: str, owner: str, ttl_s: float = DEFAULT_TTL_S) -> bool:
    """Create the claim at ``path`` for ``owner``; take it over if stale. True when we hold it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "owner": owner,
                       "created": time.time()}).encode()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_claim(path)
            if held is None:
                continue
            if held.owner == owner:
                return True
            if not held.stale(ttl_s):
                return False
            # Take over atomically: rename the stale claim away, then retry O_EXCL.
            try:
                os.rename(path, f"{path}.stale-{os.getpid()}-{time.time_ns()}")
            except FileNotFoundError:
                pass
            for leftover in _stale_leftovers(path):
                _remove(leftover)
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return True
    return False


@contextlib.contextmanager
def held(path: str, *, timeout_s: float = 120.0, poll_s: float = 0.05) -> Iterator[None]:
    """Hold an exclusive claim on ``path`` for a short critical section (waits for other holders)."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{time.time_ns()}"
    deadline = time.monotonic() + timeout_s
    while not try_claim(path, owner):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} stayed locked for {timeout_s:.0f} s; remove it if no emofuse run is active")
        time.sleep(poll_s)
    try:
        yield
    finally:
        release(path, owner)


def release(path: str, owner: str) -> None:
    held = read_claim(path)
    if held is not None and held.owner == owner:
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
