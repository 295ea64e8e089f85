"""Turn files into media-table rows: content hash (the item id) and a PyAV probe.

The item id is :func:`emofuse.catalog.identity.content_id`, a hash of the bytes,
not of the path, so a moved archive is not extracted again and two copies of a
file are one item. Files already in the catalog with the same size and mtime
are not hashed again.

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
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any

from emofuse.catalog.identity import content_id
from emofuse.pipeline.decode import DecodeError, probe


def describe(path: str, *, root: str | None = None, known: tuple[int, int, str] | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A MEDIA_SCHEMA row for ``path``; a file that fails to probe keeps ``probe_error`` set."""
    st = os.stat(path)
    mtime_us = st.st_mtime_ns // 1000
    if known is not None and known[0] == st.st_size and known[1] == mtime_us:
        item_id = known[2]
    else:
        item_id = content_id(path)
    row: dict[str, Any] = {
        "item_id": item_id,
        "path": os.path.abspath(path),
        "relpath": os.path.relpath(path, root) if root else os.path.basename(path),
        "size": st.st_size,
        "mtime": dt.datetime.fromtimestamp(mtime_us / 1e6, dt.timezone.utc),
        "container": os.path.splitext(path)[1].lower().lstrip("."),
    }
    try:
        p = probe(path)
        row.update(duration=p.duration, has_audio=p.has_audio, has_video=p.has_video,
                   sample_rate=p.sample_rate, fps=p.fps, width=p.width, height=p.height)
    except DecodeError as e:
        row.update(has_audio=False, has_video=False, probe_error=str(e))
    row.update(extra or {})
    return row
