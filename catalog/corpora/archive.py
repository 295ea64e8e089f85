"""Generic archive recipe: every media file under a folder, whatever its name or nesting.

No labels come from names; the only corpus column is ``corpus = "archive"``.
Symbolic links are followed inside the source tree, but a loop, or a link that leads
outside the tree, is not entered (each real folder is walked once).

Example:
    >>> os.makedirs("archive/nested")
    >>> for name in ("a.mp4", "nested/b.WAV", "notes.txt", ".hidden.mkv"):
    ...     open(os.path.join("archive", name), "wb").close()
    >>> os.symlink(os.path.abspath("archive"), "archive/nested/loop")
    >>> [os.path.relpath(p, "archive") for p in files("archive")]
    ['a.mp4', 'nested/b.WAV']
    >>> [e.columns for e in ArchiveRecipe().discover("archive/nested")]
    [{'corpus': 'archive'}]
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.recipe import CorpusRecipe
from emofuse.catalog.corpora.registry import register_corpus

#: File name endings (lower case) taken as media: video containers and audio-only files.
ARCHIVE_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".wav", ".mp3", ".m4a", ".flac", ".ogg")


def files(source: str) -> Iterator[str]:
    """Absolute paths of the media files under ``source`` (a folder or a single file), sorted per folder."""
    if os.path.isfile(source):
        yield os.path.abspath(source)
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
            yield os.path.abspath(os.path.join(dirpath, fn))


def media_columns() -> dict[str, Any]:
    """The MEDIA_SCHEMA corpus columns of an archive file (no labels: just the recipe's name)."""
    return {"corpus": "archive"}


@register_corpus
class ArchiveRecipe(CorpusRecipe):
    """Any folder of media files: no labels, no plan, no class order."""

    name = "archive"
    naming_hint = "any media file (" + " ".join(ARCHIVE_EXTENSIONS) + "), at any depth, whatever its name"
    labelled = False

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
        """Every media file under ``source`` (``selection`` is not used: an archive has nothing to select by)."""
        for path in files(source):
            yield Entry(path, media_columns())
