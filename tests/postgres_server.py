"""A throw-away PostgreSQL server on loopback, for the Prefect-on-PostgreSQL test and ``bench.orchestrator``.

PostgreSQL refuses to run as root, so as root the cluster is created and run by the
``postgres`` user (Debian's ``postgresql`` package makes it) in a fresh folder under
/tmp that this user owns; otherwise by the current user. Password authentication
(scram-sha-256) on 127.0.0.1 and a private socket folder; :meth:`PostgresServer.stop`
stops the server and removes the folder.

``fast=True`` turns off fsync and synchronous commits (tests); a benchmark keeps
PostgreSQL's durable defaults.
"""
from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from emofuse.flows.local_server import free_port

USER, DATABASE = "emofuse", "prefect"


def pg_bin(tool: str) -> str:
    """The PostgreSQL server tool ``tool`` (initdb, pg_ctl …): on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None)
    if not found:
        raise FileNotFoundError(f"{tool} not found: apt-get install -y postgresql (./dev setup installs it)")
    return found


def available() -> bool:
    try:
        pg_bin("initdb"), pg_bin("pg_ctl")
        return True
    except FileNotFoundError:
        return False


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` on a free loopback port, with database ``prefect`` owned by ``emofuse``."""

    def __init__(self, fast: bool = True) -> None:
        self.fast = fast
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.root = Path(tempfile.mkdtemp(prefix="emofuse-pg-"))
        self.data, self.socket_dir, self.log = self.root / "data", self.root / "sock", self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self.started = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Prefect's server takes (``PREFECT_SERVER_DATABASE_CONNECTION_URL``)."""
        return f"postgresql+asyncpg://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, cmd: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/",
                           env={**os.environ, "PGPASSWORD": self.password})
        if r.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout[-1500:]} {r.stderr[-1500:]}\n{log}")
        return r

    def start(self) -> "PostgresServer":
        self.socket_dir.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            for p in (self.socket_dir, pwfile):
                shutil.chown(p, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self._run([pg_bin("initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
                   "-E", "UTF8", "--no-locale", "--no-sync"])
        pwfile.unlink()
        opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start"])
        self.started = True
        self.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        return self

    def psql(self, sql: str, database: str = DATABASE) -> str:
        """Run ``sql`` with psql over TCP (password auth, as Prefect connects); its unaligned output."""
        return self._run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
                          "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]).stdout.strip()

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"])
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
