"""The vectorised readers of a no-op run agree with the pandas rules they replace.

``catalog.pending.pending`` (which items each feature set still has to attempt) against
``settled(read_status(...))``, and ``catalog.media.read_media``'s newest-row-per-item order against the
pandas sorts, on random tables with repeated items, equal times, missing times and unknown items.
"""
from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.media import _latest_sorted
from emofuse.catalog.pending import pending
from emofuse.catalog.schemas import MEDIA_SCHEMA, STATUS_SCHEMA
from emofuse.catalog.status import read_status, settled

T0 = pd.Timestamp("2025-01-01", tz="UTC")
STATUSES = ["ok", "error", "no_face", "decode_error", "no_audio"]


def _status_log(layout: Layout, key: str, rng: np.random.Generator) -> None:
    """Up to 4 parts of up to 4 rows (16 rows at most: pandas' sort of the reference is stable there)."""
    for p in range(int(rng.integers(0, 5))):
        n = int(rng.integers(1, 5))
        times = [None if rng.random() < 0.1 else T0 + pd.Timedelta(seconds=int(rng.integers(0, 4))) for _ in range(n)]
        rows = [{"item_id": f"i{rng.integers(0, 8)}", "status": str(rng.choice(STATUSES)), "message": "",
                 "task_id": f"t{p}", "run_id": "", "n_frames": 0, "wall_s": 0.0, "attempted_at": t} for t in times]
        atomic.write_parquet(pa.Table.from_pylist(rows, schema=STATUS_SCHEMA), layout.status_dir(key), f"p{p}")


def test_pending_is_the_complement_of_settled() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        layout = Layout.at(tempfile.mkdtemp())
        keys = ["a-v1", "b-v1", "c-v1"]
        for key in keys:
            _status_log(layout, key, rng)
        ids = [f"i{i}" for i in rng.permutation(10)[:int(rng.integers(0, 10))]]  # i8, i9: never attempted
        for retry in (False, True):
            masks = pending(layout, keys, ids, retry_failed=retry)
            for key in keys:
                done = settled(read_status(layout, key), retry_failed=retry)
                assert masks[key].tolist() == [i not in done for i in ids], (key, retry)


def test_pending_answers_repeated_ids_per_position() -> None:
    layout = Layout.at(tempfile.mkdtemp())
    rows = [{"item_id": "x", "status": "ok", "message": "", "task_id": "t", "run_id": "", "n_frames": 0,
             "wall_s": 0.0, "attempted_at": T0}]
    atomic.write_parquet(pa.Table.from_pylist(rows, schema=STATUS_SCHEMA), layout.status_dir("a-v1"), "t")
    assert pending(layout, ["a-v1"], ["x", "y", "x"])["a-v1"].tolist() == [False, True, False]


def test_media_newest_row_per_item_in_corpus_order() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 16))
        rows = [{**{f.name: None for f in MEDIA_SCHEMA}, "item_id": f"i{rng.integers(0, 6)}", "path": f"/p{k}",
                 "corpus": rng.choice(["a", "b", None]), "relpath": rng.choice(["x", "y", None]),
                 "segment_start": rng.choice([None, 1.0, 2.0]),
                 "registered_at": None if rng.random() < 0.1 else T0 + pd.Timedelta(seconds=int(rng.integers(0, 3)))}
                for k in range(n)]
        table = pa.Table.from_pylist(rows, schema=MEDIA_SCHEMA)
        df = table.to_pandas()
        want = df.sort_values("registered_at", kind="stable").drop_duplicates("item_id", keep="last")
        want = want.sort_values(["corpus", "relpath", "segment_start"], na_position="last").reset_index(drop=True)
        pd.testing.assert_frame_equal(_latest_sorted(table).to_pandas(), want)
