"""Scale-out for real: a catalog on an S3-API server on loopback, extracted by an external Dask cluster.

One moto S3 server, one ``dask scheduler`` with two ``dask worker`` processes and one small
corpus (6 clips, 3 speakers) serve every test here. Runs go through the ``emofuse`` command,
as a user's would: the catalog URL is ``s3://…``, the workers get the endpoint from
``AWS_ENDPOINT_URL`` like the command itself.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from emofuse.catalog.store import Catalog
from tests.scaleout_servers import BUCKET, DaskCluster, S3Server, dask_cluster, s3_server  # noqa: F401

FEATURE_SETS = ["egemaps", "faces"]
#: The feature set of the concurrency and worker-kill runs (what they test is claims and commits, not extractors).
FAST_SETS = ["egemaps"]
TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
PLAN = [{"fold": 0, "train": ["Actor_01"], "val": ["Actor_03"], "test": ["Actor_02"]}]
#: Columns that differ between two runs over the same media (ids, times), not content.
RUN_COLUMNS = ["task_id", "run_id", "attempted_at", "wall_s", "registered_at", "mtime"]

pytestmark = pytest.mark.slow


def emofuse(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``emofuse`` command (a fresh process, as a user would)."""
    return subprocess.run([sys.executable, "-m", "emofuse.flows.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def output(res: subprocess.CompletedProcess) -> str:
    return (res.stdout + res.stderr)[-4000:]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_corpus) -> str:
    """Six demo clips of three speakers (the third speaker's clips are actor 1's second statement)."""
    src = tmp_path_factory.mktemp("scaleout") / "corpus"
    for actor, speaker, statement in (("01", "01", "01"), ("02", "02", "01"), ("01", "03", "02")):
        os.makedirs(src / f"Actor_{speaker}")
        for emotion in ("01", "05"):
            shutil.copy(os.path.join(demo_corpus, f"Actor_{actor}", f"01-01-{emotion}-01-{statement}-01-{actor}.mp4"),
                        src / f"Actor_{speaker}" / f"01-01-{emotion}-01-{statement}-01-{speaker}.mp4")
    return str(src)


@pytest.fixture(scope="module")
def env(s3_server, prefect_server) -> dict[str, str]:
    """The environment of the command's processes: the test's Prefect server and the S3 endpoint."""
    return {**prefect_server["env"], **s3_server.env()}


def extract_args(source: str, catalog: str, cluster: DaskCluster, *extra: str,
                 feature_sets: list[str] = FEATURE_SETS) -> list[str]:
    return ["extract", source, "--catalog", catalog, "--feature-sets", *feature_sets, "--dask-address",
            cluster.address, *extra]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emofuse.flows.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def extracted(corpus, env, dask_cluster, tmp_path_factory) -> dict[str, str]:
    """The corpus extracted by the external cluster into ``s3://…/cat`` and, at the same time, into a local folder."""
    s3 = f"s3://{BUCKET}/cat"
    local = str(tmp_path_factory.mktemp("scaleout-local") / "cat")
    procs = [start(extract_args(corpus, catalog, dask_cluster, "--batch-size", "2"), env) for catalog in (s3, local)]
    for p in procs:  # the two runs share the cluster, as two users would
        out = p.communicate(timeout=600)[0]
        assert p.returncode == 0, out[-4000:] + dask_cluster.logs()
    return {"s3": s3, "local": local}


def _content(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    drop = [c for c in RUN_COLUMNS if c in df.columns]
    return df.drop(columns=drop).sort_values(key).reset_index(drop=True)


def _s3_objects(s3: S3Server, root: str) -> dict[str, tuple[int, str]]:
    """key -> (size, ETag) of every object under ``root``, claims aside (they come and go while tasks run)."""
    fs = s3.fs()
    return {k: (v["size"], v.get("ETag", "")) for k, v in fs.find(root.split("://", 1)[1], detail=True).items()
            if "/locks/" not in k}


def test_extract_into_s3_with_an_external_cluster_equals_a_local_folder(extracted, corpus, env, dask_cluster,
                                                                        s3_server):
    remote, local = Catalog(extracted["s3"]), Catalog(extracted["local"])
    pd.testing.assert_frame_equal(_content(remote.media(), ["item_id"]), _content(local.media(), ["item_id"]))
    assert len(remote.media()) == 6
    assert remote.feature_sets() == local.feature_sets() and len(remote.feature_sets()) == 2
    st_r, st_l = (_content(c.status(), ["feature_set", "item_id"]) for c in (remote, local))
    pd.testing.assert_frame_equal(st_r, st_l)
    assert set(st_r["status"]) == {"ok"} and len(st_r) == 12
    for key in remote.feature_sets():
        clips_r, clips_l = (c.clips(key).sort_values("item_id").reset_index(drop=True) for c in (remote, local))
        assert list(clips_r.columns) == list(clips_l.columns) and len(clips_r) == 6
        for col in clips_r.columns:
            a, b = clips_r[col], clips_l[col]
            if a.dtype == object and isinstance(a.iloc[0], np.ndarray):
                np.testing.assert_allclose(np.stack(a.to_numpy()), np.stack(b.to_numpy()), rtol=1e-6, atol=1e-6)
            elif a.dtype.kind == "f":
                np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6, atol=1e-6, err_msg=col)
            else:
                assert a.tolist() == b.tolist(), col
        seq_r, seq_l = remote.load_sequences(key), local.load_sequences(key)
        assert sorted(seq_r) == sorted(seq_l) and len(seq_r) == 6
        for item, arrays in seq_r.items():
            assert sorted(arrays) == sorted(seq_l[item])
            for name, values in arrays.items():
                np.testing.assert_allclose(values, seq_l[item][name], rtol=1e-6, atol=1e-6, err_msg=f"{key} {name}")

    # plain pandas reads the tables from s3:// (s3fs, endpoint from the environment)
    root = extracted["s3"]
    assert len(pd.read_parquet(f"{root}/media")) == 6
    status = pd.read_parquet(f"{root}/status")
    assert len(status) == 12 and set(status["status"]) == {"ok"}
    key = remote.find_feature_set("egemaps")
    assert len(pd.read_parquet(f"{root}/features/{key}/clips").columns) >= 88

    # a second run writes nothing
    before = _s3_objects(s3_server, root)
    res = emofuse(*extract_args(corpus, root, dask_cluster), env=env)
    assert res.returncode == 0, output(res)
    assert _s3_objects(s3_server, root) == before


def test_train_and_score_archive_on_s3(extracted, corpus, env, dask_cluster, tmp_path):
    from emofuse.fusion import training_run

    root = extracted["s3"]
    res = training_run.train(root, model="tacfn", feature_sets=FEATURE_SETS, model_config=TINY_TACFN, epochs=2, folds=PLAN,
                             seed=0, threads=1)
    cat = Catalog(root)
    assert res.run_id in cat.runs() and res.run_dir.startswith("s3://")
    assert any(f.endswith(".safetensors") for f in cat.run(res.run_id).manifest()["files"])

    # score-archive: a copy of two clips (known by content: nothing to extract), predictions written to s3://
    archive = tmp_path / "archive"
    archive.mkdir()
    for p in sorted(os.listdir(os.path.join(corpus, "Actor_02"))):
        shutil.copy(os.path.join(corpus, "Actor_02", p), archive / p)
    out = emofuse("score-archive", str(archive), "--catalog", root, "--run", res.run_id, "--dask-address",
                  dask_cluster.address, env=env)
    assert out.returncode == 0, output(out)
    preds = Catalog(root).predictions(run_id=res.run_id)  # the wide frame: p_<class> columns
    preds = preds[preds["window"] == "clip"]
    assert len(preds) == 2, preds
    probs = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def _ok_commits(catalog: str) -> pd.DataFrame:
    """Every ``ok`` status row ever written (the log, not the latest view): one per item and feature set."""
    status = pd.read_parquet(f"{catalog}/status")
    return status[status["status"] == "ok"]


def _assert_once_each(catalog: str, n_items: int, n_sets: int) -> None:
    """Each item extracted exactly once per feature set: one ok commit, one clip row, one index row; all ok."""
    cat = Catalog(catalog)
    ok = _ok_commits(catalog)
    counts = ok.groupby(["feature_set", "item_id"], observed=True).size()
    assert (counts == 1).all() and len(counts) == n_items * n_sets, counts[counts != 1]
    for key in cat.feature_sets():
        clips = pd.read_parquet(cat.layout.clips(key))
        index = pd.read_parquet(cat.layout.seq_index(key))
        assert clips["item_id"].is_unique and len(clips) == n_items, key
        assert index["item_id"].is_unique and len(index) == n_items, key
        seqs = cat.load_sequences(key)
        assert len(seqs) == n_items and all(np.isfinite(s["values"]).all() for s in seqs.values())
        assert set(cat.status(key)["status"]) == {"ok"}


def test_two_concurrent_runs_on_one_s3_catalog_extract_each_item_once(corpus, env, dask_cluster):
    catalog = f"s3://{BUCKET}/concurrent"
    procs = [start(extract_args(corpus, catalog, dask_cluster, "--batch-size", "1", feature_sets=FAST_SETS), env)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    _assert_once_each(catalog, 6, len(FAST_SETS))


def test_a_worker_killed_mid_run_then_the_next_run_completes(corpus, env, dask_cluster, s3_server):
    catalog = f"s3://{BUCKET}/killed"
    proc = start(extract_args(corpus, catalog, dask_cluster, "--batch-size", "1", feature_sets=FAST_SETS), env)
    fs = s3_server.fs()
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not fs.glob(f"{BUCKET}/killed/status/*/part-*.parquet"):
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before any task committed: " + proc.stdout.read()[-3000:]
    dask_cluster.kill_worker()  # its nanny starts a new worker process; the task it ran is lost
    out = proc.communicate(timeout=600)[0]
    # completes, or fails with one clear line (no traceback flood)
    assert proc.returncode == 0 or ("emofuse extract:" in out and "Traceback" not in out), out[-4000:]
    dask_cluster.wait_for_workers()
    res = emofuse(*extract_args(corpus, catalog, dask_cluster, feature_sets=FAST_SETS), env=env)
    assert res.returncode == 0, output(res)
    _assert_once_each(catalog, 6, len(FAST_SETS))
