"""fusion.row_store: aligned rows on disk read back exactly, nothing left behind, and training
that reads features a block or a batch at a time (so its memory does not grow with the corpus)."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest
import torch

from emofuse.fusion import row_store
from emofuse.fusion.align import load_aligned
from emofuse.fusion.dataset import FusionDataset, NormStats
from emofuse.fusion.row_store import RowArray, RowWriter
from synthetic_catalog import build_synthetic_catalog, data_config


def _stored(rng: np.random.Generator, tmp_path, monkeypatch, n: int = 37) -> tuple[np.ndarray, RowArray]:
    monkeypatch.setenv(row_store.SCRATCH_ENV, str(tmp_path))
    monkeypatch.setattr(row_store, "FLUSH_BYTES", 200)  # several flushes
    whole = rng.normal(size=(n, 3, 2)).astype(np.float32)
    w = RowWriter((3, 2))
    for a, b in [(0, 5), (5, 6), (6, 20), (20, 20), (20, n)]:
        w.append(whole[a:b])
    return whole, w.finish()


def test_rows_read_back_as_the_array_they_were(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    whole, rows = _stored(rng, tmp_path, monkeypatch)
    assert rows.shape == whole.shape and len(rows) == len(whole) and rows.ndim == 3 and rows.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(rows), whole)
    for _ in range(20):
        idx = rng.integers(-len(whole), len(whole), size=rng.integers(1, 15))
        np.testing.assert_array_equal(rows[idx], whole[idx])
    for key in [slice(None), slice(3, 30, 4), slice(None, None, -3), 0, -1, 17, (5, 2), (slice(1, 9), 1, 0),
                (np.array([4, 2, 2]), slice(None), 1), whole[:, 0, 0] > 0, whole[:, :, 0] > 0.5]:
        np.testing.assert_array_equal(rows[key], whole[key], err_msg=repr(key))
    with pytest.raises(IndexError):
        rows[np.array([len(whole)])]
    with pytest.raises(ValueError, match="shape"):
        RowWriter((3, 2)).append(np.zeros((1, 2, 3), np.float32))


def test_the_scratch_file_is_never_visible_and_closes_with_the_array(tmp_path, monkeypatch):
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = fds()
    whole, rows = _stored(np.random.default_rng(1), tmp_path, monkeypatch)
    assert os.listdir(tmp_path) == []  # unlinked at creation: a crash leaves nothing
    assert fds() == before + 1
    with pytest.raises(TypeError, match="np.asarray"):
        __import__("pickle").dumps(rows)
    del rows
    gc.collect()
    assert fds() == before
    unfinished = RowWriter((2,))
    unfinished.append(np.ones((4, 2), np.float32))
    del unfinished
    gc.collect()
    assert fds() == before


class _Reads:
    """Records how many rows each read of a RowArray asks for."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        real = RowArray.take

        def take(arr, rows):
            self.sizes.append(len(np.asarray(rows).reshape(-1)))
            return real(arr, rows)

        monkeypatch.setattr(RowArray, "take", take)


def test_statistics_and_batches_read_features_a_block_at_a_time(tmp_path, monkeypatch):
    cat, _media = build_synthetic_catalog(tmp_path / "cat", n_speakers=4, reps=2, with_text=False)
    data = load_aligned(cat, data_config())
    assert all(isinstance(x, RowArray) for x in data.x.values())
    memory = {m: np.asarray(x) for m, x in data.x.items()}
    rows = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02", "Actor_03"]))
    assert len(rows) > 12
    # statistics in blocks of 5 rows, merged: the same as over all valid steps at once
    monkeypatch.setattr(row_store, "CHUNK_ROWS", 5)
    reads = _Reads(monkeypatch)
    norm = NormStats.compute(data, rows)
    assert reads.sizes and max(reads.sizes) <= 5
    for m, x in memory.items():
        vals = x[rows][data.mask[m][rows]].astype(np.float64)
        np.testing.assert_allclose(norm.mean[m], vals.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(norm.std[m], np.where(vals.std(axis=0) < 1e-6, 1.0, vals.std(axis=0)),
                                   rtol=1e-5, atol=1e-6)
    # a dataset holds no features; each batch reads its own rows, normalised on valid steps only
    reads.sizes.clear()
    ds = FusionDataset(data, rows, norm)
    assert reads.sizes == []
    seen = 0
    for b in ds.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)):
        local = b.rows.numpy()
        for m, x in memory.items():
            raw, valid = x[rows[local]], data.mask[m][rows[local]]
            want = np.where(valid[..., None], (raw - norm.mean[m]) / norm.std[m], 0.0)
            np.testing.assert_allclose(b.inputs[m].numpy(), want, rtol=1e-6, atol=1e-6)
        seen += len(local)
    assert seen == len(rows) and max(reads.sizes) <= 4


def test_a_full_scratch_folder_says_where_and_what_to_do(tmp_path):
    """A write the file system refuses (here: a file-size limit, EFBIG) names the folder and the variable."""
    import subprocess
    import sys

    code = f"""
import resource, signal, numpy as np
from emofuse.fusion import row_store
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
w = row_store.RowWriter((256,), directory={str(tmp_path)!r})
try:
    for _ in range(8):
        w.append(np.ones((1024, 256), np.float32))
    w.finish()
except OSError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert str(tmp_path) in out.stdout and "EMOFUSE_SCRATCH" in out.stdout and "free space" in out.stdout
