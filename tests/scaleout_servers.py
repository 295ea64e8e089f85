"""Real servers on loopback for the scale-out tests: an S3-API server, an external Dask cluster, a TCP relay, a tmpfs.

* :class:`S3Server`: moto's standalone S3-API server (``moto_server``) on a free loopback
  port, with a bucket; its :meth:`~S3Server.env` is what s3fs, pandas and the Dask workers
  need (``AWS_ENDPOINT_URL`` and dummy credentials).
* :class:`Relay`: a TCP relay in front of a server. :meth:`Relay.stop` makes the server
  unreachable (new connections are refused, open ones reset) and :meth:`Relay.start` brings
  it back on the same port with its state intact. moto keeps its state in memory, so a
  restarted moto is empty and a paused one (SIGSTOP) makes clients hang until their read
  timeouts; the relay is how the tests take "the object store" away and give it back.
* :class:`DaskCluster`: ``dask scheduler`` and ``dask worker`` processes (one single-threaded
  worker each, behind a nanny), as a user would start them on several machines.
* :func:`tmpfs`: a size-limited tmpfs mounted by the test (root only), unmounted afterwards.

Fixtures (module scope; import them into a test module): ``s3_server``, ``dask_cluster``.
"""
from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from emofuse.flows.local_server import free_port, stop_process
from emofuse.flows.runner import WORKER_ENV

BIN = os.path.dirname(sys.executable)
BUCKET = "emofuse-test"


def _wait(what: str, ready, timeout_s: float, proc: subprocess.Popen | None = None, log: str | None = None) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = open(log).read()[-3000:] if log and os.path.exists(log) else ""
    raise RuntimeError(f"{what} did not come up within {timeout_s:.0f} s\n{tail}")


# --------------------------------------------------------------------------- S3
class S3Server:
    """``moto_server`` on a free loopback port, with one bucket."""

    def __init__(self, workdir: str, bucket: str = BUCKET) -> None:
        self.workdir, self.bucket = workdir, bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(workdir, f"moto-{self.port}.log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "S3Server":
        self.proc = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        _wait(f"moto_server on {self.url}", lambda: answers(self.url), 60, self.proc, self.log)
        import boto3

        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=self.bucket)
        return self

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """What clients need to use this server (or a relay in front of it, ``endpoint``)."""
        return {"AWS_ENDPOINT_URL": endpoint or self.url, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}

    def fs(self):
        """An s3fs filesystem talking to the server directly (uncached: a relay may be down)."""
        import s3fs

        return s3fs.S3FileSystem(key="test", secret="test", endpoint_url=self.url, skip_instance_cache=True,
                                 client_kwargs={"region_name": "us-east-1"})

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Relay:
    """A TCP relay from a loopback port to ``target_port``; stop() takes the server away, start() gives it back."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> "Relay":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        s.settimeout(0.2)
        self._listener = s
        self._thread = threading.Thread(target=self._accept, args=(s,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Refuse new connections and reset the open ones, as a server that went away does."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            conns, self._conns = self._conns, set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                c.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _ in sel.select(timeout=1.0):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                with self._lock:
                    if a not in self._conns:
                        return
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            with self._lock:
                self._conns -= {a, b}
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()


# --------------------------------------------------------------------------- Dask
class DaskCluster:
    """An external Dask cluster: ``dask scheduler`` and ``n_workers`` ``dask worker`` processes on loopback."""

    def __init__(self, workdir: str, env: dict[str, str], n_workers: int = 2) -> None:
        self.workdir, self.n_workers = workdir, n_workers
        self.env = {**env, **WORKER_ENV}
        self.scheduler_file = os.path.join(workdir, "scheduler.json")
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def start(self) -> "DaskCluster":
        dask = os.path.join(BIN, "dask")
        log = os.path.join(self.workdir, "scheduler.log")
        sched = self._spawn([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                             self.scheduler_file, "--no-dashboard"], log)
        _wait("dask scheduler", lambda: os.path.exists(self.scheduler_file), 60, sched, log)
        with open(self.scheduler_file) as f:
            self.address = json.load(f)["address"]
        for i in range(self.n_workers):
            local = os.path.join(self.workdir, f"worker-{i}")
            os.makedirs(local, exist_ok=True)
            self._spawn([dask, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                         "--local-directory", local, "--death-timeout", "60", "--name", f"w{i}"],
                        os.path.join(self.workdir, f"worker-{i}.log"))
        self.wait_for_workers()
        return self

    def _spawn(self, cmd: list[str], log: str) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self.env, start_new_session=True)
        self.procs.append(proc)
        return proc

    @contextlib.contextmanager
    def client(self) -> Iterator:
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            yield c

    def wait_for_workers(self, timeout_s: float = 120.0) -> None:
        with self.client() as c:
            c.wait_for_workers(self.n_workers, timeout=timeout_s)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid of the process that runs its tasks (the nanny's child)."""
        with self.client() as c:
            return c.run(os.getpid)

    def kill_worker(self) -> int:
        """SIGKILL one worker process (as the OOM killer would); its nanny starts a new one. Returns the pid."""
        pid = sorted(self.worker_pids().values())[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def logs(self) -> str:
        out = []
        for name in sorted(os.listdir(self.workdir)):
            if name.endswith(".log"):
                out.append(f"--- {name}\n" + open(os.path.join(self.workdir, name)).read()[-2000:])
        return "\n".join(out)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)


# --------------------------------------------------------------------------- tmpfs
@contextlib.contextmanager
def tmpfs(path: str, size_kb: int) -> Iterator[str]:
    """Mount a tmpfs of ``size_kb`` at ``path`` (root only: fails the test, never skips); unmount afterwards."""
    os.makedirs(path, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", path],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {path} ({res.stderr.strip() or res.returncode}): the storage-fault "
                    "tests need root (CI runs them as root) to mount a small real filesystem", pytrace=False)
    try:
        yield path
    finally:
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)


def remount(path: str, *options: str) -> None:
    """``mount -o remount,<options> path`` (read-only, read-write, a new size); fails the test if refused."""
    res = subprocess.run(["mount", "-o", ",".join(("remount", *options)), path], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"mount -o remount,{','.join(options)} {path} failed: {res.stderr.strip()}", pytrace=False)


# --------------------------------------------------------------------------- fixtures
@contextlib.contextmanager
def s3_environment(values: dict[str, str]) -> Iterator[None]:
    """Point this process's s3fs (pandas, Catalog) at an S3 server: set ``values`` in the environment, and forget
    the s3fs instances made for another endpoint (fsspec caches them by arguments, not by environment)."""
    import s3fs

    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """A moto S3-API server with a bucket; this process's s3fs and pandas use it (AWS_* set for the module)."""
    workdir = tempfile.mkdtemp(prefix="emofuse-s3-")
    server = S3Server(workdir).start()
    try:
        with s3_environment(server.env()):
            yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def dask_cluster(s3_server, prefect_server) -> Iterator[DaskCluster]:
    """An external Dask cluster (scheduler + 2 single-threaded workers) whose workers reach the S3 server and
    the test's Prefect server."""
    workdir = tempfile.mkdtemp(prefix="emofuse-dask-")
    env = {**prefect_server["env"], **s3_server.env()}
    cluster = DaskCluster(workdir, env)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
