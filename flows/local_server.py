"""The embedded default: a local Prefect server (SQLite, loopback, analytics off) and a serve process.

Both are started detached, so they keep running after the command that
started them: ``prefect deployment run extract/ravdess`` then works from any
shell whose active Prefect profile is ``emofuse``.

Example:
    >>> stack = LocalStack(Path("state"), port=4300)
    >>> stack.api_url, stack.pidfile("prefect-server").name
    ('http://127.0.0.1:4300/api', 'prefect-server.pid')
    >>> server_env("http://127.0.0.1:4300/api")["PREFECT_API_URL"]
    'http://127.0.0.1:4300/api'
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROFILE = "emofuse"
DEFAULT_PORT = 4200


@dataclass(frozen=True)
class LocalStack:
    """Where the local server and serve process keep their logs and pids."""

    state_dir: Path
    port: int = DEFAULT_PORT
    #: The address the server listens on; off loopback it needs an auth string (:mod:`emofuse.flows.security`).
    host: str = "127.0.0.1"

    @property
    def api_url(self) -> str:
        """Where this machine's clients reach the server (loopback when it listens on every interface)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/api"

    @property
    def server_log(self) -> Path:
        return self.state_dir / "prefect-server.log"

    @property
    def serve_log(self) -> Path:
        return self.state_dir / "emofuse-serve.log"

    def pidfile(self, what: str) -> Path:
        return self.state_dir / f"{what}.pid"


def prefect_bin() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def emofuse_bin() -> str:
    return str(Path(sys.executable).with_name("emofuse"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def server_env(api_url: str | None = None, home: str | None = None) -> dict[str, str]:
    """Environment for Prefect processes of the local stack."""
    env = dict(os.environ)
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_UI_ENABLED": env.get("PREFECT_UI_ENABLED", "true")})
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if home:
        env["PREFECT_HOME"] = home
    return env


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)


def start_server(stack: LocalStack, *, env: dict[str, str] | None = None, wait_s: float = 120.0) -> str:
    """Start ``prefect server start`` on ``stack.host`` unless one answers there already; return the API URL."""
    if healthy(stack.api_url):
        return stack.api_url
    proc = spawn_server(stack, env or server_env())
    stack.pidfile("prefect-server").write_text(str(proc.pid))
    return wait_healthy(stack, proc, wait_s)


def spawn_server(stack: LocalStack, env: dict[str, str]) -> subprocess.Popen:
    """``prefect server start`` on ``stack.host:stack.port``, detached (its own session), logging to ``stack.server_log``.

    Raises :class:`~emofuse.flows.security.InsecureBind` for a non-loopback host without an auth string.

    ``env`` carries the server's settings: ``PREFECT_SERVER_DATABASE_CONNECTION_URL``
    (PostgreSQL), ``PREFECT_SERVER_API_AUTH_STRING``.
    """
    from emofuse.flows.security import check_prefect_bind

    check_prefect_bind(stack.host, env)
    return _spawn([prefect_bin(), "server", "start", "--host", stack.host, "--port", str(stack.port)],
                  stack.server_log, {**env, "PREFECT_SERVER_API_HOST": stack.host})


def wait_healthy(stack: LocalStack, proc: subprocess.Popen, wait_s: float = 120.0) -> str:
    """Wait until the server ``proc`` answers at ``stack.api_url``; raise with its log's path if it exits or hangs."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if healthy(stack.api_url):
            return stack.api_url
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect server exited ({proc.returncode}); see {stack.server_log}")
        time.sleep(0.5)
    raise TimeoutError(f"the Prefect server did not answer within {wait_s:.0f} s; see {stack.server_log}")


def start_serve(stack: LocalStack, args: list[str], *, env: dict[str, str] | None = None) -> int:
    """(Re)start ``emofuse serve ARGS`` detached; a previous serve process of this stack is stopped."""
    stop(stack, "emofuse-serve")
    env = env or server_env(stack.api_url)
    proc = _spawn([emofuse_bin(), "serve", *args], stack.serve_log, env)
    stack.pidfile("emofuse-serve").write_text(str(proc.pid))
    return proc.pid


def stop(stack: LocalStack, what: str) -> bool:
    """Stop a detached process of the stack by its pid file (``prefect-server`` or ``emofuse-serve``)."""
    pf = stack.pidfile(what)
    if not pf.exists():
        return False
    pid = int(pf.read_text() or 0)
    pf.unlink()
    return stop_group(pid)


def stop_process(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop a child started with ``start_new_session=True``: SIGTERM its whole group, SIGKILL it
    after ``timeout_s``, and reap it (waiting on the child, so an exited but unreaped one counts as gone)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout_s)


def stop_group(pid: int) -> bool:
    """SIGTERM the process group that detached process ``pid`` leads, SIGKILL it after 5 s; False if it was gone.

    For a server another command started (``emofuse stop`` reads its pid file); a child of this
    process is stopped with :func:`stop_process`, which reaps it."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def use_profile(api_url: str, env: dict[str, str] | None = None) -> None:
    """Make ``emofuse`` the active Prefect profile, pointing at ``api_url``, so plain
    ``prefect deployment run …`` commands reach the local server."""
    env = dict(env or os.environ)
    env.pop("PREFECT_API_URL", None)
    subprocess.run([prefect_bin(), "profile", "create", PROFILE], env=env, capture_output=True)
    # configure the profile first: `profile use` checks that its server answers
    _run([prefect_bin(), "config", "set", f"PREFECT_API_URL={api_url}", "PREFECT_SERVER_ANALYTICS_ENABLED=false",
          "PREFECT_RUNNER_POLL_FREQUENCY=1"], {**env, "PREFECT_PROFILE": PROFILE})
    _run([prefect_bin(), "profile", "use", PROFILE], env)


def release_profile(env: dict[str, str] | None = None) -> None:
    """Point the ``emofuse`` profile back at temporary per-process servers (after ``emofuse stop``)."""
    env = dict(env or os.environ)
    env.pop("PREFECT_API_URL", None)
    penv = {**env, "PREFECT_PROFILE": PROFILE}
    subprocess.run([prefect_bin(), "config", "unset", "PREFECT_API_URL", "-y"], env=penv, capture_output=True)
    _run([prefect_bin(), "config", "set", "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE=true"], penv)


def configured_api_unreachable() -> str | None:
    """The configured Prefect API URL when it does not answer (None when unset or healthy)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url and url.startswith(("http://127.0.0.1", "http://localhost")) and not healthy(url):
        return url
    return None


def _run(cmd: list[str], env: dict[str, str]) -> None:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed ({r.returncode}): {r.stdout[-800:]} {r.stderr[-800:]}")


def wait_for_deployment(names: str | Sequence[str], api_url: str, wait_s: float = 120.0, *,
                        since: dt.datetime | None = None) -> None:
    """Block until the serve process has registered every ``flow/deployment`` in ``names`` at ``api_url``.

    ``since``: only a registration at or after this time counts. The server's database
    outlives serve processes, so without it a deployment left by an earlier serve (another
    corpus, another catalog in its default parameters) would pass for the new one.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    pending = [names] if isinstance(names, str) else list(names)
    deadline = time.time() + wait_s
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while pending and time.time() < deadline:
            try:
                d = client.read_deployment_by_name(pending[0])
                if since is None or (d.updated is not None and d.updated >= since):
                    pending.pop(0)
                    continue
            except (ObjectNotFound, httpx.TransportError):
                pass
            time.sleep(1.0)
    if not pending:
        return
    name = pending[0]
    raise TimeoutError(f"deployment {name} was not registered within {wait_s:.0f} s: is `emofuse serve` running?")
