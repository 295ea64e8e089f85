"""The cluster `emofuse serve` keeps warm: flow runs against the same server use it (no cluster start), its
workers load each extractor once across tasks and runs, and the catalog content is what a run on a cluster
of its own writes."""
from __future__ import annotations

import os
import shutil
import socket

import pandas as pd
import pytest

from emofuse.catalog.store import Catalog
from emofuse.flows import runner, warm_cluster
from emofuse.flows.warm_cluster import WarmNote


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data dir of the test's own (the note lives under it); no cluster address from the environment."""
    monkeypatch.setenv("EMOFUSE_DATA", str(tmp_path / "data"))
    for k in (runner.DASK_ADDRESS_ENV, "EMOFUSE_DASK_TLS", warm_cluster.WORKERS_ENV):
        monkeypatch.delenv(k, raising=False)
    return tmp_path / "data"


def _write_note(note: WarmNote) -> None:
    path = warm_cluster.note_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(note.to_json())


def test_a_note_is_used_only_for_its_server_its_worker_count_a_live_serve_and_a_listening_scheduler(data_dir):
    api = "http://127.0.0.1:4999/api"
    with socket.socket() as s:  # something listening: the scheduler's stand-in
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        assert warm_cluster.warm_address(api) is None  # no note
        _write_note(WarmNote(address, api, 2, os.getpid()))
        assert warm_cluster.warm_address(api) == address
        assert warm_cluster.warm_address(api + "/", 2) == address
        assert warm_cluster.warm_address(api, 1) is None  # the run asked for another worker count
        assert warm_cluster.warm_address("http://127.0.0.1:5000/api") is None  # another server
        assert warm_cluster.warm_address(None) is None  # a temporary server's run never finds it
        assert runner.dask_runner(api_url=api).address == address
        _write_note(WarmNote(address, api, 2, 2 ** 22 + 12345))  # serve is gone (no such pid)
        assert warm_cluster.warm_address(api) is None
    _write_note(WarmNote(address, api, 2, os.getpid()))
    assert warm_cluster.warm_address(api) is None  # the scheduler no longer answers
    assert runner.dask_runner(api_url=api).address is None  # a local cluster of the run's own


def test_no_warm_cluster_without_an_api_or_beside_a_cluster_of_the_users(data_dir, monkeypatch):
    with warm_cluster.warm_cluster(None, n_workers=1) as address:  # workers would start servers of their own
        assert address is None
    monkeypatch.setenv(runner.DASK_ADDRESS_ENV, "tcp://10.0.0.9:8786")
    with warm_cluster.warm_cluster("http://127.0.0.1:4999/api", n_workers=1) as address:
        assert address is None
    assert not warm_cluster.note_path().exists()


def _loaded(address: str) -> dict[str, tuple[int, dict[str, int]]]:
    """Per worker: its pid and the id of every extractor it holds."""
    from distributed import Client

    def held() -> tuple[int, dict[str, int]]:
        from emofuse.pipeline import batch

        return os.getpid(), {k: id(v) for k, v in batch._EXTRACTORS.items()}

    with Client(address, timeout=60) as client:
        return client.run(held)


def _content(catalog: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Feature values, statuses and sequences of a catalog, by item: what a run must write the same."""
    cat = Catalog(catalog)
    key = cat.find_feature_set("egemaps")
    clips = cat.clips(key).drop(columns=["task_id", "run_id", "wall_s"], errors="ignore")
    clips = clips.sort_values("item_id").reset_index(drop=True)
    status = cat.status(key)[["item_id", "status", "message"]].sort_values("item_id").reset_index(drop=True)
    seqs = cat.load_sequences(key, sorted(clips["item_id"]))
    return clips, status, seqs


@pytest.mark.slow
def test_runs_against_a_server_use_the_warm_cluster_load_models_once_and_write_the_same_catalog(
        data_dir, tmp_path, demo_corpus, prefect_server, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from emofuse.flows.extract import extract

    src = tmp_path / "src"
    for clip in sorted((p for p in os.scandir(os.path.join(demo_corpus, "Actor_01")) if p.name.endswith(".mp4")),
                       key=lambda p: p.name)[:4]:
        os.makedirs(src / "Actor_01", exist_ok=True)
        shutil.copy(clip.path, src / "Actor_01" / clip.name)
    api = prefect_server["api"]
    monkeypatch.setenv("PREFECT_API_URL", api)
    with temporary_settings(updates={PREFECT_API_URL: api}):
        own = extract(source=str(src), catalog=str(tmp_path / "own"), feature_sets=["egemaps"], n_workers=1)
        with warm_cluster.warm_cluster(api, n_workers=1) as address:
            assert address and os.environ[runner.DASK_ADDRESS_ENV] == address
            assert warm_cluster.warm_address(api) == address
            # as a command in another shell: it finds the note (a plain del: monkeypatch would put the address
            # back at teardown, and every later run of this process would aim at the closed cluster)
            del os.environ[runner.DASK_ADDRESS_ENV]

            def no_cluster(*args, **kwargs):
                raise AssertionError("a run against serve's server started a cluster of its own")

            monkeypatch.setattr(runner, "local_cluster_kwargs", no_cluster)
            first = extract(source=str(src), catalog=str(tmp_path / "warm1"), feature_sets=["egemaps"])
            after_first = _loaded(address)
            second = extract(source=str(src), catalog=str(tmp_path / "warm2"), feature_sets=["egemaps"])
            after_second = _loaded(address)
        assert not warm_cluster.note_path().exists()  # serve's note goes with its cluster
    for record in (own, first, second):
        (agg,) = record["feature_sets"].values()
        assert agg["counts"] == {"ok": 4}
    # one worker, one extractor, loaded in the first run and the very same object in the second
    ((pid, held),) = after_first.values()
    assert len(held) == 1 and after_second == after_first
    # the catalog content does not depend on which cluster ran the tasks
    own_c, first_c, second_c = (_content(str(tmp_path / n)) for n in ("own", "warm1", "warm2"))
    for got in (first_c, second_c):
        pd.testing.assert_frame_equal(got[0], own_c[0])
        pd.testing.assert_frame_equal(got[1], own_c[1])
        assert sorted(got[2]) == sorted(own_c[2])
        for item, seq in own_c[2].items():
            assert sorted(got[2][item]) == sorted(seq)
            for name, arr in seq.items():
                assert (got[2][item][name] == arr).all(), (item, name)
