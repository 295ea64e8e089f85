"""GPU: face frames/s end to end, the face engine alone, TACFN/RCMA training and scoring items/s, AMP on and off.

One process, on ``--device`` (default: CUDA when torch sees a GPU, else the CPU, said in
the header), sections side by side, each timed with warm-up calls first and
``torch.cuda.synchronize`` around the clock; peak GPU memory per row
(``torch.cuda.max_memory_allocated``, reset before each):

* faces, engine alone: ``DlibResNetEmbedder`` (torch engine) on 150x150 chips, chips/s at
  batch 32 and 128, float32 and float16 (CPU: float32 only), copies in and out included;
* faces, stages on one thread: PyAV decode (sampled frames), YuNet, dlib alignment, the
  engine, ms per sampled frame each;
* faces, end to end: ``FacesExtractor(device=...)`` over generated clips of the RAVDESS
  shape (1280x720, 30 fps, a moving real face), sampled at 5 fps (the default) and at every
  frame, from 1, 4 and one thread per core (models per thread, torch and OpenCV held to
  ``--threads`` intra-op threads, default 1, as a worker's threads run them), sampled frames/s and decoded video frames/s;
* models: TACFN (paper), RCMA (paper widths 512/64/512) and RCMA compact (64/32/64, the
  demo's), inputs as extracted (dlib faces 128, eGeMAPS LLD 25, MiniLM text 384; TACFN 32
  steps per clip, RCMA windows of 100 steps), training items/s (the step of
  ``fusion.train.train_fold``: autocast + GradScaler with AMP, the loss read every step) and
  scoring items/s (``predict_rows``: no_grad, softmax, copy to the host), AMP off and on,
  at the preset's batch and a large one, after ``seed_everything`` (deterministic kernels,
  as training runs);
* ``fusion.api``: ``train`` then ``score`` on a generated catalog (``tests/synthetic_catalog.py``).

A section that cannot run (a missing package or model file) says why; the others still run.
The issue's targets (one H100/H200) are printed beside the figures. One file, longer than
the usual module, because it is one benchmark whose sections share the device set-up and
the tables.

Usage: ``python -m bench.gpu [--small] [--device cuda|cpu] [--json PATH] [--only faces,models,api]``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np

from bench._common import REPO, Machine, fmt, print_footer, print_header, table

TARGET_FACE_FPS = 500.0
TARGET_RCMA_TRAIN = 200.0
DIMS = {"face": 128, "audio": 25, "text": 384}  # dlib faces, eGeMAPS LLD, all-MiniLM-L6-v2
COMPACT_RCMA = {"channels": {"face": 64, "audio": 32, "text": 64}}  # the demo's RCMA (flows/cli.py)


# --------------------------------------------------------------------------- timing
def sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def peak_mib(dev: Any) -> float:
    import torch

    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else float("nan")


def rate(fn: Callable[[], Any], items: int, dev: Any, *, warmup: int, min_s: float, min_calls: int = 3) -> float:
    """Items/s of ``fn`` (``items`` per call) after ``warmup`` calls, over >= ``min_s`` s and >= ``min_calls`` calls.

    The device is synchronised after every call, so the clock never runs ahead of queued GPU work.
    """
    for _ in range(warmup):
        fn()
    sync(dev)
    n, t0 = 0, time.perf_counter()
    while n < min_calls or time.perf_counter() - t0 < min_s:
        fn()
        sync(dev)
        n += 1
    return n * items / (time.perf_counter() - t0)


def env_lines(dev: Any) -> list[str]:
    """torch, CUDA, cuDNN and the GPU, or why the CPU."""
    import torch

    out = [f"torch {torch.__version__}, CUDA (torch built with) {torch.version.cuda}, "
           f"cuDNN {torch.backends.cudnn.version()}, numpy {np.__version__}, Python {sys.version.split()[0]}"]
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        out.append(f"device: {torch.cuda.get_device_name(dev)} (compute capability {p.major}.{p.minor}, "
                   f"{p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs); TF32: matmul "
                   f"{torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32}")
    else:
        why = "asked for" if torch.cuda.is_available() else "torch sees no GPU here"
        out.append(f"device: CPU ({why}); torch threads {torch.get_num_threads()}. The CUDA figures were NOT "
                   "measured in this run; AMP is a no-op on the CPU (autocast applies on CUDA only).")
    return out


# --------------------------------------------------------------------------- faces
def face_chips(n: int) -> tuple[np.ndarray, str]:
    """``n`` dlib chips of scikit-image's astronaut (dlib alignment), or random chips where dlib is missing."""
    try:
        import dlib
        from skimage import data

        from emofuse.pipeline import model_files

        sp = dlib.shape_predictor(str(model_files.dlib_model_paths().shape_predictor_5))
        img = np.ascontiguousarray(data.astronaut())
        box = dlib.get_frontal_face_detector()(img, 0)[0]
        chip = dlib.get_face_chip(img, sp(img, box), size=150, padding=0.25)
        return np.repeat(chip[None], n, axis=0), "the astronaut's face (dlib 5-point + get_face_chip), repeated"
    except Exception as e:  # noqa: BLE001 - any missing piece: the engine's speed does not depend on content
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 150, 150, 3), dtype=np.uint8), f"random chips ({type(e).__name__}: {e})"


def engine_rows(dev: Any, small: bool, min_s: float) -> tuple[list[dict[str, Any]], str]:
    """The engine alone: chips/s per dtype and batch."""
    import torch

    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder

    try:
        from emofuse.pipeline import model_files

        weights: Any = model_files.dlib_model_paths().face_recognition
        wnote = "dlib's weights"
    except Exception as e:  # noqa: BLE001
        from emofuse.pipeline.faces.dlib_resnet import synthetic_dlib_net

        weights, wnote = synthetic_dlib_net(), f"random weights in dlib's layout (same cost; {e})"
    batches = (8,) if small else (32, 128)
    chips, cnote = face_chips(max(batches) * 4)
    dtypes = [torch.float32] + ([torch.float16] if dev.type == "cuda" else [])
    rows = []
    for dt in dtypes:
        reset_peak(dev)
        emb = DlibResNetEmbedder(weights, device=dev, engine="torch", dtype=dt)
        for b in batches:
            x = chips[: b * (1 if small else 4)]
            r = rate(lambda: emb.embed(x, b), len(x), dev, warmup=2, min_s=min_s)
            rows.append({"dtype": str(dt).removeprefix("torch."), "batch": b, "chips/s": r,
                         "ms/chip": 1000 / r, "peak GPU MiB": peak_mib(dev)})
        del emb
    return rows, f"{wnote}; chips: {cnote}; embed() with host-to-device and device-to-host copies"


def make_clips(folder: str, n: int, size: tuple[int, int], fps: int, seconds: float) -> list[str]:
    """``n`` H.264 clips (w x h at ``fps``) of the astronaut's face moving over a tinted, noisy background."""
    import cv2
    from skimage import data

    from emofuse.pipeline.dummies import write_video

    w, h = size
    face = np.ascontiguousarray(data.astronaut()[:256, 128:384])
    s = max(0.3, h / 720 * 1.2)  # a RAVDESS-sized face (~300 px tall at 720p)
    face = cv2.resize(face, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    fh, fw = face.shape[:2]
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        bg = (np.linspace(40, 200, w)[None, :, None] * np.ones((h, 1, 3)) * (0.6 + 0.4 * rng.random(3))
              + rng.normal(0, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
        frames = []
        for i in range(int(round(seconds * fps))):
            f = bg.copy()
            x = int((w - fw) / 2 + (w - fw) / 4 * np.sin(i / fps + k))
            y = int((h - fh) / 2 + (h - fh) / 6 * np.cos(1.3 * i / fps + k))
            f[y : y + fh, x : x + fw] = face
            frames.append(f)
        paths.append(str(write_video(os.path.join(folder, f"clip{k:02d}.mp4"), frames, fps=fps)))
    return paths


def stage_rows(dev: Any, clips: list[str], fps: float, batch: int) -> list[dict[str, Any]]:
    """ms per sampled frame of each face stage on one thread (the extractor's building blocks)."""
    import torch

    from emofuse.pipeline import model_files
    from emofuse.pipeline.decode import iter_frames
    from emofuse.pipeline.faces.detect import YuNetDetector
    from emofuse.pipeline.faces.embed import DlibEmbedder
    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder

    paths = model_files.dlib_model_paths()
    det = YuNetDetector(model_files.yunet_path())
    aligner = DlibEmbedder(paths.shape_predictor_5, paths.face_recognition,
                           engine=DlibResNetEmbedder(paths.face_recognition, device=dev, batch_size=batch,
                                                     threads=torch.get_num_threads()))
    list(iter_frames(clips[0], fps=fps))  # warm-up
    t0 = time.perf_counter()
    frames = [rgb for c in clips for _t, rgb in iter_frames(c, fps=fps)]
    t_dec = time.perf_counter() - t0
    det.detect(frames[0])
    t0 = time.perf_counter()
    dets = [det.detect(f).largest(1) for f in frames]
    t_det = time.perf_counter() - t0
    t0 = time.perf_counter()
    chips = [c for f, d in zip(frames, dets) for c in aligner.align(f, d)]
    t_al = time.perf_counter() - t0
    aligner.embed_crops(chips[:batch], batch)
    sync(dev)
    t0 = time.perf_counter()
    aligner.embed_crops(chips, batch)
    sync(dev)
    t_emb = time.perf_counter() - t0
    n = len(frames)
    rows = [{"stage": s, "ms/frame": 1000 * t / n, "frames/s": n / t} for s, t in
            (("decode (PyAV, sampled)", t_dec), ("YuNet", t_det), ("dlib alignment", t_al),
             (f"engine ({aligner.engine.engine}, {dev.type}, batch {batch})", t_emb))]
    total = t_dec + t_det + t_al + t_emb
    rows.append({"stage": f"sum ({n} frames, {len(chips)} faces)", "ms/frame": 1000 * total / n,
                 "frames/s": n / total})
    return rows


def e2e_row(dev: Any, clips: list[str], video_frames: int, fps: float, threads: int, repeats: int) -> dict[str, Any]:
    """``FacesExtractor.extract`` over ``clips`` x ``repeats`` from ``threads`` threads (models warmed per thread)."""
    from emofuse.pipeline.faces import FacesConfig, FacesExtractor
    from emofuse.pipeline.registry import MediaRef, Status

    ex = FacesExtractor(FacesConfig(device=str(dev.type), fps=fps))
    barrier = threading.Barrier(threads)

    def warm(path: str) -> None:  # one per thread: loads its models and runs a clip
        try:
            ex.extract(MediaRef(item_id="warm", path=path))
        finally:
            barrier.wait(timeout=300)

    jobs = [c for _ in range(repeats) for c in clips]
    reset_peak(dev)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(warm, [clips[0]] * threads))
        sync(dev)
        t0 = time.perf_counter()
        res = list(pool.map(lambda p: ex.extract(MediaRef(item_id=os.path.basename(p), path=p)), jobs))
        sync(dev)
        wall = time.perf_counter() - t0
    bad = [r.message for r in res if r.status != Status.OK]
    sampled = sum(r.n_frames for r in res)
    faces = sum(int(r.sequence.arrays["mask"].sum()) for r in res if r.sequence is not None)
    info = ex.runtime_info()
    return {"sampling": f"{fps:g} fps", "threads": threads, "clips": len(jobs), "sampled frames": sampled,
            "with the face": faces, "s": wall, "sampled frames/s": sampled / wall,
            "video frames decoded/s": video_frames * len(jobs) / wall, "peak GPU MiB": peak_mib(dev),
            "engine": f"{info.get('embedder_engine')}/{info.get('embedder_device')}",
            "not ok": len(bad)}


def faces_section(dev: Any, small: bool, min_s: float, out: dict[str, Any]) -> None:
    import torch

    rows, note = engine_rows(dev, small, min_s)
    out["engine"] = rows
    print("## faces: the engine alone (torch, dlib's ResNet)\n")
    print(note + "\n")
    print(table(rows))
    size, vfps, secs, n = ((320, 240), 10, 1.0, 2) if small else ((1280, 720), 30, 3.0, 8)
    folder = tempfile.mkdtemp(prefix="bench-gpu-clips-")
    t0 = time.perf_counter()
    clips = make_clips(folder, n, size, vfps, secs)
    print(f"\nclips: {n} x {secs:g} s of {size[0]}x{size[1]} at {vfps} fps (H.264, the astronaut's face moving), "
          f"made in {time.perf_counter() - t0:.1f} s under {folder}\n")
    out["stages"] = stage_rows(dev, clips[:2], 5.0, 32)
    print("## faces: stages on one thread (sampled at 5 fps)\n")
    print(table(out["stages"]))
    threads = [1] if small else sorted({1, min(4, os.cpu_count() or 1), os.cpu_count() or 1})
    rows = []
    for fps, repeats in ((5.0, 1 if small else 4), (float(vfps), 1 if small else 2)):
        for t in threads:
            rows.append(e2e_row(dev, clips, int(round(secs * vfps)), fps, t, repeats))
            r = rows[-1]["sampled frames/s"]
            print(f"  end to end: {r:.0f} sampled frames/s ({fps:g} fps, {t} thread(s))", flush=True)
    out["e2e"] = rows
    print(f"\n## faces: end to end, FacesExtractor(device={dev.type!r}) (target >= {TARGET_FACE_FPS:.0f} frames/s)\n")
    print("(threads: Python threads, each with its own YuNet, dlib predictor and engine, torch and OpenCV "
          f"limited to {torch.get_num_threads()} intra-op thread(s) (--threads); clips repeated to have enough work)\n")
    print(table(rows))


# --------------------------------------------------------------------------- models
def model_specs(small: bool, cuda: bool) -> list[dict[str, Any]]:
    """Model configs as ``fusion.training_run.train`` builds them for RAVDESS-like inputs (8 classes, no valence/arousal)."""
    from emofuse.fusion.inference import Task
    from emofuse.fusion.models import ModelInputs, find_preset

    specs = []
    for label, model, mods, over in (("TACFN (paper)", "tacfn", ("face", "audio"), None),
                                     ("RCMA (paper widths)", "rcma", ("face", "audio", "text"), None),
                                     ("RCMA (compact 64/32/64)", "rcma", ("face", "audio", "text"), COMPACT_RCMA)):
        spec, p = find_preset(model)
        inputs = ModelInputs(dims={m: DIMS[m] for m in mods}, steps=p.align.steps, task=Task(n_classes=8))
        cfg = spec.run_config(p, inputs, over)
        specs.append({"label": label, "registry": spec.name, "config": cfg, "steps": p.align.steps,
                      "batches": (2,) if small else (p.train.batch_size, 128) if cuda else (p.train.batch_size,),
                      "lr": p.train.lr,
                      "weight_decay": p.train.weight_decay})
    return specs


def fake_batch(dims: dict[str, int], n: int, steps: int, dev: Any, seed: int) -> SimpleNamespace:
    import torch

    g = torch.Generator().manual_seed(seed)
    masks = {m: torch.rand(n, steps, generator=g) > 0.1 for m in dims}
    for k in masks.values():
        k[:, 0] = True
    return SimpleNamespace(inputs={m: torch.randn(n, steps, d, generator=g).to(dev) for m, d in dims.items()},
                           masks={m: k.to(dev) for m, k in masks.items()},
                           labels=torch.randint(0, 8, (n,), generator=g).to(dev),
                           targets=torch.zeros(n, 0).to(dev))


def model_rows(dev: Any, small: bool, min_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training and scoring items/s per model, batch and AMP setting."""
    import torch

    from emofuse.fusion.inference import Task, autocast
    from emofuse.fusion.models import build_model, count_parameters
    from emofuse.fusion.train import seed_everything, train_step

    seed_everything(0)  # deterministic kernels, cudnn.benchmark off: as fusion.training_run.train runs
    task = Task(n_classes=8)
    amps = (False, True) if dev.type == "cuda" else (False,)
    train, score = [], []
    for spec in model_specs(small, dev.type == "cuda"):
        dims = spec["config"]["input_dims"]
        for amp in amps:
            for bs in spec["batches"]:
                reset_peak(dev)
                model = build_model(spec["registry"], **spec["config"]).to(dev).train()
                opt = torch.optim.Adam(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
                scaler = torch.amp.GradScaler("cuda") if amp else None
                batches = [fake_batch(dims, bs, spec["steps"], dev, s) for s in range(2)]
                k = [0]

                def step() -> None:  # fusion.train.train_fold's step
                    b = batches[k[0] % 2]
                    k[0] += 1
                    loss = train_step(model, opt, b, task, device=dev, amp=amp, scaler=scaler)
                    float(loss.detach())  # train_fold reads the loss every step

                r = rate(step, bs, dev, warmup=3 if dev.type == "cuda" else 1, min_s=min_s)
                train.append({"model": spec["label"], "parameters": count_parameters(model), "batch": bs,
                              "AMP": amp, "train items/s": r, "ms/step": 1000 * bs / r,
                              "peak GPU MiB": peak_mib(dev)})
                print(f"  train {spec['label']}, batch {bs}, AMP {amp}: {r:.0f} items/s", flush=True)
                del model, opt, scaler
        for amp in amps:
            model = build_model(spec["registry"], **spec["config"]).to(dev).eval()
            for bs in (4,) if small else (64, 512) if dev.type == "cuda" else (64,):
                reset_peak(dev)
                b = fake_batch(dims, bs, spec["steps"], dev, 7)

                def predict() -> None:  # fusion.inference.predict_rows' batch
                    with torch.no_grad(), autocast(dev, amp):
                        out = model(b.inputs, b.masks)
                    torch.softmax(out["logits"].float(), dim=-1).cpu().numpy()

                r = rate(predict, bs, dev, warmup=3, min_s=min_s)
                score.append({"model": spec["label"], "batch": bs, "AMP": amp, "score items/s": r,
                              "peak GPU MiB": peak_mib(dev)})
            del model
    return train, score


def models_section(dev: Any, small: bool, min_s: float, out: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deterministic.*")
        out["train"], out["score"] = model_rows(dev, small, min_s)
    print(f"\n## models: training items/s (RCMA paper widths target >= {TARGET_RCMA_TRAIN:.0f})\n")
    print("items: clips (TACFN, 32 steps) or windows (RCMA, 100 steps at 25 Hz); inputs face 128, audio 25, text "
          "384 (RCMA); 8 classes; random inputs with 10 % of the steps masked, on the device before timing.\n")
    print(table(out["train"]))
    print("\n## models: scoring items/s (scoring runs AMP off today: fusion.score.predict)\n")
    print(table(out["score"]))


def api_section(dev: Any, small: bool, out: dict[str, Any]) -> None:
    """fusion.training_run.train then fusion.score.score on a generated catalog (the whole path: reads, folds, checkpoints)."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from synthetic_catalog import build_synthetic_catalog

    from emofuse.fusion import score as scoring, training_run

    root = os.path.join(tempfile.mkdtemp(prefix="bench-gpu-api-"), "cat")
    reps, epochs = (1, 1) if small else (8, 3)
    build_synthetic_catalog(root, n_speakers=8, reps=reps)
    plan = [{"fold": 0, "train": [f"Actor_0{i}" for i in range(1, 7)], "val": ["Actor_07"], "test": ["Actor_08"]}]
    rows = []
    paper = dev.type == "cuda" and not small  # paper widths on a CPU: minutes per epoch
    for label, model, cfg in (("TACFN (paper)", "tacfn", None),
                              ("RCMA (paper widths)" if paper else "RCMA (compact 64/32/64)", "rcma",
                               None if paper else COMPACT_RCMA)):
        t0 = time.perf_counter()
        res = training_run.train(root, model=model, model_config=cfg, epochs=epochs, patience=epochs + 1, folds=plan,
                                 device=dev.type)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        sc = scoring.score(root, res.run_id, device=dev.type)
        t_score = time.perf_counter() - t0
        thr = res.throughput
        rows.append({"model": label, "train items": res.folds[0]["n_train_items"], "epochs": epochs,
                     "train items/s (median epoch)": thr.get("train_items_per_s", float("nan")),
                     "epoch s": thr.get("epoch_seconds", float("nan")), "train() s": t_train,
                     "scored items": sc.n_written, "score() items/s": sc.n_written / t_score, "score() s": t_score})
    out["api"] = rows
    print(f"\n## fusion.training_run.train + score on a generated catalog ({8 * 4 * reps} items, device {dev.type}, "
          "AMP as training sets it)\n")
    print(table(rows))


# --------------------------------------------------------------------------- main
def targets(out: dict[str, Any], cuda: bool) -> list[dict[str, Any]]:
    """The issue's two GPU targets beside the figures of this run (judged only on a GPU)."""
    from emofuse.fusion.models import find_preset

    rows = []
    e2e = out.get("e2e") or []
    if e2e:
        best = max(e2e, key=lambda r: r["sampled frames/s"])
        default = max((r for r in e2e if r["sampling"] == "5 fps"), key=lambda r: r["sampled frames/s"])
        fps, bfps = default["sampled frames/s"], best["sampled frames/s"]
        rows.append({"target": f"face frames/s end to end >= {TARGET_FACE_FPS:.0f}",
                     "measured": f"{fmt(fps)} at 5 fps sampling ({default['threads']} thread(s)); "
                                 f"best {fmt(bfps)} ({best['sampling']}, {best['threads']} thread(s))",
                     "met": best["sampled frames/s"] >= TARGET_FACE_FPS if cuda else "- (CPU run)"})
    rc = [r for r in out.get("train") or [] if r["model"] == "RCMA (paper widths)"]
    if rc:
        best = max(rc, key=lambda r: r["train items/s"])
        first = rc[0]["batch"]
        which = "the preset's batch" if first == find_preset("rcma")[1].train.batch_size else "batch"
        preset = max((r for r in rc if r["batch"] == first), key=lambda r: r["train items/s"])
        rows.append({"target": f"RCMA paper widths training >= {TARGET_RCMA_TRAIN:.0f} items/s",
                     "measured": f"{fmt(preset['train items/s'])} at {which} {first} (AMP {preset['AMP']}); "
                                 f"best {fmt(best['train items/s'])} (batch {best['batch']}, AMP {best['AMP']})",
                     "met": best["train items/s"] >= TARGET_RCMA_TRAIN if cuda else "- (CPU run)"})
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench.gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a quick smoke run (small clips, batches and catalog)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument("--only", default="faces,models,api", help="comma-separated sections to run")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/OpenCV intra-op threads (1: as the workers run; more only slows a busy CPU)")
    args = ap.parse_args(argv)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts, as fusion.train sets it
    import torch

    from emofuse.pipeline.threads import limit_threads

    limit_threads(args.threads)

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    machine = Machine()
    print_header(f"GPU: faces, training and scoring on {dev}", ["bench.gpu", *argv], machine)
    for line in env_lines(dev):
        print(line)
    print(flush=True)
    min_s = 0.3 if args.small else 1.5
    out: dict[str, Any] = {"device": str(dev), "env": env_lines(dev), "errors": {}}
    sections = {"faces": lambda: faces_section(dev, args.small, min_s, out),
                "models": lambda: models_section(dev, args.small, min_s, out),
                "api": lambda: api_section(dev, args.small, out)}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        try:
            sections[name]()
        except Exception as e:  # noqa: BLE001 - one section's missing package must not hide the others
            out["errors"][name] = f"{type(e).__name__}: {e}"
            print(f"\n## {name}: NOT RUN ({type(e).__name__}: {e})\n")
            traceback.print_exc(file=sys.stdout)
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    peaks = [r["peak GPU MiB"] for k in ("engine", "e2e", "train", "score") for r in out.get(k) or []]
    if dev.type == "cuda" and peaks:
        out["peak_gpu_mib"] = max(peaks)
        print(f"\nlargest peak GPU memory of a row (torch.cuda.max_memory_allocated): {max(peaks):.0f} MiB")
    print("\n## targets (issue 10, on one H100/H200)\n")
    rows = targets(out, dev.type == "cuda")
    print(table(rows) if rows else "(no figure to compare: the sections did not run)")
    if dev.type != "cuda":
        print("\nThis run was on the CPU: the targets are for a GPU and are not judged by it.")
    print_footer(machine)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, default=str)
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
