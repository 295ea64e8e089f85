"""Which Dask cluster the flows' tasks run on: a local cluster, or an existing one by address.

Example:
    >>> runner = dask_runner(n_workers=1)  # a local cluster, started when a flow enters it
    >>> runner.cluster_kwargs["n_workers"], runner.cluster_kwargs["threads_per_worker"]
    (1, 1)
    >>> dask_runner("tcp://scheduler:8786").address
    'tcp://scheduler:8786'
"""
from __future__ import annotations

import logging
import os

from prefect_dask import DaskTaskRunner

from emofuse.flows.security import dask_client_kwargs

DASK_ADDRESS_ENV = "EMOFUSE_DASK_ADDRESS"
#: One thread per worker: torch, onnxruntime and openSMILE each use a core well alone.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


#: Loggers whose per-worker INFO chatter drowns a flow's own progress lines (quiet once a cluster is asked for).
DASK_LOGGERS = ("distributed", "distributed.scheduler", "distributed.worker", "distributed.core")


def quiet_dask_logs() -> None:
    """Keep Dask's loggers at WARNING in this process."""
    for name in DASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def dask_runner(address: str | None = None, n_workers: int | None = None,
                processes: bool = True, api_url: str | None = None) -> DaskTaskRunner:
    """A DaskTaskRunner for ``address`` (or ``$EMOFUSE_DASK_ADDRESS``), else the cluster ``emofuse serve`` keeps
    warm for ``api_url`` (:mod:`emofuse.flows.warm_cluster`), else a new local cluster.

    Local workers are processes (dlib's face embedding holds the GIL, so threads
    of one process cannot run two face tasks at once). They report to
    ``api_url`` — the server this flow itself uses, a temporary one included —
    so no worker starts a Prefect server of its own.
    """
    from emofuse.flows.warm_cluster import warm_address

    quiet_dask_logs()
    address = address or os.environ.get(DASK_ADDRESS_ENV) or None
    if address:  # TLS with the certificates of $EMOFUSE_DASK_TLS when set (emofuse.flows.security)
        return DaskTaskRunner(address=address, client_kwargs=dask_client_kwargs())
    warm = warm_address(api_url, n_workers) if processes else None
    if warm:  # serve's workers: started, imports done, models loaded
        return DaskTaskRunner(address=warm)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs=local_cluster_kwargs(n_workers, processes=processes, api_url=api_url))


def local_cluster_kwargs(n_workers: int | None = None, processes: bool = True,
                         api_url: str | None = None) -> dict:
    """``distributed.LocalCluster`` arguments: one-thread workers (processes get :data:`WORKER_ENV` and the API URL)."""
    kwargs: dict = {"n_workers": n_workers or default_workers(), "threads_per_worker": 1,
                    "processes": processes, "dashboard_address": None}
    if processes:
        env = dict(WORKER_ENV)
        api_url = api_url or os.environ.get("PREFECT_API_URL")
        if api_url:
            env["PREFECT_API_URL"] = api_url
        kwargs["env"] = env
    return kwargs


def current_api_url() -> str | None:
    """The API URL the running flow talks to (also the temporary server's, when there is no other)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")
