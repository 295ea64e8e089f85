"""``emofuse serve``'s own Prefect server and cluster security: ``--host``, ``--port``, ``--database``, ``--dask-tls``.

Without ``--host``/``--port``/``--database``, ``emofuse serve`` serves the deployments
against the configured Prefect API (the active profile or ``PREFECT_API_URL``). With
any of them it first starts a Prefect server of its own on that address and database
(``PREFECT_SERVER_DATABASE_CONNECTION_URL``), serves against it, and stops it when it
ends. PostgreSQL, as Prefect recommends for many workers:
``emofuse serve --database postgresql+asyncpg://prefect:PW@127.0.0.1:5432/prefect``.
A non-loopback ``--host`` is refused unless ``PREFECT_SERVER_API_AUTH_STRING`` is set
(:mod:`emofuse.flows.security`). ``--dask-tls DIR`` makes the served flows connect to
their Dask scheduler over TLS with the certificates in ``DIR``.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(); add_options(p)
    >>> a = p.parse_args(["--database", "postgresql+asyncpg://u:pw@127.0.0.1:5432/prefect"])
    >>> o = ServerOptions.from_args(a)
    >>> o.host, o.port, o.database.split("@")[1]
    ('127.0.0.1', 4200, '127.0.0.1:5432/prefect')
    >>> database_url("postgresql://u:pw@db/prefect")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: postgresql:// is not a driver Prefect's server uses: write postgresql+asyncpg://...
    >>> ServerOptions.from_args(p.parse_args([])) is None  # serve against the configured API
    True
    >>> ServerOptions(database="postgresql+asyncpg://u:pw@db:5432/prefect").server_env({})
    {'PREFECT_SERVER_DATABASE_CONNECTION_URL': 'postgresql+asyncpg://u:pw@db:5432/prefect'}
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from emofuse.flows.local_server import (DEFAULT_PORT, LocalStack, healthy, server_env, spawn_server, stop_process,
                                       wait_healthy)
from emofuse.flows.security import (CLIENT_AUTH_ENV, DASK_TLS_ENV, InsecureBind, MissingCertificates, client_auth_env,
                                    dask_security)

#: The server's database URL (SQLAlchemy, async driver); Prefect's default is SQLite under PREFECT_HOME.
DATABASE_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


class PortTaken(RuntimeError):
    """Another Prefect server answers on the port serve would start its own on."""


#: What stops ``emofuse serve`` before it serves, with a message that says what to change.
REFUSED = (InsecureBind, PortTaken, MissingCertificates)

#: The drivers Prefect's server talks to its database with (async SQLAlchemy dialects).
DRIVERS = ("postgresql+asyncpg://", "sqlite+aiosqlite://")


def database_url(url: str) -> str:
    """``--database``'s type: a URL with one of Prefect's async drivers (``postgresql://`` alone fails late)."""
    if not url.startswith(DRIVERS):
        raise argparse.ArgumentTypeError(
            f"{url.split('://')[0]}:// is not a driver Prefect's server uses: write "
            "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE (or sqlite+aiosqlite:///PATH)")
    return url


def add_options(p: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--port``, ``--database`` and ``--dask-tls`` to ``emofuse serve``'s parser."""
    g = p.add_argument_group("a Prefect server of its own (any of --host/--port/--database starts one; "
                             "default: serve against the configured PREFECT_API_URL)")
    g.add_argument("--host", default=None, help="its address (default 127.0.0.1); off loopback only with "
                   "$PREFECT_SERVER_API_AUTH_STRING set")
    g.add_argument("--port", type=int, default=None, help=f"its port (default {DEFAULT_PORT})")
    g.add_argument("--database", default=None, metavar="URL", type=database_url,
                   help="its database, e.g. postgresql+asyncpg://prefect:PW@127.0.0.1:5432/prefect "
                        f"(default ${DATABASE_ENV}, else SQLite in PREFECT_HOME)")
    p.add_argument("--dask-tls", default=None, metavar="CERT_DIR",
                   help="connect to the Dask scheduler (-p dask_address=tls://…) over TLS with CERT_DIR's ca.pem, "
                        f"cert.pem, key.pem (sets ${DASK_TLS_ENV}; python -m emofuse.flows.certificates makes them)")


@dataclass(frozen=True)
class ServerOptions:
    """The Prefect server ``emofuse serve`` starts for itself."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    database: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerOptions | None:
        """The options given, or None when serve should use the configured API instead."""
        if args.host is None and args.port is None and args.database is None:
            return None
        return cls(host=args.host or "127.0.0.1", port=args.port or DEFAULT_PORT, database=args.database)

    def server_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The server process's environment: the local stack's defaults plus the database URL."""
        env = server_env() if base is None else dict(base)
        if self.database:
            env[DATABASE_ENV] = self.database
        return env


@contextlib.contextmanager
def own_server(args: argparse.Namespace, state_dir: Path | None = None) -> Iterator[str | None]:
    """Set up what ``emofuse serve`` options ask for; yield the API URL of the server started (None: none started).

    Raises one of :data:`REFUSED` before starting anything: ``--host`` off loopback
    without an auth string, the port taken, ``--dask-tls`` files missing.
    """
    if args.dask_tls:
        dask_security(args.dask_tls)  # missing files: say so now, not in the first flow run
        os.environ[DASK_TLS_ENV] = os.path.abspath(args.dask_tls)
    opts = ServerOptions.from_args(args)
    if opts is None:
        yield None
        return
    from emofuse.catalog.layout import data_dir

    stack = LocalStack(state_dir or Path(data_dir()) / "state" / f"serve-{opts.port}", opts.port, opts.host)
    if healthy(stack.api_url):
        raise PortTaken(f"a Prefect server already answers at {stack.api_url}: stop it or choose another --port")
    proc = spawn_server(stack, opts.server_env())
    if threading.current_thread() is threading.main_thread():  # SIGTERM (emofuse stop, kill): stop the server too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        api = wait_healthy(stack, proc)
        print(f"Prefect server on {stack.host}:{stack.port} (API {api}; log {stack.server_log})", flush=True)
        yield from _as_client(api)
    finally:
        stop_process(proc)


def _as_client(api: str) -> Iterator[str]:
    """Make this process (and the flow runs it starts) a client of ``api``, with the auth string when one is set."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    auth = client_auth_env()
    os.environ.update({"PREFECT_API_URL": api, **auth})
    updates = {PREFECT_API_URL: api, **({PREFECT_API_AUTH_STRING: auth[CLIENT_AUTH_ENV]} if auth else {})}
    with temporary_settings(updates=updates):
        yield api

