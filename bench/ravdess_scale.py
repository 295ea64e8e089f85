"""RAVDESS scale: all four feature sets from RAVDESS-shaped clips on two local workers (1,440 clips measured, or
a fraction projected to them).

The corpus is the demo corpus at the real corpus's shape (``emofuse demo-corpus
--ravdess-shape --no-song``: 1280x720, 30 fps, 48 kHz AAC, audio-visual speech with both
intensities and repetitions, 60 clips per actor, 1 s of silence either side of the statement:
~3.7 s a clip, RAVDESS's mean; the full corpus is 24 actors = 1,440 clips). Generating such a clip costs about a second per media second on one core, so the
default is a stated fraction: 2 actors (120 clips). Generation is timed per clip (the
clips are kept under /tmp and reused; the timings of the run that made them are kept
beside them). Then, in a fresh child process, the ``extract`` flow runs as ``emofuse
extract`` does (in-process flow, temporary Prefect server, local Dask cluster of
``--workers`` workers, every registered feature set) into a fresh catalog, while a thread
in that process samples every process below it (the Dask workers, the temporary server)
for RSS, the kernel's peak RSS (VmHWM) and CPU seconds.

Reports: files/s and media-s per wall-s; per feature set its task seconds and share of all
task seconds (tasks run one per worker thread, so this is the share of the workers' CPU
time), and media-s per task-s; peak RSS and CPU seconds per process; at 24 actors the measured wall
against the target (10 min), and for a fraction the projection to
1,440 clips: the start/stop outside the flow body once, plus the body scaled by the clip
count (same mean clip length as measured) or by media seconds (RAVDESS's mean ~3.7 s a
clip), either the whole flow body scaling (upper estimate) or only the task seconds (lower
estimate). A projection from a linear model of the measured per-clip costs, not a
measurement; the larger the fraction, the closer the two.

Usage: ``.venv/bin/python -m bench.ravdess_scale [--actors N] [--clips-per-actor K] [--workers 2]``
(``--actors 1 --clips-per-actor 4`` is a quick check that it works).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

from bench._common import (Machine, TMP_ROOT, child_env, child_main, fmt, media_files, print_footer, print_header,
                           ratio, run_child, table, workdir)

#: Audio-visual speech clips in RAVDESS (24 actors x 60) and their mean length (1,440 files, ~3.7 s each).
RAVDESS_AV_SPEECH = 1440
RAVDESS_MEAN_CLIP_S = 3.7
TARGET_WALL_S = 10 * 60  # issue 18: all four sets of the 1,440 clips in at most 10 min on 2 cores


# --------------------------------------------------------------------------- corpus
def corpus_dir(actors: int, clips_per_actor: int | None, seed: int) -> str:
    """Named by what the clips are: actors, clips per actor, the silence around the speech, seed."""
    from emofuse.catalog.corpora.demo import RAVDESS_FORMAT

    suffix = f"-k{clips_per_actor}" if clips_per_actor else ""
    return os.path.join(TMP_ROOT, f"bench-ravdess-a{actors}{suffix}-p{RAVDESS_FORMAT.pad_seconds:g}-s{seed}")


def make_corpus(actors: int, clips_per_actor: int | None, seed: int) -> tuple[str, dict[str, Any]]:
    """Generate (or reuse) the RAVDESS-shaped speech corpus; return its root and generation timings."""
    from emofuse.catalog.corpora.demo import RAVDESS_CLIPS, RAVDESS_FORMAT, generate, plan

    root = corpus_dir(actors, clips_per_actor, seed)
    timing_file = root + "-generation.json"
    clips = {**RAVDESS_CLIPS, "vocal_channels": (1,)}
    specs = [s for a in range(1, actors + 1) for s in plan(actors=[a], **clips)[:clips_per_actor]]
    clip_s: list[float] = []  # seconds per generated clip, this run's and earlier runs' on this folder
    if os.path.exists(timing_file):
        with open(timing_file, encoding="utf-8") as f:
            clip_s = json.load(f)["clip_s"]
    made_now = 0
    for s in specs:
        if os.path.exists(os.path.join(root, s.relpath)):
            continue
        t0 = time.perf_counter()
        generate(root, actors=[s.actor], seed=seed, emotions=(s.emotion,), intensities=(s.intensity,),
                 statements=(s.statement,), repetitions=(s.repetition,), media=RAVDESS_FORMAT)
        clip_s.append(time.perf_counter() - t0)
        made_now += 1
    if made_now:
        with open(timing_file, "w", encoding="utf-8") as f:
            json.dump({"clip_s": clip_s}, f)
    return root, {"clips": len(specs), "made_now": made_now, "clip_s": clip_s}


def media_seconds(files: list[str]) -> float:
    from emofuse.pipeline.decode import probe

    return sum(probe(f).duration for f in files)


# --------------------------------------------------------------------------- child: the flow + a sampler
def _status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MiB) of a process from /proc."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def _role(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    if "resource_tracker" in text:
        return "multiprocessing resource tracker"
    if "spawn_main" in text or "forkserver" in text or "multiprocessing-fork" in text:
        return "dask worker"
    if "uvicorn" in text or "prefect" in text:
        return "prefect server"
    return os.path.basename(cmdline[0]) if cmdline else "?"


class ProcessSampler(threading.Thread):
    """Samples every descendant of this process (or ``root`` and its descendants, ``root`` in the
    role ``driver``): role, peak RSS (sampled and VmHWM), CPU seconds."""

    def __init__(self, interval: float = 0.5, *, root: int | None = None) -> None:
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.root = psutil.Process(root) if root is not None else None
        self.interval = interval
        self.done = threading.Event()
        self.procs: dict[int, dict[str, Any]] = {}

    def _tree(self) -> list[Any]:
        import psutil

        try:
            if self.root is None:
                return self.me.children(recursive=True)
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> None:
        import psutil

        for p in self._tree():
            try:
                role = "driver" if self.root is not None and p.pid == self.root.pid else _role(p.cmdline())
                rec = self.procs.setdefault(p.pid, {"role": role, "rss_mib": 0.0, "hwm_mib": 0.0,
                                                    "cpu_s": 0.0, "started": p.create_time()})
                st = _status(p.pid)
                cpu = p.cpu_times()
                rec["rss_mib"] = max(rec["rss_mib"], st.get("VmRSS", 0.0))
                rec["hwm_mib"] = max(rec["hwm_mib"], st.get("VmHWM", 0.0))
                rec["cpu_s"] = max(rec["cpu_s"], cpu.user + cpu.system)
            except (psutil.Error, OSError):
                continue

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()

    def stop(self) -> list[dict[str, Any]]:
        self.sample()
        self.done.set()
        self.join()
        return sorted(self.procs.values(), key=lambda r: (r["role"], r["started"]))


def extract_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: the extract flow as ``emofuse extract`` runs it, with the process sampler running."""
    t0 = time.perf_counter()
    import psutil

    from emofuse.flows.extract import extract

    import_s = time.perf_counter() - t0
    sampler = ProcessSampler()
    sampler.start()
    cpu0 = psutil.Process().cpu_times()
    t1 = time.perf_counter()
    rec = extract(source=p["source"], catalog=p["catalog"], n_workers=p["workers"])
    wall = time.perf_counter() - t1
    cpu1 = psutil.Process().cpu_times()
    procs = sampler.stop()
    sets = {a["name"]: {"key": k, "counts": a["counts"], "media_s": a["media_seconds"],
                        "task_wall_s": a["task_wall_s"], "items": a["items"]} for k, a in rec["feature_sets"].items()}
    return {"wall_s": wall, "import_s": import_s, "inner_s": rec["wall_s"], "sets": sets, "processes": procs,
            "flow_process_cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
            "flow_process_hwm_mib": _status(os.getpid()).get("VmHWM", float("nan"))}


# --------------------------------------------------------------------------- parent
def _projections(n: int, media_s: float, wall: float, body: float, task_total: float,
                 workers: int) -> list[dict[str, Any]]:
    """Print and return the linear projections of a run of ``n`` < 1,440 clips to the full corpus."""
    print(f"\n## projection to RAVDESS's {RAVDESS_AV_SPEECH} audio-visual speech clips on {workers} workers\n")
    print("A linear model of this run's per-clip costs, not a measurement. Start+stop counts once. 'body scales': "
          "the whole flow body grows with the work (an upper estimate: per-worker model loading and registration "
          "scale too); 'tasks scale': only the task seconds grow, spread evenly over the workers, and the rest of "
          "the body stays fixed (a lower estimate). Work = clips as long as these "
          f"({media_s / n:.2f} s), or media seconds at RAVDESS's ~{RAVDESS_MEAN_CLIP_S} s a clip.\n")
    fixed = wall - body
    overhead = max(body - task_total / workers, 0.0)
    projections = []
    for work, k in (("clip count", RAVDESS_AV_SPEECH / n),
                    (f"media seconds ({RAVDESS_AV_SPEECH} x {RAVDESS_MEAN_CLIP_S} s)",
                     RAVDESS_AV_SPEECH * RAVDESS_MEAN_CLIP_S / media_s)):
        for model, value in (("body scales", fixed + body * k),
                             ("tasks scale", fixed + overhead + task_total * k / workers)):
            projections.append({"work scaled by": work, "model": model, "projected wall s": value,
                                "min": value / 60, "task s": task_total * k})
    print(table(projections))
    return projections


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"extract": extract_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.ravdess_scale", description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=2, help="actors to generate (60 speech clips each; default 2)")
    ap.add_argument("--clips-per-actor", type=int, default=None,
                    help="only the first K clips of each actor (a quick check; default: all 60)")
    ap.add_argument("--workers", type=int, default=2, help="local Dask workers (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    machine = Machine()
    print_header("RAVDESS scale: all feature sets from 1280x720 30 fps 48 kHz clips", ["bench.ravdess_scale", *argv],
                 machine)

    t0 = time.perf_counter()
    src, gen = make_corpus(args.actors, args.clips_per_actor, args.seed)
    gen_wall = time.perf_counter() - t0
    files = media_files(src)
    n = len(files)
    media_s = media_seconds(files)
    clip_s = gen["clip_s"]
    per_clip = sum(clip_s) / len(clip_s) if clip_s else float("nan")
    print(f"corpus: {src}: {n} clips ({args.actors} actors x {n // max(args.actors, 1)}), {media_s:.0f} media-s "
          f"({media_s / n:.2f} s a clip), 1280x720, 30 fps, 48 kHz AAC")
    if clip_s:
        print(f"generation (one process, sequential): {per_clip:.2f} s a clip, {per_clip * n / media_s:.2f} s per "
              f"media-s (mean of the {len(clip_s)} clips generated for this folder, {gen['made_now']} of them "
              f"now; this run's generation: {gen_wall:.0f} s); "
              f"{RAVDESS_AV_SPEECH} clips would take ~{per_clip * RAVDESS_AV_SPEECH / 60:.0f} min on one core")
    wd = workdir("ravdess-scale")
    print(f"work dir {wd}\n", flush=True)

    res = run_child("bench.ravdess_scale", {"what": "extract", "source": src, "catalog": os.path.join(wd, "catalog"),
                                            "workers": args.workers},
                    log=os.path.join(wd, "extract.log"), env=child_env(os.path.join(wd, "prefect-home")))
    wall, body = res["wall_s"], res["inner_s"]
    task_total = sum(s["task_wall_s"] for s in res["sets"].values())

    print("## extract run\n")
    print(f"wall: the flow call in a fresh process ({res['import_s']:.1f} s of imports before it, not counted); "
          "body: the flow's own record (inside the Dask sub-flow); start+stop = wall - body.\n")
    print(table([{"clips": n, "media s": media_s, "workers": args.workers, "wall s": wall, "body s": body,
                  "start+stop s": wall - body, "files/s": n / wall, "media-s per wall-s": media_s / wall,
                  "sum task s": task_total, "workers busy": ratio(task_total, body * args.workers)}]))

    print("\n## per feature set (task seconds = wall seconds of its tasks on one-thread workers)\n")
    rows = []
    for name, s in sorted(res["sets"].items()):
        rows.append({"feature set": name, "key": s["key"], "statuses": ", ".join(f"{k}={v}" for k, v in
                                                                              sorted(s["counts"].items())),
                     "task s": s["task_wall_s"], "share of task s": ratio(s["task_wall_s"], task_total),
                     "task s per clip": s["task_wall_s"] / n, "media-s per task-s": ratio(s["media_s"],
                                                                                         s["task_wall_s"])})
    print(table(rows, digits=3))

    print("\n## processes (sampled every 0.5 s; peak = the kernel's VmHWM, exact)\n")
    prow = [{"process": "flow (this child: Prefect flow, Dask scheduler, nannies)", "peak RSS MiB":
             res["flow_process_hwm_mib"], "max sampled RSS MiB": None, "CPU s": res["flow_process_cpu_s"]}]
    for k, pr in enumerate(res["processes"]):
        prow.append({"process": f"{pr['role']} #{k}", "peak RSS MiB": pr["hwm_mib"],
                     "max sampled RSS MiB": pr["rss_mib"], "CPU s": pr["cpu_s"]})
    print(table(prow, digits=0))
    workers = [pr for pr in res["processes"] if pr["role"] == "dask worker"]
    worker_cpu = sum(pr["cpu_s"] for pr in workers)

    projections = [] if n >= RAVDESS_AV_SPEECH else _projections(n, media_s, wall, body, task_total, args.workers)
    print("\n## ratios\n")
    print(f"- files/s: {n / wall:.3f}; media-s per wall-s: {media_s / wall:.2f} (all {len(res['sets'])} feature sets, "
          f"{args.workers} workers)")
    print(f"- workers' CPU / (body x workers): {ratio(worker_cpu, body * args.workers):.2f}; "
          f"task s / (body x workers): {ratio(task_total, body * args.workers):.2f}")
    top = max(rows, key=lambda r: r["task s"]) if rows else None
    if top:
        print(f"- largest share: {top['feature set']} {fmt(100 * top['share of task s'], 0)} % of task seconds")
    if n >= RAVDESS_AV_SPEECH:
        print(f"- measured: {n} clips ({media_s / n:.2f} s a clip) in {wall / 60:.1f} min; target <= "
              f"{TARGET_WALL_S // 60} min: {'met' if wall <= TARGET_WALL_S else 'NOT met'}")
    for pr in projections:
        value = pr["projected wall s"]
        print(f"- projected {RAVDESS_AV_SPEECH} clips ({pr['work scaled by']}, {pr['model']}): {value / 60:.1f} min; "
              f"target <= {TARGET_WALL_S // 60} min: {'met' if value <= TARGET_WALL_S else 'NOT met'} (projection)")
    print_footer(machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
