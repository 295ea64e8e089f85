"""Training memory against corpus size: the driver's peak RSS of ``emofuse train`` at several sizes.

Issue 18 point 2 says the driver's memory must not grow with the corpus beyond its tables. This
benchmark isolates training from extraction: per size it writes a catalog of a MELD-layout corpus
through the catalog's own writer (``Catalog.add_media``, ``Catalog.commit_task`` in tasks of
``--task-items``), with the registered feature sets' real keys, widths and frame rates (eGeMAPS
25 values at 100 Hz, faces 128 at 5 fps with their mask, text 384 per utterance with its
start/end) and synthetic values (normal noise plus a class offset), clips of 1.0–2.6 s (1.8 s on
average, like the corpus-size benchmark's). The catalog is cached under
``/tmp/bench-train-memory-n<items>/`` and reused.

Then, each in a fresh process as a user types it, ``emofuse train --model tacfn`` and ``--model
rcma`` (compact widths, one thread, CPU, ``--epochs``), sampled every 0.5 s for the driver's
kernel peak RSS (VmHWM), as ``bench.corpus_size`` does. Printed per size: wall, peak RSS, the
aligned feature bytes the model's timeline holds (what the driver held in memory before the row
store), and the growth of peak RSS per 1,000 items between the sizes next to the catalog's tables
(media + status read into pandas) per 1,000 items.

Usage: ``.venv/bin/python -m bench.train_memory [--sizes 2500,10000] [--epochs 1]``
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from bench._common import TMP_ROOT, Machine, child_env, fmt, print_footer, print_header, table, workdir
from bench.corpus_size import RCMA_COMPACT, run_stage

CLASSES = ["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"]
#: name -> (frame period s or None for one row per utterance, width): the registered extractors' output.
SHAPES = {"egemaps": (0.01, 25), "faces": (0.2, 128), "text": (None, 384)}


def build(items: int, task_items: int, seed: int = 0) -> str:
    """The cached catalog of ``items`` MELD-layout utterances with synthetic features (built once)."""
    from emofuse.catalog.records import ExtractResult, Sequence
    from emofuse.catalog.store import Catalog
    from emofuse.pipeline.registry import get_extractor

    root = os.path.join(TMP_ROOT, f"bench-train-memory-n{items}")
    done = os.path.join(root, "_bench.done")
    if os.path.exists(done):
        return root
    cat = Catalog(root).init()
    rng = np.random.default_rng(seed)
    idx = np.arange(items)
    split = np.where(idx % 20 < 14, "train", np.where(idx % 20 < 17, "dev", "test"))
    label = idx % len(CLASSES)
    durations = 1.0 + (idx % 17) / 10.0
    ids = [f"{s}-dia{i // 10}-utt{i % 10}" for s, i in zip(split, idx)]
    cat.add_media([{"item_id": ids[i], "path": f"/corpora/meld/{split[i]}/dia{i // 10}_utt{i % 10}.mp4",
                    "relpath": f"{split[i]}/dia{i // 10}_utt{i % 10}.mp4", "corpus": "meld",
                    "speaker": f"spk{i % 40}", "emotion": CLASSES[label[i]], "split": str(split[i]),
                    "dialogue": str(i // 10), "utterance": str(i % 10), "duration": float(durations[i])}
                   for i in range(items)])
    for name, (hop, width) in SHAPES.items():
        description = get_extractor(name).describe()
        cat.register_feature_set(description)
        key = description.key
        offsets = rng.normal(size=(len(CLASSES), width)).astype(np.float32)
        for t, lo in enumerate(range(0, items, task_items)):
            results = []
            for i in range(lo, min(items, lo + task_items)):
                dur = float(durations[i])
                if hop is None:
                    times = np.zeros(1)
                    arrays = {"start": np.zeros(1), "end": np.full(1, dur)}
                else:
                    times = np.arange(0.0, dur, hop)
                    arrays = {"mask": np.ones(len(times), bool)} if name == "faces" else {}
                values = rng.normal(size=(len(times), width)).astype(np.float32) + offsets[label[i]]
                results.append(ExtractResult(ids[i], sequence=Sequence(times, {"values": values, **arrays}),
                                             n_frames=len(times)))
            cat.commit_task(key, f"bench-{name}-{t:05d}", results)
        print(f"  {items} items: {name} written", flush=True)
    open(done, "w").close()
    return root


def tables_mib(root: str) -> float:
    """Media + status tables read whole into pandas (deep memory), MiB."""
    import pandas as pd

    from emofuse.catalog.store import Catalog

    lay = Catalog(root).layout
    frames = [pd.read_parquet(lay.media), pd.read_parquet(lay.status)]
    return sum(f.memory_usage(deep=True).sum() for f in frames) / 2**20


def aligned_mib(items: int, model: str) -> float:
    """Bytes of the model's aligned features for these clips (float32), MiB: TACFN 32 steps a clip;
    RCMA windows of 100 steps at 25 Hz every 50 (a clip shorter than a window is one padded window)."""
    width = sum(w for _hop, w in SHAPES.values())
    if model == "tacfn":
        return items * 32 * width * 4 / 2**20
    steps = np.ceil((1.0 + (np.arange(items) % 17) / 10.0) * 25)
    windows = np.where(steps <= 100, 1, 1 + np.ceil((steps - 100) / 50))
    return float(windows.sum()) * 100 * width * 4 / 2**20


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench.train_memory", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2500,10000", help="comma-separated corpus sizes (default 2500,10000)")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    ap.add_argument("--task-items", type=int, default=256, help="items per committed task when building")
    ap.add_argument("--models", default="tacfn,rcma")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    models = args.models.split(",")
    machine = Machine()
    print_header("Training memory against corpus size (emofuse train, driver peak RSS)",
                 ["bench.train_memory", *argv], machine)
    emofuse = os.path.join(os.path.dirname(sys.executable), "emofuse")
    rows: list[dict[str, Any]] = []
    for n in sizes:
        root = build(n, args.task_items)
        wd = workdir(f"train-memory-n{n}")
        env = child_env(os.path.join(wd, "prefect-home"))
        tab = tables_mib(root)
        for model in models:
            cmd = [emofuse, "train", "--catalog", root, "--model", model, "--epochs", str(args.epochs),
                   "--threads", "1", "--device", "cpu"]
            if model == "rcma":
                cmd += ["--lr", "0.001", "--model-option", f"channels={RCMA_COMPACT}"]
            s = run_stage(f"train {model}", cmd, env=env, log=os.path.join(wd, f"train-{model}.log"))
            rows.append({"items": n, "model": model, "wall s": s["wall_s"], "driver peak RSS MiB": s["driver_mib"],
                         "aligned features MiB": aligned_mib(n, model), "tables MiB": tab})
            print(f"  {n} items, {model}: {s['wall_s']:.1f} s, driver peak {s['driver_mib']:.0f} MiB", flush=True)
    print()
    print(table(rows))
    if len(sizes) > 1:
        print(f"\n## growth per 1,000 items, {sizes[0]} -> {sizes[-1]}\n")
        growth = []
        for model in models:
            a, b = (next(r for r in rows if r["items"] == n and r["model"] == model) for n in (sizes[0], sizes[-1]))
            k = (sizes[-1] - sizes[0]) / 1000
            growth.append({"model": model,
                           "driver peak RSS MiB per 1k": (b["driver peak RSS MiB"] - a["driver peak RSS MiB"]) / k,
                           "aligned features MiB per 1k": (b["aligned features MiB"] - a["aligned features MiB"]) / k,
                           "tables MiB per 1k": (b["tables MiB"] - a["tables MiB"]) / k,
                           "RSS growth / aligned growth": fmt((b["driver peak RSS MiB"] - a["driver peak RSS MiB"])
                                                              / (b["aligned features MiB"] - a["aligned features MiB"]))})
        print(table(growth))
    machine.finish()
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
