"""How a run that the storage stopped ends: one clear line, not a traceback flood, and no useless retries.

A full disk, a read-only catalog or an object store that does not answer stops a run
wherever it happens: in a Dask task's commit, or in the flow's own reads and writes.
The failure travels up as a :class:`~emofuse.catalog.storage_errors.StorageError`
(path, cause, what to do). Here:

* :func:`failure_line` is what the command line prints for it (``emofuse extract: cannot
  write /cat/…: No space left on device (…)``), exiting non-zero; it also gives the message of
  a source whose corpus recipe took none of its files (which names the fix);
* :func:`quiet_storage_tracebacks` keeps Prefect's log lines about such a failure but drops
  their tracebacks (they say nothing the message does not, and bury it);
* :func:`retry_unless_permanent` is the tasks' retry condition: a store that did not answer
  is tried again, a full or read-only disk is not;
* :func:`storage_failures_named` turns a task's raw storage failure (a client's connection
  error, an ``OSError`` without a path) into a ``StorageError`` about the catalog.

Example:
    >>> import errno
    >>> failure_line("extract", OSError(errno.EROFS, "Read-only file system", "/cat/locks/media.lock"), "/cat")
    ... # doctest: +ELLIPSIS
    'emofuse extract: cannot write /cat/locks/media.lock: Read-only file system (the filesystem is mounted ...)'
    >>> failure_line("extract", ValueError("a bug"), "/cat") is None
    True
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from emofuse.catalog.storage_errors import StorageError, find_storage_error
from emofuse.pipeline.intake import NothingTaken

#: Prefect's loggers of flow and task runs (their ERROR records carry the tracebacks).
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def failure_line(command: str, exc: BaseException, catalog: str | None) -> str | None:
    """What the command prints when ``exc`` is a storage failure, or a source whose recipe took none of
    its files (:class:`~emofuse.pipeline.intake.NothingTaken`: why, and the fix); None for anything else."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, NothingTaken):
            return f"emofuse {command}: {cause}"
        cause = cause.__cause__ or cause.__context__
    err = find_storage_error(exc, catalog)
    return None if err is None else f"emofuse {command}: {err}"


class _DropStorageTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and find_storage_error(exc, "") is not None:
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = _DropStorageTracebacks()


def quiet_storage_tracebacks() -> None:
    """Keep the tracebacks of storage failures out of Prefect's run logs in this process (idempotent)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def retry_unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry, unless the task failed on a full, read-only or forbidden catalog."""
    exc = getattr(state, "data", None)
    err = find_storage_error(exc, "") if isinstance(exc, BaseException) else None
    return not (err is not None and err.permanent)


@contextlib.contextmanager
def storage_failures_named(catalog: str) -> Iterator[None]:
    """Raise a storage failure in the block as a :class:`StorageError` (about ``catalog`` when it names no path)."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:
        err = find_storage_error(e, catalog)
        if err is None:
            raise
        raise err from e


__all__ = ["failure_line", "quiet_storage_tracebacks", "retry_unless_permanent", "storage_failures_named"]
