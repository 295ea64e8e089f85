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

import pandas as pd
import pyarrow as pa

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import MEDIA_SCHEMA
from emofuse.catalog.tables import read_table, utcnow


def read_media(layout: Layout, *, dedupe: bool = True) -> pd.DataFrame:
    """The media table; with ``dedupe`` one row per item (its most recently registered path)."""
    df = read_table(layout.media, MEDIA_SCHEMA)
    if dedupe and len(df):
        df = df.sort_values("registered_at").drop_duplicates("item_id", keep="last")
        df = df.sort_values(["corpus", "relpath", "segment_start"], na_position="last").reset_index(drop=True)
    return df


def known_files(layout: Layout) -> dict[str, tuple[int, int, str]]:
    """path -> (size, mtime in µs, content id) of every registered path, to skip re-hashing.

    The content id is the item id of a whole-file item, the ``parent_id`` of a segment item.
    """
    df = read_table(layout.media, MEDIA_SCHEMA)
    content = df["parent_id"].where(df["parent_id"].notna(), df["item_id"])
    return {path: (int(size), int(pd.Timestamp(mtime).value // 1000), item)
            for path, size, mtime, item in zip(df["path"], df["size"], df["mtime"], content)}


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
