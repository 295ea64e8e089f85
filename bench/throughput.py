"""Throughput at size: all four feature sets on a 384-clip demo corpus, and archive scoring of 39 files.

Issue 10, target 4: at least 8 media seconds per wall second for ``emofuse extract`` of
all four feature sets (egemaps, faces, text, logmel) on the demo corpus of 24 actors
(``emofuse demo-corpus --actors 24``: 384 clips) on 2 cores; issue 18, point 6: at least
10 media seconds per wall second for ``emofuse score-archive`` of a generated 39-file
archive, and at most 3 s for a run over the all-cached archive when a server is running.

1. Extraction: the ``extract`` flow as ``emofuse extract`` runs it (in-process flow,
   temporary Prefect server, local Dask cluster of 2 workers, default batch sizes, every
   registered feature set) into a fresh catalog, in a fresh process (after a warm-up flow
   so the Prefect home has its database, as a user's has). Media seconds are the probed
   durations in the catalog's media table.
2. Archive scoring: a TACFN run is trained on that catalog first (``fusion.training_run.train``,
   default folds, ``--epochs`` epochs, one torch thread; timed, not judged). The archive is
   built under the work dir from demo clips of actors the run never saw (actors 25-27, or
   beyond ``--actors``; generated once under /tmp): plain mp4 copies in nested folders, 4
   remuxed to .mkv, 3 audio-only .wav, one ~30 s file concatenating 14 clips, one empty and
   one truncated mp4 (39 files). Then the ``score`` flow with ``source=`` (what
   ``emofuse score-archive ARCHIVE --model tacfn --catalog CAT --workers 2`` calls; clip
   rows only) runs in a fresh process, and again in another one over the same archive
   (everything cached: the fixed cost of a run). The split, in wall and in the driver's CPU
   seconds: extraction = the ``run_extraction`` call (registration, cluster, the extract
   sub-flow), scoring = ``fusion.score.score_items``, report = the HTML report, the rest =
   temporary server, flow run, discovery, summary; plus the CPU seconds of every process of
   the run. ``--server`` runs the same two against a running ``emofuse serve``
   (:mod:`bench._serve`; started, warmed up and stopped outside the timings) into a copy of
   the trained catalog.

Usage: ``.venv/bin/python -m bench.throughput [--small] [--actors N] [--server]`` (``--small``: 4 actors, 64 clips).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Any

from bench._common import (TMP_ROOT, Machine, child_env, child_main, corpus, media_files, print_footer, print_header,
                           ratio, run_child, table, workdir)

TARGET_EXTRACT = 8.0  # media-s per wall-s, all four feature sets, 384 clips, 2 cores
TARGET_ARCHIVE = 10.0  # media-s per wall-s, score-archive of the 39-file archive (issue 18 point 6; was 7)
TARGET_FIXED_SERVER = 3.0  # wall s of a score-archive run over an all-cached archive, a server running
WORKERS = 2
ARCHIVE_ACTORS = 3  # 48 demo clips: 29 mp4 + 4 mkv + 3 wav + a 14-clip concatenation + a truncated one


# --------------------------------------------------------------------------- children
def train_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: train TACFN on the catalog (default folds, few epochs, one thread)."""
    from emofuse.fusion import training_run

    t0 = time.perf_counter()
    res = training_run.train(p["catalog"], model="tacfn", epochs=p["epochs"], threads=1)
    return {"wall_s": time.perf_counter() - t0, "run_id": res.run_id, "folds": len(res.folds),
            "n_parameters": res.n_parameters, "metrics": res.metrics}


def score_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: ``emofuse score-archive SOURCE --model tacfn`` as a call of the ``score`` flow, its parts timed apart.

    Each part (the extraction sub-flow, ``score_items``, the HTML report) is timed in wall seconds and in this
    process's CPU seconds by a plain wrapper around the function the flow calls by name; ``profile`` (a path)
    also writes a cProfile of the flow call there.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    import emofuse.flows.report as freport
    import emofuse.flows.score as flow_mod
    import emofuse.fusion.score as fscore
    from emofuse.flows.score import score

    import_s, import_cpu = time.perf_counter() - t0, time.process_time() - c0
    timed: dict[str, list[float]] = {"extract": [0.0, 0.0], "score": [0.0, 0.0], "report": [0.0, 0.0]}

    def timer(part: str, inner: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            try:
                return inner(*a, **k)
            finally:
                timed[part][0] += time.perf_counter() - t
                timed[part][1] += time.process_time() - c
        return call

    # the flow looks these names up in their modules at call time
    flow_mod.run_extraction = timer("extract", flow_mod.run_extraction)
    fscore.score_items = timer("score", fscore.score_items)
    freport.build_report = timer("report", freport.build_report)
    prof = None
    if p.get("profile"):
        import cProfile

        prof = cProfile.Profile(time.process_time)
        prof.enable()
    t1, c1 = time.perf_counter(), time.process_time()
    out = score(source=p["source"], model="tacfn", catalog=p["catalog"], n_workers=p["workers"])
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    if prof is not None:
        prof.disable()
        prof.dump_stats(p["profile"])
    ext = out.get("extraction") or {}
    sets = {a["name"]: {"task_wall_s": a["task_wall_s"], "media_s": a["media_seconds"], "counts": a["counts"],
                        "already_done": a["already_done"], "items": a["items"]}
            for a in (ext.get("feature_sets") or {}).values()}
    return {"wall_s": wall, "cpu_s": cpu, "import_s": import_s, "import_cpu_s": import_cpu,
            "flow_wall_s": out["wall_s"], "extract_body_s": ext.get("wall_s", 0.0), "extract_s": timed["extract"][0],
            "extract_cpu_s": timed["extract"][1],
            "score_s": timed["score"][0], "score_cpu_s": timed["score"][1], "report_s": timed["report"][0],
            "report_cpu_s": timed["report"][1], "sets": sets, "files": out["files"], "media_s": out["media_seconds"],
            "statuses": out["statuses"], "written": out["written"], "skipped": out["skipped"]}


# --------------------------------------------------------------------------- data
def archive_clips(first_actor: int) -> list[str]:
    """Demo clips of ``ARCHIVE_ACTORS`` actors from ``first_actor`` on (generated once under /tmp)."""
    from emofuse.catalog.corpora.demo import generate

    actors = list(range(first_actor, first_actor + ARCHIVE_ACTORS))
    out = os.path.join(TMP_ROOT, f"bench-archive-clips-a{actors[0]}-{actors[-1]}-s0")
    return sorted(generate(out, actors=actors, seed=0))


def build_archive(root: str, clips: list[str]) -> dict[str, int]:
    """The 39-file archive under ``root`` from 48 clips; returns the number of files of each kind."""
    from tests.test_archive import concat, remux, to_wav

    def dst(*parts: str) -> str:
        path = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    folders = [("2024", "interviews"), ("2024", "street", "speaker0"), ("2024", "street", "speaker1"),
               ("2025", "studio"), ("2025", "phone", "raw")]
    for k, c in enumerate(clips[:29]):
        shutil.copy(c, dst(*folders[k % len(folders)], f"take{k:02d}.mp4"))
    for k, c in enumerate(clips[29:33]):
        remux(c, dst("2025", "mkv", f"clip{k}.mkv"))
    for k, c in enumerate(clips[33:36]):
        to_wav(c, dst("voice memos", f"memo{k}.wav"))
    concat(clips[36:48] + clips[:2], dst("long", "session-14-clips.mp4"))
    open(dst("broken", "empty.mp4"), "wb").close()
    with open(clips[47], "rb") as f:
        data = f.read()
    with open(dst("broken", "truncated.mp4"), "wb") as f:
        f.write(data[: len(data) // 2])
    return {"mp4 copies": 29, "mkv remuxes": 4, "wav audio-only": 3, "long concatenation": 1, "broken": 2}


def catalog_media(catalog: str, under: str | None = None) -> tuple[int, int, float]:
    """Files, readable files (a duration > 0) and their media seconds (distinct items) in a catalog's media table."""
    from emofuse.catalog.store import Catalog

    m = Catalog(catalog).media(dedupe=False)
    if under:
        m = m[m["path"].astype(str).str.startswith(os.path.abspath(under) + os.sep)]
    d = m["duration"].astype("float64").fillna(0.0)
    readable = m[d > 0]
    return len(m), len(readable), float(readable.drop_duplicates("item_id")["duration"].astype("float64").sum())


def met(value: float, target: float) -> str:
    return "met" if value >= target else "NOT met"


# --------------------------------------------------------------------------- archive runs
#: Set by ``--profile``: each score run writes a cProfile of its flow call (which inflates its CPU seconds).
PROFILE = False


def _score_child(archive: str, cat: str, wd: str, tag: str, env: dict[str, str]) -> dict[str, Any]:
    """One score-archive run in a fresh process; adds ``tree_cpu_s``, the CPU seconds of its whole process tree
    (the child, and the temporary server and local workers it started and reaped)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run_child("bench.throughput", {"what": "score", "source": archive, "catalog": cat, "workers": WORKERS,
                                       "profile": os.path.join(wd, f"score-{tag}.prof") if PROFILE else None},
                  log=os.path.join(wd, f"score-{tag}.log"), env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r["tree_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return r


def _score_runs(archive: str, cat: str, wd: str, mode: str, env: dict[str, str], serve: Any) -> list[dict[str, Any]]:
    """The first and the all-cached score-archive run; with ``serve``, also the CPU seconds serve spent in each."""
    out = []
    for tag in ("first", "cached"):
        before = serve.cpu_s() if serve else 0.0
        r = _score_child(archive, cat, wd, f"{mode}-{tag}", env)
        if serve:
            r["serve_cpu_s"] = serve.cpu_s() - before
        out.append(r)
    return out


def _serve_runs(archive: str, cat: str, wd: str, mode: str, warm_clips: list[str], run_id: str) -> list[dict[str, Any]]:
    """:func:`_score_runs` against a running ``emofuse serve`` (:class:`bench._serve.RunningServe`), after one
    warm-up extract of two clips with the run's feature sets into a scratch catalog (serve has run flows before)."""
    from bench._serve import RunningServe
    from emofuse.catalog.store import Catalog
    from emofuse.fusion.run_config import run_feature_sets
    from emofuse.pipeline.registry import get_extractor

    names = list(run_feature_sets(Catalog(cat), run_id, default_key=lambda n: get_extractor(n).key))
    warm_src = os.path.join(wd, "serve-warmup")
    for c in warm_clips:  # in the corpus layout (Actor_NN/...), as the extract flow's default recipe reads it
        os.makedirs(os.path.join(warm_src, os.path.basename(os.path.dirname(c))), exist_ok=True)
        shutil.copy(c, os.path.join(warm_src, os.path.basename(os.path.dirname(c))))
    with RunningServe(wd, WORKERS) as serve:
        run_child("bench._flows", {"what": "extract", "source": warm_src,
                                   "catalog": os.path.join(wd, "catalog-serve-warmup"), "feature_sets": names,
                                   "workers": WORKERS}, log=os.path.join(wd, "serve-warmup.log"), env=serve.env)
        out = _score_runs(archive, cat, wd, mode, serve.env, serve)
        out[0]["serve_start_s"] = serve.start_s
    return out


# --------------------------------------------------------------------------- parent
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"train": train_child, "score": score_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=24, help="demo-corpus actors (16 clips each; default 24)")
    ap.add_argument("--small", action="store_true", help="4 actors (64 clips), a quick check")
    ap.add_argument("--epochs", type=int, default=3, help="TACFN training epochs before scoring (default 3)")
    ap.add_argument("--server", action="store_true",
                    help="also score the archive against a running `emofuse serve` (its Prefect server and warm "
                         "cluster; started and stopped here, not counted), beside the temporary-server runs")
    ap.add_argument("--profile", action="store_true",
                    help="write a cProfile of each score run's flow call to the work dir (score-<mode>-<run>.prof); "
                         "the profiler inflates the CPU seconds reported")
    args = ap.parse_args(argv)
    global PROFILE
    PROFILE = args.profile
    actors = 4 if args.small else args.actors
    machine = Machine()
    print_header("throughput at size: extract all four feature sets, score an archive", ["bench.throughput", *argv],
                 machine)
    t0 = time.perf_counter()
    src = corpus(actors)
    files = media_files(src)
    n = len(files)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    clips = archive_clips(max(actors, 24) + 1)
    gen_archive_s = time.perf_counter() - t0
    wd = workdir("throughput")
    cat = os.path.join(wd, "catalog")
    archive = os.path.join(wd, "archive")
    kinds = build_archive(archive, clips)
    print(f"corpus: {src} ({n} clips, {actors} actors; ready in {gen_s:.0f} s); archive clips from {len(clips)} demo "
          f"clips of actors {max(actors, 24) + 1}-{max(actors, 24) + ARCHIVE_ACTORS} (ready in {gen_archive_s:.0f} s); "
          f"work dir {wd}", flush=True)

    # a temporary server may take long to come up while the cores are busy (Prefect's default wait is 20 s)
    env = child_env(os.path.join(wd, "prefect-home"), {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"})
    cold = run_child("bench._flows", {"what": "noop", "n": 1, "workers": 1}, log=os.path.join(wd, "warmup.log"),
                     env=env)
    print(f"first flow in a fresh Prefect home (temporary server, database created): {cold['wall_s']:.1f} s "
          "(not counted)\n", flush=True)

    # 1. extraction at size
    ex = run_child("bench._flows", {"what": "extract", "source": src, "catalog": cat, "feature_sets": None,
                                    "workers": WORKERS}, log=os.path.join(wd, "extract.log"), env=env)
    n_media, _readable, media_s = catalog_media(cat)
    wall = ex["wall_s"]
    task_total = sum(s["task_wall_s"] for s in ex["sets"].values())
    print("## 1. extract: all feature sets, as `emofuse extract` runs it\n")
    print(f"wall: the flow call in a fresh process ({ex['import_s']:.1f} s of imports before it, not counted; the "
          f"process took {ex['process_s']:.1f} s); body: the flow's own record (inside the Dask sub-flow); "
          f"{ex['worker_mode']}; busy = sum of task s / (workers x wall).\n")
    print(table([{"clips": n, "media items": n_media, "media s": media_s, "workers": WORKERS, "wall s": wall,
                  "body s": ex["inner_s"], "files/s": n / wall, "media-s per wall-s": media_s / wall,
                  "sum task s": task_total, "workers busy": ratio(task_total, WORKERS * wall),
                  "busy (of body)": ratio(task_total, WORKERS * ex["inner_s"])}]))
    print()
    print(table([{"feature set": name, "key": s["key"], "statuses": ", ".join(f"{k}={v}" for k, v in
                                                                          sorted(s["counts"].items())),
                  "task s": s["task_wall_s"], "share": ratio(s["task_wall_s"], task_total),
                  "task ms per clip": 1000 * s["task_wall_s"] / max(n, 1),
                  "media-s per task-s": ratio(s["media_s"], s["task_wall_s"])}
                 for name, s in sorted(ex["sets"].items())], digits=3))

    # 2. archive scoring
    tr = run_child("bench.throughput", {"what": "train", "catalog": cat, "epochs": args.epochs},
                   log=os.path.join(wd, "train.log"), env=env)
    print(f"\n## 2. score-archive: {sum(kinds.values())} files ("
          + ", ".join(f"{v} {k}" for k, v in kinds.items()) + ")\n")
    print(f"run {tr['run_id']}: TACFN, {tr['folds']} folds x {args.epochs} epochs, {tr['n_parameters']} parameters, "
          f"trained in {tr['wall_s']:.0f} s (one thread; not counted). Scoring: the `score` flow with source= "
          f"(extracts the run's feature sets on {WORKERS} workers, then scores per clip), each run in a fresh process; "
          "the second run finds everything cached.\n")
    modes = {"temporary server": lambda tag: _score_runs(archive, cat, wd, tag, env, None)}
    if args.server:  # the same archive into a copy of the trained catalog, against a running emofuse serve
        cat_serve = os.path.join(wd, "catalog-serve")
        shutil.copytree(cat, cat_serve)
        modes["running serve"] = lambda tag: _serve_runs(archive, cat_serve, wd, tag, clips[:2], tr["run_id"])
    runs = {mode: go({"temporary server": "temp", "running serve": "serve"}[mode]) for mode, go in modes.items()}
    n_files, n_readable, arch_media = catalog_media(cat, archive)
    rows, cpu_rows = [], []
    for mode, pair in runs.items():
        for tag, r in zip(("first", "cached"), pair):
            rest = r["wall_s"] - r["extract_s"] - r["score_s"] - r["report_s"]
            rows.append({"mode": mode, "run": tag, "files": r["files"], "readable": n_readable, "media s": r["media_s"],
                         "wall s": r["wall_s"], "media-s per wall-s": ratio(r["media_s"], r["wall_s"]),
                         "extraction s": r["extract_s"], "scoring s": r["score_s"], "report s": r["report_s"],
                         "rest s": rest, "extraction task s": sum(x["task_wall_s"] for x in r["sets"].values()),
                         "rows written": r["written"], "already scored": r["skipped"],
                         "statuses": ", ".join(f"{k}={v}" for k, v in sorted(r["statuses"].items())),
                         "process s": r["process_s"]})
            cpu_rows.append({"mode": mode, "run": tag, "all CPU s": r["tree_cpu_s"] + r.get("serve_cpu_s", 0.0),
                             "process tree CPU s": r["tree_cpu_s"], "serve's tree CPU s": r.get("serve_cpu_s", 0.0),
                             "driver: imports": r["import_cpu_s"], "driver: flow": r["cpu_s"],
                             "of which extraction call": r["extract_cpu_s"], "scoring": r["score_cpu_s"],
                             "report": r["report_cpu_s"],
                             "rest": r["cpu_s"] - r["extract_cpu_s"] - r["score_cpu_s"] - r["report_cpu_s"]})
    print(table(rows))
    print("\nCPU seconds (user + system): every process of the run (the child, its temporary server and local "
          "workers; with serve, also what serve's server and warm workers spent during the run), and the driver's "
          "own parts (extraction call: registration, cluster, the extract sub-flow as the driver sees it).\n")
    print(table(cpu_rows))
    for mode, pair in runs.items():
        first = pair[0]
        ext_total = sum(s["task_wall_s"] for s in first["sets"].values())
        print(f"\n{mode}, first run, extraction task seconds: " + ", ".join(
            f"{k} {s['task_wall_s']:.1f} ({s['items']} items, "
            + ", ".join(f"{c}={v}" for c, v in sorted(s["counts"].items())) + ")"
            for k, s in sorted(first["sets"].items()))
            + f"; workers busy {ratio(ext_total, WORKERS * first['extract_s']):.2f} of the extraction part")
    if args.server:
        print(f"\nemofuse serve: started in {runs['running serve'][0]['serve_start_s']:.1f} s, then one warm-up "
              "extract of 2 clips into a scratch catalog (neither counted)")
    print(f"media table under the archive: {n_files} rows, {n_readable} readable, {arch_media:.1f} media s")

    print("\n## ratios and targets\n")
    print(f"- extract, {n} clips, all {len(ex['sets'])} feature sets, {WORKERS} workers: {media_s / wall:.2f} media-s "
          f"per wall-s, {n / wall:.2f} files/s; target >= {TARGET_EXTRACT:g} media-s per wall-s: "
          f"{met(media_s / wall, TARGET_EXTRACT)}" + ("" if n == 384 else f" (measured on {n} clips, not 384)"))
    if ex["sets"]:
        name, top = max(ex["sets"].items(), key=lambda kv: kv[1]["task_wall_s"])
        print(f"- largest share of extraction task seconds: {name} {100 * ratio(top['task_wall_s'], task_total):.0f} %;"
              f" workers busy {ratio(task_total, WORKERS * wall):.2f}")
    for mode, (first, again) in runs.items():
        s1 = ratio(first["media_s"], first["wall_s"])
        print(f"- score-archive ({mode}), {first['files']} files ({first['media_s']:.1f} media s): {s1:.2f} media-s "
              f"per wall-s; target >= {TARGET_ARCHIVE:g}: {met(s1, TARGET_ARCHIVE)}; extraction "
              f"{ratio(first['extract_s'], first['wall_s']):.0%}, scoring "
              f"{ratio(first['score_s'], first['wall_s']):.0%} of the wall time")
        retried = {f"{k} {c}": v for k, x in sorted(again["sets"].items()) if x["task_wall_s"] > 0
                   for c, v in sorted(x["counts"].items())}
        print(f"- score-archive again ({mode}), all cached (the fixed cost of a run): {again['wall_s']:.1f} s "
              f"({ratio(again['wall_s'], first['wall_s']):.2f} of the first run)"
              + (f"; target <= {TARGET_FIXED_SERVER:g} s: {met(-again['wall_s'], -TARGET_FIXED_SERVER)}"
                 if mode == "running serve" else "")
              + ("; its extraction part still ran tasks: " + ", ".join(f"{k}={v}" for k, v in retried.items())
                 if retried else ""))
    print_footer(machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
