"""The record a corpus recipe yields for each candidate item.

Example:
    >>> Entry("/data/a.mp4", {"corpus": "archive"}).error is None
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """A candidate item: its path and MEDIA_SCHEMA corpus columns, or the reason it is rejected.

    A segment item (a time range of a file) carries ``segment_start``/``segment_end``
    (seconds) among its columns, one subject of a two-subject video ``face_side``; a
    whole-file item carries none of them.
    """

    path: str
    columns: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: Per-frame annotation files by kind (e.g. Aff-Wild2's ``{"va": path, "expr": path}``), read at
    #: registration by the recipe's ``frame_labels`` (see :func:`~.recipes.frame_labels`); empty: none.
    annotations: dict[str, str] = field(default_factory=dict)
