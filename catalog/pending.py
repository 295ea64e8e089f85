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
    codes, sets, times, final = [], [], [], []
    for k, key in enumerate(feature_sets):
        table = read_arrow(layout.status_dir(key), STATUS_SCHEMA, columns=_COLUMNS)
        if table is None or not table.num_rows:
            continue
        code = pc.index_in(table["item_id"], value_set=ids)  # null: an item this plan does not cover
        mine = code.is_valid()
        table, code = table.filter(mine), code.filter(mine)
        codes.append(code.to_numpy(zero_copy_only=False).astype(np.int64))
        sets.append(np.full(len(code), k, np.int64))
        # newest row per item as read_status sorts: by attempted_at, a missing time last
        at = pc.fill_null(table["attempted_at"].cast(pa.int64()), np.iinfo(np.int64).max)
        times.append(at.to_numpy())
        final.append(pc.fill_null(pc.is_in(table["status"], value_set=keep), False).to_numpy(zero_copy_only=False))
    settled = np.zeros(len(feature_sets) * n, bool)
    if codes:
        row_key = np.concatenate(sets) * n + np.concatenate(codes)
        final_row = np.concatenate(final)
        counts = np.bincount(row_key, minlength=len(settled))
        once = counts[row_key] == 1  # one row: it is the newest (the common case, no sort)
        settled[row_key[once]] = final_row[once]
        again = ~once
        if again.any():
            key_r, time_r, final_r = row_key[again], np.concatenate(times)[again], final_row[again]
            order = np.lexsort((time_r, key_r))  # by key, then time; stable: ties keep file order
            key_s = key_r[order]
            last = np.append(key_s[1:] != key_s[:-1], True)
            settled[key_s[last]] = final_r[order][last]
    return {key: ~settled[k * n:(k + 1) * n] for k, key in enumerate(feature_sets)}


__all__ = ["pending"]
