"""Catalog locations: a local path or an fsspec URL, and the filesystem that serves it.

Every catalog module asks this one module whether a location is local, what path its
filesystem takes (the URL without its scheme) and for that filesystem. Catalog files are
shared by processes that write while others read (flow, Dask workers, other runs), and
fsspec's object-store filesystems cache directory listings per process: a cached listing
hides what other processes wrote since. So :func:`url_to_fs` opens object stores without a
listing cache, and :func:`list_afresh` (called when a catalog on such a URL is opened, see
:meth:`Layout.at <emofuse.catalog.layout.Layout.at>`) makes fsspec's default the same for
the store's protocol, so pandas in the same process sees fresh listings too. Importing the
package changes nothing.

Example:
    >>> is_local("/data/cat"), is_local("file:///data/cat"), is_local("s3://bucket/cat")
    (True, True, False)
    >>> fs_path("s3://bucket/cat/media"), fs_path("/data/cat/media"), local_path("file:///data/cat")
    ('bucket/cat/media', '/data/cat/media', '/data/cat')
    >>> protocol("gs://bucket/cat"), protocol("/data/cat")
    ('gs', 'file')
"""
from __future__ import annotations

from typing import Any

import fsspec
import fsspec.config
from fsspec.core import url_to_fs as _fsspec_url_to_fs

#: Protocols of object stores whose fsspec filesystems cache listings.
OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "abfs", "az", "adl")


def is_local(path: str) -> bool:
    """True for a local path or ``file://`` URL (where rename is atomic)."""
    return "://" not in path or path.startswith("file://")


def local_path(path: str) -> str:
    """The OS path of a local path or ``file://`` URL."""
    return path[len("file://"):] if path.startswith("file://") else path


def protocol(path: str) -> str:
    """The URL's scheme (``file`` for a local path)."""
    return path.split("://", 1)[0] if "://" in path else "file"


def fs_path(path: str) -> str:
    """The path a filesystem's methods take: the location without its scheme."""
    return path.split("://", 1)[1] if "://" in path else path


def url_of(like: str, path: str) -> str:
    """The location of filesystem path ``path`` on the filesystem of location ``like`` (inverse of :func:`fs_path`).

    >>> url_of("s3://bucket/cat", "bucket/cat/media"), url_of("/data/cat", "/data/cat/media")
    ('s3://bucket/cat/media', '/data/cat/media')
    """
    return path if is_local(like) else f"{protocol(like)}://{path}"


def _options(path: str) -> dict[str, Any]:
    return {"use_listings_cache": False} if protocol(path) in OBJECT_STORES else {}


def url_to_fs(path: str, **options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """``fsspec.core.url_to_fs`` for catalog locations: object stores without a listing cache."""
    return _fsspec_url_to_fs(path, **{**_options(path), **options})


def filesystem(path: str) -> fsspec.AbstractFileSystem:
    """The filesystem that serves ``path``."""
    return url_to_fs(path)[0]


def list_afresh(path: str) -> None:
    """Make fresh listings fsspec's default for ``path``'s object store (pandas/pyarrow reads in this process).

    Called when a catalog on an object store is opened; a no-op for local paths.
    """
    if protocol(path) in OBJECT_STORES:
        fsspec.config.conf.setdefault(protocol(path), {}).setdefault("use_listings_cache", False)


__all__ = ["OBJECT_STORES", "filesystem", "fs_path", "is_local", "list_afresh", "local_path", "protocol",
           "url_of", "url_to_fs"]
