"""Aligned rows on disk: what keeps training memory flat as the corpus grows.

A model's timeline holds every clip (or window) as a float32 block of (steps, features):
RCMA's 100 steps of face, eGeMAPS and text are ~0.4 MB a row, 4 GB for 10,000 clips. A
:class:`RowWriter` appends such blocks to an unlinked scratch file (gone when the last
reference is, even after a crash) and :meth:`RowWriter.finish` gives a read-only
:class:`RowArray`: ``rows[idx]`` reads those rows with ``pread`` into a fresh array, so the
process holds only what a batch needs (no mapping whose pages count as its memory). The
scratch file goes to :func:`tempfile.gettempdir` (``TMPDIR``); ``EMOFUSE_SCRATCH`` overrides it.

Example:
    >>> import numpy as np
    >>> w = RowWriter((2, 3))
    >>> w.append(np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    >>> w.append(np.full((1, 2, 3), -1, np.float32))
    >>> rows = w.finish()
    >>> rows.shape, len(rows)
    ((3, 2, 3), 3)
    >>> rows[np.array([2, 0])][:, 0].tolist()
    [[-1.0, -1.0, -1.0], [0.0, 1.0, 2.0]]
    >>> float(rows[1, 1, 2]), float(np.asarray(rows).sum())
    (11.0, 60.0)
"""
from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Environment variable naming the folder of scratch files (default: the system's temp folder).
SCRATCH_ENV = "EMOFUSE_SCRATCH"

#: Bytes of appended rows kept in memory before they go to the file.
FLUSH_BYTES = 32 << 20

#: Rows per block when many rows are walked (:func:`row_chunks`).
CHUNK_ROWS = 512


def scratch_dir() -> str:
    """The folder for scratch files: ``$EMOFUSE_SCRATCH``, else the system's temp folder."""
    return os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()


class RowWriter:
    """Appends float32 blocks of shape ``(n, *row_shape)`` to an unlinked scratch file."""

    def __init__(self, row_shape: tuple[int, ...], *, directory: str | None = None) -> None:
        self.row_shape = tuple(int(s) for s in row_shape)
        self.directory = directory or scratch_dir()
        fd, path = tempfile.mkstemp(prefix="emofuse-rows-", dir=self.directory)
        os.unlink(path)  # the data lives as long as the descriptor: no file left behind, even after a crash
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)  # a writer dropped unfinished closes it
        self._pending: list[np.ndarray] = []
        self._pending_bytes = 0
        self._rows = 0

    def append(self, block: np.ndarray) -> None:
        """Add rows (``block``: (n, *row_shape), cast to float32)."""
        block = np.ascontiguousarray(block, np.float32)
        if block.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {block.shape[1:]} appended to a store of {self.row_shape}")
        self._pending.append(block)
        self._pending_bytes += block.nbytes
        self._rows += len(block)
        if self._pending_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            data = memoryview(np.concatenate(self._pending)).cast("B")
            try:
                while len(data):
                    data = data[os.write(self._fd, data):]
            except OSError as e:
                raise OSError(e.errno, f"writing aligned features to a scratch file in {self.directory} failed "
                                       f"({e.strerror}); free space there or set {SCRATCH_ENV} to a larger folder") from e
        self._pending, self._pending_bytes = [], 0

    def finish(self) -> "RowArray":
        """The rows written, as a read-only :class:`RowArray` (the writer is done)."""
        self._flush()
        self._closer.detach()  # the descriptor now belongs to the array
        return RowArray(self._fd, self._rows, self.row_shape)


class RowArray:
    """A read-only float32 array of ``n`` rows in a scratch file; indexing the first axis reads them.

    Supports ``len``, ``shape``, ``dtype``, ``ndim``, ``a[i]``, ``a[i:j]``, ``a[index_array]``,
    ``a[bool_mask]`` (over rows, or rows and steps), ``a[first, rest...]`` and ``np.asarray(a)`` (reads all of it).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, fd: int, n: int, row_shape: tuple[int, ...]) -> None:
        self._fd = fd
        weakref.finalize(self, os.close, fd)  # the scratch file goes when the array does
        self._n = n
        self.row_shape = row_shape
        self._row_bytes = int(np.prod(row_shape, dtype=np.int64)) * 4

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return self._n * self._row_bytes

    def __repr__(self) -> str:
        return f"RowArray(shape={self.shape}, {self.nbytes / 2**20:.1f} MiB on disk)"

    def __reduce__(self) -> Any:
        raise TypeError("a RowArray lives in this process's scratch file; send np.asarray(rows) instead")

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (int positions, any order, repeats allowed) as a new (len(rows), *row_shape) array."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if len(rows) and (rows.min() < -self._n or rows.max() >= self._n):
            raise IndexError(f"row index out of range for {self._n} rows")
        rows = np.where(rows < 0, rows + self._n, rows)
        out = np.empty((len(rows), *self.row_shape), np.float32)
        flat = memoryview(out.reshape(-1)).cast("B")
        starts = np.flatnonzero(np.r_[True, np.diff(rows) != 1]) if len(rows) else np.zeros(0, np.int64)
        for k, j in zip(starts, np.r_[starts[1:], len(rows)]):  # one read per run of consecutive rows
            want = (j - k) * self._row_bytes
            got = os.preadv(self._fd, [flat[k * self._row_bytes:j * self._row_bytes]],
                            int(rows[k]) * self._row_bytes)
            if got != want:
                raise OSError(f"short read from the row store: {got} of {want} bytes")
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            row = self.take(np.array([int(key)]))[0]
            return row[rest] if rest else row
        if isinstance(key, slice):
            picked = self.take(np.arange(self._n)[key])
        else:
            idx = np.asarray(key)
            if idx.dtype == bool and idx.ndim > 1:  # a mask over rows and steps: read the rows it touches
                if idx.shape != self.shape[:idx.ndim]:
                    raise IndexError(f"a boolean index of shape {idx.shape} for an array of {self.shape}")
                touched = np.flatnonzero(idx.reshape(self._n, -1).any(axis=1))
                return self.take(touched)[idx[touched]]
            if idx.dtype == bool:
                if idx.shape != (self._n,):
                    raise IndexError(f"a boolean index of shape {idx.shape} for {self._n} rows")
                idx = np.flatnonzero(idx)
            picked = self.take(idx)
        return picked[(slice(None), *rest)] if rest else picked

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.take(np.arange(self._n))
        return whole if dtype is None else whole.astype(dtype)


def row_chunks(x: np.ndarray | RowArray, rows: np.ndarray, size: int | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(positions, values)`` blocks of at most ``size`` (default :data:`CHUNK_ROWS`) of ``rows``
    of an in-memory array or a :class:`RowArray`."""
    rows = np.asarray(rows, np.int64)
    size = size or CHUNK_ROWS
    for s in range(0, len(rows), size):
        sel = rows[s:s + size]
        yield sel, np.asarray(x[sel], np.float32)


def permuted(x: np.ndarray | RowArray, order: np.ndarray) -> np.ndarray | RowArray:
    """Rows ``order`` of ``x`` as a new array of the same kind (a RowArray is copied block by block)."""
    if not isinstance(x, RowArray):
        return np.asarray(x)[order]
    w = RowWriter(x.row_shape)
    for _rows, block in row_chunks(x, order):
        w.append(block)
    return w.finish()
