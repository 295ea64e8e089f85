"""Corpus size, end to end: a MELD-layout corpus of 10,000+ utterances through every command a user runs.

Issue 18 point 2. The corpus is written by :mod:`bench._fast_meld` (MELD's folders, names and
``*_sent_emo.csv`` from the demo's own plan and CSV writer; small frames, clips of ~1.5-3 s;
kept under ``/tmp/bench-meld-fast-n<items>-px<side>-s<seed>`` and reused). Then, per size,
each stage runs as its own ``emofuse`` command in a fresh process, as a user types it, into
a fresh catalog:

1. ``emofuse extract SRC --corpus meld`` (every registered feature set, 2 local workers);
2. ``emofuse train --model tacfn`` and ``--model rcma`` (compact widths, as the demo trains it
   on a CPU; ``--epochs``, one thread, MELD's official split: one fold);
3. ``emofuse score --model tacfn --no-report`` and the same for rcma;
4. ``emofuse report --model tacfn``;
5. the same ``emofuse extract`` again (a no-op: everything is done), ``emofuse catalog ls``;
6. whole-table ``pd.read_parquet`` of media and status (a child of this script).

While a stage runs, a thread samples its process tree every 0.5 s: the kernel's peak RSS
(VmHWM) of the command's own process (the driver: flow, Dask scheduler, nannies) and of each
Dask worker. Counts: items and media seconds (media table), tasks (distinct ``task_id`` in
the status table), catalog files. Two sizes run in one invocation (``--items N`` also runs
N/4; or ``--sizes a,b``), and the per-item figures are printed side by side with a linear
fit ``wall = fixed + per-item x items`` per stage, projected to ``--project`` items.

Usage: ``.venv/bin/python -m bench.corpus_size [--items 10000] [--small]`` (``--small``: 200
and 50 items, 1 epoch).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from typing import Any

from bench._common import (RESULT_PREFIX, REPO, TMP_ROOT, Machine, child_env, child_main, fmt, print_footer,
                           print_header, ratio, table, workdir)
from bench.ravdess_scale import ProcessSampler

#: RCMA at the demo's compact widths (the paper's 512/64/512 TCNs are for a GPU).
RCMA_COMPACT = '{"face": 64, "audio": 32, "text": 64}'


# --------------------------------------------------------------------------- sampling a command's process tree
def run_stage(name: str, argv: list[str], *, env: dict[str, str], log: str) -> dict[str, Any]:
    """Run one command, sampling its process tree; wall s, peak RSS of driver and workers, its result line."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=f, text=True)
        sampler = ProcessSampler(root=proc.pid)
        sampler.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - t0
        procs = sampler.stop()
        f.write(out)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and every descendant it reaped
    if proc.returncode != 0:
        with open(log, encoding="utf-8") as f:
            raise RuntimeError(f"stage {name} failed (rc {proc.returncode}); log {log}:\n{f.read()[-3000:]}")
    result = next((json.loads(line[len(RESULT_PREFIX):]) for line in out.splitlines()
                   if line.startswith(RESULT_PREFIX)), {})
    workers = [p["hwm_mib"] for p in procs if p["role"] == "dask worker"]
    driver = next((p["hwm_mib"] for p in procs if p["role"] == "driver"), float("nan"))
    cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"stage": name, "wall_s": wall, "cpu_s": cpu_s, "driver_mib": driver,
            "worker_mib": max(workers, default=None), "workers": len(workers), "result": result}


# --------------------------------------------------------------------------- child: whole-table reads
def read_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: whole-table ``pd.read_parquet`` of media and status, timed; counts for the report."""
    import pandas as pd

    from emofuse.catalog.store import Catalog

    layout = Catalog(p["catalog"]).layout
    t0 = time.perf_counter()
    media = pd.read_parquet(layout.media)
    t1 = time.perf_counter()
    status = pd.read_parquet(layout.status)
    t2 = time.perf_counter()
    return {"read_media_s": t1 - t0, "read_status_s": t2 - t1, "media_rows": len(media), "status_rows": len(status),
            "items": int(media["item_id"].nunique()), "media_s": float(media["duration"].fillna(0).sum()),
            "tasks": int(status["task_id"].nunique()),
            "tables_mib": (media.memory_usage(deep=True).sum() + status.memory_usage(deep=True).sum()) / 2**20,
            "statuses": {str(k): int(v) for k, v in status.groupby(["feature_set", "status"], observed=True)
                         .size().items()}}


def file_count(path: str) -> int:
    return sum(len(files) for _d, _dirs, files in os.walk(path))


# --------------------------------------------------------------------------- one size
def corpus_root(items: int, universe: int, side: int, seed: int) -> str:
    cut = f"-of{universe}" if universe != items else ""
    return os.path.join(TMP_ROOT, f"bench-meld-fast-n{items}{cut}-px{side}-s{seed}")


def make_corpus(items: int, universe: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the corpus, cut from the plan of ``universe`` items (a smaller one links the
    larger one's clips); return its root, the seconds it took and how many clips were rendered now."""
    from bench import _fast_meld

    root = corpus_root(items, universe, args.side, args.seed)
    larger = corpus_root(universe, universe, args.side, args.seed) if universe != items else None
    t0 = time.perf_counter()
    paths, made = _fast_meld.generate(root, items=items, seed=args.seed, side=args.side, processes=args.gen_processes,
                                      universe=universe, link_from=larger)
    return {"root": root, "clips": sum(p.endswith(".mp4") for p in paths), "made": made,
            "gen_s": time.perf_counter() - t0, "bytes": sum(os.path.getsize(p) for p in paths)}


def run_size(items: int, gen: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Every stage for one corpus size, in a fresh work dir and catalog."""
    print(f"- {items} items: corpus {gen['root']} ({gen['clips']} clips, {gen['bytes'] / 2**20:.0f} MiB; "
          f"{gen['made']} made now in {gen['gen_s']:.0f} s"
          + (f", {gen['made'] / gen['gen_s']:.1f} clips/s on {args.gen_processes} processes" if gen["made"] else "")
          + ")", flush=True)
    wd = workdir(f"corpus-size-n{items}")
    cat = os.path.join(wd, "catalog")
    env = child_env(os.path.join(wd, "prefect-home"))
    emofuse = [os.path.join(os.path.dirname(sys.executable), "emofuse")]
    extract = [*emofuse, "extract", gen["root"], "--corpus", "meld", "--catalog", cat, "--workers", str(args.workers)]
    train = [*emofuse, "train", "--catalog", cat, "--epochs", str(args.epochs), "--threads", "1", "--device", "cpu"]
    score = [*emofuse, "score", "--catalog", cat, "--workers", str(args.workers), "--threads", "1", "--device", "cpu",
             "--no-report"]
    stages: list[tuple[str, list[str]]] = [
        ("extract", extract),
        ("train tacfn", [*train, "--model", "tacfn"]),
        ("train rcma", [*train, "--model", "rcma", "--lr", "0.001", "--model-option", f"channels={RCMA_COMPACT}"]),
        ("score tacfn", [*score, "--model", "tacfn"]),
        ("score rcma", [*score, "--model", "rcma"]),
        ("report tacfn", [*emofuse, "report", "--model", "tacfn", "--catalog", cat]),
        ("extract (no-op)", extract),
        ("catalog ls", [*emofuse, "catalog", "ls", "--catalog", cat]),
        ("pandas read", [sys.executable, "-m", "bench.corpus_size", "--child",
                         json.dumps({"what": "read", "catalog": cat})]),
    ]
    rows, files_after_extract = [], 0
    for name, argv in stages:
        log = os.path.join(wd, re.sub(r"[^a-z]+", "-", name).strip("-") + ".log")
        rows.append(run_stage(name, argv, env=env, log=log))
        if name == "extract":
            files_after_extract = file_count(cat)
        print(f"  {name}: {rows[-1]['wall_s']:.1f} s", flush=True)
    counts = rows[-1]["result"]
    return {"items": items, "gen": gen, "wd": wd, "stages": rows, "counts": counts,
            "files_after_extract": files_after_extract, "files_end": file_count(cat)}


# --------------------------------------------------------------------------- tables
MEDIA_STAGES = ("extract", "score tacfn", "score rcma")


def stage_table(run: dict[str, Any]) -> str:
    media_s = run["counts"]["media_s"]
    rows = []
    for s in run["stages"]:
        rows.append({"stage": s["stage"], "wall s": s["wall_s"], "CPU s": s["cpu_s"],
                     "media-s/s": media_s / s["wall_s"] if s["stage"] in MEDIA_STAGES else None,
                     "items/s": run["items"] / s["wall_s"], "driver peak RSS MiB": s["driver_mib"],
                     "max worker peak RSS MiB": s["worker_mib"], "workers": s["workers"] or None})
    c = run["counts"]
    rows.append({"stage": "(inside pandas read) media / status read_parquet s",
                 "wall s": f"{c['read_media_s']:.3f} / {c['read_status_s']:.3f}"})
    return table(rows)


def count_table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        c = r["counts"]
        rows.append({"items": c["items"], "media s": c["media_s"], "media rows": c["media_rows"],
                     "status rows": c["status_rows"], "tasks": c["tasks"], "catalog files after extract":
                     r["files_after_extract"], "catalog files at end": r["files_end"],
                     "media+status in pandas MiB": c["tables_mib"]})
    return table(rows)


def linearity(runs: list[dict[str, Any]], project: int) -> tuple[str, str, str]:
    """Per-item figures of the smallest and largest size side by side, a linear fit per stage, a projection."""
    a, b = runs[0], runs[-1]
    na, nb = a["items"], b["items"]
    rows, proj = [], []
    for sa, sb in zip(a["stages"], b["stages"]):
        per_a, per_b = sa["wall_s"] / na, sb["wall_s"] / nb
        slope = (sb["wall_s"] - sa["wall_s"]) / (nb - na)
        fixed = sa["wall_s"] - slope * na
        rows.append({"stage": sa["stage"], f"ms/item @{na}": 1000 * per_a, f"ms/item @{nb}": 1000 * per_b,
                     "per-item ratio": ratio(per_b, per_a),
                     "CPU per-item ratio": ratio(sb["cpu_s"] / nb, sa["cpu_s"] / na),
                     "fixed s (fit)": fixed, "ms/item (fit)": 1000 * slope,
                     f"driver MiB @{na}": sa["driver_mib"], f"driver MiB @{nb}": sb["driver_mib"],
                     "driver MiB per 1k items": 1000 * (sb["driver_mib"] - sa["driver_mib"]) / (nb - na),
                     f"max worker MiB @{na}": sa["worker_mib"], f"max worker MiB @{nb}": sb["worker_mib"]})
        cpu_slope = (sb["cpu_s"] - sa["cpu_s"]) / (nb - na)
        cpu = max(sa["cpu_s"] + cpu_slope * (project - na), sb["cpu_s"] if project >= nb else 0.0)
        proj.append((sa["stage"], max(fixed + slope * project, sb["wall_s"] if project >= nb else 0.0), cpu))
    ca, cb = a["counts"], b["counts"]
    counts = []
    for what, va, vb in (("tasks", ca["tasks"], cb["tasks"]), ("catalog files", a["files_end"], b["files_end"]),
                         ("status rows", ca["status_rows"], cb["status_rows"]),
                         ("media + status in pandas, KiB", 1024 * ca["tables_mib"], 1024 * cb["tables_mib"])):
        counts.append({"count": what, f"per item @{na}": va / na, f"per item @{nb}": vb / nb,
                       "per-item ratio": ratio(vb / nb, va / na)})
    total, total_cpu = sum(p[1] for p in proj), sum(p[2] for p in proj)
    text = "\n".join([f"Projected to {project} items from linear fits of wall and CPU seconds (a model, not a "
                       "measurement; never below the largest size's own figure). CPU s = the command and every "
                       "process it reaped; on a quiet machine a stage's wall is at least CPU s / cores:",
                       *[f"- {name}: {p:.0f} s wall, {c:.0f} CPU s" for name, p, c in proj],
                       f"- all stages: {total:.0f} s wall ({total / 60:.1f} min), {total_cpu:.0f} CPU s "
                       f"({total_cpu / 60:.1f} CPU min), plus corpus generation"])
    return table(rows, digits=3), table(counts, digits=3), text


# --------------------------------------------------------------------------- parent
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"read": read_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.corpus_size", description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000, help="the large size; N/4 runs too (default 10000)")
    ap.add_argument("--sizes", default=None, help="comma-separated sizes instead, e.g. 2500,10000")
    ap.add_argument("--small", action="store_true", help="a quick check: 50 and 200 items, 1 epoch")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs per model (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="local Dask workers for extract and score (default 2)")
    ap.add_argument("--side", type=int, default=112, help="frame side in pixels (default 112)")
    ap.add_argument("--gen-processes", type=int, default=os.cpu_count() or 1,
                    help="processes generating the corpus (default: the cores)")
    ap.add_argument("--project", type=int, default=10_000, help="project the stages to this many items")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.items, args.epochs = 200, 1
    sizes = sorted({int(s) for s in args.sizes.split(",")} if args.sizes else {max(1, args.items // 4), args.items})
    machine = Machine()
    print_header("Corpus size, end to end: MELD layout, every command a user runs", ["bench.corpus_size", *argv],
                 machine)
    print(f"sizes {sizes}; frames {args.side}x{args.side} at 25 fps, 16 kHz AAC, clips <= 3 s; {args.workers} workers; "
          f"{args.epochs} epochs; torch 1 thread, CPU\n", flush=True)
    gens = {n: make_corpus(n, sizes[-1], args) for n in sorted(sizes, reverse=True)}  # the largest first
    runs = [run_size(n, gens[n], args) for n in sizes]
    for r in runs:
        print(f"\n## {r['items']} items (work dir {r['wd']})\n")
        print(stage_table(r))
        print("\nstatuses: " + ", ".join(f"{k}={v}" for k, v in sorted(r["counts"]["statuses"].items())))
    print("\n## counts\n")
    print(count_table(runs))
    if len(runs) > 1:
        lin, per_item, proj = linearity(runs, args.project)
        print(f"\n## linearity ({runs[0]['items']} vs {runs[-1]['items']} items; per-item ratio 1.0 = linear, "
              "< 1 = fixed costs amortised, > 1 = growing faster than the items)\n")
        print(lin)
        print()
        print(per_item)
        print("\n" + proj)
    print_footer(machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
