"""The ``extract`` flow (1 and 2 local Dask workers) against the sequential script a user would write.

The loop: models loaded once, PyAV decode (audio once, video sampled at 5 fps),
openSMILE eGeMAPS functionals + LLD, YuNet + dlib (largest face per frame, one
batched embedding call per clip, the same engine as the flow's default ``yunet_resnet``
backend), all-MiniLM-L6-v2 through transformers on the
RAVDESS statement, one ``.npz`` + one ``.parquet`` per file. The flow: the same
three feature sets into a fresh catalog. Every configuration runs in a fresh
process; runs are interleaved when repeated. The fixed overhead is the same
flow over the catalog it just filled (nothing left to do), and Prefect+Dask's
per-task cost is a flow of no-op tasks on the same task runner. ``--server``
adds the flow against a running Prefect server (local workers are then
processes); ``--loop-threads 1`` (default) adds the loop with one torch/OpenCV
thread, as the workers run.

Usage: ``.venv/bin/python -m bench.loop_vs_flow [--small] [--repeat N] [--server]``
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

from bench._common import (Machine, PrefectServer, child_env, child_main, corpus, fmt, media_files, median,
                           print_footer, print_header, ratio, run_child, spread, table, workdir)

FEATURE_SETS = ["egemaps", "faces", "text"]
FPS = 5.0
SR = 16_000


# --------------------------------------------------------------------------- the user's loop (child)
def decode_audio(path: str, sr: int = SR) -> Any:
    """Whole audio track as mono float32 at ``sr`` (PyAV)."""
    import av
    import numpy as np

    parts = []
    with av.open(path) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in c.decode(c.streams.audio[0]):
            parts += [o.to_ndarray().reshape(-1) for o in rs.resample(frame)]
        parts += [o.to_ndarray().reshape(-1) for o in rs.resample(None)]
    return np.concatenate(parts).astype(np.float32, copy=False)


def sample_frames(path: str, fps: float = FPS) -> list[tuple[float, Any]]:
    """RGB frames sampled at ``fps`` (PyAV, every frame decoded, sampled ones converted)."""
    out = []
    step, next_t = 1.0 / fps, 0.0
    with av_open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            t = float(frame.time or 0.0)
            if t + 1e-6 < next_t:
                continue
            out.append((t, frame.to_ndarray(format="rgb24")))
            next_t = (math.floor(t / step + 1e-6) + 1) * step
    return out


def av_open(path: str) -> Any:
    import av

    return av.open(path)


def loop_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: the sequential script over ``p['files']`` writing into ``p['out']``."""
    t_imp = time.perf_counter()
    import numpy as np
    import opensmile
    import pandas as pd
    import torch
    from transformers import AutoModel, AutoTokenizer

    from emofuse.catalog.corpora.ravdess import STATEMENTS, parse_name
    from emofuse.pipeline import model_files
    from emofuse.pipeline.faces.detect import YuNetDetector
    from emofuse.pipeline.faces.embed import DlibEmbedder
    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder
    from emofuse.pipeline.text import default_model_dir

    if p.get("threads"):
        from emofuse.pipeline.threads import limit_threads

        limit_threads(int(p["threads"]))
    import_s = time.perf_counter() - t_imp

    t0 = time.perf_counter()
    smile_f = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    smile_l = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    det = YuNetDetector(model_files.yunet_path())
    dl = model_files.dlib_model_paths()
    emb = DlibEmbedder(dl.shape_predictor_5, dl.face_recognition,  # the faces extractor's default backend
                       engine=DlibResNetEmbedder(dl.face_recognition, device="cpu", threads=torch.get_num_threads()))
    mdir = str(default_model_dir())
    tok = AutoTokenizer.from_pretrained(mdir, local_files_only=True)
    model = AutoModel.from_pretrained(mdir, local_files_only=True).eval()
    load_s = time.perf_counter() - t0

    os.makedirs(p["out"], exist_ok=True)
    stage = {"decode_audio": 0.0, "decode_video": 0.0, "egemaps": 0.0, "faces": 0.0, "text": 0.0, "save": 0.0}
    t1 = time.perf_counter()
    for path in p["files"]:
        stem = os.path.splitext(os.path.basename(path))[0]
        a = time.perf_counter()
        audio = decode_audio(path)
        b = time.perf_counter()
        frames = sample_frames(path)
        c = time.perf_counter()
        func = smile_f.process_signal(audio, SR)
        lld = smile_l.process_signal(audio, SR)
        d = time.perf_counter()
        chips, times, mask = [], [], []
        for t, rgb in frames:
            dets = det.detect(rgb)
            times.append(t)
            mask.append(len(dets) > 0)
            if len(dets):
                chips += emb.align(rgb, dets.largest(1))
        vecs = emb.embed_crops(chips)
        face = np.zeros((len(frames), emb.dim), np.float32)
        face[np.asarray(mask, bool)] = vecs
        e = time.perf_counter()
        text = STATEMENTS[parse_name(os.path.basename(path))["statement"]]
        with torch.inference_mode():
            enc = tok([text], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            temb = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=1)[0].numpy()
        f = time.perf_counter()
        np.savez(os.path.join(p["out"], stem + ".npz"), lld=lld.to_numpy(np.float32), face=face,
                 face_mask=np.asarray(mask, bool), face_t=np.asarray(times), text=temb)
        row = func.reset_index(drop=True)
        row.insert(0, "file", stem)
        row["face_ratio"] = float(np.mean(mask)) if mask else 0.0
        pd.DataFrame(row).to_parquet(os.path.join(p["out"], stem + ".parquet"))
        g = time.perf_counter()
        for k, v in zip(stage, (b - a, c - b, d - c, e - d, f - e, g - f)):
            stage[k] += v
    process_s = time.perf_counter() - t1
    return {"import_s": import_s, "load_s": load_s, "loop_s": process_s, "wall_s": load_s + process_s,
            "stages": stage, "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------- parent
def flow_task_count(files: list[str]) -> int:
    """Tasks a first extract run submits: each set's batches at the flow's defaults (registration runs in the flow)."""
    from emofuse.pipeline.decode import probe
    from emofuse.pipeline.plan import batches
    from emofuse.pipeline.registry import MediaRef
    from emofuse.pipeline.request import ExtractRequest

    items = [MediaRef(f, f, duration=probe(f).duration) for f in files]
    per_set = len(batches(items, max_items=ExtractRequest.batch_size, max_seconds=ExtractRequest.batch_seconds))
    return len(FEATURE_SETS) * per_set

FLOW_CONFIGS = {  # name: (workers, expected mode; the table shows what flows.runner actually gave)
    "flow-1w": (1, "temporary server"),
    "flow-2w": (2, "temporary server"),
    "flow-2w-server": (2, "running server"),
    "flow-2w-serve": (2, "running server, the cluster emofuse serve keeps warm"),
}


def _flow(src: str, cat: str, workers: int, wd: str, tag: str, env: dict[str, str],
          then_noop: int = 0) -> dict[str, Any]:
    return run_child("bench._flows", {"what": "extract", "source": src, "catalog": cat, "feature_sets": FEATURE_SETS,
                                      "workers": workers, "then_noop": then_noop},
                     log=os.path.join(wd, f"{tag}.log"), env=env)


def _serve_flows(src: str, cat: str, workers: int, wd: str, tag: str, files: list[str],
                 n_tasks: int) -> dict[str, Any]:
    """The flow and its cached re-run against a running server and the cluster ``emofuse serve`` keeps warm
    (:mod:`emofuse.flows.warm_cluster`), after one warm-up run on two clips (serve has run flows before)."""
    import shutil

    from emofuse.flows.warm_cluster import warm_cluster

    warm_src = os.path.join(wd, f"warmup-{tag}", "Actor_01")
    os.makedirs(warm_src, exist_ok=True)
    for f in files[:2]:
        shutil.copy(f, warm_src)
    with PrefectServer(os.path.join(wd, f"server-{tag}")) as server, \
            warm_cluster(server.api, n_workers=workers) as address:
        env = {**server.env, "EMOFUSE_DASK_ADDRESS": address or ""}
        _flow(os.path.dirname(warm_src), os.path.join(wd, f"cat-warmup-{tag}"), workers, wd, tag + "-warmup", env)
        res = _flow(src, cat, workers, wd, tag, env)
        res["cached"] = _flow(src, cat, workers, wd, tag + "-cached", env, then_noop=n_tasks)
        res["server_start_s"] = server.start_s
    return res


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"loop": loop_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.loop_vs_flow", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="1 actor (16 clips) instead of 4 (64 clips)")
    ap.add_argument("--actors", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1, help="interleaved repetitions of every configuration")
    ap.add_argument("--loop-threads", type=int, default=1,
                    help="also run the loop with torch/OpenCV limited to this many threads (0: skip)")
    ap.add_argument("--server", action="store_true",
                    help="add flow-2w-server (a running Prefect server, a cluster per run) and flow-2w-serve "
                         "(a running server and the cluster emofuse serve keeps warm)")
    args = ap.parse_args(argv)
    actors = args.actors or (1 if args.small else 4)
    machine = Machine()
    print_header("loop vs flow: the extract flow against a sequential script", ["bench.loop_vs_flow", *argv], machine)
    src = corpus(actors)
    files = media_files(src)
    n = len(files)
    wd = workdir("loop-vs-flow")
    n_tasks = flow_task_count(files)
    print(f"corpus: {src} ({n} clips, {actors} actors); feature sets {FEATURE_SETS}; work dir {wd}", flush=True)

    # A user's Prefect home has its database already: warm one (fresh-home start reported apart).
    temp_env = child_env(os.path.join(wd, "prefect-home"))
    cold = run_child("bench._flows", {"what": "noop", "n": 1, "workers": 1}, log=os.path.join(wd, "warmup.log"),
                     env=temp_env)
    print(f"first flow in a fresh Prefect home (temporary server, database created): {cold['wall_s']:.1f} s\n",
          flush=True)
    configs = ["loop"] + ([f"loop-{args.loop_threads}t"] if args.loop_threads else []) + \
        [c for c in FLOW_CONFIGS if args.server or "server" not in c]
    runs: dict[str, list[dict[str, Any]]] = {}
    server_start: list[float] = []
    for r in range(args.repeat):
        order = configs if r % 2 == 0 else configs[::-1]
        for cfg in order:
            tag = f"{cfg}-r{r}"
            if cfg.startswith("loop"):
                pay: dict[str, Any] = {"what": "loop", "files": files, "out": os.path.join(wd, tag)}
                if cfg != "loop":
                    pay["threads"] = args.loop_threads
                res = run_child("bench.loop_vs_flow", pay, log=os.path.join(wd, f"{tag}.log"), env=child_env())
            else:
                workers, _mode = FLOW_CONFIGS[cfg]
                cat = os.path.join(wd, f"cat-{tag}")
                if cfg.endswith("-serve"):  # as under `emofuse serve`: its cluster warm, models loaded (not counted)
                    res = _serve_flows(src, cat, workers, wd, tag, files, n_tasks)
                    server_start.append(res.pop("server_start_s"))
                elif "server" in cfg:  # up only for its own runs: an idle server still uses CPU
                    with PrefectServer(os.path.join(wd, f"server-{tag}")) as server:
                        server_start.append(server.start_s)
                        res = _flow(src, cat, workers, wd, tag, server.env)
                        res["cached"] = _flow(src, cat, workers, wd, tag + "-cached", server.env, then_noop=n_tasks)
                else:
                    res = _flow(src, cat, workers, wd, tag, temp_env)
                    res["cached"] = _flow(src, cat, workers, wd, tag + "-cached", temp_env, then_noop=n_tasks)
            runs.setdefault(cfg, []).append(res)
            print(f"  {tag}: {res['wall_s']:.1f} s in-process, {res['process_s']:.1f} s process", flush=True)
    if server_start:
        print(f"  (the running Prefect server took {median(server_start):.1f} s to start: not counted, as for "
              f"`emofuse serve` users)", flush=True)

    loop_wall = median(x["wall_s"] for x in runs["loop"])
    loop_proc = median(x["process_s"] for x in runs["loop"])
    rows = []
    for cfg in runs:
        xs = runs[cfg]
        wall, proc = median(x["wall_s"] for x in xs), median(x["process_s"] for x in xs)
        mode = xs[0].get("worker_mode", FLOW_CONFIGS[cfg][1]) if cfg in FLOW_CONFIGS else (
            "library default threads" if cfg == "loop" else f"{args.loop_threads} thread(s)")
        rows.append({"configuration": cfg, "mode": mode, "runs": len(xs), "wall s": wall,
                     "range": spread([x["wall_s"] for x in xs]), "process s": proc, "clips/s": n / wall,
                     "speed-up vs loop (wall)": ratio(loop_wall, wall),
                     "speed-up vs loop (process)": ratio(loop_proc, proc)})
    print("\n## wall time (median of runs)\n")
    print("wall s: from the call (flow) or first model load (loop) to the last output; process s: the whole "
          "child process, interpreter start and imports included.\n")
    print(table(rows))

    print("\n## targets (speed-up = loop time / flow time)\n")
    for cfg, target, text in (("flow-2w", 1.7, ">= 1.7 (2 workers at least 1.7x faster than the loop)"),
                              ("flow-1w", 1 / 1.1, ">= 0.91 (1 worker at most 10% slower)"),
                              ("flow-2w-server", 1.7, ">= 1.7"), ("flow-2w-serve", 1.85, ">= 1.85")):
        if cfg not in runs:
            continue
        xs = runs[cfg]
        s_wall = ratio(loop_wall, median(x["wall_s"] for x in xs))
        s_proc = ratio(loop_proc, median(x["process_s"] for x in xs))
        print(f"- {cfg}: speed-up {s_wall:.2f} (wall), {s_proc:.2f} (process); target {text}: "
              f"{'met' if s_wall >= target else 'NOT met'} (wall), {'met' if s_proc >= target else 'NOT met'} (process)")

    print("\n## where the flow's time goes (medians)\n")
    print("start+stop = flow wall - flow body (temporary server, parent flow, cluster start/stop); body = inside "
          "the Dask sub-flow; cached = the same flow again over the catalog it just filled (nothing to do); "
          f"no-op = {n_tasks} empty tasks (as many as the extract run submits) on the same task runner.\n")
    over = []
    for cfg in [c for c in runs if c in FLOW_CONFIGS]:
        workers = FLOW_CONFIGS[cfg][0]
        xs = runs[cfg]
        task_sum = median(sum(s["task_wall_s"] for s in x["sets"].values()) for x in xs)
        body = median(x["inner_s"] for x in xs)
        over.append({
            "configuration": cfg,
            "wall s": median(x["wall_s"] for x in xs),
            "start+stop s": median(x["wall_s"] - x["inner_s"] for x in xs),
            "body s": body,
            "sum task s": task_sum,
            "body - task s/workers": body - task_sum / workers,
            "cached wall s": median(x["cached"]["wall_s"] for x in xs),
            "cached body s": median(x["cached"]["inner_s"] for x in xs),
            "no-op ms/task": 1000 * median(x["cached"]["noop"]["tasks_s"] / x["cached"]["noop"]["n"] for x in xs),
        })
    print(table(over))
    print()
    for cfg in [c for c in runs if c in FLOW_CONFIGS]:
        xs = runs[cfg]
        per = {name: median(x["sets"][name]["task_wall_s"] for x in xs) for name in FEATURE_SETS}
        media_s = median(x["sets"][FEATURE_SETS[0]]["media_s"] for x in xs)
        print(f"- {cfg} task seconds per feature set: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items())
              + f" (media {media_s:.1f} s)")
    for cfg in [c for c in runs if c.startswith("loop")]:
        lp = runs[cfg][0]
        print(f"- {cfg} (first run): imports {lp['import_s']:.1f} s, model load {lp['load_s']:.1f} s, torch threads "
              f"{lp['threads']}; stages s: " + ", ".join(f"{k} {fmt(v)}" for k, v in lp["stages"].items()))
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
