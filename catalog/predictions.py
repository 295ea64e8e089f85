"""Predictions of fusion runs: ``predictions/model=<m>/run=<id>/part-<fold>[-w<window>]-<hash>.parquet``.

One part holds the rows of one fold label (``ensemble`` or a fold number) and one
``window`` kind (``"clip"``, ``"<length>s/<hop>s"``, or ``"frame"``: one row per model step of
a model trained per frame) for a set of items, in the run's
:func:`~emofuse.catalog.schemas.prediction_schema`. Part names are a hash of the item ids
they hold (:func:`part_name`), so writing the same predictions again replaces a part by
an identical one instead of adding a duplicate. Readers need no emofuse code:
``pandas.read_parquet(<catalog>/predictions)`` gives every run, with ``model`` and ``run``
columns from the Hive partitions.

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> from emofuse.catalog.layout import Layout
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> rows = pd.DataFrame({"item_id": ["a", "b"], "fold": "ensemble", "window": "clip", "start": 0.0,
    ...                      "end": [2.0, 3.0], "label": ["happy", "sad"], "score": [0.9, 0.8],
    ...                      "valence": float("nan"), "arousal": float("nan"),
    ...                      "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
    ...                      "p_happy": [0.9, 0.2], "p_sad": [0.1, 0.8]})
    >>> path = write_predictions(layout, "tacfn", "run-1", rows, ["happy", "sad"], fold="ensemble")
    >>> path.rsplit("/", 3)[1:]
    ['model=tacfn', 'run=run-1', 'part-ensemble-7e18f737311b2dc3b2f2.parquet']
    >>> existing_predictions(layout, "tacfn", "run-1").values.tolist()
    [['a', 'ensemble', 'clip'], ['b', 'ensemble', 'clip']]
    >>> read_predictions(layout)[["model", "run", "item_id", "label"]].values.tolist()
    [['tacfn', 'run-1', 'a', 'happy'], ['tacfn', 'run-1', 'b', 'sad']]
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from fsspec.core import url_to_fs

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import CLIP_WINDOW, prediction_schema

_DONE_SCHEMA = pa.schema([("item_id", pa.string()), ("fold", pa.string()), ("window", pa.string())])


def window_label(windows: tuple[float, float] | Sequence[float] | None) -> str:
    """The ``window`` column value: ``"clip"`` for whole clips, ``"<length>s/<hop>s"`` for windows.

    >>> window_label(None), window_label((4, 2)), window_label((2.5, 1.25))
    ('clip', '4s/2s', '2.5s/1.25s')
    """
    if windows is None:
        return CLIP_WINDOW
    length, hop = (float(v) for v in windows)
    return f"{length:g}s/{hop:g}s"


def part_name(fold: str, item_ids: Iterable[str], window: str = CLIP_WINDOW) -> str:
    """Deterministic part name: fold label, window tag (windowed parts only) and a hash of the item ids.

    >>> part_name("ensemble", ["b", "a"]) == part_name("ensemble", ["a", "b"])
    True
    >>> part_name("ensemble", ["a"], "4s/2s").startswith("ensemble-w4s_2s-")
    True
    """
    h = hashlib.sha256("\n".join(sorted(item_ids)).encode()).hexdigest()[:20]
    if window == CLIP_WINDOW:
        return f"{fold}-{h}"
    tag = "".join(c if c.isalnum() or c in "._" else "_" for c in window.replace("/", "_"))
    return f"{fold}-w{tag}-{h}"


def existing_predictions(layout: Layout, model: str, run_id: str, *, parts: bool = False) -> pd.DataFrame:
    """(item_id, fold, window) already written for one run (empty frame when none).

    Parts written before the ``window`` column existed count as ``"clip"``. With ``parts``
    also ``part`` (the file holding the row) and ``explained`` (whether that part has
    attribution columns), one row per (item, fold, window, part).
    """
    cols = ["item_id", "fold", "window"] + (["part", "explained"] if parts else [])
    empty = pd.DataFrame({c: [] for c in cols})
    fs, p = url_to_fs(layout.predictions_dir(model, run_id))
    if not fs.exists(p):
        return empty
    files = sorted(f for f in fs.ls(p, detail=False)
                   if os.path.basename(f).startswith("part-") and f.endswith(".parquet"))
    if not files:
        return empty
    dataset = pads.dataset(files, filesystem=fs, format="parquet", schema=_DONE_SCHEMA)
    if not parts:
        df = dataset.to_table(columns=["item_id", "fold", "window"]).to_pandas()
        df["window"] = df["window"].fillna(CLIP_WINDOW)
        return df.drop_duplicates()
    frames = []
    for frag in dataset.get_fragments():
        df = frag.to_table(schema=_DONE_SCHEMA, columns=["item_id", "fold", "window"]).to_pandas()
        df["part"] = frag.path
        df["explained"] = any(n.startswith("attr_") for n in frag.physical_schema.names)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["window"] = df["window"].fillna(CLIP_WINDOW)
    return df.drop_duplicates()[cols].reset_index(drop=True)


def write_predictions(layout: Layout, model: str, run_id: str, rows: pd.DataFrame, classes: Sequence[str], *,
                      fold: str, window: str = CLIP_WINDOW, attributions: Sequence[str] = ()) -> str:
    """Write one part of a run's predictions (rows of one fold label and window kind); return its path.

    ``rows`` holds the columns of ``prediction_schema(classes, attributions)`` (others are
    ignored); ``attributions``: the ``attr_*`` columns of an explained scoring (none: the
    part has no attribution columns).
    """
    schema = prediction_schema(list(classes), list(attributions))
    table = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
    return atomic.write_parquet(table, layout.predictions_dir(model, run_id),
                                part_name(str(fold), set(rows["item_id"]), window))


def read_predictions(layout: Layout, *, model: str | None = None, run_id: str | None = None) -> pd.DataFrame:
    """Predictions of every run (or one model / run), with ``model`` and ``run`` columns."""
    if model is not None and run_id is not None:
        df = _read_unified(layout.predictions_dir(model, run_id), partitioning=None)
        if len(df):
            df.insert(0, "run", run_id)
            df.insert(0, "model", model)
        return df
    df = _read_unified(layout.predictions)
    if len(df):
        for col in ("model", "run"):
            df[col] = df[col].astype(str)
        if model is not None:
            df = df[df["model"] == model].reset_index(drop=True)
        if run_id is not None:
            df = df[df["run"] == run_id].reset_index(drop=True)
    return df


def _read_unified(folder: str, *, partitioning: str | None = "hive") -> pd.DataFrame:
    """A Parquet folder with the union of its parts' columns (pyarrow alone takes the first part's
    columns, so ``p_<class>`` of other label sets and ``attr_*`` columns of explained parts would be lost)."""
    fs, path = url_to_fs(folder)
    if not fs.exists(path):
        return pd.DataFrame()
    dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning=partitioning)
    if not dataset.files:
        return pd.DataFrame()
    schemas = [frag.physical_schema for frag in dataset.get_fragments()]
    unified = pa.unify_schemas(schemas + [dataset.schema])
    return pads.dataset(path, filesystem=fs, format="parquet", partitioning=partitioning,
                        schema=unified).to_table().to_pandas()


__all__ = ["existing_predictions", "part_name", "read_predictions", "window_label", "write_predictions"]
