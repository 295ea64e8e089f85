"""Identity by content: the item id of a media file and the digests of model weights.

There is one file hasher, :func:`file_digest` (:func:`hashlib.file_digest` under
the hood). :func:`content_id` names an item (BLAKE2b-160 of its bytes, so a moved
archive is not extracted again and two copies of a file are one item);
:func:`cached_file_digest` gives weight checksums for feature-set keys without
reading big files again while they are unchanged. Changing either digest would
rename every item and every feature set: they are part of the catalog's contract.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"emofuse")
    >>> content_id(path)
    'cf7baa4f57b03672cb793fff716f51e1dd65fee6'
    >>> file_digest(path)[:16]
    'd1f192dbc0d8c73c'
    >>> cached_file_digest(path) == file_digest(path)
    True
    >>> part_id(content_id(path), start=1.5, end=3.25)   # an item that is a part of a file
    'ad3ba5ee3935c535037761cacea35f84d8c97027'
    >>> part_id(content_id(path), side="left") != part_id(content_id(path), side="right")
    True
"""
from __future__ import annotations

import functools
import hashlib
import os
from typing import Callable, Union

#: A hashlib algorithm name (``"sha256"``) or a constructor of a hash object.
Algorithm = Union[str, Callable[[], "hashlib._Hash"]]


def file_digest(path: str | os.PathLike[str], algorithm: Algorithm = "sha256") -> str:
    """Hex digest of a file's bytes (read in chunks: memory stays flat for any size)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _blake2b_160() -> "hashlib._Hash":
    return hashlib.blake2b(digest_size=20)


def content_id(path: str | os.PathLike[str]) -> str:
    """The item id of a media file: BLAKE2b-160 of its bytes, 40 hex digits."""
    return file_digest(path, _blake2b_160)


def part_id(parent_id: str, *, start: float | None = None, end: float | None = None,
            side: str | None = None) -> str:
    """The item id of a part of a file: a time range (IEMOCAP turns, archive windows) and/or
    one subject of a two-subject video (``side`` = ``"left"``/``"right"``).

    BLAKE2b-160 of the parent's content id and the part's description, with the range
    rounded to the millisecond: the same part of the same bytes always gets the same id,
    wherever the file lies.
    """
    desc = [parent_id]
    if start is not None or end is not None:
        desc.append(f"range={float(start or 0.0):.3f}-{float(end) if end is not None else float('inf'):.3f}")
    if side is not None:
        desc.append(f"side={side}")
    return hashlib.blake2b("|".join(desc).encode(), digest_size=20).hexdigest()


@functools.lru_cache(maxsize=256)
def _cached(path: str, size: int, mtime_ns: int, algorithm: str) -> str:
    return file_digest(path, algorithm)


def cached_file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """:func:`file_digest`, memoised per (real path, size, mtime): cheap to ask again for model weights."""
    p = os.path.realpath(path)
    st = os.stat(p)
    return _cached(p, st.st_size, st.st_mtime_ns, algorithm)


__all__ = ["cached_file_digest", "content_id", "file_digest", "part_id"]
