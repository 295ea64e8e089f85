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
