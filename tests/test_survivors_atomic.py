"""A Parquet part write that fails half-way (the disk fills) leaves the folder's old parts only.

A real fault: a small tmpfs (mounted by the test; root only, as in test_storage_faults) is
shrunk until the new part cannot fit, so pyarrow's writer fails part-way through the file.
Then no new file is left in the folder, a part of the same name keeps its old content, and
pandas reads the folder as it was.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from emofuse.catalog.atomic import write_parquet
from scaleout_servers import remount, tmpfs  # tests/ is on the path (conftest.py), as for synthetic_catalog


def _used_kb(path: str) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


def _big_table(n: int = 400_000) -> pa.Table:
    """About 3 MB of incompressible values: far more than the room left on the shrunk disk."""
    return pa.table({"x": np.random.default_rng(0).random(n), "k": np.arange(n)})


@pytest.mark.parametrize("name", ["new", "old"])  # a part of a new name, and a re-write of an existing part
def test_a_part_write_that_fails_half_way_leaves_the_old_parts(tmp_path, name):
    mnt = str(tmp_path / "disk")
    with tmpfs(mnt, 16 * 1024):
        folder = os.path.join(mnt, "table")
        old = pd.DataFrame({"x": [0.5, 1.5], "k": [1, 2]})
        write_parquet(pa.Table.from_pandas(old, preserve_index=False), folder, name="old")
        before = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
        assert list(before) == ["part-old.parquet"]
        remount(mnt, f"size={_used_kb(mnt) + 256}k")  # room for a quarter of the new part
        try:
            with pytest.raises(OSError, match="No space left on device"):
                write_parquet(_big_table(), folder, name=name)
            after = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
            assert after == before  # no half-written part, no temporary file, the old part intact
            pd.testing.assert_frame_equal(pd.read_parquet(folder), old)
        finally:
            remount(mnt, "size=16m")


# The formats atomic.py promises (found untested by the mutation run, docs/mutation.md).

def test_json_files_are_sorted_indented_and_the_first_writer_can_win(tmp_path):
    import datetime as dt

    from emofuse.catalog.atomic import write_json

    path = str(tmp_path / "run" / "config.json")
    when = dt.datetime(2025, 1, 1, 12, 0)
    assert write_json({"b": 1, "a": {"d": when, "c": [1, 2]}}, path) is True
    assert open(path).read() == ('{\n  "a": {\n    "c": [\n      1,\n      2\n    ],\n    "d": "2025-01-01 12:00:00"\n'
                                 '  },\n  "b": 1\n}')  # byte for byte: re-running writes the same file
    assert write_json({"b": 2}, path) is True and open(path).read() == '{\n  "b": 2\n}'  # replaced by default
    assert write_json({"b": 3}, path, overwrite=False) is False and open(path).read() == '{\n  "b": 2\n}'


def test_new_ids_are_16_hex_digits():
    import re

    from emofuse.catalog.atomic import new_id

    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


def test_zarr_shards_name_their_dimensions_and_chunk_by_rows(tmp_path):
    import zarr

    from emofuse.catalog.atomic import write_zarr_shard

    n = 70_000  # more rows than one chunk holds
    path = str(tmp_path / "shards" / "task-1.zarr")
    write_zarr_shard(path, np.arange(n), {"values": np.ones((n, 3), np.float32), "mask": np.ones(n, bool)},
                     {"feature_set": "fs-v1"})
    g = zarr.open_group(path, mode="r")
    assert g.metadata.zarr_format == 3 and g.attrs["feature_set"] == "fs-v1"
    assert g["times"].dtype == np.float64 and g["times"].chunks == (65536,)
    assert g["times"].metadata.dimension_names == ("row",)
    assert g["values"].metadata.dimension_names == ("row", "values_dim1") and g["values"].chunks == (65536, 3)
    assert g["mask"].dtype == np.uint8 and g["mask"].metadata.dimension_names == ("row",)
    small = str(tmp_path / "shards" / "task-2.zarr")
    write_zarr_shard(small, np.array([0.5]), {"values": np.ones((1, 2), np.float32)})
    assert zarr.open_group(small, mode="r")["values"].chunks == (1, 2)
    assert sorted(os.listdir(tmp_path / "shards")) == ["task-1.zarr", "task-2.zarr"]  # no temporary left
