"""Scaling of the ``extract`` flow: 1 vs 2 workers, on a local cluster and on an external Dask cluster.

Configurations (fresh catalog each, fresh flow process each):

* local: ``extract(n_workers=N)`` as ``emofuse extract`` runs it: a temporary
  Prefect server in the flow process and a local Dask cluster of N workers of
  one thread each (threads or processes: whatever ``emofuse.flows.runner`` gives; the
  table says which);
* external: a cluster started beforehand with ``dask scheduler`` and
  ``dask worker --nworkers N --nthreads 1`` subprocesses on 127.0.0.1, a real
  Prefect server (the workers need ``PREFECT_API_URL``), and
  ``extract(dask_address=...)``. The cluster's and server's start-up is
  reported but not counted, as for a cluster that is already running.

Scaling efficiency = speed-up / workers, speed-up = time(1 worker) / time(2
workers) of the same configuration; given for the whole flow call and for its
body (inside the Dask sub-flow, without the fixed start-up). Last, a probe of
each stage's library call: does it let a second Python thread run (release the
GIL)? Thread workers in one process only scale on stages that do.

Usage: ``.venv/bin/python -m bench.scaling [--small]``
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from bench._common import (Machine, PrefectServer, child_env, child_main, corpus, media_files, median, print_footer,
                           print_header, ratio, run_child, spread, table, workdir)
from emofuse.flows.local_server import free_port

FEATURE_SETS = ["egemaps", "faces", "text"]


def gil_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: does each library call let another Python thread run? (what thread workers need to scale)

    A pure-Python counter thread runs during each call; its progress relative to running
    alone is ~0 when the call holds the GIL, and >0.5 when it releases it.
    """
    import threading

    from emofuse.catalog.corpora.ravdess import STATEMENTS
    from emofuse.pipeline import model_files
    from emofuse.pipeline.decode import iter_frames, load_audio
    from emofuse.pipeline.faces.detect import YuNetDetector
    from emofuse.pipeline.faces.embed import DlibEmbedder
    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder
    from emofuse.pipeline.logmel import logmel_array
    from emofuse.pipeline.text import embed_texts
    from emofuse.pipeline.threads import limit_threads

    import opensmile

    limit_threads(1)
    path = p["file"]
    frames = [f for _t, f in iter_frames(path)]
    audio = load_audio(path)
    det = YuNetDetector(model_files.yunet_path())
    dl = model_files.dlib_model_paths()
    emb = DlibEmbedder(dl.shape_predictor_5, dl.face_recognition)
    engine = DlibResNetEmbedder(dl.face_recognition, device="cpu", threads=1)
    chips = [c for f in frames for c in emb.align(f, det.detect(f).largest(1))]
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    texts = [STATEMENTS[1]] * 64
    nf = len(frames)
    jobs = {  # name: (call, number of native calls it makes)
        "YuNet detect (OpenCV)": (lambda: [det.detect(f) for f in frames], nf),
        "dlib align (shape predictor + chip)": (lambda: [emb.align(f, det.detect(f).largest(1)) for f in frames], nf),
        "dlib ResNet embed, dlib-bin (one batch)": (lambda: emb.embed_crops(chips), 1),
        "dlib ResNet embed, engine (one batch)": (lambda: engine.embed_crops(chips), 1),
        "openSMILE LLD": (lambda: smile.process_signal(audio, 16000), 1),
        "MiniLM (torch, 2 batches)": (lambda: embed_texts(texts), 2),
        "log-mel (torchaudio)": (lambda: [logmel_array(audio) for _ in range(20)], 20),
        "PyAV decode (5 fps RGB)": (lambda: [f for _t, f in iter_frames(path)], 1),
        "pure Python (reference)": (lambda: sum(i * i for i in range(2_000_000)), 1),
    }

    def counter(stop: threading.Event, out: list[float]) -> None:
        n, last, worst = 0, time.perf_counter(), 0.0
        while not stop.is_set():
            n += 1
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now
        out += [n, worst]

    def run_counter(seconds: float | None, job: Any = None) -> tuple[float, float, float]:
        stop, out = threading.Event(), []
        th = threading.Thread(target=counter, args=(stop, out))
        th.start()
        t0 = time.perf_counter()
        if job is None:
            time.sleep(seconds or 1.0)
        else:
            job()
        dt = time.perf_counter() - t0
        stop.set()
        th.join()
        return out[0] / dt, dt, out[1]

    solo, _, _ = run_counter(1.0)
    res = {}
    for name, (job, calls) in jobs.items():
        job()
        rate, dt, worst = run_counter(None, job)
        res[name] = {"progress": rate / solo, "call_s": dt, "per_call_ms": 1000 * dt / calls,
                     "stall_ms": 1000 * worst}
    return res


class DaskCluster:
    """``dask scheduler`` + ``dask worker`` subprocesses on loopback; stopped (only these) on exit."""

    def __init__(self, workers: int, env: dict[str, str], logdir: str) -> None:
        self.workers, self.env, self.logdir = workers, env, logdir
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.start_s = float("nan")

    def _spawn(self, args: list[str], log: str) -> None:
        dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or "dask"
        out = open(os.path.join(self.logdir, log), "ab")
        self.procs.append(subprocess.Popen([dask, *args], stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=self.env, start_new_session=True))

    def __enter__(self) -> "DaskCluster":
        from distributed import Client

        os.makedirs(self.logdir, exist_ok=True)
        t0 = time.perf_counter()
        self._spawn(["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
                    "scheduler.log")
        self._spawn(["worker", self.address, "--nworkers", str(self.workers), "--nthreads", "1",
                     "--no-dashboard", "--host", "127.0.0.1", "--local-directory", self.logdir], "workers.log")
        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(self.workers, timeout=120)
        self.start_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"gil": gil_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.scaling", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="1 actor (16 clips) instead of 2 (32 clips)")
    ap.add_argument("--actors", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--gil-only", action="store_true", help="only the per-stage GIL probe")
    args = ap.parse_args(argv)
    actors = args.actors or (1 if args.small else 2)
    machine = Machine()
    print_header("scaling: 1 vs 2 Dask workers, local cluster and external cluster", ["bench.scaling", *argv],
                 machine)
    src = corpus(actors)
    n = len(media_files(src))
    wd = workdir("scaling")
    print(f"corpus: {src} ({n} clips); feature sets {FEATURE_SETS}; work dir {wd}", flush=True)
    if args.gil_only:
        gil_table(src, wd)
        print_footer(machine)
        return 0
    temp_env = child_env(os.path.join(wd, "prefect-home"))
    run_child("bench._flows", {"what": "noop", "n": 1, "workers": 1}, log=os.path.join(wd, "warmup.log"), env=temp_env)

    def flow(tag: str, env: dict[str, str], workers: int | None, address: str | None = None) -> dict[str, Any]:
        res = run_child("bench._flows", {"what": "extract", "source": src, "catalog": os.path.join(wd, f"cat-{tag}"),
                                         "feature_sets": FEATURE_SETS, "workers": workers, "address": address},
                        log=os.path.join(wd, f"{tag}.log"), env=env)
        print(f"  {tag}: {res['wall_s']:.1f} s (body {res['inner_s']:.1f} s)", flush=True)
        return res

    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    starts: dict[str, list[float]] = {"server": [], "cluster": []}
    for r in range(args.repeat):
        ws = (1, 2) if r % 2 == 0 else (2, 1)
        for w in ws:
            runs.setdefault(("local", w), []).append(flow(f"local-{w}w-r{r}", temp_env, w))
        with PrefectServer(os.path.join(wd, f"server-r{r}")) as server:
            starts["server"].append(server.start_s)
            env = server.env
            env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
            for w in ws:
                with DaskCluster(w, env, os.path.join(wd, f"dask-{w}w-r{r}")) as cluster:
                    starts["cluster"].append(cluster.start_s)
                    runs.setdefault(("external", w), []).append(flow(f"external-{w}w-r{r}", env, None, cluster.address))

    rows = []
    for mode in ("local", "external"):
        one, two = runs[(mode, 1)], runs[(mode, 2)]
        label = ("local cluster, " + one[0].get("worker_mode", "temporary server") if mode == "local"
                 else "dask scheduler + dask worker processes, running server")
        t1, t2 = median(x["wall_s"] for x in one), median(x["wall_s"] for x in two)
        b1, b2 = median(x["inner_s"] for x in one), median(x["inner_s"] for x in two)
        for w, xs, t, b in ((1, one, t1, b1), (2, two, t2, b2)):
            task_sum = median(sum(s["task_wall_s"] for s in x["sets"].values()) for x in xs)
            rows.append({"cluster": label, "workers": w, "wall s": t, "range": spread([x["wall_s"] for x in xs]),
                         "body s": b, "clips/s": n / t, "sum task s": task_sum,
                         "speed-up (wall)": ratio(t1, t), "efficiency (wall)": ratio(t1, t) / w,
                         "speed-up (body)": ratio(b1, b), "efficiency (body)": ratio(b1, b) / w})
    print("\n## 1 vs 2 workers (median of runs)\n")
    print(table(rows))
    for mode in ("local", "external"):
        for w in (1, 2):
            per = {k: median(x["sets"][k]["task_wall_s"] for x in runs[(mode, w)]) for k in FEATURE_SETS}
            print(f"- {mode} {w}w task s per feature set: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    print(f"\nnot counted: Prefect server start {median(starts['server']):.1f} s, external Dask cluster start "
          f"{median(starts['cluster']):.1f} s")
    loc2, ext2 = median(x["wall_s"] for x in runs[("local", 2)]), median(x["wall_s"] for x in runs[("external", 2)])
    print(f"external cluster vs local cluster, 2 workers (wall): {ratio(loc2, ext2):.2f}x faster")
    gil_table(src, wd)
    print_footer(machine)
    return 0


def gil_table(src: str, wd: str) -> None:
    """Run the GIL probe in a fresh process and print its table."""
    gil = run_child("bench.scaling", {"what": "gil", "file": media_files(src)[0]}, log=os.path.join(wd, "gil.log"),
                    env=child_env())
    print("\n## does each stage let a second thread run? (thread workers share one process)\n")
    print("A pure-Python counter thread runs during each call. progress = its rate / its rate alone; longest "
          "stall = its longest wait. A call that holds the GIL stalls it for the whole native call (stall ~ ms per "
          "call, progress ~0); one that releases it leaves only the interpreter's switch interval (5 ms) and the "
          "OS's time slices when cores are busy.\n")
    print(table([{"call": k, "s": v["call_s"], "ms per native call": v["per_call_ms"],
                  "counter's longest stall ms": v["stall_ms"], "counter's progress": v["progress"]}
                 for k, v in gil.items() if isinstance(v, dict)]))


if __name__ == "__main__":
    raise SystemExit(main())
