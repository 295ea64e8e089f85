"""Compaction: merge the many small parts of an append-only table into one, safely while runs write.

Every extraction task appends a status part per feature set, every registering run a media
part; a corpus of a million items in tasks of 32 leaves ~31,000 status parts per feature set,
and reading a folder costs per part. :func:`compact` merges the parts of the tables read whole
(``media/``, ``labels/``, ``status/feature_set=*/``) into one part per folder. Every row is kept
(the status table is the attempt log: no row is dropped, none rewritten); the per-clip and index
parts of feature sets are not compacted (a reader shows them by their task's name, see
:mod:`~emofuse.catalog.commit`).

Protocol, per folder, under the catalog's ``compact`` lock (two compactions never interleave;
writers take no lock and are never blocked):

1. list the folder's parts ``P`` (parts written later are left for the next compaction);
2. read ``P`` and write them as ONE part ``part-compacted-<id>.parquet``, atomically (a hidden
   temporary name renamed into place on a local disk, one PUT on an object store), whose Parquet
   metadata lists the names it replaces (:data:`REPLACES_KEY`);
3. delete ``P``.

The catalog's readers (:func:`visible_parts`, used by :func:`~emofuse.catalog.tables.read_table`)
drop every part that a compacted part of the same folder lists, so at every instant they see each
row exactly once: before step 2 the old parts, after it the merged part (the old ones, while they
last, are dropped). A process killed between steps 2 and 3 leaves old parts that the merged part
lists: the catalog's readers still see each row once, and the next :func:`compact` or
``Catalog.repair`` (:func:`finish_interrupted`) deletes them. A reader that opens a part step 3
just deleted gets ``FileNotFoundError``; ``read_table`` reads again.

Plain readers (``pd.read_parquet(folder)``, DuckDB) know no such rule. After compaction the folder
is plain parts again, but for the moment between the rename of step 2 and the last delete of step 3
(the time to delete ``len(P)`` files: milliseconds on a local disk, one ``DeleteObjects`` request per
1,000 parts on S3), or until the next compaction/repair if the process died there, they see the
replaced rows twice. No order of renames and deletes avoids that: every single atomic step (a
rename, a delete) changes at most one visible file's rows, so merging two visible parts into one
always passes through a state with both or with neither. Readers that need an exact snapshot during
compaction read through ``Catalog`` (``status()``, ``media()``) or ``read_table``.

Example:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> from emofuse.catalog import atomic
    >>> from emofuse.catalog.tables import read_table
    >>> folder = tempfile.mkdtemp() + "/media"
    >>> for i in range(3):
    ...     _ = atomic.write_parquet(pa.table({"item_id": [f"i{i}"]}), folder, f"run{i}")
    >>> compact_folder(folder, pa.schema([("item_id", pa.string())])).parts
    3
    >>> sorted(read_table(folder)["item_id"]), len(visible_parts(*url_to_fs(folder)))
    (['i0', 'i1', 'i2'], 1)
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from emofuse.catalog import atomic
from emofuse.catalog.schemas import FRAME_LABELS_SCHEMA, MEDIA_SCHEMA, STATUS_SCHEMA
from emofuse.catalog.urls import url_of, url_to_fs

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.catalog.store import Catalog

log = logging.getLogger(__name__)

#: Parquet metadata key of a compacted part: the JSON list of the part names it replaces.
REPLACES_KEY = b"emofuse.compaction.replaces"
#: Name prefix of compacted parts (only their footers are read to apply the rule).
COMPACTED_PREFIX = "part-compacted-"
#: A folder is compacted when it holds at least this many parts (``emofuse catalog compact --min-parts``).
DEFAULT_MIN_PARTS = 64
#: Step names passed to ``on_step`` (after each step is done): what a crash between steps leaves is tested.
STEPS = ("listed", "merged", "deleted")


@dataclass(frozen=True)
class Compacted:
    """What compacting one folder did: the parts it merged, their rows, the part that holds them now."""

    folder: str
    parts: int
    rows: int
    merged: str


def _hidden(rel: str) -> bool:
    """Whether pyarrow skips a path relative to the dataset root (a component starting with ``.`` or ``_``)."""
    return any(c.startswith((".", "_")) for c in rel.split("/"))


def replaced_by(fs: fsspec.AbstractFileSystem, part: str) -> list[str]:
    """The part names a compacted part replaces (from its Parquet metadata)."""
    with fs.open(part, "rb") as f:
        meta = pq.read_schema(f).metadata or {}
    return json.loads(meta.get(REPLACES_KEY, b"[]"))


def visible_parts(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """The Parquet files a reader of folder ``path`` (searched recursively) should read: pyarrow's
    visible files, less the parts a compacted part of the same folder replaces.

    A compacted part that vanishes between the listing and the read of its metadata was compacted
    again: its replacement is newer than the listing, and the listed parts it also replaced may still
    be there, so the folder is listed again (dropping just the vanished part would lose its rows).
    """
    for attempt in range(_LIST_TRIES):
        try:
            return _visible_once(fs, path)
        except FileNotFoundError:
            if attempt == _LIST_TRIES - 1:
                raise
    raise AssertionError("unreachable")


#: Listings :func:`visible_parts` tries while compactions replace the compacted parts it listed.
_LIST_TRIES = 5


def _visible_once(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """One listing of :func:`visible_parts`; FileNotFoundError when a listed compacted part is gone."""
    if not fs.exists(path):
        return []
    root = path.rstrip("/")
    files = [f for f in fs.find(root) if f.endswith(".parquet") and not _hidden(f[len(root) + 1:])]
    dropped: set[str] = set()
    for f in files:
        folder, name = f.rsplit("/", 1)
        if name.startswith(COMPACTED_PREFIX):
            dropped.update(f"{folder}/{n}" for n in replaced_by(fs, f))
    return sorted(f for f in files if f not in dropped)


def finish_interrupted(folder: str) -> list[str]:
    """Delete parts that a compacted part of ``folder`` replaces and a killed compaction left; returns them."""
    fs, path = url_to_fs(folder)
    if not fs.exists(path):
        return []
    names = set(os.path.basename(p) for p in fs.ls(path, detail=False))
    removed = []
    for name in sorted(n for n in names if n.startswith(COMPACTED_PREFIX) and n.endswith(".parquet")):
        for old in replaced_by(fs, f"{path}/{name}"):
            if old in names and old != name:
                fs.rm(f"{path}/{old}")
                removed.append(url_of(folder, f"{path}/{old}"))
    return removed


def compact_folder(folder: str, schema: pa.Schema, *, min_parts: int = 2,
                   on_step: Callable[[str], None] | None = None) -> Compacted | None:
    """Merge the parts of one table folder (not its subfolders) into one (see the module); None when it
    holds fewer than ``min_parts`` parts. ``on_step`` is called after each of :data:`STEPS`."""
    fs, path = url_to_fs(folder)
    finish_interrupted(folder)
    parts = [p for p in visible_parts(fs, path) if p.rsplit("/", 1)[0] == path.rstrip("/")]
    if len(parts) < max(min_parts, 2):
        return None
    _step(on_step, "listed")
    table = ds.dataset(parts, filesystem=fs, format="parquet", schema=schema).to_table()
    names = [p.rsplit("/", 1)[1] for p in parts]
    table = table.replace_schema_metadata({**(schema.metadata or {}), REPLACES_KEY: json.dumps(names).encode()})
    merged = atomic.write_parquet(table, folder, f"{COMPACTED_PREFIX[len('part-'):]}{atomic.new_id()}")
    _step(on_step, "merged")
    fs.rm(parts)
    _step(on_step, "deleted")
    return Compacted(folder=folder, parts=len(parts), rows=table.num_rows, merged=merged)


def _step(on_step: Callable[[str], None] | None, name: str) -> None:
    if on_step is not None:
        on_step(name)


def compactable(cat: Catalog) -> list[tuple[str, pa.Schema]]:
    """(folder, schema) of every table folder compaction looks after: media, labels, each feature set's status."""
    layout = cat.layout
    out = [(layout.media, MEDIA_SCHEMA), (layout.labels, FRAME_LABELS_SCHEMA)]
    out += [(f"{layout.status}/{d}", STATUS_SCHEMA) for d in cat.listdir(layout.status) if d.startswith("feature_set=")]
    return out


def compact(cat: Catalog, *, min_parts: int = DEFAULT_MIN_PARTS,
            on_step: Callable[[str], None] | None = None) -> list[Compacted]:
    """Compact every folder of :func:`compactable` holding at least ``min_parts`` parts (under the catalog's
    ``compact`` lock); returns what was merged."""
    done = []
    with cat._locked("compact"):
        for folder, schema in compactable(cat):
            res = compact_folder(folder, schema, min_parts=min_parts, on_step=on_step)
            if res is not None:
                log.info("compacted %d parts (%d rows) of %s", res.parts, res.rows, folder)
                done.append(res)
    return done


def finish_all(cat: Catalog) -> list[str]:
    """What ``Catalog.repair`` calls: delete the replaced parts killed compactions left, in every folder."""
    return [p for folder, _ in compactable(cat) for p in finish_interrupted(folder)]


__all__ = ["COMPACTED_PREFIX", "Compacted", "DEFAULT_MIN_PARTS", "REPLACES_KEY", "STEPS", "compact", "compact_folder",
           "compactable", "finish_all", "finish_interrupted", "replaced_by", "visible_parts"]
