"""Which of many items each feature set still has to attempt, from the status table, vectorised.

The rule is :func:`~emofuse.catalog.status.settled`'s over :func:`~emofuse.catalog.status.read_status`'s
newest row per (item, feature set): ``ok`` and the failures the content decides are settled (only
``ok`` with ``retry_failed``); ``error`` and items without a row are pending. Planning a run over a
corpus asks this for every item and every feature set at once, so it is answered here in Arrow and
NumPy (three columns of each status folder, one hash look-up of every row's item) instead of a pandas
frame, a sort and a Python set per feature set: a no-op run over a million items must not pay a
Python object per status row.

Example:
    >>> import tempfile
    >>> from emofuse.catalog.layout import Layout
    >>> from emofuse.catalog.status import StatusEntry, record_status
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> _ = record_status(layout, "a-v1", [StatusEntry("x", "ok"), StatusEntry("y", "no_face", "none")], task_id="t1")
    >>> _ = record_status(layout, "a-v1", [StatusEntry("x", "error", "worker lost")], task_id="t2")  # newer
    >>> {k: v.tolist() for k, v in pending(layout, ["a-v1", "b-v1"], ["x", "y", "z"]).items()}
    {'a-v1': [True, False, True], 'b-v1': [True, True, True]}
    >>> pending(layout, ["a-v1"], ["x", "y", "z"], retry_failed=True)["a-v1"].tolist()
    [True, True, True]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import STATUS_SCHEMA
from emofuse.catalog.status import settled_statuses
from emofuse.catalog.tables import read_arrow

_COLUMNS = ["item_id", "status", "attempted_at"]


def pending(layout: Layout, feature_sets: Sequence[str], item_ids: Sequence[str] | pa.Array, *,
            retry_failed: bool = False) -> dict[str, np.ndarray]:
    """feature set -> boolean mask over ``item_ids``: True where the set has not settled the item.

    Each status folder is read once (three columns); rows of items outside ``item_ids`` are ignored.
    """
    ids = item_ids if isinstance(item_ids, pa.Array) else pa.array(item_ids, pa.string())
    distinct = pc.unique(ids)
    if len(distinct) < len(ids):  # a repeated id: answer per distinct id, then per position
        at = pc.index_in(ids, value_set=distinct).to_numpy(zero_copy_only=False)
        return {k: v[at] for k, v in pending(layout, feature_sets, distinct, retry_failed=retry_failed).items()}
    n = len(ids)
    keep = pa.array(sorted(settled_statuses(retry_failed)))
    tables, sets = [], []
    for k, key in enumerate(feature_sets):
        table = read_arrow(layout.status_dir(key), STATUS_SCHEMA, columns=_COLUMNS)
        if table is not None and table.num_rows:
            tables.append(table)
            sets.append(np.full(table.num_rows, k, np.int64))
    settled = np.zeros(len(feature_sets) * n, bool)
    if tables:
        rows = pa.concat_tables(tables)
        code = pc.index_in(rows["item_id"], value_set=ids)  # one hash of ``ids``; null: an item not asked about
        mine = code.is_valid()
        rows, code = rows.filter(mine), code.filter(mine)
        row_key = np.concatenate(sets)[mine.to_numpy(zero_copy_only=False)] * n + code.to_numpy().astype(np.int64)
        final_row = pc.fill_null(pc.is_in(rows["status"], value_set=keep), False).to_numpy(zero_copy_only=False)
        counts = np.bincount(row_key, minlength=len(settled))
        once = counts[row_key] == 1  # one row: it is the newest (the common case, no sort)
        settled[row_key[once]] = final_row[once]
        again = ~once
        if again.any():
            # newest row per item as read_status sorts: by attempted_at, a missing time last
            at = pc.fill_null(rows["attempted_at"].cast(pa.int64()), np.iinfo(np.int64).max).to_numpy()
            key_r, time_r, final_r = row_key[again], at[again], final_row[again]
            order = np.lexsort((time_r, key_r))  # by key, then time; stable: ties keep file order
            key_s = key_r[order]
            last = np.append(key_s[1:] != key_s[:-1], True)
            settled[key_s[last]] = final_r[order][last]
    return {key: ~settled[k * n:(k + 1) * n] for k, key in enumerate(feature_sets)}


__all__ = ["pending"]
