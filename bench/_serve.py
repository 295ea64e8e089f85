"""A real ``emofuse serve`` for benchmarks: its own Prefect server and the Dask cluster it keeps warm.

:class:`RunningServe` starts ``emofuse serve --port P`` (a free loopback port) in its own
session, with its own Prefect home and data folder, and waits until its server answers and
its warm-cluster note (:func:`emofuse.flows.warm_cluster.note_path`) names a scheduler that
listens. Children given :attr:`RunningServe.env` are clients of that server and find that
cluster as ``emofuse score-archive`` from a user's shell would. :meth:`RunningServe.cpu_s`
is the CPU seconds of serve's whole process tree so far (server, serve, workers), so a
benchmark can add what a run cost there to what its own process tree spent. Only the
process group started here is stopped (SIGTERM, then SIGKILL after a timeout).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench._common import child_env


class RunningServe:
    """``emofuse serve`` with ``workers`` warm workers, for the length of a ``with`` block."""

    def __init__(self, wd: str, workers: int, *, start_timeout_s: float = 180.0) -> None:
        from emofuse.flows.local_server import free_port

        self.wd = wd
        self.workers = workers
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.home = os.path.join(wd, "serve-prefect-home")
        self.data = os.path.join(wd, "serve-data")
        self.log = os.path.join(wd, "serve.log")
        self.start_timeout_s = start_timeout_s
        self.start_s = float("nan")
        self.proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment of a client child: this server's API and data folder (where the warm-cluster note is)."""
        return child_env(self.home, {"PREFECT_API_URL": self.api, "EMOFUSE_DATA": self.data,
                                     "EMOFUSE_SERVE_WORKERS": str(self.workers)})

    def __enter__(self) -> RunningServe:
        from emofuse.flows.local_server import emofuse_bin, healthy
        from emofuse.flows.warm_cluster import WarmNote

        note = Path(self.data) / "state" / "warm-dask.json"
        env = self.env
        env.pop("PREFECT_API_URL")  # serve starts its own server (--port) and points itself at it
        t0 = time.perf_counter()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([emofuse_bin(), "serve", "--port", str(self.port)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emofuse serve exited with {self.proc.returncode}; log {self.log}")
            if time.perf_counter() - t0 > self.start_timeout_s:
                self.__exit__()
                raise RuntimeError(f"emofuse serve not ready after {self.start_timeout_s:.0f} s; log {self.log}")
            with contextlib.suppress(OSError, ValueError, TypeError):
                if WarmNote.from_json(note.read_text()).pid == self.proc.pid and healthy(self.api):
                    break
            time.sleep(0.5)
        self.start_s = time.perf_counter() - t0
        return self

    def cpu_s(self) -> float:
        """User + system CPU seconds of serve's process tree so far (its server, itself, its workers)."""
        import psutil

        if self.proc is None:
            return 0.0
        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                t = p.cpu_times()  # its own, and that of its children it has reaped (gone from the list)
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # serve stops its warm cluster and its server, then exits
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            print(f"emofuse serve did not stop on SIGTERM (killed); see {self.log}", file=sys.stderr)
