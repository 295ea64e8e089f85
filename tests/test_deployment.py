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
    assert cat.feature_set_info(key).provenance["packages"]["opensmile"] == "2.6.0"


def _tiny_corpora(root: Path) -> dict[str, str]:
    """One small generated copy of each corpus beyond RAVDESS, in its real layout."""
    from emofuse.catalog.corpora.demo import affwild2, crema_d, iemocap, meld

    out = {c: str(root / c) for c in ("crema-d", "iemocap", "meld", "affwild2")}
    crema_d.generate(out["crema-d"], actors=1, sentences=("IEO",), emotions=("ANG", "HAP"))
    iemocap.generate(out["iemocap"], actors=1, dialogs=1, turns=2)
    meld.generate(out["meld"], actors=2, dialogues={"train": 1, "dev": 1, "test": 1}, utterances=1)
    affwild2.generate(out["affwild2"], actors=4, seconds=2.0)
    return out


@pytest.mark.slow
def test_prefect_deployment_run_extract_each_corpus(tmp_path, prefect_server):
    """`prefect deployment run extract/<corpus>` as written: the source comes from $EMOFUSE_<CORPUS>_ROOT."""
    from emofuse.flows.deployments import corpus_root_env

    stack = prefect_server["stack"]
    corpora = _tiny_corpora(tmp_path / "corpora")
    env = {**prefect_server["env"], **{corpus_root_env(c): src for c, src in corpora.items()}}
    catalog = str(tmp_path / "catalog")
    try:
        since = dt.datetime.now(dt.timezone.utc)
        ls.start_serve(stack, ["--catalog", catalog], env=env)
        ls.wait_for_deployment([f"extract/{c}" for c in corpora], prefect_server["api"], since=since)
        for corpus in corpora:
            r = subprocess.run(
                [ls.prefect_bin(), "deployment", "run", f"extract/{corpus}", "-p", 'feature_sets=["egemaps"]',
                 "--watch", "--watch-timeout", "600"],
                env=env, capture_output=True, text=True, timeout=700)
            assert r.returncode == 0 and "Completed" in r.stdout, \
                corpus + r.stdout[-3000:] + r.stderr[-3000:] + Path(stack.serve_log).read_text()[-3000:]
    finally:
        ls.stop(stack, "emofuse-serve")
    media = Catalog(catalog).media()
    for corpus, src in corpora.items():
        rows = media[media["corpus"] == corpus]
        assert len(rows) and rows["path"].str.startswith(src).all(), corpus
        labelled = rows["valence"].notna() if corpus == "affwild2" else rows["emotion"].notna()
        assert labelled.any(), corpus
    st = Catalog(catalog).status()
    assert set(media["item_id"]) <= set(st["item_id"])
