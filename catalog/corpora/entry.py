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
    (seconds) among its columns; a whole-file item carries neither.
    """

    path: str
    columns: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
