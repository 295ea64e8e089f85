"""Catalog size per hour of media per feature set, and pandas reading Hive-partitioned predictions.

Part 1 reads an extracted catalog (default ``/work/demo-cat``, read-only): bytes
under ``features/<key>`` (and its status partition) divided by the hours of
media whose status is ``ok``, split into per-clip Parquet, index Parquet and
Zarr shards, with file counts (small parts and Zarr chunk files cost per file).

Part 2 writes ``N`` generated prediction rows (``emofuse.catalog.schemas.prediction_schema``
with the 8 RAVDESS classes, ``emofuse.catalog.atomic.write_parquet``) into two
``predictions/`` folders: one part in one ``model=/run=`` partition, and 100
parts (2 models x 5 runs x 10 parts). It times ``pandas.read_parquet`` of the
whole folder and of one model's partition (``filters``), interleaved and
repeated, reporting the median.

Usage: ``.venv/bin/python -m bench.storage [--small] [--catalog PATH]``
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from typing import Any

from bench._common import (Machine, dir_bytes, median, print_footer, print_header, ratio, spread, table, workdir)

DEFAULT_CATALOG = "/work/demo-cat"
CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _files(path: str) -> int:
    return sum(len(f) for _d, _s, f in os.walk(path))


def catalog_sizes(root: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per feature set: bytes, files, media hours of its ok items, MB per media hour."""
    import pandas as pd

    from emofuse.catalog.store import Catalog

    cat = Catalog(root)
    media = cat.media()
    dur = dict(zip(media["item_id"], media["duration"].fillna(0.0)))
    src_bytes = sum(os.path.getsize(p) for p in media["path"] if isinstance(p, str) and os.path.exists(p))
    rows = []
    for key in cat.feature_sets():
        info = cat.feature_set_info(key)
        ok = cat.done(key)
        hours = sum(dur.get(i, 0.0) for i in ok) / 3600
        base = cat.layout.feature_set(key)
        parts = {sub: dir_bytes(os.path.join(base, sub)) for sub in ("clips", "index", "shards")}
        status_b = dir_bytes(cat.layout.status_dir(key))
        total = dir_bytes(base)
        rows.append({"feature set": info.name, "ok items": len(ok), "media h": hours,
                     "features MB": total / 1e6, "MB per media h": ratio(total / 1e6, hours),
                     "clips MB/h": ratio(parts["clips"] / 1e6, hours), "index MB/h": ratio(parts["index"] / 1e6, hours),
                     "shards MB/h": ratio(parts["shards"] / 1e6, hours), "status MB/h": ratio(status_b / 1e6, hours),
                     "files": _files(base), "kB per item": ratio(total / 1e3, len(ok)), "key": key})
    hours_all = float(pd.Series(list(dur.values())).sum()) / 3600
    extra = {"items": len(media), "media_h": hours_all, "source_mb": src_bytes / 1e6,
             "media_table_mb": dir_bytes(cat.layout.media) / 1e6, "catalog_mb": dir_bytes(root) / 1e6}
    return rows, extra


def prediction_table(n: int, seed: int = 0) -> Any:
    """``n`` generated prediction rows with the run schema (8 class probabilities)."""
    import numpy as np
    import pyarrow as pa

    from emofuse.catalog.schemas import prediction_schema

    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, len(CLASSES))).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    start = rng.uniform(0, 3600, n)
    cols: dict[str, Any] = {
        "item_id": [f"{x:040x}" for x in rng.integers(0, 2**62, n)],
        "fold": rng.integers(0, 5, n).astype(str),
        "start": start, "end": start + rng.uniform(2, 5, n),
        "label": np.asarray(CLASSES)[probs.argmax(1)],
        "score": probs.max(1),
        "valence": rng.uniform(-1, 1, n).astype(np.float32), "arousal": rng.uniform(-1, 1, n).astype(np.float32),
        "scored_at": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
    }
    for k, c in enumerate(CLASSES):
        cols[f"p_{c}"] = probs[:, k]
    schema = prediction_schema(CLASSES)
    for f in schema:  # fields this script does not know (the schema may grow): plausible filler by type
        if f.name not in cols:
            if pa.types.is_string(f.type):
                cols[f.name] = pa.array(["clip"] * n, f.type)
            elif pa.types.is_floating(f.type) or pa.types.is_integer(f.type):
                cols[f.name] = pa.array(rng.integers(0, 100, n), pa.int64()).cast(f.type)
            else:
                cols[f.name] = pa.nulls(n, f.type)
    from emofuse.catalog.prediction_rows import to_table

    wide = pa.table({f.name: cols[f.name] for f in schema}, schema=schema).to_pandas()
    return to_table(wide, CLASSES)  # as the catalog stores it: the parts' one schema (probabilities as lists)


def write_layouts(base: str, n: int) -> dict[str, str]:
    """Two predictions folders of the same ``n`` rows: 1 part, and 100 parts over 2 models x 5 runs."""
    from emofuse.catalog.atomic import write_parquet

    table_ = prediction_table(n)
    one = os.path.join(base, "one-part", "predictions")
    write_parquet(table_, os.path.join(one, "model=tacfn", "run=r0"))
    many = os.path.join(base, "100-parts", "predictions")
    per = n // 100
    k = 0
    for model in ("tacfn", "rcma"):
        for run in range(5):
            for _ in range(10):
                stop = n if k == 99 else (k + 1) * per
                write_parquet(table_.slice(k * per, stop - k * per), os.path.join(many, f"model={model}", f"run=r{run}"))
                k += 1
    return {"1 part": one, "100 parts": many}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench.storage", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="20k prediction rows and 3 repeats instead of 100k and 7")
    ap.add_argument("--catalog", default=DEFAULT_CATALOG, help="an extracted catalog (read only)")
    ap.add_argument("--rows", type=int, default=None)
    args = ap.parse_args(argv)
    n = args.rows or (20_000 if args.small else 100_000)
    repeats = 3 if args.small else 7
    machine = Machine()
    print_header("storage: catalog size per media hour; reading predictions with pandas", ["bench.storage", *argv],
                 machine)
    import pandas as pd

    if os.path.isdir(os.path.join(args.catalog, "features")):
        rows, extra = catalog_sizes(args.catalog)
        print(f"## catalog size per feature set ({args.catalog}: {extra['items']} items, "
              f"{extra['media_h'] * 3600:.0f} s = {extra['media_h']:.4f} h of media)\n")
        print(table(rows, [c for c in rows[0] if c != "key"]))
        print(f"\nwhole catalog {extra['catalog_mb']:.2f} MB; media table {extra['media_table_mb']:.3f} MB; "
              f"the source mp4 files {extra['source_mb']:.2f} MB "
              f"({ratio(extra['source_mb'], extra['media_h']):.0f} MB per media h)")
    else:
        print(f"no extracted catalog at {args.catalog}: part 1 skipped (pass --catalog)")

    wd = workdir("storage")
    t0 = time.perf_counter()
    layouts = write_layouts(wd, n)
    print(f"\n## pandas.read_parquet of {n:,} prediction rows (written in {time.perf_counter() - t0:.1f} s under {wd})\n"
          .replace(",", " "))
    times: dict[tuple[str, str], list[float]] = {}
    shapes: dict[tuple[str, str], int] = {}
    for r in range(repeats + 1):  # the first round warms the page cache and imports; not counted
        order = list(layouts.items()) if r % 2 == 0 else list(layouts.items())[::-1]
        for name, path in order:
            for what, kw in (("all rows", {}), ("model=tacfn (filter)", {"filters": [("model", "==", "tacfn")]})):
                t = time.perf_counter()
                df = pd.read_parquet(path, **kw)
                dt_ = time.perf_counter() - t
                shapes[(name, what)] = len(df)
                if r:
                    times.setdefault((name, what), []).append(dt_)
    trows = []
    for (name, what), xs in sorted(times.items(), key=lambda kv: (kv[0][0] != "1 part", kv[0][1])):
        base = median(times[("1 part", what)])
        trows.append({"layout": name, "read": what, "rows": shapes[(name, what)], "files": _files(layouts[name]),
                      "MB": dir_bytes(layouts[name]) / 1e6, "median ms": 1000 * median(xs),
                      "range ms": spread([1000 * x for x in xs]), "rows/s": shapes[(name, what)] / median(xs),
                      "vs 1 part": ratio(median(xs), base)})
    print(table(trows))
    print(f"\n(median of {repeats} interleaved reads after one warm-up round; page cache warm)")
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
