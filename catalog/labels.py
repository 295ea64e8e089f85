"""Time-continuous labels: one row per (item, video frame), in ``<root>/labels/``.

Written once per item (when its corpus recipe registers it); an item that already has
label rows is left alone, so re-registering changes nothing. Parts are named after the
items they hold, so a crash between two parts loses nothing and repeats nothing.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> import pandas as pd
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> rows = pd.DataFrame({"item_id": ["v1"] * 3, "frame": [0, 1, 2], "time": [0.0, 0.04, 0.08],
    ...                      "valence": [0.1, np.nan, 0.3], "arousal": [0.2, np.nan, 0.4],
    ...                      "expression": ["Happiness", None, "Neutral"]})
    >>> write_frame_labels(layout, rows), write_frame_labels(layout, rows)   # the second time: nothing new
    (3, 0)
    >>> pd.read_parquet(layout.labels)["valence"].isna().tolist()          # plain pandas reads it
    [False, True, False]
    >>> read_frame_labels(layout, ["v2"]).empty
    True
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import pandas as pd
import pyarrow as pa

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import FRAME_LABELS_SCHEMA
from emofuse.catalog.tables import read_table


def read_frame_labels(layout: Layout, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Label rows (of ``item_ids``, or all), sorted by item and frame."""
    df = read_table(layout.labels, FRAME_LABELS_SCHEMA)
    if item_ids is not None:
        df = df[df["item_id"].isin(set(item_ids))]
    return df.sort_values(["item_id", "frame"]).reset_index(drop=True)


def write_frame_labels(layout: Layout, rows: pd.DataFrame) -> int:
    """Add the rows of items that have no labels yet (one atomic part); returns the rows written."""
    if rows.empty:
        return 0
    have = set(read_table(layout.labels, FRAME_LABELS_SCHEMA)["item_id"])
    new = rows[~rows["item_id"].isin(have)]
    if new.empty:
        return 0
    new = new.sort_values(["item_id", "frame"])
    table = pa.Table.from_pandas(new[[f.name for f in FRAME_LABELS_SCHEMA]], schema=FRAME_LABELS_SCHEMA,
                                 preserve_index=False)
    name = hashlib.sha256("\n".join(sorted(set(new["item_id"]))).encode()).hexdigest()[:16]
    atomic.write_parquet(table, layout.labels, name=name)
    return len(new)


__all__ = ["read_frame_labels", "write_frame_labels"]
