"""The orchestrator's ceiling: task runs per second one Prefect server records, on SQLite and on PostgreSQL.

Every extraction batch is a Prefect task reported to one server, so the server's
rate of task runs bounds the cluster one deployment can feed. For each database
the benchmark starts a real Prefect server (SQLite in a fresh home; PostgreSQL 15
on loopback, started here as the ``postgres`` user with its durable defaults, and
the server started the way ``emofuse serve --database`` starts it), then runs
``--clients`` child processes at once (as many Dask worker processes would), each
a flow submitting its share of ``--tasks`` empty tasks to a thread pool, ``W`` threads
in all for each ``W`` of ``--workers``. It measures from a common start signal:

* ``client/s``: task runs per second the clients finished (their flows returned);
* ``recorded/s``: task runs per second the server had recorded as ``COMPLETED`` in its
  database (Prefect 3 clients report task states as events; the server writes them
  asynchronously), counted with ``POST /api/task_runs/count`` until all are there.
  This is the sustained rate.

From the best ``recorded/s`` it prints the largest cluster the default task sizing
can feed: a task holds as many items as fit in the ``extract`` flow's default
``batch_size``/``batch_seconds`` (read from its signature) at ``--item-seconds`` each;
one worker extracts all four feature sets at ``--media-s-per-worker`` media-s/s, so a
task (one batch, one set) lasts ``d = task media-s / (4 x rate)`` seconds on average,
a worker asks for ``1/d`` task runs per second, and the server feeds at most
``recorded/s x d`` workers.

Run ``.venv/bin/python -m bench.orchestrator`` (``--small``: 200 tasks, 16 threads, 2
clients, to check it works); ``--databases sqlite`` skips PostgreSQL.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._common import Machine, child_env, child_main, print_footer, print_header, run_child, table, workdir

#: Per worker, all four feature sets: docs/benchmarks.md, issue 10 target 4a (14.5 media-s/s on 2 workers, 384 clips).
MEDIA_S_PER_WORKER = 14.5 / 2
#: Feature sets a default extract run computes (one task per batch and set).
FEATURE_SETS = 4
#: A RAVDESS clip's mean duration (docs/benchmarks.md, the 1,440-clip projection).
ITEM_SECONDS = 3.7


# --------------------------------------------------------------------------- child: one client process
def child_burst(p: dict[str, Any]) -> dict[str, Any]:
    """Wait for the start signal, then run a flow of ``tasks`` empty tasks on ``threads`` threads."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import wait
    from prefect.runtime import flow_run
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(name="bench-empty", cache_policy=NO_CACHE, persist_result=False)
    def empty(i: int) -> None:
        return None

    @flow(name="bench-orchestrator", persist_result=False)
    def burst(n: int) -> str:
        wait([empty.submit(i) for i in range(n)])
        return flow_run.id

    Path(p["ready"]).touch()
    while not os.path.exists(p["go"]):
        time.sleep(0.01)
    t0 = time.time()
    run_id = burst.with_options(task_runner=ThreadPoolTaskRunner(max_workers=p["threads"]))(p["tasks"])
    return {"flow_run_id": run_id, "start": t0, "end": time.time()}


# --------------------------------------------------------------------------- servers
@contextlib.contextmanager
def prefect_server(wd: Path, database: str | None) -> Iterator[str]:
    """A Prefect server on loopback with a fresh home; ``database``: its connection URL (None: SQLite)."""
    from emofuse.flows import local_server as ls
    from emofuse.flows.serve_server import ServerOptions

    stack = ls.LocalStack(wd / "state", ls.free_port())
    env = ServerOptions(database=database).server_env(ls.server_env(home=str(wd / "home")))
    env["PREFECT_UI_ENABLED"] = "false"
    proc = ls.spawn_server(stack, env)
    try:
        yield ls.wait_healthy(stack, proc, wait_s=300)
    finally:
        ls.stop_process(proc, 30)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    from tests.postgres_server import PostgresServer

    with PostgresServer(fast=False) as pg:  # durable defaults: fsync and synchronous commits on
        yield pg.url


def recorded(api: str, flow_run_ids: list[str]) -> int:
    """Task runs of these flow runs that the server has recorded as COMPLETED."""
    import httpx

    body = {"flow_runs": {"id": {"any_": flow_run_ids}}, "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    r = httpx.post(f"{api}/task_runs/count", json=body, timeout=30)
    r.raise_for_status()
    return int(r.json())


def measure(api: str, wd: Path, tasks: int, threads: int, clients: int, timeout_s: float) -> dict[str, Any]:
    """One burst: ``clients`` processes, ``threads`` threads and ``tasks`` empty tasks in all."""
    import concurrent.futures as cf

    go = wd / "go"
    go.unlink(missing_ok=True)
    shares = [tasks // clients + (i < tasks % clients) for i in range(clients)]
    per = [max(1, threads // clients + (i < threads % clients)) for i in range(clients)]
    env = {**child_env(str(wd / "client-home"), {"PREFECT_API_URL": api})}
    with cf.ThreadPoolExecutor(clients) as pool:
        futs = []
        for i in range(clients):
            ready = wd / f"ready-{i}"
            ready.unlink(missing_ok=True)
            payload = {"what": "burst", "tasks": shares[i], "threads": per[i], "ready": str(ready), "go": str(go)}
            futs.append(pool.submit(run_child, "bench.orchestrator", payload, log=str(wd / f"client-{i}.log"),
                                    env=env, timeout=timeout_s))
        deadline = time.time() + 300
        while not all((wd / f"ready-{i}").exists() for i in range(clients)):
            if time.time() > deadline or any(f.done() for f in futs):
                [f.result() for f in futs if f.done()]  # a child that failed says why
                raise TimeoutError("clients did not get ready")
            time.sleep(0.05)
        t0 = time.time()
        go.touch()
        results = [f.result() for f in futs]
    ids = [r["flow_run_id"] for r in results]
    client_end = max(r["end"] for r in results)
    n, deadline = 0, time.time() + timeout_s
    while time.time() < deadline:
        n = recorded(api, ids)
        if n >= tasks:
            break
        time.sleep(0.2)
    recorded_end = time.time()
    return {"threads": threads, "clients": clients, "tasks": tasks, "recorded": n,
            "client_s": client_end - t0, "client/s": tasks / (client_end - t0),
            "recorded_s": recorded_end - t0, "recorded/s": n / (recorded_end - t0)}


# --------------------------------------------------------------------------- the cluster it feeds
def task_sizing(item_seconds: float) -> dict[str, float]:
    """The extract flow's default batch sizing and the media seconds of one task of items this long."""
    from emofuse.flows.extract import extract

    params = inspect.signature(extract.fn).parameters
    size, secs = params["batch_size"].default, params["batch_seconds"].default
    items = size if secs is None else max(1, min(size, math.floor(secs / item_seconds)))
    media = items * item_seconds
    return {"batch_size": size, "batch_seconds": secs, "task_media_s": media}


def cluster_fed(rate: float, item_seconds: float, media_s_per_worker: float) -> dict[str, float]:
    """Workers the server feeds at ``rate`` task runs/s when every task has the default sizing."""
    sizing = task_sizing(item_seconds)
    task_s = sizing["task_media_s"] / (FEATURE_SETS * media_s_per_worker)
    return {**sizing, "task_s": task_s, "task_runs_per_worker_s": 1 / task_s, "workers": rate * task_s}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench.orchestrator", description=__doc__.splitlines()[0])
    ap.add_argument("--databases", default="sqlite,postgres")
    ap.add_argument("--workers", default="16,32,64", help="thread workers in all, comma-separated")
    ap.add_argument("--clients", type=int, default=4, help="client processes sharing the threads")
    ap.add_argument("--tasks", type=int, default=2000, help="empty tasks per burst")
    ap.add_argument("--item-seconds", type=float, default=ITEM_SECONDS)
    ap.add_argument("--media-s-per-worker", type=float, default=MEDIA_S_PER_WORKER)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--small", action="store_true", help="200 tasks, 16 threads, 2 clients")
    args = ap.parse_args(argv)
    if args.small:
        args.tasks, args.workers, args.clients = 200, "16", 2
    machine = Machine()
    print_header("Prefect server ceiling: task runs per second (SQLite, PostgreSQL)", ["bench.orchestrator", *argv],
                 machine)
    wd = Path(workdir("orchestrator"))
    rows = []
    for kind in args.databases.split(","):
        with database(kind) as url, prefect_server(wd / kind, url) as api:
            for threads in (int(w) for w in args.workers.split(",")):
                r = measure(api, wd / kind, args.tasks, threads, args.clients, args.timeout)
                rows.append({"database": kind, **r})
                print(table([rows[-1]]), flush=True)
    print("\n## task runs per second\n")
    print(table(rows, ["database", "threads", "clients", "tasks", "recorded", "client_s", "client/s", "recorded_s",
                       "recorded/s"]))
    print("\n## the largest cluster the default task sizing can feed\n")
    fed = []
    for kind in dict.fromkeys(r["database"] for r in rows):
        best = max(r["recorded/s"] for r in rows if r["database"] == kind)
        fed.append({"database": kind, "recorded/s": best,
                    **cluster_fed(best, args.item_seconds, args.media_s_per_worker)})
    print(table(fed, ["database", "recorded/s", "batch_size", "batch_seconds", "task_media_s", "task_s",
                      "task_runs_per_worker_s", "workers"]))
    print(f"\n(items of {args.item_seconds} s; {args.media_s_per_worker} media-s/s per worker for {FEATURE_SETS} "
          f"feature sets; workers = recorded/s x task_s, the server fully busy)")
    print(f"logs: {wd}")
    print_footer(machine)
    return 0


if __name__ == "__main__":
    if not child_main(sys.argv[1:], {"burst": child_burst}):
        sys.exit(main(sys.argv[1:]))
