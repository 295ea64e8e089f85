"""Turn files into media-table rows: content hash (the item id) and a PyAV probe.

The item id is :func:`emofuse.catalog.identity.content_id`, a hash of the bytes,
not of the path, so a moved archive is not extracted again and two copies of a
file are one item. Files already in the catalog with the same size and mtime
are not hashed again.

An item can also be a time range of a file (an IEMOCAP turn inside a dialog video): its
corpus columns carry ``segment_start``/``segment_end`` (seconds), its id is
:func:`emofuse.catalog.identity.part_id` of the file's content id and the range, its
``parent_id`` is the file's content id, its ``duration`` the range's length, and its
``path`` the whole file. :func:`describe_parts` hashes and probes a file once for all its items.
One subject of a two-subject video (Aff-Wild2, ``face_side`` left/right) is such a part too.
Items whose recipe entry names per-frame annotation files get their label rows here
(:func:`frame_labels`), timed by the video's own frame timestamps, in the same step.

Example:
    >>> import os, tempfile
    >>> from emofuse.pipeline.dummies import tone, write_audio
    >>> root = tempfile.mkdtemp()
    >>> wav = str(write_audio(os.path.join(root, "a.wav"), tone(1.0)))
    >>> row = describe(wav, root=root, extra={"corpus": "demo"})
    >>> row["item_id"] == content_id(wav), row["relpath"], row["duration"], row["has_video"], row["corpus"]
    (True, 'a.wav', 1.0, False, 'demo')
    >>> st = os.stat(wav)  # same size and mtime as the catalog knows: not hashed again
    >>> describe(wav, known=(st.st_size, st.st_mtime_ns // 1000, "id-from-the-catalog"))["item_id"]
    'id-from-the-catalog'
    >>> turns = describe_parts(wav, [{"segment_start": 0.1, "segment_end": 0.4}, {"segment_start": 0.5, "segment_end": 0.9}])
    >>> [(r["item_id"] == part_id(row["item_id"], start=r["segment_start"], end=r["segment_end"]),
    ...   r["parent_id"] == row["item_id"], round(r["duration"], 3)) for r in turns]
    [(True, True, 0.3), (True, True, 0.4)]
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any

import numpy as np
import pandas as pd

from emofuse.catalog.corpora import recipes
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.identity import content_id, part_id
from emofuse.pipeline.decode import DecodeError, frame_times, probe


def describe(path: str, *, root: str | None = None, known: tuple[int, int, str] | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A MEDIA_SCHEMA row for ``path``; a file that fails to probe keeps ``probe_error`` set.

    ``extra`` holds the corpus columns; with ``segment_start``/``segment_end`` among them the
    row is that range's (see module). ``known``: (size, mtime in µs, content id) the catalog
    holds for the path; used instead of hashing when size and mtime still match.
    """
    return describe_parts(path, [extra or {}], root=root, known=known)[0]


def is_segment(columns: dict[str, Any]) -> bool:
    """Whether corpus columns describe a time range of a file rather than the whole file."""
    return columns.get("segment_start") is not None or columns.get("segment_end") is not None


def is_part(columns: dict[str, Any]) -> bool:
    """Whether corpus columns describe a part of a file: a time range and/or one subject's side (``face_side``)."""
    return is_segment(columns) or columns.get("face_side") is not None


def segment_id(parent_id: str, columns: dict[str, Any]) -> str:
    """The item id of the part that ``columns`` give (a range and/or a ``face_side``), in the file whose
    content id is ``parent_id``."""
    ranged = is_segment(columns)
    return part_id(parent_id, start=(columns.get("segment_start") or 0.0) if ranged else None,
                   end=columns.get("segment_end") if ranged else None, side=columns.get("face_side"))


def describe_parts(path: str, extras: list[dict[str, Any]], *, root: str | None = None,
                   known: tuple[int, int, str] | None = None) -> list[dict[str, Any]]:
    """One MEDIA_SCHEMA row per corpus-column dict of ``extras`` (the whole file, or ranges of it);
    the file is hashed and probed once."""
    st = os.stat(path)
    mtime_us = st.st_mtime_ns // 1000
    if known is not None and known[0] == st.st_size and known[1] == mtime_us:
        item_id = known[2]
    else:
        item_id = content_id(path)
    base: dict[str, Any] = {
        "item_id": item_id,
        "path": os.path.abspath(path),
        "relpath": os.path.relpath(path, root) if root else os.path.basename(path),
        "size": st.st_size,
        "mtime": dt.datetime.fromtimestamp(mtime_us / 1e6, dt.timezone.utc),
        "container": os.path.splitext(path)[1].lower().lstrip("."),
    }
    try:
        p = probe(path)
        base.update(duration=p.duration, has_audio=p.has_audio, has_video=p.has_video,
                    sample_rate=p.sample_rate, fps=p.fps, width=p.width, height=p.height)
    except DecodeError as e:
        base.update(has_audio=False, has_video=False, probe_error=str(e))
    return [_segment_row(base, extra) if is_segment(extra) else _whole_row(base, extra) for extra in extras]


def _whole_row(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The row of the whole file, or of one subject's side of it (``face_side``: an id of its own)."""
    row = {**base, **extra}
    if extra.get("face_side") is not None:
        row.update(item_id=segment_id(base["item_id"], extra), parent_id=base["item_id"])
    return row


def _segment_row(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The row of a range of the file that ``base`` describes; a range outside the file gets ``probe_error``."""
    row = {**base, **extra}
    start = float(extra.get("segment_start") or 0.0)
    end = extra.get("segment_end")
    file_end = base.get("duration")
    row.update(item_id=segment_id(base["item_id"], extra), parent_id=base["item_id"], segment_start=start)
    if end is None:
        end = file_end
    row["duration"] = None if end is None else max(0.0, min(float(end), file_end or float(end)) - start)
    if row.get("probe_error") is None and (end is not None and float(end) <= start):
        row["probe_error"] = f"{base['path']}: empty time range [{start:.3f}, {float(end):.3f}] s"
    elif row.get("probe_error") is None and file_end is not None and start >= file_end:
        row["probe_error"] = (f"{base['path']}: time range [{start:.3f}, {float(end):.3f}] s starts after "
                              f"the end of the file ({file_end:.3f} s)")
    return row


def frame_labels(corpus: str, entries: list[Entry], rows: list[dict[str, Any]], *,
                 threads: int | None = None) -> pd.DataFrame:
    """Per-frame label rows (FRAME_LABELS_SCHEMA) of the items of ``rows`` whose entry has annotation files.

    Frame times are the video's own presentation timestamps (:func:`~.decode.frame_times`,
    demuxed once per file; a segment item keeps the frames of its range, timed from its
    start). Each such row of ``rows`` also gets the recipe's summary columns (e.g. mean
    valence). A malformed annotation line raises ``ValueError`` naming ``file:line``.
    """
    from concurrent.futures import ThreadPoolExecutor

    if not entries:
        return pd.DataFrame()
    by_item = {r["item_id"]: r for r in rows if r.get("probe_error") is None}
    todo: dict[str, list[tuple[dict[str, Any], Entry]]] = {}  # path -> its items' (row, entry)
    of_path = {r["path"]: r for r in rows}
    for e in entries:
        row = of_path.get(os.path.abspath(e.path))
        if row is None:
            continue
        parent = row.get("parent_id") or row["item_id"]
        item = segment_id(parent, e.columns) if is_part(e.columns) else parent
        if item in by_item:
            todo.setdefault(by_item[item]["path"], []).append((by_item[item], e))

    def one(path: str) -> list[pd.DataFrame]:
        try:
            times = frame_times(path)
        except DecodeError as e:
            raise ValueError(f"{path}: cannot read the frame timestamps for its annotations ({e})") from e
        out = []
        for row, e in todo[path]:
            t = times
            if is_segment(e.columns):
                start = float(row.get("segment_start") or 0.0)
                end = start + row["duration"] if row.get("duration") is not None else np.inf
                t = times[(times >= start - 1e-6) & (times < end - 1e-6)] - start
            labels, summary = recipes.frame_labels(corpus, e.annotations, t)
            row.update({k: v for k, v in summary.items() if v is not None})
            out.append(labels.assign(item_id=row["item_id"]))
        return out

    with ThreadPoolExecutor(max_workers=threads or min(8, 2 * (os.cpu_count() or 1))) as pool:
        parts = [df for dfs in pool.map(one, list(todo)) for df in dfs]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
