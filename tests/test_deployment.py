"""The deployment path as a user runs it: a real Prefect server, `emofuse serve`, and
`prefect deployment run extract/ravdess` from the command line."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from emofuse.catalog.store import Catalog
from emofuse.flows import local_server as ls


@pytest.mark.slow
def test_prefect_deployment_run_extract_ravdess(tmp_path, demo_corpus, prefect_server):
    stack, env = prefect_server["stack"], prefect_server["env"]
    catalog = str(tmp_path / "catalog")
    try:
        since = dt.datetime.now(dt.timezone.utc)
        ls.start_serve(stack, ["--source", demo_corpus, "--catalog", catalog], env=env)
        ls.wait_for_deployment(["extract/ravdess", "score/catalog"], prefect_server["api"], since=since)
        r = subprocess.run(
            [ls.prefect_bin(), "deployment", "run", "extract/ravdess", "-p", 'feature_sets=["egemaps"]',
             "--watch", "--watch-timeout", "600"],
            env=env, capture_output=True, text=True, timeout=700)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + Path(stack.serve_log).read_text()[-3000:]
        assert "Completed" in r.stdout
        # a registration older than `since` (as an earlier serve leaves it in the database) does not count
        with pytest.raises(TimeoutError):
            ls.wait_for_deployment("extract/ravdess", prefect_server["api"], wait_s=2,
                                   since=dt.datetime.now(dt.timezone.utc))
    finally:
        ls.stop(stack, "emofuse-serve")
    cat = Catalog(catalog)
    key = cat.find_feature_set("egemaps")
    assert len(pd.read_parquet(os.path.join(catalog, "features", key, "clips"))) == 32
    assert set(cat.status()["status"]) == {"ok"}
    assert cat.feature_set_info(key)["provenance"]["packages"]["opensmile"] == "2.6.0"
