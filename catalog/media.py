"""The media table: one row per (item, path) registration, in ``<root>/media/``.

Rows are only ever appended (a path seen again with the same content adds nothing; a copy of
a file adds a row for its new path). Readers choose: every registration, or one row per item
(its most recently registered path). :class:`~emofuse.catalog.store.Catalog` fronts these
(``Catalog.media``, ``Catalog.add_media`` under the catalog's media lock, ``Catalog.known_files``).

Example:
    >>> import tempfile
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> rows = [{"item_id": "a", "path": "/v/a.mp4", "relpath": "a.mp4", "size": 3}]
    >>> append_media(layout, rows), append_media(layout, rows)   # the second time: nothing new
    (1, 0)
    >>> append_media(layout, [{"item_id": "a", "path": "/v/copy-of-a.mp4", "relpath": "copy-of-a.mp4", "size": 3}])
    1
    >>> len(read_media(layout, dedupe=False)), read_media(layout)["path"].tolist()
    (2, ['/v/copy-of-a.mp4'])
    >>> known_files(layout)["/v/a.mp4"][0::2]                    # (size, mtime µs, content id)
    (3, 'a')
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import MEDIA_SCHEMA
from emofuse.catalog.tables import read_arrow, read_table, utcnow


def read_media(layout: Layout, *, dedupe: bool = True) -> pd.DataFrame:
    """The media table; with ``dedupe`` one row per item (its most recently registered path), sorted by
    corpus, relpath and segment start (missing values last, then by registration)."""
    table = read_arrow(layout.media, MEDIA_SCHEMA)
    if table is None:
        return MEDIA_SCHEMA.empty_table().to_pandas()
    if dedupe and table.num_rows:
        table = _latest_sorted(table)
    return table.to_pandas()


def _latest_sorted(table: pa.Table) -> pa.Table:
    """The newest row per item of media rows, sorted, in Arrow: a million rows are taken once, not
    sorted twice as Python objects."""
    if pc.count_distinct(table["item_id"], mode="all").as_py() < table.num_rows:
        # registration order (a missing time last), reversed: the first row of an item is its newest
        oldest_first = pc.sort_indices(table, [("registered_at", "ascending", "at_end")]).to_numpy()
        ids = table["item_id"].take(oldest_first[::-1])
        newest = len(oldest_first) - 1 - pc.index_in(pc.unique(ids), value_set=ids).to_numpy()
        table = table.take(oldest_first[np.sort(newest)])
    keys = [(k, "ascending", "at_end") for k in ("corpus", "relpath", "segment_start", "registered_at")]
    return table.take(pc.sort_indices(table, keys))


def known_files(layout: Layout) -> dict[str, tuple[int, int, str]]:
    """path -> (size, mtime in µs, content id) of every registered path, to skip re-hashing.

    The content id is the item id of a whole-file item, the ``parent_id`` of a segment item.
    """
    t = read_arrow(layout.media, MEDIA_SCHEMA, columns=["path", "size", "mtime", "item_id", "parent_id"])
    if t is None:
        return {}
    # whole columns to Python at once (no per-row Timestamp): a million registered files take a second
    content = pc.coalesce(t["parent_id"], t["item_id"]).to_pylist()
    mtime_us = t["mtime"].cast(pa.int64()).to_pylist()
    return dict(zip(t["path"].to_pylist(), zip(t["size"].to_pylist(), mtime_us, content)))


def append_media(layout: Layout, rows: list[dict[str, Any]]) -> int:
    """Append the rows whose (item_id, path) pair is new as one part; returns how many.

    Not locked: the caller holds the catalog's media lock (two writers could add a pair twice).
    """
    existing = read_table(layout.media, MEDIA_SCHEMA)
    seen = set(zip(existing["item_id"], existing["path"]))
    new = [r for r in rows if (r["item_id"], r["path"]) not in seen]
    if not new:
        return 0
    now = utcnow()
    full = [{**{f.name: None for f in MEDIA_SCHEMA}, "registered_at": now, **r} for r in new]
    atomic.write_parquet(pa.Table.from_pylist(full, schema=MEDIA_SCHEMA), layout.media)
    return len(new)


def registered_items(layout: Layout, paths: Iterable[str]) -> list[str]:
    """Distinct item ids of the registered ``paths``, in path order (unregistered paths are absent)."""
    media = read_media(layout, dedupe=False)
    media = media[media["path"].isin(set(paths))]
    return list(dict.fromkeys(media.sort_values("path")["item_id"]))


__all__ = ["append_media", "known_files", "read_media", "registered_items"]
