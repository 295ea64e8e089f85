"""Face embedding: dlib-bin's ResNet against the batched engine on dlib's own weights, side by side.

All in one fresh child process with one thread (``limit_threads(1)``: torch one thread,
onnxruntime one intra-op thread; dlib-bin is single-threaded), as a Dask worker runs:

* chips: real faces (the six of insightface's ``t1.jpg``, ``Tom_Hanks_54745.png``,
  scikit-image's astronaut) aligned as the faces extractor aligns them for dlib (YuNet
  box, dlib 5-point shape predictor, ``get_face_chip`` 150x150), repeated to 32;
* ms per face at batch 1, 8 and 32 for ``compute_face_descriptor`` (dlib-bin), the
  ``onnxruntime`` engine and the ``torch`` engine of ``pipeline.faces.face_engine``
  (median of the repeats), and dlib / engine;
* agreement with dlib on the distinct chips: lowest cosine, largest absolute difference;
* start-up: building each engine (onnxruntime: ONNX export on first use, then the cache);
* GIL: how far a pure-Python counter thread gets while each engine embeds (1.0: as if
  alone; ~0: the call holds the GIL);
* CUDA, when torch sees a GPU: the torch engine in float32 and float16, faces/s at batch
  32, 128 and 512 (otherwise says it was not run).

Usage: ``.venv/bin/python -m bench.face_engine [--small] [--repeat N]``
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Callable

import numpy as np

from bench._common import Machine, child_env, child_main, print_footer, print_header, ratio, run_child, table, workdir

BATCHES = (1, 8, 32)


def real_chips() -> tuple[np.ndarray, str]:
    """150x150 dlib chips of the faces in the packaged photos, and how they were found."""
    from pathlib import Path

    import cv2
    import dlib
    from skimage import data

    from emofuse.pipeline import model_files
    from emofuse.pipeline.faces.detect import YuNetDetector
    from emofuse.pipeline.faces.embed import DlibEmbedder

    images = Path(__import__("insightface").__file__).parent / "data" / "images"
    photos = [cv2.cvtColor(cv2.imread(str(images / n)), cv2.COLOR_BGR2RGB) for n in ("t1.jpg", "Tom_Hanks_54745.png")]
    photos.append(np.ascontiguousarray(data.astronaut()))
    dl = model_files.dlib_model_paths()
    aligner = DlibEmbedder(dl.shape_predictor_5, dl.face_recognition)
    try:
        det = YuNetDetector(model_files.yunet_path())
        how = "YuNet boxes + dlib 5-point + get_face_chip (the faces extractor's dlib alignment)"
        chips = [c for p in photos for c in aligner.align(p, det.detect(p))]
    except model_files.ModelFileError:
        hog = dlib.get_frontal_face_detector()
        sp = dlib.shape_predictor(str(dl.shape_predictor_5))
        how = "dlib HOG boxes (YuNet not fetched) + dlib 5-point + get_face_chip"
        chips = [dlib.get_face_chip(p, sp(p, r), size=150, padding=0.25) for p in photos for r in hog(p, 0)]
    return np.stack(chips), how


def _median_ms_per_face(run: Callable[[np.ndarray, int], Any], chips: np.ndarray, batch: int, repeat: int) -> float:
    run(chips[:batch], batch)  # warm-up (first call allocations, oneDNN/ORT kernel selection)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(0, len(chips), batch):
            run(chips[i : i + batch], batch)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / len(chips)


def _gil_progress(job: Callable[[], Any]) -> float:
    """A counting thread's rate while ``job`` runs, over its rate alone (1.0: the job never holds the GIL)."""
    def rate(during: Callable[[], Any]) -> float:
        stop, count = threading.Event(), [0]

        def spin() -> None:
            while not stop.is_set():
                count[0] += 1

        th = threading.Thread(target=spin)
        th.start()
        t0 = time.perf_counter()
        during()
        dt = time.perf_counter() - t0
        stop.set()
        th.join()
        return count[0] / dt

    alone = rate(lambda: time.sleep(0.5))
    return rate(job) / alone


def run_child_bench(p: dict[str, Any]) -> dict[str, Any]:
    """Child: everything measured in one process, one thread."""
    import dlib
    import torch

    from emofuse.pipeline import model_files
    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder
    from emofuse.pipeline.threads import limit_threads

    limit_threads(1)
    repeat, n = p["repeat"], p["n_chips"]
    distinct, how = real_chips()
    chips = np.concatenate([distinct] * (n // len(distinct) + 1))[:n]
    dl = model_files.dlib_model_paths()
    rec = dlib.face_recognition_model_v1(str(dl.face_recognition))
    ref = np.array([np.asarray(v) for v in rec.compute_face_descriptor(list(distinct))], np.float32)
    out: dict[str, Any] = {"how": how, "n_distinct": len(distinct), "n_chips": n,
                           "torch_threads": torch.get_num_threads(), "ms": {}, "agreement": {}, "start_s": {},
                           "gil": {}}

    def dlib_run(batch: np.ndarray, b: int) -> Any:
        return rec.compute_face_descriptor(batch[0]) if b == 1 else rec.compute_face_descriptor(list(batch))

    out["ms"]["dlib-bin"] = {b: _median_ms_per_face(dlib_run, chips, b, repeat) for b in BATCHES}
    out["gil"]["dlib-bin"] = _gil_progress(lambda: dlib_run(chips[:8], 8))
    with tempfile.TemporaryDirectory(prefix="bench-face-engine-") as cache:
        for engine in ("onnxruntime", "torch"):
            starts = []
            for _ in range(2):  # onnxruntime: first with export, then from the cache
                t0 = time.perf_counter()
                e = DlibResNetEmbedder(dl.face_recognition, device="cpu", engine=engine, threads=1, cache_dir=cache)
                starts.append(time.perf_counter() - t0)
            out["start_s"][engine] = starts
            got = e.embed(distinct)
            cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
            out["agreement"][engine] = {"min_cos": float(cos.min()), "max_abs": float(np.abs(got - ref).max())}
            out["ms"][engine] = {b: _median_ms_per_face(lambda x, b: e.embed(x, b), chips, b, repeat) for b in BATCHES}
            out["gil"][engine] = _gil_progress(lambda: e.embed(chips[:32]))
    out["cuda"] = cuda_figures(distinct, ref) if torch.cuda.is_available() else None
    return out


def cuda_figures(distinct: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Faces/s of the torch engine on the GPU (float32, float16) at a few batch sizes, and its agreement with dlib."""
    import torch

    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder

    chips = np.concatenate([distinct] * (512 // len(distinct) + 1))[:512]
    res: dict[str, Any] = {"device": torch.cuda.get_device_name(0)}
    for name, dtype in (("float32", torch.float32), ("float16", torch.float16)):
        e = DlibResNetEmbedder(device="cuda", dtype=dtype, batch_size=512)
        got = e.embed(distinct)
        cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
        row: dict[str, Any] = {"min_cos": float(cos.min())}
        for b in (32, 128, 512):
            e.embed(chips[:b], b)
            t0 = time.perf_counter()
            for _ in range(5):
                e.embed(chips, b)
            row[b] = 5 * len(chips) / (time.perf_counter() - t0)
        res[name] = row
    return res


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"run": run_child_bench}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.face_engine", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="8 chips, 1 repeat (a quick check)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats per configuration (median)")
    args = ap.parse_args(argv)
    machine = Machine()
    print_header("face embedding: dlib-bin vs the batched engine on dlib's weights (one thread)",
                 ["bench.face_engine", *argv], machine)
    wd = workdir("face-engine")
    r = run_child("bench.face_engine", {"what": "run", "repeat": 1 if args.small else args.repeat,
                                        "n_chips": 8 if args.small else 32},
                  log=os.path.join(wd, "child.log"), env=child_env())
    print(f"chips: {r['n_distinct']} real faces, {r['how']}; timed on {r['n_chips']} chips "
          f"(the faces repeated), median of {1 if args.small else args.repeat}; torch threads {r['torch_threads']}, "
          "onnxruntime intra-op threads 1\n")
    ms = r["ms"]
    rows = [{"batch": b, "dlib-bin ms/face": ms["dlib-bin"][str(b)],
             "onnxruntime ms/face": ms["onnxruntime"][str(b)], "torch ms/face": ms["torch"][str(b)],
             "dlib / onnxruntime": ratio(ms["dlib-bin"][str(b)], ms["onnxruntime"][str(b)]),
             "dlib / torch": ratio(ms["dlib-bin"][str(b)], ms["torch"][str(b)])} for b in BATCHES]
    print("## ms per face, one thread (target: <= 25 ms, >= 3.5x dlib-bin)\n")
    print(table(rows))
    print("\n## agreement with dlib's compute_face_descriptor (same chips), start-up, GIL\n")
    print(table([{"engine": k, "lowest cosine": f"{v['min_cos']:.7f}", "largest abs. difference": f"{v['max_abs']:.1e}",
                  "build s (1st, 2nd)": ", ".join(f"{s:.2f}" for s in r["start_s"][k]),
                  "counter thread's progress while it embeds": r["gil"][k]} for k, v in r["agreement"].items()]
                + [{"engine": "dlib-bin", "lowest cosine": "1 (itself)", "largest abs. difference": "0",
                    "counter thread's progress while it embeds": r["gil"]["dlib-bin"]}]))
    print("\n(onnxruntime's 1st build exports the torch module to ONNX and caches it; the 2nd reads the cache. "
          "GIL: 1.0 = the counter runs as if alone; ~0 = the call holds the GIL; on a busy 2-core machine the OS "
          "also takes its share.)")
    print("\n## CUDA\n")
    if r["cuda"] is None:
        print("torch sees no GPU on this machine: the CUDA path was not run here.")
    else:
        c = r["cuda"]
        print(f"{c['device']}, torch engine, faces/s (embedding only, chips already aligned)\n")
        print(table([{"dtype": k, "lowest cosine to dlib": f"{v['min_cos']:.6f}", "batch 32": v["32"],
                      "batch 128": v["128"], "batch 512": v["512"]} for k, v in c.items() if isinstance(v, dict)]))
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
