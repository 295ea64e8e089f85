"""Off loopback, nobody gets in uninvited: the Prefect API with an auth string, the Dask scheduler with TLS.

All on loopback, with real servers: `emofuse serve` with PREFECT_SERVER_API_AUTH_STRING
refuses clients without it (401) and runs a deployment for one with it; a `dask scheduler`
started with TLS and client certificates refuses clients without a certificate its CA
signed and runs a flow's task for one with them (`$EMOFUSE_DASK_TLS`); `emofuse serve
--host 0.0.0.0` without an auth string does not start.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emofuse.flows import local_server as ls
from emofuse.flows.certificates import make_certificates
from emofuse.flows.security import CLIENT_AUTH_ENV, DASK_TLS_ENV, SERVER_AUTH_ENV, InsecureBind, dask_security

BIN = os.path.dirname(sys.executable)
SECRET = "emofuse:correct-horse-battery-staple"


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {**ls.server_env(home=str(tmp_path / "prefect-home")), "EMOFUSE_DATA": str(tmp_path / "data")}
    for k in (SERVER_AUTH_ENV, CLIENT_AUTH_ENV, "PREFECT_API_URL"):
        env.pop(k, None)
    return env


# --------------------------------------------------------------------------- Prefect: refusing to bind
def test_serve_refuses_non_loopback_host_without_auth_string(tmp_path):
    port = ls.free_port()
    proc = subprocess.Popen([ls.emofuse_bin(), "serve", "--host", "0.0.0.0", "--port", str(port)],
                            env=_clean_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # it started serving: stop it (and the server it started) before failing
        ls.stop_process(proc)
        out, err = proc.communicate()
    assert proc.returncode == 2, out[-2000:] + err[-2000:]
    assert "refusing to bind the Prefect API to 0.0.0.0" in err and SERVER_AUTH_ENV in err
    assert not ls.healthy(f"http://127.0.0.1:{port}/api")
    # every server emofuse starts goes through the same check
    with pytest.raises(InsecureBind):
        ls.spawn_server(ls.LocalStack(tmp_path / "state", port, host="0.0.0.0"), _clean_env(tmp_path))


def test_doctor_flags_off_loopback_servers_without_credentials(tmp_path):
    from emofuse.flows.doctor import cluster_security

    remote = {"PREFECT_API_URL": "http://10.0.0.5:4200/api", "EMOFUSE_DASK_ADDRESS": "tcp://10.0.0.6:8786"}
    assert [c.ok for c in cluster_security(remote)] == [False, False]
    certs = make_certificates(tmp_path / "certs")
    secured = {"PREFECT_API_URL": "http://10.0.0.5:4200/api", CLIENT_AUTH_ENV: SECRET,
               "EMOFUSE_DASK_ADDRESS": "tls://10.0.0.6:8786", DASK_TLS_ENV: str(certs)}
    assert [c.ok for c in cluster_security(secured)] == [True, True]
    assert [c.ok for c in cluster_security({"EMOFUSE_DASK_ADDRESS": "tls://10.0.0.6:8786"})] == [False]  # no certificates
    assert cluster_security({"PREFECT_API_URL": "http://127.0.0.1:4200/api", "EMOFUSE_DASK_ADDRESS": "127.0.0.1:8786"}) == []


# --------------------------------------------------------------------------- Prefect: the auth string
@pytest.mark.slow
def test_prefect_server_with_auth_string_refuses_clients_without_it(tmp_path):
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    from emofuse.catalog.corpora.demo import crema_d

    corpus = str(tmp_path / "crema-d")
    crema_d.generate(corpus, actors=1, sentences=("IEO",), emotions=("ANG",))
    catalog = str(tmp_path / "catalog")
    stack = ls.LocalStack(tmp_path / "state", ls.free_port())
    # the server and the serve process get the server's auth string only: serve sends it as a client too
    serve_env = {**_clean_env(tmp_path), SERVER_AUTH_ENV: SECRET}
    since = dt.datetime.now(dt.timezone.utc)
    ls.start_serve(stack, ["--catalog", catalog, "--port", str(stack.port)], env=serve_env)
    try:
        with temporary_settings(updates={PREFECT_API_AUTH_STRING: SECRET}):
            ls.wait_for_deployment("extract/crema-d", stack.api_url, wait_s=180, since=since)
        # no credentials, wrong credentials: 401
        assert httpx.post(f"{stack.api_url}/flows/filter", json={}).status_code == 401
        assert httpx.post(f"{stack.api_url}/flows/filter", json={}, auth=("emofuse", "guess")).status_code == 401
        user, password = SECRET.split(":", 1)
        assert httpx.post(f"{stack.api_url}/flows/filter", json={}, auth=(user, password)).status_code == 200
        cmd = [ls.prefect_bin(), "deployment", "run", "extract/crema-d", "-p", f"source={corpus}",
               "-p", 'feature_sets=["egemaps"]', "-p", "n_workers=1", "--watch", "--watch-timeout", "300"]
        client_env = {**_clean_env(tmp_path), "PREFECT_API_URL": stack.api_url}
        refused = subprocess.run(cmd, env=client_env, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "Completed" not in refused.stdout
        assert "401" in refused.stdout + refused.stderr, refused.stdout[-2000:] + refused.stderr[-2000:]
        r = subprocess.run(cmd, env={**client_env, CLIENT_AUTH_ENV: SECRET}, capture_output=True, text=True,
                           timeout=400)
        log = Path(stack.serve_log).read_text()[-3000:]
        assert r.returncode == 0 and "Completed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:] + log
    finally:
        ls.stop(stack, "emofuse-serve")
    from emofuse.catalog.store import Catalog

    assert set(Catalog(catalog).status()["status"]) == {"ok"}


# --------------------------------------------------------------------------- Dask: TLS with client certificates
class TLSCluster:
    """``dask scheduler`` with TLS only (encryption required, client certificates checked) and one worker."""

    def __init__(self, workdir: Path, certs: Path, env: dict[str, str]) -> None:
        self.workdir, self.certs = workdir, certs
        tls = ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / "cert.pem"),
               "--tls-key", str(certs / "key.pem")]
        self.env = {**env, "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
                    "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])}
        self.procs: list[subprocess.Popen] = []
        sched_file = workdir / "scheduler.json"
        self._spawn([os.path.join(BIN, "dask"), "scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port", "0",
                     "--scheduler-file", str(sched_file), "--no-dashboard", *tls], "scheduler")
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        self.address = json.loads(sched_file.read_text())["address"]
        self._spawn([os.path.join(BIN, "dask"), "worker", self.address, "--nthreads", "1", "--no-dashboard",
                     "--no-nanny", "--local-directory", str(workdir / "worker"), *tls], "worker")

    def _spawn(self, cmd: list[str], name: str) -> None:
        self.procs.append(subprocess.Popen(cmd, stdout=open(self.workdir / f"{name}.log", "ab"),
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                           start_new_session=True))

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for p in reversed(self.procs):
            ls.stop_process(p, 30)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory, prefect_server):
    d = tmp_path_factory.mktemp("dask-tls")
    certs = make_certificates(d / "certs")
    cluster = TLSCluster(d, certs, {**prefect_server["env"], "OMP_NUM_THREADS": "1"})
    try:
        from distributed import Client

        with Client(cluster.address, security=dask_security(certs), timeout=60) as c:
            c.wait_for_workers(1, timeout=120)
        yield cluster
    finally:
        cluster.stop()


def _connect(address: str, timeout: float = 5, **kwargs) -> None:
    from distributed import Client

    with Client(address, timeout=timeout, **kwargs) as c:
        assert c.submit(sum, [1, 2]).result(timeout=timeout) == 3


def _raw_tls(address: str, certs: Path, present_certificate: bool) -> bytes:
    """Open TLS to ``address`` trusting ``certs``' CA, with or without its certificate; what a first read returns."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    if present_certificate:
        ctx.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    with socket.create_connection((host, int(port)), timeout=3) as raw, ctx.wrap_socket(raw) as conn:
        return conn.recv(1000)  # TLS 1.3: the server's verdict on the client's certificate arrives here


def test_dask_scheduler_refuses_clients_without_its_certificates(tmp_path, tls_cluster):
    assert tls_cluster.address.startswith("tls://127.0.0.1:")
    stranger = make_certificates(tmp_path / "stranger")  # a certificate of another CA
    attempts = {
        "plain TCP": (tls_cluster.address.replace("tls://", "tcp://"), {}),
        "TLS, another CA's certificate": (tls_cluster.address, {"security": dask_security(stranger)}),
    }
    for what, (address, kwargs) in attempts.items():
        with pytest.raises((OSError, TimeoutError)):
            _connect(address, **kwargs)
            pytest.fail(f"{what}: the scheduler accepted the client")
    # raw TLS: without a certificate the scheduler ends the handshake; with one it greets the client
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        _raw_tls(tls_cluster.address, tls_cluster.certs, present_certificate=False)
    assert b"pickle-protocol" in _raw_tls(tls_cluster.address, tls_cluster.certs, present_certificate=True)
    _connect(tls_cluster.address, timeout=60, security=dask_security(tls_cluster.certs))  # a slow machine: no refusal


def _where() -> str:
    from distributed import get_worker

    return get_worker().address


def test_flow_runs_on_tls_cluster_with_emofuse_dask_tls(tls_cluster, prefect_server, monkeypatch):
    from prefect import flow, task
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from emofuse.flows.runner import dask_runner

    where = task(_where)

    @flow
    def on_cluster() -> str:
        return where.submit().result()

    with temporary_settings(updates={PREFECT_API_URL: prefect_server["api"]}):
        monkeypatch.delenv(DASK_TLS_ENV, raising=False)
        with pytest.raises((OSError, TimeoutError, TypeError)):  # no certificates: no connection
            on_cluster.with_options(task_runner=dask_runner(tls_cluster.address))()
        monkeypatch.setenv(DASK_TLS_ENV, str(tls_cluster.certs))
        worker = on_cluster.with_options(task_runner=dask_runner(tls_cluster.address))()
    assert worker.startswith("tls://127.0.0.1:"), tls_cluster.logs()
