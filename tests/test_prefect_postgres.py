"""`emofuse serve --database postgresql+asyncpg://…` against a real PostgreSQL server started here:
a deployment runs to completion and its flow run is a row of PostgreSQL's `flow_run` table."""
from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from emofuse.catalog.store import Catalog
from emofuse.flows import local_server as ls
from tests.postgres_server import PostgresServer, available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not available(), reason="PostgreSQL server binaries missing: apt-get install postgresql")]


@pytest.fixture(scope="module")
def postgres():
    with PostgresServer(fast=True) as pg:
        yield pg


def test_serve_with_postgres_database_runs_a_deployment(tmp_path, postgres):
    from emofuse.catalog.corpora.demo import crema_d

    corpus = str(tmp_path / "crema-d")
    crema_d.generate(corpus, actors=1, sentences=("IEO",), emotions=("ANG", "HAP"))
    catalog = str(tmp_path / "catalog")
    stack = ls.LocalStack(tmp_path / "state", ls.free_port())
    env = {**ls.server_env(stack.api_url, home=str(tmp_path / "prefect-home")),  # no SQLite database of the session
           "EMOFUSE_DATA": str(tmp_path / "data")}  # the server's log
    since = dt.datetime.now(dt.timezone.utc)
    ls.start_serve(stack, ["--catalog", catalog, "--port", str(stack.port), "--database", postgres.url], env=env)
    try:
        ls.wait_for_deployment("extract/crema-d", stack.api_url, wait_s=180, since=since)
        r = subprocess.run(
            [ls.prefect_bin(), "deployment", "run", "extract/crema-d", "-p", f"source={corpus}",
             "-p", 'feature_sets=["egemaps"]', "-p", "n_workers=1", "--watch", "--watch-timeout", "300"],
            env=env, capture_output=True, text=True, timeout=400)
        log = Path(stack.serve_log).read_text()[-3000:]
        assert r.returncode == 0 and "Completed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:] + log
    finally:
        ls.stop(stack, "emofuse-serve")
    # the run is in PostgreSQL: the server wrote there, not to a SQLite file
    rows = postgres.psql("SELECT d.name, f.state_type FROM flow_run f JOIN deployment d ON d.id = f.deployment_id "
                         "WHERE f.state_type = 'COMPLETED'")
    assert rows.splitlines() == ["crema-d|COMPLETED"]
    assert int(postgres.psql("SELECT count(*) FROM task_run")) >= 1
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()
    # serve stopped the server it started
    deadline = time.time() + 30
    while ls.healthy(stack.api_url) and time.time() < deadline:
        time.sleep(0.5)
    assert not ls.healthy(stack.api_url)
    cat = Catalog(catalog)
    assert len(pd.read_parquet(cat.layout.clips(cat.find_feature_set("egemaps")))) == 2
