"""Bring a catalog written by an older layout to the current one: every part of a table in its one schema.

Layout 1 stored class probabilities and attributions as columns (``p_<class>``, ``attr_*``)
whose set varied between runs, and older parts of the fixed tables may lack columns added
since (or carry null-typed columns); pyarrow and DuckDB take a folder's schema from one part,
so such a folder did not read whole. :func:`migrate` rewrites each of those parts in the
current schema (:mod:`~emofuse.catalog.prediction_rows` for predictions, null columns for
fields added later) **under its own name**: one atomic replace per part (rename on a local
disk, one PUT on an object store). A reader sees a part either old or new, never both, never
neither, so a crash at any point loses and repeats no row; the readers of this package read
both shapes, and the next :func:`migrate` finishes the job. The manifest's ``layout_version``
is raised only once every part is done, which is also what makes a migrated catalog cost
nothing to check again. ``Catalog.repair`` (``emofuse catalog repair``) runs it.

Example:
    >>> import json, os, tempfile
    >>> import pyarrow.parquet as pq
    >>> from emofuse.catalog.layout import Layout
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> os.makedirs(layout.media)
    >>> pq.write_table(pa.table({"item_id": ["a"], "path": ["/a.mp4"]}), f"{layout.media}/part-old.parquet")
    >>> with open(layout.manifest, "w") as f:
    ...     json.dump({"layout_version": 1}, f)
    >>> [p.rsplit("/", 2)[-2:] for p in migrate(layout)]
    [['media', 'part-old.parquet']]
    >>> pq.read_schema(f"{layout.media}/part-old.parquet").names == MEDIA_SCHEMA.names
    True
    >>> migrate(layout)     # layout_version is current now: nothing to look at
    []
"""
from __future__ import annotations

import json
import logging
import os

import pyarrow as pa
import pyarrow.parquet as pq

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.prediction_rows import from_legacy, is_current
from emofuse.catalog.predictions import prediction_parts
from emofuse.catalog.schemas import (FRAME_LABELS_SCHEMA, LAYOUT_VERSION, MEDIA_SCHEMA, SEQ_INDEX_SCHEMA,
                                     STATUS_SCHEMA, TIME_ATTRIBUTION_INDEX_SCHEMA)
from emofuse.catalog.tables import conform
from emofuse.catalog.urls import fs_path, url_to_fs

log = logging.getLogger(__name__)


def layout_version(layout: Layout) -> int | None:
    """The manifest's ``layout_version`` (None without a manifest)."""
    fs, path = url_to_fs(layout.manifest)
    try:
        with fs.open(path, "rb") as f:
            return int(json.load(f).get("layout_version", 1))
    except FileNotFoundError:
        return None


def migrate(layout: Layout) -> list[str]:
    """Rewrite every part of an older layout in its table's current schema; return the parts rewritten.

    A catalog whose manifest says the current layout is not looked at (a catalog without a
    manifest is, and is left without one). A part with a column its table does not declare is
    left as it is (with a warning), and the manifest keeps its version until that is resolved.
    """
    version = layout_version(layout)
    if version is not None and version >= LAYOUT_VERSION:
        return []
    fs = layout.fs
    done: list[str] = []
    left: list[str] = []

    def rewrite(part: str, table: pa.Table, schema: pa.Schema | None) -> None:
        try:
            new = from_legacy(table) if schema is None else conform(table, schema)
        except ValueError as e:  # a column the schema does not know: keep the part, say so
            log.warning("%s keeps its layout-%s schema: %s", part, version, e)
            left.append(part)
            return
        done.append(_replace(layout, part, new))

    for part in prediction_parts(layout.predictions)[1]:
        table = _read(fs, part)
        if not is_current(table.schema):
            rewrite(part, table, None)
    for folder, schema, partition_key in _fixed_tables(layout):
        for part in _parts(fs, folder):
            table = _read(fs, part)
            if partition_key in table.schema.names:  # early status parts: the folder name says it
                table = table.drop_columns([partition_key])
            if not table.schema.equals(schema):
                rewrite(part, table, schema)
    for key in _names(fs, layout.features):
        tables = {p: _read(fs, p) for p in _parts(fs, layout.clips(key))}
        schemas = [t.schema for t in tables.values()]
        if any(not s.equals(schemas[0]) for s in schemas[1:]):
            schema = pa.unify_schemas(schemas, promote_options="permissive")
            for p, t in tables.items():
                if not t.schema.equals(schema):
                    rewrite(p, t, schema)
    if version is not None and not left:
        fs_, path = url_to_fs(layout.manifest)
        with fs_.open(path, "rb") as f:
            manifest = json.load(f)
        atomic.write_json({**manifest, "layout_version": LAYOUT_VERSION}, layout.manifest)
    if done:
        log.warning("migrated %d parts to catalog layout %d", len(done), LAYOUT_VERSION)
    return done


def _fixed_tables(layout: Layout) -> list[tuple[str, pa.Schema, str | None]]:
    """Every folder of a table with a fixed schema: the folder, its schema, its Hive partition key."""
    fs = layout.fs
    out: list[tuple[str, pa.Schema, str | None]] = [(layout.media, MEDIA_SCHEMA, None),
                                                    (layout.labels, FRAME_LABELS_SCHEMA, None)]
    out += [(f"{layout.status}/{d}", STATUS_SCHEMA, "feature_set") for d in _names(fs, layout.status)
            if d.startswith("feature_set=")]
    out += [(layout.seq_index(k), SEQ_INDEX_SCHEMA, None) for k in _names(fs, layout.features)]
    out += [(f"{layout.attributions}/{d}/index", TIME_ATTRIBUTION_INDEX_SCHEMA, "run")
            for d in _names(fs, layout.attributions) if d.startswith("run=")]
    return out


def _names(fs, folder: str) -> list[str]:
    path = fs_path(folder)
    if not fs.exists(path):
        return []
    return sorted(os.path.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)
                  if not os.path.basename(p.rstrip("/")).startswith("."))


def _parts(fs, folder: str) -> list[str]:
    return [f"{fs_path(folder)}/{n}" for n in _names(fs, folder) if n.startswith("part-") and n.endswith(".parquet")]


def _read(fs, path: str) -> pa.Table:
    with fs.open(path, "rb") as f:
        return pq.read_table(f)


def _replace(layout: Layout, part: str, table: pa.Table) -> str:
    """Write ``table`` over ``part`` (same name, one atomic step); return the part's catalog path."""
    folder, name = part.rsplit("/", 1)
    where = layout.root + folder[len(fs_path(layout.root)):]
    return atomic.write_parquet(table, where, name[len("part-"):-len(".parquet")])


__all__ = ["layout_version", "migrate"]
