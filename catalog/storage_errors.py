"""Storage failures as one clear message: the path, what the storage said, what to do.

A catalog write can fail for reasons that are not emofuse's: the disk is full, the
filesystem is read-only, permission is denied, the object store does not answer. Deep in
a Parquet or Zarr writer or an HTTP client these surface as an ``OSError`` without the
path (pyarrow: ``Error writing bytes to file. Detail: [errno 28] …``) or as a client's
connection error. :func:`storage_error` turns such an exception into a
:class:`StorageError` naming the path, the cause and the fix; :func:`guarded` does it
around a write; :func:`find_storage_error` finds one in an exception's chain (a flow's
failure wraps its task's), so the command line prints one line instead of a traceback.

Example:
    >>> import errno
    >>> e = storage_error(OSError(errno.ENOSPC, "No space left on device"), "/data/cat/media/part-1.parquet")
    >>> print(e)  # doctest: +ELLIPSIS
    cannot write /data/cat/media/part-1.parquet: No space left on device (free space there, then run the same ...)
    >>> e.permanent, isinstance(e, OSError)
    (True, True)
    >>> print(storage_error(OSError("Error writing bytes to file. Detail: [errno 30] Read-only file system"), "/ro/x"))
    ... # doctest: +ELLIPSIS
    cannot write /ro/x: Read-only file system (the filesystem is mounted read-only: ...)
    >>> storage_error(ValueError("not a storage problem"), "/x") is None
    True
    >>> find_storage_error(RuntimeError("flow failed")) is None
    True
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

from emofuse.catalog.urls import protocol

#: errno -> (cause, what to do).
_HINTS = {
    errno.ENOSPC: ("No space left on device", "free space there"),
    errno.EDQUOT: ("Disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: ("Read-only file system", "the filesystem is mounted read-only: make it writable "
                  "(e.g. mount -o remount,rw) or pass another --catalog"),
    errno.EACCES: ("Permission denied", "give this user write permission there, or pass another --catalog"),
    errno.EPERM: ("Operation not permitted", "give this user write permission there, or pass another --catalog"),
    errno.EIO: ("Input/output error", "check the disk or the network filesystem"),
}
_AGAIN = "then run the same command again: what is committed is kept and nothing is done twice"
#: Exception class names (from botocore and aiohttp, which s3fs and gcsfs use, and fsspec) that mean the
#: object store did not answer (by name: neither library need be installed).
_UNREACHABLE = {"EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError",
                "ClientConnectorError", "ClientConnectionError", "ServerDisconnectedError", "ClientOSError",
                "FSTimeoutError"}
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


class StorageError(OSError):
    """The storage refused a catalog read or write; ``str()`` is the whole message (path, cause, fix)."""

    def __str__(self) -> str:
        return self.strerror if isinstance(self.strerror, str) else super().__str__()

    @property
    def permanent(self) -> bool:
        """Whether trying again at once cannot help (a full or read-only disk; not an unreachable store)."""
        return self.errno not in (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.ECONNRESET)


def _errno_of(exc: BaseException) -> int | None:
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in _HINTS:
        return code
    m = _ERRNO_IN_TEXT.search(str(exc))
    return int(m.group(1)) if m and int(m.group(1)) in _HINTS else None


def _unreachable(exc: BaseException) -> bool:
    return any(c.__name__ in _UNREACHABLE for c in type(exc).__mro__)


def storage_error(exc: BaseException, path: str, action: str = "write") -> StorageError | None:
    """``exc`` as a :class:`StorageError` about ``path`` when it is a storage failure, else None."""
    if isinstance(exc, StorageError):
        return exc
    code = _errno_of(exc)
    if code is not None:
        cause, todo = _HINTS[code]
        return StorageError(code, f"cannot {action} {path}: {cause} ({todo}, {_AGAIN})")
    if _unreachable(exc):
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        where = f" (endpoint {endpoint})" if endpoint and protocol(path) in ("s3", "s3a") else ""
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StorageError(errno.ECONNREFUSED, f"cannot {action} {path}: the storage does not answer{where}: "
                                                f"{detail} (check that it is up and reachable, {_AGAIN})")
    return None


def find_storage_error(exc: BaseException, path: str | None = None) -> StorageError | None:
    """The first storage failure in ``exc``'s chain (causes, contexts) as a :class:`StorageError`.

    Failures that are not already a :class:`StorageError` are described with ``path``
    (e.g. the catalog root) when given, else they do not count.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, StorageError):
            return e
        if path is not None:
            found = storage_error(e, getattr(e, "filename", None) or path)
            if found is not None:
                return found
        todo += [e.__cause__, e.__context__]
    return None


@contextlib.contextmanager
def guarded(path: str, action: str = "write") -> Iterator[None]:
    """Raise storage failures inside the block as a :class:`StorageError` about ``path``."""
    try:
        yield
    except Exception as e:
        err = storage_error(e, path, action)
        if err is None or err is e:
            raise
        raise err from e


__all__ = ["StorageError", "find_storage_error", "guarded", "storage_error"]
