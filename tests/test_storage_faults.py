"""Storage faults, for real: a disk that fills during a commit, a read-only catalog, an object store that goes away.

The disk is a tmpfs the test mounts (root only: CI runs as root; a mount that fails
fails the test), resized or remounted read-only with ``mount -o remount``; the object
store is a moto S3-API server behind a TCP relay that the test stops and starts again
(:class:`tests.scaleout_servers.Relay`: moto keeps its objects in memory, so a restarted
moto would come back empty; the relay takes the server away from the clients and gives
it back with its content, as an S3 service that was unreachable for a while).

Each fault must end the ``emofuse extract`` run with one line naming the path and the
cause (no traceback), leave a catalog that pandas reads with no partial part in it, and
the next run (space freed, filesystem writable, store back) must complete with every
item extracted exactly once.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pandas as pd
import pyarrow.parquet as pq
import pytest

from emofuse.catalog.store import Catalog
from tests.scaleout_servers import BUCKET, DaskCluster, Relay, S3Server, remount, s3_environment, tmpfs

FEATURE_SETS = ["egemaps"]
#: Clips per actor in the fault corpus (two actors); the base catalog holds actor 1's.
CLIPS = 2

pytestmark = pytest.mark.slow


def _out(res: subprocess.CompletedProcess) -> str:
    return (res.stdout + res.stderr)[-4000:]


def assert_one_clear_line(stderr: str, *needles: str) -> str:
    """The run's failure is one ``emofuse extract: …`` line holding ``needles``, with no traceback anywhere."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("emofuse extract: ")]
    assert len(lines) == 1, stderr[-4000:]
    assert "Traceback" not in stderr, stderr[-4000:]
    for n in needles:
        assert n in lines[0], lines[0]
    print(lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_corpus) -> dict[str, str]:
    """``all``: 2 actors x ``CLIPS`` clips; ``first``: actor 1's clips only."""
    base = tmp_path_factory.mktemp("faults-corpus")
    for name, actors in (("first", ("01",)), ("all", ("01", "02"))):
        for actor in actors:
            os.makedirs(base / name / f"Actor_{actor}")
            for clip in sorted(os.listdir(os.path.join(demo_corpus, f"Actor_{actor}")))[:CLIPS]:
                shutil.copy(os.path.join(demo_corpus, f"Actor_{actor}", clip), base / name / f"Actor_{actor}" / clip)
    return {"first": str(base / "first"), "all": str(base / "all")}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[tuple[S3Server, Relay]]:
    """A moto S3-API server and the relay the clients reach it through."""
    s3 = S3Server(str(tmp_path_factory.mktemp("faults-s3"))).start()
    relay = Relay(s3.port).start()
    try:
        yield s3, relay
    finally:
        relay.stop()
        s3.stop()


@pytest.fixture(scope="module")
def env(prefect_server, store) -> dict[str, str]:
    """The environment of the command and the workers: the session's Prefect server, the S3 store through the
    relay; botocore's retries are cut to 2 attempts, so that a call to a store that is gone fails in about a
    second (by default it retries for ~18 s): the code path is the same."""
    s3, relay = store
    return {**prefect_server["env"], **s3.env(relay.url), "AWS_MAX_ATTEMPTS": "2"}


@pytest.fixture(scope="module")
def cluster(env, tmp_path_factory) -> Iterator[DaskCluster]:
    """An external Dask cluster shared by the runs of this module (no cluster start per run)."""
    c = DaskCluster(str(tmp_path_factory.mktemp("faults-dask")), env)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def extract_cmd(env, cluster):
    """``extract_cmd(source, catalog, wait=True)``: run ``emofuse extract`` on the module's cluster."""
    def run(source: str, catalog: str, *, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
        cmd = [sys.executable, "-m", "emofuse.flows.cli", "extract", source, "--catalog", catalog,
               "--feature-sets", *FEATURE_SETS, "--batch-size", "1", "--dask-address", cluster.address]
        if wait:
            return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return run


@pytest.fixture(scope="module")
def base_catalog(tmp_path_factory, corpus, extract_cmd) -> str:
    """A catalog holding actor 1's clips, extracted once (copied onto each test's small filesystem)."""
    root = str(tmp_path_factory.mktemp("faults-base") / "cat")
    res = extract_cmd(corpus["first"], root)
    assert res.returncode == 0, _out(res)
    return root


def _tree(root: str) -> dict[str, tuple[int, int]]:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(d, f))
            out[os.path.relpath(os.path.join(d, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


def assert_readable_and_whole(catalog: str) -> None:
    """pandas reads every table; no temporary file is left; every part is a whole Parquet file; the clip and
    index rows pandas sees are those of committed items (a failed commit took back what it wrote)."""
    leftovers = [p for p in glob.glob(f"{catalog}/**/.tmp-*", recursive=True)]
    assert leftovers == [], leftovers
    for part in glob.glob(f"{catalog}/**/part-*.parquet", recursive=True):
        pq.read_table(part)
    for table in ("media", "status"):
        pd.read_parquet(f"{catalog}/{table}")
    cat = Catalog(catalog)
    for key in cat.feature_sets():
        done = cat.done(key)
        for folder in (cat.layout.clips(key), cat.layout.seq_index(key)):
            if os.path.isdir(folder):
                assert set(pd.read_parquet(folder)["item_id"]) <= done, folder
        index = pd.read_parquet(cat.layout.seq_index(key)) if os.path.isdir(cat.layout.seq_index(key)) else None
        shards = set(os.listdir(cat.layout.shards(key))) if os.path.isdir(cat.layout.shards(key)) else set()
        assert index is None or shards == {f"{s}.zarr" for s in index["shard"]}, shards


def assert_each_item_once(catalog: str, n_items: int, read=pd.read_parquet) -> None:
    """Every item ok in every feature set, by exactly one commit (one ok status row, one clip row, one index row)."""
    cat = Catalog(catalog)
    status = read(f"{catalog}/status")
    ok = status[status["status"] == "ok"].groupby(["feature_set", "item_id"], observed=True).size()
    assert len(ok) == n_items * len(FEATURE_SETS) and (ok == 1).all(), ok[ok != 1]
    for key in cat.feature_sets():
        assert set(cat.status(key)["status"]) == {"ok"} and len(cat.status(key)) == n_items
        for folder in (cat.layout.clips(key), cat.layout.seq_index(key)):
            rows = read(folder)
            assert rows["item_id"].is_unique and len(rows) == n_items, folder
        assert len(cat.load_sequences(key)) == n_items


def _used_kb(path: str) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


def test_a_disk_that_fills_during_a_commit(tmp_path, corpus, base_catalog, extract_cmd):
    mnt = str(tmp_path / "disk")
    with tmpfs(mnt, 64 * 1024):
        catalog = os.path.join(mnt, "cat")
        shutil.copytree(base_catalog, catalog)
        used = _used_kb(mnt)
        # room for about half of what the other actor's clips need: the run fills the disk midway
        remount(mnt, f"size={used + used // 2}k")
        res = extract_cmd(corpus["all"], catalog)
        assert res.returncode != 0, f"the run fit in {used + used // 2} kB; make the disk smaller\n" + _out(res)
        assert_one_clear_line(res.stderr, f"cannot write {catalog}/", "No space left on device")
        assert_readable_and_whole(catalog)
        assert len(Catalog(catalog).done(Catalog(catalog).feature_sets()[0])) >= CLIPS  # what was there stays

        remount(mnt, "size=64m")  # space freed
        res = extract_cmd(corpus["all"], catalog)
        assert res.returncode == 0, _out(res)
        assert_readable_and_whole(catalog)
        assert_each_item_once(catalog, 2 * CLIPS)


def test_a_read_only_catalog(tmp_path, corpus, base_catalog, extract_cmd):
    mnt = str(tmp_path / "disk")
    with tmpfs(mnt, 64 * 1024):
        catalog = os.path.join(mnt, "cat")
        shutil.copytree(base_catalog, catalog)
        before = _tree(catalog)
        remount(mnt, "ro")
        try:
            res = extract_cmd(corpus["all"], catalog)
        finally:
            remount(mnt, "rw")
        assert res.returncode != 0, _out(res)
        assert_one_clear_line(res.stderr, f"{catalog}/", "Read-only file system")
        assert _tree(catalog) == before  # nothing changed
        assert_readable_and_whole(catalog)

        res = extract_cmd(corpus["all"], catalog)
        assert res.returncode == 0, _out(res)
        assert_each_item_once(catalog, 2 * CLIPS)


def test_the_object_store_going_away_mid_run(corpus, store, extract_cmd):
    s3, relay = store
    catalog = f"s3://{BUCKET}/cat"
    fs = s3.fs()
    proc = extract_cmd(corpus["all"], catalog, wait=False)

    def committed_and_claimed() -> bool:
        """Some task committed, and another one holds claims on items it is extracting now.

        The run releases claims while this looks, so a lock folder can vanish between the
        listing and its stat: that look says "not yet" and the next one looks again.
        """
        fs.invalidate_cache()
        try:
            return bool(fs.glob(f"{BUCKET}/cat/status/*/part-*") and fs.glob(f"{BUCKET}/cat/locks/egemaps-*/*.lock"))
        except FileNotFoundError:
            return False

    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not committed_and_claimed():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the store went away: " + "".join(proc.communicate())
    relay.stop()  # the store goes away mid-run, while a task holds claims
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        relay.start()  # … and comes back, with what it held
    assert proc.returncode != 0, (out + err)[-4000:]
    assert_one_clear_line(err, catalog, "does not answer", relay.url)

    for part in fs.glob(f"{BUCKET}/cat/**/part-*.parquet"):
        with fs.open(part) as f:
            pq.read_table(f)  # no partial part
    options = {"key": "test", "secret": "test", "endpoint_url": relay.url, "skip_instance_cache": True}

    def read(path: str) -> pd.DataFrame:
        return pd.read_parquet(path, storage_options=options)

    read(f"{catalog}/media")
    res = extract_cmd(corpus["all"], catalog)
    assert res.returncode == 0, _out(res)
    with s3_environment(s3.env(relay.url)):  # the catalog reads (Catalog) take the endpoint from the environment
        assert_each_item_once(catalog, 2 * CLIPS, read)
