"""The status table: the outcome of every (item, feature set) attempt, and the commit record of tasks.

Rows live under ``status/feature_set=<key>/part-<task>.parquet`` (``STATUS_SCHEMA``), an
append-only log: the newest row per (item, feature set) is the item's current status.
A task's clip, index and shard parts become visible to readers only once a status part
with its ``task_id`` exists (see :mod:`emofuse.catalog.commit`). Scoring records its own
outcome per (item, run) in the same table under the pseudo feature set
``score-<run_id>`` (:func:`score_status_key`).

:func:`record_status` is the one writer of status rows, for extraction commits and for
scoring alike: it writes only rows that change what the table says (a failure that
repeats the recorded one is not logged again), except ``ok`` rows of a commit
(``keep_ok``), which are the commit record.

Example:
    >>> import tempfile
    >>> from emofuse.catalog.layout import Layout
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> record_status(layout, "demo-v1", [StatusEntry("a", "ok"), StatusEntry("b", "no_audio", "no audio stream")],
    ...               task_id="task-1", keep_ok=True)
    2
    >>> read_status(layout, "demo-v1")[["item_id", "status"]].values.tolist()
    [['a', 'ok'], ['b', 'no_audio']]
    >>> record_status(layout, "demo-v1", [StatusEntry("b", "no_audio", "no audio stream")])   # unchanged
    0
    >>> record_status(layout, "demo-v1", [StatusEntry("b", "ok")])   # no task id: named after its rows
    1
    >>> sorted(committed_tasks(layout, "demo-v1"))
    ['87fc47ac8c3f502c73dd', 'task-1']
    >>> score_status_key("tacfn-20250101-120000-abcdef")
    'score-tacfn-20250101-120000-abcdef'

Which items a run still has to attempt follows from the current rows (:func:`settled`):
``ok`` and the failures the content decides are settled, ``error`` and missing rows are not.

    >>> record_status(layout, "demo-v1", [StatusEntry("c", "error", "worker lost")])
    1
    >>> sorted(settled(read_status(layout, "demo-v1"))), sorted(settled(read_status(layout, "demo-v1"), retry_failed=True))
    (['a', 'b'], ['a', 'b'])
    >>> record_status(layout, "demo-v1", [StatusEntry("b", "no_audio", "no audio stream")])
    1
    >>> sorted(settled(read_status(layout, "demo-v1"))), sorted(settled(read_status(layout, "demo-v1"), retry_failed=True))
    (['a', 'b'], ['a'])
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import FINAL_FAILURES, STATUS_SCHEMA, Status
from emofuse.catalog.tables import read_arrow, read_table, utcnow


@dataclass
class StatusEntry:
    """One item's outcome: a status value (``ok``, ``no_face``, …) with its message."""

    item_id: str
    status: str
    message: str = ""
    n_frames: int = 0
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.status, Enum):
            self.status = str(self.status.value)
        self.message = self.message or ""


def score_status_key(run_id: str) -> str:
    """The pseudo feature set under which scoring statuses of a run sit in the status table."""
    return f"score-{run_id}"


def read_status(layout: Layout, feature_set: str | None = None, *, latest: bool = True) -> pd.DataFrame:
    """Status rows (all feature sets or one, with a ``feature_set`` column); with ``latest`` the newest per (item, set)."""
    if feature_set is not None:
        df = read_table(layout.status_dir(feature_set), STATUS_SCHEMA)
        df.insert(1, "feature_set", feature_set)
    else:
        df = read_table(layout.status, STATUS_SCHEMA.append(pa.field("feature_set", pa.string())),
                        partitioning="hive")
    if latest and len(df):
        df = df.sort_values("attempted_at").drop_duplicates(["item_id", "feature_set"], keep="last")
        df = df.reset_index(drop=True)
    return df


def committed_tasks(layout: Layout, feature_set: str) -> set[str]:
    """Task ids that have status rows for a feature set (their parts are visible)."""
    table = read_arrow(layout.status_dir(feature_set), STATUS_SCHEMA, columns=["task_id"])
    return set() if table is None else set(pc.unique(table["task_id"]).to_pylist())


def record_status(layout: Layout, feature_set: str, entries: Iterable[StatusEntry], *, task_id: str | None = None,
                  run_id: str = "", keep_ok: bool = False) -> int:
    """Append the status rows that change an item's current (status, message); return how many.

    ``keep_ok``: ``ok`` rows are written even when they repeat (an extraction commit: they
    make the task's parts visible). ``task_id``: the part's name and the rows' task id;
    None names them after a hash of the rows, so writing the same change twice is one part.
    """
    entries = list(entries)
    kept = [keep_ok and e.status == Status.OK.value for e in entries]
    before: dict[str, tuple[str, str]] = {}
    if not all(kept):  # only rows that may repeat need the current status (a task all ``ok`` reads none of it)
        current = read_status(layout, feature_set)
        before = dict(zip(current["item_id"], zip(current["status"], current["message"])))
    rows = [e for e, keep in zip(entries, kept) if keep or before.get(e.item_id) != (e.status, e.message)]
    if not rows:
        return 0
    if task_id is None:
        text = "\n".join("\t".join(r) for r in sorted((e.item_id, e.status, e.message) for e in rows))
        task_id = hashlib.sha256(text.encode()).hexdigest()[:20]
    now = utcnow()
    table = pa.Table.from_pylist(
        [{"item_id": e.item_id, "status": e.status, "message": e.message, "task_id": task_id, "run_id": run_id,
          "n_frames": int(e.n_frames), "wall_s": float(e.wall_s), "attempted_at": now} for e in rows],
        schema=STATUS_SCHEMA)
    atomic.write_parquet(table, layout.status_dir(feature_set), task_id)
    return len(rows)


def settled(current: pd.DataFrame, *, retry_failed: bool = False) -> set[str]:
    """Items of ``current`` (the newest row per item, as :func:`read_status` gives) that a run does not attempt
    again: ``ok``, and the failures the content decides (:data:`~emofuse.catalog.schemas.FINAL_FAILURES`)
    unless ``retry_failed``. ``error`` and items without a row (a killed worker, a storage failure) are retried.
    """
    return set(current.loc[current["status"].isin(settled_statuses(retry_failed)), "item_id"])


def settled_statuses(retry_failed: bool) -> frozenset[str]:
    """The current statuses that settle an item (see :func:`settled`)."""
    return frozenset({Status.OK.value} if retry_failed else {Status.OK.value, *FINAL_FAILURES})


__all__ = ["StatusEntry", "committed_tasks", "read_status", "record_status", "score_status_key", "settled",
           "settled_statuses"]
