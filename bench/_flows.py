"""Flows used only by benchmarks: no-op tasks on the same Dask task runner as ``extract``.

Module-level, so Dask workers in other processes can unpickle the task by reference.
"""
from __future__ import annotations

import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(name="bench-noop", cache_policy=NO_CACHE)
def noop(i: int) -> int:
    """Does nothing: its cost is Prefect's and Dask's per-task overhead."""
    return i


@flow(name="bench-noop-flow")
def noop_flow(n: int) -> dict[str, Any]:
    """Submit ``n`` no-op tasks and wait for them; returns the seconds the task phase took."""
    t0 = time.perf_counter()
    futures = [noop.submit(i) for i in range(n)]
    for f in futures:
        f.result()
    return {"tasks_s": time.perf_counter() - t0, "n": n}


def run_noop(n: int, workers: int | None, address: str | None = None) -> dict[str, Any]:
    """Run :func:`noop_flow` on the task runner ``extract`` would use; returns timings."""
    from emofuse.flows.runner import dask_runner

    t0 = time.perf_counter()
    out = noop_flow.with_options(task_runner=dask_runner(address, workers))(n)
    out["wall_s"] = time.perf_counter() - t0
    return out


def run_extract(p: dict[str, Any]) -> dict[str, Any]:
    """Child: run the ``extract`` flow once as a user would; timings from outside and from its record."""
    t0 = time.perf_counter()
    from emofuse.flows.extract import extract

    import_s = time.perf_counter() - t0
    out_mode = worker_mode(p.get("address"), p.get("workers"))
    t1 = time.perf_counter()
    rec = extract(source=p.get("source"), catalog=p["catalog"], feature_sets=p["feature_sets"],
                  n_workers=p.get("workers"), dask_address=p.get("address"),
                  **{k: p[k] for k in ("batch_size", "batch_seconds") if k in p})  # default: the flow's
    wall = time.perf_counter() - t1
    sets = {a["name"]: {"key": k, "counts": a["counts"], "media_s": a["media_seconds"],
                        "task_wall_s": a["task_wall_s"], "already_done": a["already_done"], "items": a["items"]}
            for k, a in rec["feature_sets"].items()}
    out: dict[str, Any] = {"wall_s": wall, "import_s": import_s, "inner_s": rec["wall_s"], "sets": sets,
                           "worker_mode": out_mode}
    if p.get("then_noop"):  # per-task overhead, in the same process (server already up)
        out["noop"] = run_noop(int(p["then_noop"]), p.get("workers"), p.get("address"))
    return out


def worker_mode(address: str | None, workers: int | None) -> str:
    """What kind of Dask workers ``emofuse.flows.runner.dask_runner`` gives here: thread / process / external."""
    import os

    from emofuse.flows.runner import dask_runner

    runner = dask_runner(address, workers)
    if runner.address:
        return "external cluster"
    kind = "process" if (runner.cluster_kwargs or {}).get("processes") else "thread"
    server = "running server" if os.environ.get("PREFECT_API_URL") else "temporary server"
    return f"{server}, {kind} workers"


def _noop_child(p: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    import emofuse.flows.runner  # noqa: F401 - import cost outside the timing, as for extract

    import_s = time.perf_counter() - t0
    out = run_noop(p["n"], p.get("workers"), p.get("address"))
    out["import_s"] = import_s
    return out


if __name__ == "__main__":
    import sys

    from bench import _flows  # the importable module, so workers unpickle tasks by reference
    from bench._common import child_main

    child_main(sys.argv[1:], {"extract": _flows.run_extract, "noop": _flows._noop_child})
