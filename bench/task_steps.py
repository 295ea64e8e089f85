"""One extraction task, step by step: what ``run_batch`` spends around the extractor.

Issue 18 point 1: the faces extractor costs 1.09× the loop's faces stage per clip
(``bench.faces_steps``), yet at 384 clips the flow's faces tasks took 1.53× the loop's seconds.
This splits a task. In one fresh process with one thread (``limit_threads(1)``, as a Dask worker
runs), the demo clips are registered in a fresh catalog and extracted in batches of
``--batch`` items by :func:`emofuse.pipeline.batch.run_batch` (what every extract task calls),
with the catalog's ``claim``, ``commit_task`` and ``release`` and the extractor's
``extract_many`` wrapped by timers. Printed per feature set: the tasks' seconds, and of them
claim, extract, commit, release and the rest (opening the catalog, runtime info, summaries),
each also per item; next to them, the plain loop of ``bench.loop_vs_flow`` (one thread) on the
same clips: its decode + stage seconds for the same work (faces: video decode + faces; eGeMAPS:
audio decode + openSMILE; text). Prefect's and Dask's own cost per task is ``bench.loop_vs_flow``'s
no-op flow (0.13 s per task against a warm cluster).

Usage: ``.venv/bin/python -m bench.task_steps [--clips 96] [--batch 32] [--sets faces,egemaps,text]``
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bench._common import (Machine, child_env, child_main, corpus, media_files, print_footer, print_header, run_child,
                           table, timed_into, workdir)

STEPS = ["claim", "extract", "commit", "release"]


def task_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: register the clips, then run_batch per batch and feature set with timed steps."""
    from emofuse.catalog.store import Catalog
    from emofuse.pipeline import batch as batch_mod
    from emofuse.pipeline.plan import plan_run
    from emofuse.pipeline.threads import limit_threads

    limit_threads(1)
    cat = Catalog(p["catalog"]).init()
    out: dict[str, Any] = {}
    for name in p["sets"]:
        ext = batch_mod.cached_extractor(name, None)
        plan = plan_run(cat, p["source"], "ravdess", None, {name: ext}, register=True)
        refs = plan.feature_sets[0].todo
        ext.extract(refs[0])  # warm-up: models load once per worker, outside the task seconds
        acc = dict.fromkeys(STEPS, 0.0)
        real = {s: getattr(Catalog, m) for s, m in (("claim", "claim"), ("commit", "commit_task"),
                                                      ("release", "release"))}
        Catalog.claim = timed_into(acc, "claim", real["claim"])
        Catalog.commit_task = timed_into(acc, "commit", real["commit"])
        Catalog.release = timed_into(acc, "release", real["release"])
        ext.extract_many = timed_into(acc, "extract", ext.extract_many)
        task_s, tasks = 0.0, 0
        for lo in range(0, len(refs), p["batch"]):
            s = batch_mod.run_batch(p["catalog"], name, None, refs[lo:lo + p["batch"]], run_id="bench")
            task_s += s.wall_s
            tasks += 1
        Catalog.claim, Catalog.commit_task, Catalog.release = real["claim"], real["commit"], real["release"]
        del ext.extract_many
        out[name] = {"items": len(refs), "tasks": tasks, "task_s": task_s, **acc,
                     "rest": task_s - sum(acc.values())}
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"task": task_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.task_steps", description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=96, help="demo clips (default 96)")
    ap.add_argument("--actors", type=int, default=6, help="actors of the generated demo corpus (default 6)")
    ap.add_argument("--batch", type=int, default=32, help="items per task (default 32, extract's default)")
    ap.add_argument("--sets", default="faces,egemaps,text", help="feature sets (default faces,egemaps,text)")
    args = ap.parse_args(argv)
    machine = Machine()
    print_header("One extraction task, step by step (run_batch, one thread)", ["bench.task_steps", *argv], machine)
    wd = workdir("task-steps")
    src = os.path.join(wd, "clips")
    os.makedirs(src)
    for f in media_files(corpus(args.actors))[: args.clips]:
        rel = os.path.relpath(f, corpus(args.actors))
        os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
        os.link(f, os.path.join(src, rel))
    files = media_files(src)
    loop = run_child("bench.loop_vs_flow", {"what": "loop", "files": files, "out": os.path.join(wd, "loop"),
                                            "threads": 1}, log=os.path.join(wd, "loop.log"), env=child_env())
    r = run_child("bench.task_steps", {"what": "task", "catalog": os.path.join(wd, "catalog"), "source": src,
                                       "sets": args.sets.split(","), "batch": args.batch},
                  log=os.path.join(wd, "task.log"), env=child_env())
    st = loop["stages"]
    loop_s = {"faces": st["decode_video"] + st["faces"], "egemaps": st["decode_audio"] + st["egemaps"],
              "text": st["text"]}
    print(f"the plain loop (bench.loop_vs_flow's, one thread) on the same {len(files)} clips, stage seconds: "
          + ", ".join(f"{k} {v:.2f}" for k, v in st.items()) + "\n")
    rows = []
    for name, v in r.items():
        if name == "process_s":
            continue
        rows.append({"feature set": name, "items": v["items"], "tasks": v["tasks"], "task s": v["task_s"],
                     **{f"{s} s": v[s] for s in [*STEPS, "rest"]},
                     "loop s (same work)": loop_s.get(name), "extract / loop": v["extract"] / loop_s[name]
                     if loop_s.get(name) else None, "task / loop": v["task_s"] / loop_s[name] if loop_s.get(name)
                     else None,
                     "around extract, % of task s": 100 * (v["task_s"] - v["extract"]) / v["task_s"],
                     "ms per item around extract": 1000 * (v["task_s"] - v["extract"]) / max(v["items"], 1)})
    print(table(rows))
    machine.finish()
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
