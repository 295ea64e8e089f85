"""The report of a 400-file archive: wall time, size, and the plotting choice measured side by side.

A scored catalog of 400 files is written through the Catalog API
(:func:`emofuse.flows.report.dummies.scored_catalog`): real H.264 videos of a moving drawn
face (640x360, 25 fps, key frame every 10 s as x264 writes by default) of 3 s to 3 min,
4 s / 2 s windowed predictions, modality attributions and attention profiles, face boxes
per sampled frame, a few broken, audio-only and faceless files. Then ``emofuse report``
runs in a fresh process (imports, catalog reads, thumbnail decoding, page) and the folder
is measured. Last, the two ways to draw the same emotion-over-time plot: the report's
hand-written SVG against matplotlib's SVG backend (time per figure and bytes).

    .venv/bin/python -m bench.report            # 400 files
    .venv/bin/python -m bench.report --small    # 40 files
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from bench._common import TMP_ROOT, Machine, print_footer, print_header, table

#: One archive's mix of durations (s), cycled over the files: mostly short clips, some talks.
DURATIONS = (3.0, 4.0, 5.0, 3.5, 4.5, 6.0, 3.0, 4.0, 5.0, 8.0, 3.0, 4.0, 5.0, 3.5, 4.5, 12.0, 20.0, 45.0, 90.0, 180.0)


def folder_size(path: str) -> tuple[int, int]:
    """(bytes, files) under ``path``."""
    total = n = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            total += os.path.getsize(os.path.join(dirpath, name))
            n += 1
    return total, n


def plot_methods(n: int = 40, windows: int = 89) -> list[dict]:
    """Time and bytes per emotion-over-time figure: the report's SVG against matplotlib's SVG."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    from emofuse.flows.report.assets import class_colors
    from emofuse.flows.report.dummies import CLASSES
    from emofuse.flows.report.svg import time_lines

    rng = np.random.default_rng(0)
    starts = np.arange(windows) * 2.0
    probs = rng.dirichlet(np.ones(len(CLASSES)), size=windows)
    colors = class_colors(CLASSES)
    out = []
    t0 = time.perf_counter()
    size = 0
    for _ in range(n):
        size = len(time_lines(starts, starts + 4, probs, CLASSES, colors, duration=float(starts[-1] + 4),
                              kind="emotions", strip=True))
    out.append({"plot": "hand-written SVG (report)", "ms per figure": (time.perf_counter() - t0) / n * 1e3,
                "KB per figure": size / 1e3})
    t0 = time.perf_counter()
    for _ in range(n):
        fig, ax = plt.subplots(figsize=(7.2, 1.7))
        for j, c in enumerate(CLASSES):
            ax.plot(starts + 2, probs[:, j], color=colors[j], label=c)
        ax.set_ylim(0, 1)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
        size = len(buf.getvalue())
    out.append({"plot": "matplotlib SVG", "ms per figure": (time.perf_counter() - t0) / n * 1e3,
                "KB per figure": size / 1e3})
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench.report")
    ap.add_argument("--small", action="store_true", help="40 files instead of 400")
    ap.add_argument("--files", type=int, default=None)
    args = ap.parse_args(argv)
    n = args.files or (40 if args.small else 400)
    machine = Machine()
    print_header(f"report of a {n}-file archive", ["bench.report", *argv], machine)
    from emofuse.flows.report.dummies import scored_catalog

    media = os.path.join(TMP_ROOT, "bench-report-media")  # the distinct videos, kept between runs
    work = os.path.join(TMP_ROOT, f"bench-report-{n}")
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    run_id = scored_catalog(os.path.join(work, "catalog"), n_files=n, media_dir=media, durations=DURATIONS,
                            size=(640, 360), fps=25)
    made = time.perf_counter() - t0
    import pandas as pd

    from emofuse.catalog.store import Catalog

    cat = Catalog(os.path.join(work, "catalog"))
    preds = cat.predictions(run_id=run_id)
    media_rows = cat.media()
    out = os.path.join(work, "report")
    cmd = [sys.executable, "-m", "emofuse.flows.cli", "report", "--run", run_id, "--catalog", cat.root, "--out", out]
    rows = []
    for attempt in ("first (writes every file)", "again (unchanged catalog)"):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        size, files = folder_size(out)
        rows.append({"run": attempt, "wall s": wall, "MB": size / 1e6, "files": files,
                     "index.html MB": os.path.getsize(os.path.join(out, "index.html")) / 1e6,
                     "output": proc.stdout.strip().splitlines()[0]})
    print(f"archive: {len(media_rows)} files, {pd.to_numeric(media_rows['duration']).sum() / 3600:.2f} h of media, "
          f"{int((preds['window'] != 'clip').sum())} window rows, {len(cat.time_attributions(run_id))} attention steps; "
          f"catalog written in {made:.1f} s")
    print(f"command: {' '.join(cmd[2:])}\n")
    print(table(rows, ["run", "wall s", "MB", "files", "index.html MB", "output"]))
    print("\nthe same emotion-over-time figure (89 windows x 8 classes), drawn 40 times:\n")
    print(table(plot_methods()))
    print_footer(machine)


if __name__ == "__main__":
    main(sys.argv[1:])
