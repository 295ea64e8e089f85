"""Corpus recipes: which files of a source tree are items, and their label columns.

Each recipe yields :class:`Entry` objects (path, MEDIA_SCHEMA corpus columns,
or why the file was rejected). Recipes only look at names; probing and
hashing happen in :mod:`emofuse.pipeline.ingest`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from emofuse.catalog import ravdess

ARCHIVE_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".wav", ".mp3", ".m4a", ".flac", ".ogg")


@dataclass(frozen=True)
class Entry:
    """A candidate item: its path and corpus columns, or the reason it is rejected."""

    path: str
    columns: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def discover(corpus: str, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """Entries of ``source`` for the named recipe (``ravdess`` or ``archive``)."""
    if corpus == "ravdess":
        for f in ravdess.discover(source, ravdess.parse_selection(selection)):
            yield Entry(f.path, ravdess.media_columns(f.fields) if f.fields else {}, f.error)
    elif corpus == "archive":
        yield from discover_archive(source)
    else:
        raise ValueError(f"unknown corpus recipe {corpus!r}: use 'ravdess' or 'archive'")


def discover_archive(source: str) -> Iterator[Entry]:
    """Every media file under ``source`` (a folder or a single file), symlink loops skipped."""
    if os.path.isfile(source):
        yield Entry(os.path.abspath(source), {"corpus": "archive"})
        return
    if not os.path.isdir(source):
        raise FileNotFoundError(f"source {source!r} is neither a file nor a folder")
    root = os.path.realpath(source)
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or not (real == root or real.startswith(root + os.sep)):
            dirnames[:] = []  # a loop, or a link leading outside the source tree
            continue
        seen.add(real)
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.startswith(".") or not fn.lower().endswith(ARCHIVE_EXTENSIONS):
                continue
            yield Entry(os.path.abspath(os.path.join(dirpath, fn)), {"corpus": "archive"})
