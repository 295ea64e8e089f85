"""Extract-run summaries: batch totals, the broken-set-up check, and the file the catalog keeps."""
from __future__ import annotations

import pytest

from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary, read_extract_runs
from emofuse.pipeline.batch import BatchSummary


def _run(*batches: BatchSummary) -> ExtractRunSummary:
    run = ExtractRunSummary(run_id=ExtractRunSummary.new_run_id(), catalog="cat", source=None, corpus="ravdess")
    run.start("faces-v1-x", name="faces", items=5, already_done=0, counts={"decode_error": 1}, written=1)
    for b in batches:
        run.add(b)
    return run


def test_batches_add_up_per_feature_set() -> None:
    run = _run(BatchSummary("faces-v1-x", "t1", counts={"ok": 2}, written=2, media_seconds=4.0, wall_s=1.0,
                            runtime={"provider": "cpu"}),
               BatchSummary("faces-v1-x", "t2", counts={"ok": 1, "error": 1}, written=2, media_seconds=2.5,
                            wall_s=0.5, errors=["b.mp4: boom"]))
    fs = run.feature_sets["faces-v1-x"]
    assert fs.counts == {"decode_error": 1, "ok": 3, "error": 1} and fs.attempted == 5
    assert (fs.media_seconds, fs.task_wall_s, fs.written, run.written) == (6.5, 1.5, 5, 5)
    assert fs.errors == ["b.mp4: boom"] and fs.runtime == {"provider": "cpu"}  # an empty runtime keeps the last one
    assert "| `faces-v1-x` | 5 | 0 | 5 | decode_error=1, error=1, ok=3 | 6.5 | 1.5 |" in run.markdown()
    run.raise_if_broken()
    with pytest.raises(KeyError):
        run.add(BatchSummary("egemaps-v1-y", "t3"))  # a batch of a feature set the run did not start


def test_a_feature_set_failing_on_every_item_is_a_broken_set_up() -> None:
    failing = BatchSummary("faces-v1-x", "t1", counts={"error": 3}, errors=["a.mp4: no model file"])
    run = ExtractRunSummary(run_id="r", catalog="cat", source=None, corpus="ravdess")
    run.start("faces-v1-x", name="faces", items=3, already_done=0)
    run.add(failing)
    with pytest.raises(RuntimeError, match="every one of 3 items failed.*no model file"):
        run.raise_if_broken()
    run.feature_sets["faces-v1-x"].counts = {"error": 2}
    run.raise_if_broken()  # two failures may be bad data
    assert _run(failing).feature_sets["faces-v1-x"].counts == {"decode_error": 1, "error": 3}
    _run(failing).raise_if_broken()  # one item decoded badly: not every item failed the same way


def test_the_catalog_keeps_summaries_where_its_layout_says(tmp_path) -> None:
    cat = Catalog(str(tmp_path)).init()
    run = _run(BatchSummary("faces-v1-x", "t1", counts={"ok": 4}, written=4))
    path = cat.record_extract_run(run)
    assert path == cat.layout.extract_run(run.run_id) and cat.exists(path)
    assert read_extract_runs(cat.layout) == [run]
    assert [p.name for p in tmp_path.joinpath("extract_runs").iterdir()] == [f"{run.run_id}.json"]  # no temp files
