"""Failures the content decides are final; transient ones are retried; ``retry_failed`` retries on purpose.

An archive of one ordinary clip and three files that cannot give every feature (an
audio-only ``.wav``: no video; a text file named ``.mp4``: decode error; a silent,
faceless video: no speech, no face) is extracted once. Item ids are content hashes, so a
second run over the unchanged files has nothing to do: it starts no Dask cluster.
"""
from __future__ import annotations

import glob
import os
import shutil

import pytest

from emofuse.catalog.schemas import Status
from emofuse.catalog.status import StatusEntry
from emofuse.catalog.store import Catalog
from emofuse.flows import extract as flow_module
from emofuse.flows.extract import extract
from emofuse.pipeline.dummies import tone, write_audio
from tests.conftest import write_silent_video
from tests.snapshots import file_snapshot

FEATURE_SETS = ["egemaps", "faces"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, demo_corpus) -> dict:
    base = tmp_path_factory.mktemp("final")
    src = base / "archive"
    src.mkdir()
    shutil.copy(sorted(glob.glob(os.path.join(demo_corpus, "Actor_01", "*.mp4")))[0], src / "good.mp4")
    write_audio(src / "memo.wav", tone(1.5))
    (src / "notes.mp4").write_text("meeting notes, not a video\n")
    write_silent_video(str(src / "silent.mp4"))
    catalog = str(base / "catalog")
    record = extract(source=str(src), catalog=catalog, corpus="archive", feature_sets=FEATURE_SETS, n_workers=1)
    return {"src": str(src), "catalog": catalog, "record": record}


@pytest.fixture
def catalog(first_run, tmp_path) -> str:
    """A private copy of the first run's catalog (item paths still point at the unchanged archive)."""
    out = str(tmp_path / "catalog")
    shutil.copytree(first_run["catalog"], out)
    return out


def _no_cluster(*args, **kwargs):
    raise AssertionError("the run started a Dask cluster")


def _statuses(catalog: str) -> dict[tuple[str, str], str]:
    cat = Catalog(catalog)
    names = dict(zip(cat.media()["item_id"], cat.media()["relpath"]))
    return {(names[r.item_id], r.feature_set.split("-v")[0]): r.status for r in cat.status().itertuples()}


def test_the_first_run_ends_every_bad_file_with_a_final_status(first_run):
    from emofuse.catalog.schemas import FINAL_FAILURES

    got = _statuses(first_run["catalog"])
    assert got[("good.mp4", "egemaps")] == got[("good.mp4", "faces")] == "ok"
    assert got[("memo.wav", "faces")] == "no_video"
    assert got[("notes.mp4", "egemaps")] == got[("notes.mp4", "faces")] == "decode_error"
    assert got[("silent.mp4", "faces")] == "no_face" and got[("silent.mp4", "egemaps")] in FINAL_FAILURES
    assert not Status.ERROR.final and Status.NO_FACE.final and not Status.OK.final


def test_a_second_run_over_final_failures_has_nothing_to_do(first_run, catalog, monkeypatch, capsys):
    before = file_snapshot(catalog, content=True)
    monkeypatch.setattr(flow_module, "dask_runner", _no_cluster)
    again = extract(source=first_run["src"], catalog=catalog, corpus="archive", feature_sets=FEATURE_SETS,
                    n_workers=1)
    for agg in again["feature_sets"].values():
        assert agg["counts"] == {} and agg["already_done"] == agg["items"] == 4, agg
    assert file_snapshot(catalog, content=True) == before
    from emofuse.flows import cli

    capsys.readouterr()
    assert cli.main(["extract", first_run["src"], "--catalog", catalog, "--corpus", "archive",
                     "--feature-sets", *FEATURE_SETS]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert file_snapshot(catalog, content=True) == before


def test_a_transient_error_is_retried_and_only_it(first_run, catalog):
    cat = Catalog(catalog)
    good = cat.media().set_index("relpath").loc["good.mp4", "item_id"]
    key = cat.find_feature_set("egemaps")
    cat.record_status(key, [StatusEntry(good, Status.ERROR, "OSError: worker lost its disk")], run_id="x")
    again = extract(source=first_run["src"], catalog=catalog, corpus="archive", feature_sets=FEATURE_SETS,
                    n_workers=1)
    assert again["feature_sets"][key]["counts"] == {"ok": 1}
    assert again["feature_sets"][cat.find_feature_set("faces")]["counts"] == {}
    assert _statuses(catalog)[("good.mp4", "egemaps")] == "ok"


def test_retry_failed_extracts_the_final_failures_again(first_run, catalog):
    again = extract(source=first_run["src"], catalog=catalog, corpus="archive", feature_sets=FEATURE_SETS,
                    n_workers=1, retry_failed=True)
    cat = Catalog(catalog)
    faces = again["feature_sets"][cat.find_feature_set("faces")]
    egemaps = again["feature_sets"][cat.find_feature_set("egemaps")]
    assert faces["counts"] == {"no_video": 1, "decode_error": 1, "no_face": 1}, faces
    assert faces["already_done"] == 1 and sum(egemaps["counts"].values()) == 4 - egemaps["already_done"] >= 2
    assert egemaps["counts"]["decode_error"] == 1
    assert _statuses(catalog) == _statuses(first_run["catalog"])  # the same content gives the same outcomes


def test_the_cli_takes_retry_failed():
    from emofuse.flows.cli import build_parser
    from emofuse.flows.params import COMMANDS

    for command in ("extract", "score-archive"):
        argv = [command, "/videos", "--retry-failed"] + (["--model", "tacfn"] if command == "score-archive" else [])
        assert COMMANDS[command].kwargs(build_parser().parse_args(argv))["retry_failed"] is True
