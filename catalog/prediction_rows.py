"""Prediction rows in two shapes: the parts' fixed schema on disk, the wide frame in memory.

On disk every prediction part has :data:`~emofuse.catalog.schemas.PREDICTION_SCHEMA`: the
varying parts of a run (its classes, the modalities and targets of its attributions) are list
columns, so parts of any run, model, class set, window kind and ``explain`` agree on one schema
and a folder reads whole. In memory scoring, the report and the tests use the wide frame of
:func:`~emofuse.catalog.schemas.prediction_schema`: ``p_<class>`` and ``attr_<modality>[_<target>]``
columns. :func:`to_table` turns wide rows into a part, :func:`to_wide` a read table back;
:func:`from_legacy` turns a part written by layout version 1 (wide columns on disk) into the
current schema.

Example:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"item_id": ["a", "b"], "fold": "ensemble", "window": "clip", "start": 0.0,
    ...                      "end": 2.0, "label": ["happy", "sad"], "score": [0.9, 0.8], "valence": float("nan"),
    ...                      "arousal": float("nan"), "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
    ...                      "p_happy": [0.9, 0.2], "p_sad": [0.1, 0.8], "attr_face": [0.5, float("nan")]})
    >>> table = to_table(rows, ["happy", "sad"], ["attr_face"])
    >>> table.column("classes")[0].as_py(), [round(p, 2) for p in table.column("probs")[1].as_py()]
    (['happy', 'sad'], [0.2, 0.8])
    >>> table.column("attribution_target")[0].as_py(), table.column("attribution")[0].as_py()
    (['label'], [0.5])
    >>> to_wide(table)[["p_happy", "p_sad", "attr_face"]].astype(float).round(2).values.tolist()
    [[0.9, 0.1, 0.5], [0.2, 0.8, nan]]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emofuse.catalog.schemas import (CLIP_WINDOW, PREDICTION_BASE_FIELDS, PREDICTION_LIST_FIELDS, PREDICTION_SCHEMA,
                                     attribution_column, split_attribution_column)

BASE_SCHEMA = pa.schema(PREDICTION_BASE_FIELDS)
LIST_NAMES = [name for name, _ in PREDICTION_LIST_FIELDS]


def is_current(schema: pa.Schema) -> bool:
    """Whether a part's schema is the current one (layout 2), not the wide one of layout 1."""
    return "classes" in schema.names


def _lists(names: Sequence[str], values: np.ndarray, n: int, *, null: bool = False) -> tuple[pa.Array, pa.Array]:
    """Per row: the same ``names`` and that row of ``values`` (n × len(names)); null lists with ``null``."""
    k = len(names)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * k)
    if null:
        return pa.nulls(n, pa.list_(pa.string())), pa.nulls(n, pa.list_(pa.float32()))
    repeated = pc.take(pa.array(list(names), pa.string()), np.tile(np.arange(k), n))
    name_list = pa.ListArray.from_arrays(offsets, repeated)
    value_list = pa.ListArray.from_arrays(offsets, pa.array(values.astype(np.float32).ravel(), pa.float32()))
    return name_list, value_list


def to_table(rows: pd.DataFrame, classes: Sequence[str], attributions: Sequence[str] = ()) -> pa.Table:
    """Wide rows (base fields, ``p_<class>`` per class, the ``attributions`` columns) as a part's table.

    No ``attributions``: the attribution lists are null (not explained); NaN entries stay NaN
    (an absent modality, a step without class probabilities).
    """
    n = len(rows)
    base = pa.Table.from_pandas(rows[BASE_SCHEMA.names], schema=BASE_SCHEMA, preserve_index=False)
    probs = rows[[f"p_{c}" for c in classes]].to_numpy(np.float32) if classes else np.zeros((n, 0), np.float32)
    cls, p = _lists(classes, probs, n)
    pairs = [split_attribution_column(a) for a in attributions]
    values = rows[list(attributions)].to_numpy(np.float32) if attributions else np.zeros((n, 0), np.float32)
    mods, attr = _lists([m for m, _ in pairs], values, n, null=not attributions)
    targets, _ = _lists([t for _, t in pairs], values, n, null=not attributions)
    columns = base.columns + [cls, p, mods, targets, attr]
    return pa.Table.from_arrays(columns, schema=PREDICTION_SCHEMA)


def _spread(df: pd.DataFrame, keys: pa.Array, parents: np.ndarray, values: np.ndarray, name) -> None:
    """Add one float32 column ``name(key)`` per distinct key (first seen first), NaN where a row has none."""
    encoded = pc.dictionary_encode(keys)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    for k, key in enumerate(encoded.dictionary.to_pylist()):
        col = np.full(len(df), np.nan, np.float32)
        sel = codes == k
        col[parents[sel]] = values[sel]
        df[name(key)] = col


def to_wide(table: pa.Table) -> pd.DataFrame:
    """A table of current parts (and any partition columns) as the wide frame: ``p_<class>``, ``attr_*``."""
    df = table.drop_columns(LIST_NAMES).to_pandas()
    lists = {n: table.column(n).combine_chunks() for n in LIST_NAMES}
    flat = {n: pc.list_flatten(a) for n, a in lists.items()}
    if len(flat["classes"]):
        _spread(df, flat["classes"], pc.list_parent_indices(lists["classes"]).to_numpy(),
                flat["probs"].to_numpy(zero_copy_only=False), lambda c: f"p_{c}")
    if len(flat["attribution_modality"]):
        keys = pc.binary_join_element_wise(flat["attribution_modality"], flat["attribution_target"], "\x00")
        _spread(df, keys, pc.list_parent_indices(lists["attribution_modality"]).to_numpy(),
                flat["attribution"].to_numpy(zero_copy_only=False), lambda k: attribution_column(*k.split("\x00")))
    return df


def from_legacy(table: pa.Table) -> pa.Table:
    """A layout-1 part (``p_<class>``/``attr_*`` columns; older ones without ``window``) in the current schema."""
    df = table.to_pandas()
    classes = [c[len("p_"):] for c in table.schema.names if c.startswith("p_")]
    attributions = [c for c in table.schema.names if c.startswith("attr_")]
    defaults = {"window": CLIP_WINDOW, "start": 0.0, "end": np.nan, "label": None, "score": np.nan,
                "valence": np.nan, "arousal": np.nan, "scored_at": pd.NaT}
    for name, value in defaults.items():
        if name not in df:
            df[name] = value
    df["window"] = df["window"].fillna(CLIP_WINDOW)
    return to_table(df, classes, attributions)


__all__ = ["from_legacy", "is_current", "to_table", "to_wide"]
