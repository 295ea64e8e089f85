"""Training on CPU: loader items/s against a model step's items/s, and time per epoch, for TACFN and RCMA.

Reads a catalog extracted from the 4-actor demo corpus (default: a copy of
``/work/demo-cat``; the original is never written). Per model, in a fresh
process with one torch thread:

* load: ``emofuse.fusion.align.load_aligned`` (read shards + align), items/s;
* loader: ``emofuse.fusion.dataset.loader_throughput`` (shuffled batch gathers), items/s;
* step: forward + loss + backward + Adam step on batches gathered beforehand
  (the model alone), items/s; and the same with the gather inside (what an
  epoch's training pass costs);
* epoch: ``emofuse.fusion.training_run.train`` for a few epochs on one fold (training pass +
  validation + checkpoint per epoch), median seconds per epoch and its own
  throughput figures.

Usage: ``.venv/bin/python -m bench.training [--small] [--catalog PATH]``
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Any

from bench._common import (Machine, child_env, child_main, median, print_footer, print_header, ratio, run_child,
                           table, workdir)

DEFAULT_CATALOG = "/work/demo-cat"
MODELS = ["tacfn", "rcma"]


def train_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: loader vs step throughput and a short fusion.training_run.train run for one model."""
    import torch

    from emofuse.catalog.store import Catalog
    from emofuse.fusion import training_run
    from emofuse.fusion.align import load_aligned
    from emofuse.fusion.data_config import DataConfig
    from emofuse.fusion.dataset import FusionDataset, NormStats, loader_throughput
    from emofuse.fusion.inference import Task, batch_loss
    from emofuse.fusion.models import ModelInputs, count_parameters, find_preset
    from emofuse.fusion.presets import preset_modalities
    from emofuse.fusion.train import seed_everything

    torch.set_num_threads(int(p["threads"]))
    model, cat = p["model"], Catalog(p["catalog"])
    spec, preset = find_preset(model)
    seed_everything(0)
    out: dict[str, Any] = {"model": model, "threads": torch.get_num_threads()}

    t0 = time.perf_counter()
    data = load_aligned(cat, DataConfig(modalities=preset_modalities(cat, preset, None), align=preset.align))
    out["load_s"] = time.perf_counter() - t0
    out["items"], out["rows"] = data.n_items, data.n_rows
    out["dims"] = dict(data.dims)
    rows = data.rows_of_items(range(data.n_items))
    ds = FusionDataset(data, rows, NormStats.compute(data, rows))
    bs = preset.train.batch_size
    out["batch_size"] = bs
    out["loader_items_per_s"] = loader_throughput(ds, bs, repeats=p["repeats"])

    task = Task(n_classes=len(data.classes) if data.has_categories else 0)
    mcfg = spec.run_config(preset, ModelInputs(dims=data.dims, steps=data.config.align.steps, task=task))
    net = spec.build(mcfg)
    out["parameters"] = count_parameters(net)
    opt = torch.optim.Adam(net.parameters(), lr=preset.train.lr, weight_decay=preset.train.weight_decay)
    g = torch.Generator().manual_seed(0)
    batches = [b for b in ds.batches(bs, shuffle=True, generator=g, drop_single=True)][: p["max_batches"]]

    def step(b: Any) -> None:
        opt.zero_grad(set_to_none=True)
        loss = batch_loss(net(b.inputs, b.masks), b.labels, b.targets, b.masks, task)
        loss.backward()
        opt.step()

    net.train()
    step(batches[0])  # warm-up
    n = 0
    t0 = time.perf_counter()
    for b in batches:
        step(b)
        n += len(b.rows)
    out["step_items_per_s"] = n / (time.perf_counter() - t0)
    n = 0
    t0 = time.perf_counter()
    for k, idx in enumerate(torch.randperm(len(ds), generator=g).split(bs)):
        if k >= p["max_batches"]:
            break
        b = ds.batch(idx)  # the gather inside the timing, as in an epoch
        step(b)
        n += len(b.rows)
    out["pass_items_per_s"] = n / (time.perf_counter() - t0)
    net.eval()
    n = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            net(b.inputs, b.masks)
            n += len(b.rows)
    out["forward_items_per_s"] = n / (time.perf_counter() - t0)

    epoch_s: list[float] = []
    t0 = time.perf_counter()
    res = training_run.train(p["catalog"], model=model, epochs=p["epochs"], patience=p["epochs"] + 1, fold_ids=[p["fold"]],
                             threads=int(p["threads"]), seed=0, progress=lambda rep: epoch_s.append(rep.seconds))
    out["train_s"] = time.perf_counter() - t0
    out["api_throughput"] = res.throughput
    out["fold_items"] = {k: res.folds[0].get(k) for k in ("n_train_items", "n_val_items", "n_test_items",
                                                          "n_train_rows", "epochs_run")} if res.folds else {}
    out["epoch_s_list"] = epoch_s
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"train": train_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.training", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true",
                    help="2 epochs, 1 loader repeat, 2 timed batches instead of 3, 3 and up to 8")
    ap.add_argument("--catalog", default=DEFAULT_CATALOG, help="an extracted catalog (copied, never written)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args(argv)
    epochs, repeats, max_batches = (2, 1, 2) if args.small else (3, 3, 8)
    machine = Machine()
    print_header("training: loader vs model step, time per epoch (CPU)", ["bench.training", *argv], machine)
    if not os.path.isdir(os.path.join(args.catalog, "features")):
        print(f"no extracted catalog at {args.catalog}: run the extract flow on a 4-actor demo corpus first "
              "(e.g. `emofuse demo-corpus /tmp/bench-c --actors 4 && emofuse extract /tmp/bench-c --catalog "
              f"/tmp/bench-cat`) and pass --catalog")
        return 2
    wd = workdir("training")
    cat = os.path.join(wd, "cat")
    shutil.copytree(args.catalog, cat, ignore=shutil.ignore_patterns("locks", "runs", "predictions"))
    print(f"catalog: copy of {args.catalog} at {cat}; {epochs} epochs on fold {args.fold}; "
          f"torch threads {args.threads}\n", flush=True)
    res = {}
    for m in MODELS:
        res[m] = run_child("bench.training", {"what": "train", "model": m, "catalog": cat, "threads": args.threads,
                                              "epochs": epochs, "repeats": repeats, "fold": args.fold,
                                              "max_batches": max_batches},
                           log=os.path.join(wd, f"{m}.log"), env=child_env())
        print(f"  {m}: {res[m]['process_s']:.1f} s", flush=True)

    rows = []
    for m, r in res.items():
        rows.append({"model": m, "parameters": r["parameters"], "rows (clips/windows)": r["rows"],
                     "batch": r["batch_size"],
                     "load items/s": ratio(r["items"], r["load_s"]),
                     "loader items/s": r["loader_items_per_s"],
                     "step items/s (model only)": r["step_items_per_s"],
                     "train pass items/s": r["pass_items_per_s"],
                     "forward items/s": r["forward_items_per_s"],
                     "loader/step": ratio(r["loader_items_per_s"], r["step_items_per_s"]),
                     "epoch s (api, median)": median(r["epoch_s_list"])})
    print("\n## loader vs model step (items/s)\n")
    print("step = forward + loss + backward + Adam on pre-gathered batches; train pass = the same with the "
          "batch gather inside; loader = gathers alone.\n")
    print(table(rows))
    print("\n## fusion.training_run.train, one fold\n")
    trows = []
    for m, r in res.items():
        thr = r["api_throughput"]
        fi = r["fold_items"]
        trows.append({"model": m, "train/val/test items": f"{fi.get('n_train_items')}/{fi.get('n_val_items')}/"
                                                           f"{fi.get('n_test_items')}",
                      "epochs": fi.get("epochs_run"), "epoch s (median)": median(r["epoch_s_list"]),
                      "epoch s (min-max)": f"{min(r['epoch_s_list']):.2f}-{max(r['epoch_s_list']):.2f}"
                      if r["epoch_s_list"] else "n/a",
                      "api train items/s": thr.get("train_items_per_s", float("nan")),
                      "api loader items/s": thr.get("loader_items_per_s", float("nan")),
                      "api load items/s": thr.get("load_items_per_s", float("nan")),
                      "train() total s": r["train_s"]})
    print(table(trows))
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
