"""Atomic writes: a reader never sees a partial Parquet part, Zarr shard or JSON file.

Everything is written under a hidden temporary name (``.tmp-…``, which pyarrow
and pandas skip when reading a folder) and renamed into place in one step.
On a local disk the rename is atomic; on object stores a single ``put`` is, and
Zarr shards become visible to our readers only through their index part, which
is written after the shard.

Example:
    >>> import os, tempfile
    >>> import pyarrow as pa
    >>> folder = tempfile.mkdtemp()
    >>> write_bytes(os.path.join(folder, "claim"), b"first", overwrite=False)
    True
    >>> write_bytes(os.path.join(folder, "claim"), b"second", overwrite=False)  # the first writer wins
    False
    >>> part = write_parquet(pa.table({"x": [1, 2]}), os.path.join(folder, "table"), name="0")
    >>> os.path.relpath(part, folder), sorted(os.listdir(folder))  # no temporary file is left
    ('table/part-0.parquet', ['claim', 'table'])
"""
from __future__ import annotations

import functools
import inspect
import io
import json
import os
import shutil
import uuid
from typing import Any, Callable, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr
from emofuse.catalog.storage_errors import guarded
from emofuse.catalog.urls import fs_path, is_local, local_path, url_to_fs

_F = TypeVar("_F", bound=Callable[..., Any])


def _names_path(param: str) -> Callable[[_F], _F]:
    """A write whose storage failures (disk full, read-only, store unreachable) are raised as a
    :class:`~emofuse.catalog.storage_errors.StorageError` naming the path in argument ``param``."""
    def wrap(fn: _F) -> _F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with guarded(str(signature.bind_partial(*args, **kwargs).arguments.get(param, "?"))):
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return wrap


def new_id() -> str:
    """A fresh random id for a task, a part or a run."""
    return uuid.uuid4().hex[:16]


@_names_path("folder")
def write_parquet(table: pa.Table, folder: str, name: str | None = None) -> str:
    """Write ``table`` as ``folder/part-<name>.parquet`` atomically; return the final path.

    An existing part of the same name is replaced in one step (same content
    for a deterministic name, so re-running is harmless).
    """
    name = name or new_id()
    final = f"{folder}/part-{name}.parquet"
    tmp = f"{folder}/.tmp-{new_id()}.parquet"
    if is_local(folder):
        os.makedirs(local_path(folder), exist_ok=True)
        try:
            pq.write_table(table, local_path(tmp), compression="zstd")
            with open(local_path(tmp), "rb+") as f:
                os.fsync(f.fileno())
            os.replace(local_path(tmp), local_path(final))
        finally:
            if os.path.exists(local_path(tmp)):
                os.remove(local_path(tmp))
    else:
        fs, path = url_to_fs(final)
        fs.makedirs(fs_path(folder), exist_ok=True)
        buf = io.BytesIO()  # the whole part first: a writer that fails midway uploads nothing
        pq.write_table(table, buf, compression="zstd")
        fs.pipe_file(path, buf.getvalue())  # one PUT: atomic on object stores
    return final


@_names_path("path")
def write_bytes(path: str, data: bytes, *, overwrite: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically; with ``overwrite=False`` an existing file wins (returns False).

    Locally: a hidden temporary file, fsync, then rename (or hard link, which
    fails if the name exists: first writer wins). Remotely: one PUT, conditional
    (create only if absent) when ``overwrite=False``.
    """
    if is_local(path):
        p = local_path(path)
        if not overwrite and os.path.exists(p):
            return False
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = os.path.join(os.path.dirname(p), f".tmp-{new_id()}-{os.path.basename(p)}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if overwrite:
                os.replace(tmp, p)
                return True
            try:
                os.link(tmp, p)
                return True
            except FileExistsError:
                return False
        finally:
            if os.path.exists(tmp):  # renamed away on success; a failed write leaves nothing behind
                os.remove(tmp)
    fs, p = url_to_fs(path)
    fs.makedirs(os.path.dirname(p), exist_ok=True)
    if overwrite:
        with fs.open(p, "wb") as f:
            f.write(data)
        return True
    try:  # exclusive create: a conditional PUT (If-None-Match: *) on S3, a generation precondition on GCS
        with fs.open(p, "xb") as f:
            f.write(data)
    except FileExistsError:
        return False
    except (NotImplementedError, ValueError) as e:
        raise NotImplementedError(
            f"{path}: the {type(fs).__name__} filesystem cannot create a file only if it is absent ({e}); "
            "emofuse's claims need that on a shared catalog (s3:// with s3fs, gs:// with gcsfs, or a local "
            "folder)") from e
    return True


def write_json(obj: Any, path: str, *, overwrite: bool = True) -> bool:
    """Write JSON atomically (see :func:`write_bytes`)."""
    return write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), overwrite=overwrite)


@_names_path("path")
def write_zarr_shard(
    path: str,
    times: np.ndarray,
    arrays: dict[str, np.ndarray],
    attrs: dict[str, Any] | None = None,
) -> str:
    """Write a Zarr v3 group with ``times`` and ``arrays`` (all of first dim N) at ``path`` atomically.

    Arrays carry ``dimension_names`` (``row``, ``<name>_dim1`` …) so xarray can
    open the group as a Dataset without our code.
    """
    if is_local(path):
        final = local_path(path)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".tmp-{new_id()}.zarr")
        try:
            _fill_group(tmp, times, arrays, attrs)
        except BaseException:  # e.g. disk full midway: leave no half-written shard behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if os.path.exists(final):  # same task id re-written: keep the committed one
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
        return path
    _fill_group(path, times, arrays, attrs)
    return path


def _fill_group(where: str, times: np.ndarray, arrays: dict[str, np.ndarray], attrs: dict[str, Any] | None) -> None:
    group = zarr.open_group(where, mode="w", zarr_format=3)
    if attrs:
        group.attrs.update(attrs)
    n = len(times)
    rows_per_chunk = max(1, min(n, 65536))
    group.create_array("times", data=np.asarray(times, np.float64), chunks=(rows_per_chunk,),
                       dimension_names=("row",))
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        dims = ("row",) + tuple(f"{name}_dim{i}" for i in range(1, arr.ndim))
        chunks = (rows_per_chunk,) + arr.shape[1:]
        group.create_array(name, data=arr, chunks=chunks, dimension_names=dims)
