"""Which Dask cluster the flows' tasks run on: a local cluster, or an existing one by address."""
from __future__ import annotations

import logging
import os

from prefect_dask import DaskTaskRunner

DASK_ADDRESS_ENV = "EMOFUSE_DASK_ADDRESS"
#: One thread per worker: torch, onnxruntime and openSMILE each use a core well alone.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


# Dask's per-worker INFO chatter drowns the flow's own progress lines.
for _name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.core"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def dask_runner(address: str | None = None, n_workers: int | None = None,
                processes: bool | None = None) -> DaskTaskRunner:
    """A DaskTaskRunner for ``address`` (or ``$EMOFUSE_DASK_ADDRESS``), else a new local cluster.

    Local workers are processes when a Prefect server is configured
    (``PREFECT_API_URL``) and threads otherwise: without a server every worker
    process would start a temporary Prefect server of its own.
    """
    address = address or os.environ.get(DASK_ADDRESS_ENV) or None
    if address:
        return DaskTaskRunner(address=address)
    if processes is None:
        processes = bool(os.environ.get("PREFECT_API_URL"))
    kwargs: dict = {"n_workers": n_workers or default_workers(), "threads_per_worker": 1,
                    "processes": processes, "dashboard_address": None}
    if processes:
        kwargs["env"] = WORKER_ENV
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)
