"""Faces, step by step: the faces extractor against the plain loop's faces stage on the same clips.

Issue 18 point 1: on 384 demo clips the flow's faces tasks took 62.8 task-s (2 workers) where
the loop (``bench.loop_vs_flow``) spent 41.0 s decoding video and embedding faces. This splits
that gap. In one fresh process per thread setting (``--threads``: ``limit_threads(n)``, as a
worker runs with 1; 0 = the libraries' defaults, as the loop runs), for each clip in turn:

* the loop's faces stage (``bench.loop_vs_flow``: PyAV decode at 5 fps, YuNet, dlib alignment of
  the largest face, one batched embedding call per clip), timed per step;
* ``FacesExtractor.extract`` (what a faces task calls per item), with its decoder, detector,
  aligner and embedder wrapped by timers: decode, detect, align, embed, and the rest (tracking,
  building the sequence) as the remainder.

Clips alternate between the two so drift hits both. Printed: seconds per step summed over the
clips, both totals and their ratio. What a task adds beyond ``extract`` (the Zarr shard, the
catalog commit, Prefect and Dask) is the flow's task seconds minus the extractor's here.

Usage: ``.venv/bin/python -m bench.faces_steps [--clips 96] [--threads 1,0]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

from bench._common import (Machine, child_env, child_main, corpus, media_files, print_footer, print_header, ratio,
                           run_child, table, timed_into, workdir)

STEPS = ["decode", "detect", "align", "embed", "rest"]


class _Timer:
    """Seconds spent inside wrapped callables, per step."""

    def __init__(self) -> None:
        self.s = dict.fromkeys(STEPS, 0.0)

    def wrap(self, step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return timed_into(self.s, step, fn)

    def frames(self, gen_fn: Callable[..., Any]) -> Callable[..., Any]:
        """A frame generator whose every ``next`` counts as decode time."""
        def timed(*a: Any, **k: Any) -> Any:
            it = gen_fn(*a, **k)
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self.s["decode"] += time.perf_counter() - t0
                    return
                self.s["decode"] += time.perf_counter() - t0
                yield item
        return timed


def steps_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: the loop's faces stage and FacesExtractor.extract, clip by clip, per step."""
    import numpy as np
    import torch

    from bench.loop_vs_flow import sample_frames
    from emofuse.pipeline import model_files
    from emofuse.pipeline.faces import extractor as faces_mod
    from emofuse.pipeline.faces.detect import YuNetDetector
    from emofuse.pipeline.faces.embed import DlibEmbedder
    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder
    from emofuse.pipeline.registry import MediaRef, get_extractor

    if p["threads"]:
        from emofuse.pipeline.threads import limit_threads

        limit_threads(int(p["threads"]))
    det = YuNetDetector(model_files.yunet_path())
    dl = model_files.dlib_model_paths()
    emb = DlibEmbedder(dl.shape_predictor_5, dl.face_recognition,
                       engine=DlibResNetEmbedder(dl.face_recognition, device="cpu", threads=torch.get_num_threads()))
    ext = get_extractor("faces")
    ext.load()
    loop, flow = _Timer(), _Timer()
    ext_det, ext_emb = ext._detector, ext._embedder
    ext_det.detect = flow.wrap("detect", ext_det.detect)
    ext_emb.align = flow.wrap("align", ext_emb.align)
    ext_emb.embed_crops = flow.wrap("embed", ext_emb.embed_crops)
    faces_mod.iter_frames = flow.frames(faces_mod.iter_frames)
    total = {"loop": 0.0, "extractor": 0.0}
    faces = {"loop": 0, "extractor": 0}
    for k, path in enumerate(p["files"]):
        a = time.perf_counter()
        frames = sample_frames(path)
        b = time.perf_counter()
        chips = []
        t_det = t_al = 0.0
        for _t, rgb in frames:
            c0 = time.perf_counter()
            dets = det.detect(rgb)
            c1 = time.perf_counter()
            if len(dets):
                chips += emb.align(rgb, dets.largest(1))
            t_det, t_al = t_det + c1 - c0, t_al + time.perf_counter() - c1
        c = time.perf_counter()
        vecs = emb.embed_crops(chips)
        np.zeros((len(frames), emb.dim), np.float32)[: len(vecs)] = vecs
        d = time.perf_counter()
        for step, v in zip(STEPS, (b - a, t_det, t_al, d - c, 0.0)):
            loop.s[step] += v
        total["loop"] += d - a
        faces["loop"] += len(chips)
        e = time.perf_counter()
        res = ext.extract(MediaRef(item_id=f"clip{k}", path=path, has_video=True))
        total["extractor"] += time.perf_counter() - e
        faces["extractor"] += int(ext._stats.get("embedded_faces", 0))
        if res.status.value != "ok":
            raise RuntimeError(f"{path}: {res.status} {res.message}")
    loop.s["rest"] = total["loop"] - sum(v for k, v in loop.s.items() if k != "rest")
    flow.s["rest"] = total["extractor"] - sum(v for k, v in flow.s.items() if k != "rest")
    return {"threads": torch.get_num_threads(), "clips": len(p["files"]), "total": total, "faces": faces,
            "loop": loop.s, "extractor": flow.s}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"steps": steps_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.faces_steps", description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=96, help="demo clips (default 96)")
    ap.add_argument("--actors", type=int, default=24, help="actors of the generated demo corpus (default 24)")
    ap.add_argument("--threads", default="1,0", help="thread settings, one child each (0: library defaults)")
    args = ap.parse_args(argv)
    machine = Machine()
    print_header("Faces step by step: FacesExtractor.extract against the plain loop's faces stage",
                 ["bench.faces_steps", *argv], machine)
    files = media_files(corpus(args.actors))[: args.clips]
    wd = workdir("faces-steps")
    for th in (int(t) for t in args.threads.split(",")):
        r = run_child("bench.faces_steps", {"what": "steps", "files": files, "threads": th},
                      log=os.path.join(wd, f"steps-t{th}.log"), env=child_env())
        print(f"\n## {r['clips']} clips, {'library default threads' if th == 0 else f'{th} thread(s)'} "
              f"(torch {r['threads']})\n")
        rows = [{"step": s, "loop s": r["loop"][s], "extractor s": r["extractor"][s],
                 "extractor / loop": ratio(r["extractor"][s], r["loop"][s])} for s in STEPS]
        rows.append({"step": "total", "loop s": r["total"]["loop"], "extractor s": r["total"]["extractor"],
                     "extractor / loop": ratio(r["total"]["extractor"], r["total"]["loop"])})
        print(table(rows))
        print(f"\nfaces embedded: loop {r['faces']['loop']}, extractor {r['faces']['extractor']}")
    machine.finish()
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
