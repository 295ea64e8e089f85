"""The Dask cluster ``emofuse serve`` keeps warm, so a flow run pays no cluster start and no model load.

A flow run that starts its own local cluster pays for it every time: the cluster's
start and stop (~3 s) and, in every worker process, importing Prefect, torch and
openSMILE and loading the extractors' models (~5.5 CPU-s per worker, measured with
``time.process_time`` for eGeMAPS + faces + text). ``emofuse serve`` starts one local
cluster when it starts; its workers keep their extractors loaded from one task and
one run to the next (:func:`emofuse.pipeline.batch.cached_extractor`).

Who uses it:

* the flow runs serve starts (its deployments): ``$EMOFUSE_DASK_ADDRESS`` is set in
  serve's environment, which those processes inherit;
* ``emofuse extract``/``score`` run from a shell against the same Prefect server: serve
  leaves a note in the state folder (:func:`note_path`) naming the scheduler, the API
  its workers report to, the worker count and serve's pid; a flow uses it only while
  that server is the one it talks to, serve's process lives, the scheduler answers, and
  the run asked for no other worker count (:func:`warm_address`).

Not started when ``$EMOFUSE_DASK_ADDRESS`` or ``$EMOFUSE_DASK_TLS`` names a cluster of the
user's own, when no Prefect API is configured (workers would start servers of their own),
or when ``$EMOFUSE_SERVE_WORKERS`` is ``0`` (it sets the worker count otherwise).

Example:
    >>> note = WarmNote(address="tcp://127.0.0.1:8786", api_url="http://127.0.0.1:4200/api", n_workers=2, pid=1)
    >>> WarmNote.from_json(note.to_json()) == note
    True
    >>> note.serves("http://127.0.0.1:4200/api/", None), note.serves("http://127.0.0.1:4200/api", 1)
    (True, False)
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from emofuse.flows.runner import DASK_ADDRESS_ENV, default_workers, local_cluster_kwargs, quiet_dask_logs
from emofuse.flows.security import DASK_TLS_ENV

#: Worker count of serve's warm cluster (0: start none); default :func:`emofuse.flows.runner.default_workers`.
WORKERS_ENV = "EMOFUSE_SERVE_WORKERS"


@dataclass(frozen=True)
class WarmNote:
    """What serve writes about its warm cluster (one JSON file in the state folder)."""

    address: str
    api_url: str
    n_workers: int
    pid: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WarmNote:
        return cls(**json.loads(text))

    def serves(self, api_url: str | None, n_workers: int | None) -> bool:
        """Whether a run talking to ``api_url`` and asking for ``n_workers`` (None: any) may use this cluster."""
        same_api = bool(api_url) and api_url.rstrip("/") == self.api_url.rstrip("/")
        return same_api and (n_workers is None or n_workers == self.n_workers)


def note_path() -> Path:
    """Where serve leaves its note: ``<data dir>/state/warm-dask.json``."""
    from emofuse.catalog.layout import data_dir

    return Path(data_dir()) / "state" / "warm-dask.json"


def warm_address(api_url: str | None, n_workers: int | None = None) -> str | None:
    """The scheduler of a live warm cluster that a run against ``api_url`` may use, else None."""
    try:
        note = WarmNote.from_json(note_path().read_text())
    except (OSError, ValueError, TypeError):
        return None
    if not note.serves(api_url, n_workers) or not _alive(note.pid) or not _answers(note.address):
        return None
    return note.address


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process: it lives
        return True
    return True


def _answers(address: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections at a ``tcp://host:port`` address."""
    u = urlparse(address)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 8786), timeout=timeout):
            return True
    except OSError:
        return False


def serve_workers() -> int:
    """Workers of the warm cluster: ``$EMOFUSE_SERVE_WORKERS`` (0: none), else the local default."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    return int(raw) if raw else default_workers()


@contextlib.contextmanager
def warm_cluster(api_url: str | None, n_workers: int | None = None) -> Iterator[str | None]:
    """While inside: a local cluster whose workers report to ``api_url``, named in ``$EMOFUSE_DASK_ADDRESS`` and
    the note; yields its scheduler address (None where none is started: see the module's docstring)."""
    n = serve_workers() if n_workers is None else n_workers
    if not api_url or n <= 0 or os.environ.get(DASK_ADDRESS_ENV) or os.environ.get(DASK_TLS_ENV):
        yield None
        return
    from distributed import LocalCluster

    quiet_dask_logs()
    cluster = LocalCluster(**local_cluster_kwargs(n, api_url=api_url))
    address = cluster.scheduler_address
    note = WarmNote(address=address, api_url=api_url.rstrip("/"), n_workers=n, pid=os.getpid())
    path = note_path()
    os.environ[DASK_ADDRESS_ENV] = address
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(note.to_json())
        yield address
    finally:
        os.environ.pop(DASK_ADDRESS_ENV, None)
        with contextlib.suppress(OSError, ValueError, TypeError):
            if WarmNote.from_json(path.read_text()).pid == os.getpid():
                path.unlink()
        cluster.close()


__all__ = ["WORKERS_ENV", "WarmNote", "note_path", "serve_workers", "warm_address", "warm_cluster"]
