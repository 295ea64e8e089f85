"""A million items, by simulation: the catalog of a 1,000,000-item corpus, and what a run costs on it.

The scale model writes the catalog that real extract runs of an ``--items`` corpus leave: the
four registered feature sets (their real keys and ``feature_set.json``), tasks of ``--task-items``
items (32: ``emofuse extract``'s default batch), and per task and feature set what
:func:`emofuse.catalog.commit.commit_task` writes — a Zarr shard (through the catalog's own
``atomic.write_zarr_shard``), a per-clip part, an index part and the status part — plus one media
part per registering run of ``--run-items`` items (``plan_run(register=True)`` adds one part per
run). Values are synthetic (MELD-shaped media rows, a 2 % ``no_face`` share in faces, 4 frames
per sequence, short vectors). The Parquet parts are written directly with pyarrow in the tables'
schemas (``catalog/schemas.py``) under the names the writers give: going through
``Catalog.commit_task`` reads the whole status table and lists the clips folder per task, so
writing 31,250 tasks × 4 sets that way is quadratic (hours); that cost is what "commit of one
more task" measures instead.

The generated catalog is cached under ``/tmp/bench-million-<items>-t<task items>/`` and built in
runs of ``--run-items`` items, ``--jobs`` runs at a time in forked processes (writing the parts is
bound by creating files: ~2,500 files and folders per 1,000 items), each marked done when complete,
so a re-run (or one interrupted) does not rebuild. The S3 variant copies that same catalog (built at ``--s3-items``) into a moto
S3-API server on loopback (in memory: copied again each time).

Measured, on a catalog where everything is done: the no-op run (``Catalog.repair`` + ``known_files``
+ ``plan_run`` over the catalog's items, each also timed on its own, what ``emofuse extract`` does before it would start
workers; walking and ``stat``-ing the source files is the corpus's cost, not the catalog's, and is
left out), ``done()``, one more task (claim, ``commit_task``, release; removed again afterwards),
``emofuse catalog ls`` (``Catalog.tables``), and whole-table ``pd.read_parquet`` of media and
status. ``--compact`` also measures the same on a hard-linked copy after ``Catalog.compact``.

Usage: ``.venv/bin/python -m bench.million [--items 1000000] [--s3-items 20000] [--no-s3] [--compact [--only-compacted]]
[--jobs 2]``
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench._common import TMP_ROOT, Machine, print_footer, print_header, table, workdir
from emofuse.catalog import atomic
from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.schemas import MEDIA_SCHEMA, SEQ_INDEX_SCHEMA, STATUS_SCHEMA
from emofuse.catalog.store import Catalog
from emofuse.catalog.urls import fs_path
from emofuse.pipeline.registry import available, get_extractor

CORPUS = "meld"
FRAMES = 4  # sequence rows per item
DIMS = {"egemaps": 25, "faces": 16, "logmel": 16, "text": 16}  # short synthetic vectors
FACE_MISS = 0.02
EMOTIONS = np.array(["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"])


def item_ids(start: int, stop: int) -> list[str]:
    """Content-hash-like ids of items start..stop-1 (deterministic)."""
    return [hashlib.blake2b(str(i).encode(), digest_size=8).hexdigest() for i in range(start, stop)]


def task_id(key: str, run: int, t: int) -> str:
    """A task id like the flow's (16 hex digits), deterministic so that a rebuilt run rewrites the same parts."""
    return hashlib.blake2b(f"{key}/{run}/{t}".encode(), digest_size=8).hexdigest()


def media_part(lo: int, hi: int, ids: list[str], now: pd.Timestamp) -> pa.Table:
    n = hi - lo
    idx = np.arange(lo, hi)
    rel = [f"train/dia{i // 10}_utt{i % 10}.mp4" for i in idx]
    cols: dict[str, Any] = {
        "item_id": ids, "path": [f"/corpora/meld/{r}" for r in rel], "relpath": rel,
        "size": 200_000 + idx % 50_000, "mtime": pd.Series([now] * n), "registered_at": pd.Series([now] * n),
        "corpus": [CORPUS] * n, "container": ["mp4"] * n, "duration": 1.0 + (idx % 70) / 10.0,
        "has_audio": np.ones(n, bool), "has_video": np.ones(n, bool), "sample_rate": np.full(n, 16000, np.int32),
        "fps": np.full(n, 25.0), "width": np.full(n, 640, np.int32), "height": np.full(n, 360, np.int32),
        "speaker": [f"spk{i % 300}" for i in idx], "emotion": EMOTIONS[idx % 7],
        "emotion_code": (idx % 7).astype(np.int8),
        "transcript": [f"utterance number {i}" for i in idx], "split": ["train"] * n,
        "dialogue": [str(i // 10) for i in idx], "utterance": [str(i % 10) for i in idx],
        "sentiment": ["neutral"] * n, "season": (1 + idx % 9).astype(np.int8),
        "episode": (1 + idx % 24).astype(np.int8),
        "episode_start": (idx % 600).astype(float), "episode_end": (idx % 600 + 3).astype(float),
    }
    arrays = [pa.array(cols[f.name], type=f.type) if f.name in cols else pa.nulls(n, f.type) for f in MEDIA_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=MEDIA_SCHEMA)


def write_task(cat: Catalog, name: str, key: str, tid: str, ids: list[str], now: pd.Timestamp,
               rng: np.random.Generator) -> None:
    """What commit_task writes for one task of one feature set (shard, clips, index, then status).

    Columns are built as whole Arrow arrays (no pandas, no Python object per vector): the builder
    writes 125,000 of these per million items."""
    n = len(ids)
    miss = (rng.random(n) < FACE_MISS) if name == "faces" else np.zeros(n, bool)
    ok = [i for i, m in zip(ids, miss) if not m]
    lay = cat.layout
    if ok:
        m = len(ok)
        _shard(cat, key, tid, m)
        dims = DIMS[name]
        values = pa.array(rng.random((m, dims), np.float32).ravel())
        vectors = pa.ListArray.from_arrays(pa.array(np.arange(0, m * dims + 1, dims, dtype=np.int32)), values)
        _put(cat, pa.table({"item_id": ok, "vector": vectors}), lay.clips(key), tid)
        index = pa.table({"item_id": ok, "shard": [tid] * m, "offset": np.arange(m) * FRAMES,
                          "length": np.full(m, FRAMES), "t_start": np.zeros(m),
                          "t_end": np.full(m, 0.04 * (FRAMES - 1))},
                         schema=SEQ_INDEX_SCHEMA)
        _put(cat, index, lay.seq_index(key), tid)
    attempted = pa.array(np.full(n, now.value // 1000, np.int64), STATUS_SCHEMA.field("attempted_at").type)
    status = pa.table({"item_id": ids, "status": np.where(miss, "no_face", "ok"),
                       "message": np.where(miss, "no face in any frame", ""), "task_id": [tid] * n,
                       "run_id": ["sim"] * n, "n_frames": np.full(n, FRAMES), "wall_s": np.full(n, 0.05),
                       "attempted_at": attempted}, schema=STATUS_SCHEMA)
    _put(cat, status, lay.status_dir(key), tid)


_TEMPLATES: dict[tuple[str, int], str] = {}


def _shard(cat: Catalog, key: str, tid: str, m: int) -> None:
    """The task's Zarr shard: one shard per (feature set, item count) written by the catalog's writer
    (``atomic.write_zarr_shard``), hard-linked for every other task of that size (writing 125,000 shards
    through zarr takes hours here; the copies differ from real ones only in the ``task_id`` attribute)."""
    template = _TEMPLATES.get((key, m))
    if template is None:
        template = f"{cat.layout.root}/_bench/shards/{key}-{m}.zarr"
        if not os.path.exists(template):
            times = np.tile(np.arange(FRAMES) * 0.04, m)
            values = np.random.default_rng(m).random((m * FRAMES, 4), np.float32)
            try:
                atomic.write_zarr_shard(template, times, {"values": values}, {"feature_set": key})
            except OSError:  # another build process renamed the same template into place first
                if not os.path.exists(template):
                    raise
        _TEMPLATES[(key, m)] = template
    final = cat.layout.shard(key, tid)
    if os.path.exists(final):
        shutil.rmtree(final)
    shutil.copytree(template, final, copy_function=os.link)


_FOLDERS: set[str] = set()


def _put(cat: Catalog, t: pa.Table, folder: str, name: str) -> None:
    """A part under the writer's name (the generator is the only writer: no temporary name needed)."""
    if folder not in _FOLDERS:
        os.makedirs(folder, exist_ok=True)
        _FOLDERS.add(folder)
    with pa.OSFile(f"{folder}/part-{name}.parquet", "wb") as f:  # a native file: no filesystem lookup per part
        pq.write_table(t, f, compression="zstd")


def build(items: int, task_items: int, run_items: int, jobs: int = 2) -> str:
    """The cached catalog of ``items`` (built run by run, ``jobs`` runs at a time in forked processes;
    runs marked done are not rebuilt)."""
    root = os.path.join(TMP_ROOT, f"bench-million-{items}-t{task_items}")
    cat = Catalog(root).init()
    keys = {}
    for n in available():
        description = get_extractor(n).describe()
        cat.register_feature_set(description)
        keys[n] = description.key
    runs = [(run, lo, min(items, lo + run_items)) for run, lo in enumerate(range(0, items, run_items))]
    runs = [r for r in runs if not os.path.exists(_marker(root, r[0]))]
    t0 = time.perf_counter()
    if jobs <= 1 or len(runs) <= 1:
        for run, lo, hi in runs:
            build_run(root, keys, task_items, run, lo, hi)
            print(f"  built run {run} (items {lo}..{hi - 1}) at {time.perf_counter() - t0:.0f} s", flush=True)
        return root
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {pool.submit(build_run, root, keys, task_items, *r): r for r in runs}
        for fut in as_completed(futures):
            fut.result()
            run, lo, hi = futures[fut]
            print(f"  built run {run} (items {lo}..{hi - 1}) at {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def _marker(root: str, run: int) -> str:
    return os.path.join(root, "_bench", f"run-{run}.done")


def build_run(root: str, keys: dict[str, str], task_items: int, run: int, lo: int, hi: int) -> None:
    """One registering run's parts (items ``lo..hi-1``: its media part, every task of every feature set
    ``keys``, name -> key), then its done marker."""
    cat = Catalog(root)
    ids = item_ids(lo, hi)
    now = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=run)
    rng = np.random.default_rng(run)
    _put(cat, media_part(lo, hi, ids, now), cat.layout.media, f"run{run}")
    for name, key in keys.items():
        for t0_item in range(0, hi - lo, task_items):
            write_task(cat, name, key, task_id(key, run, t0_item), ids[t0_item:t0_item + task_items], now, rng)
    atomic.write_bytes(_marker(root, run), b"done")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(root: str, task_items: int, *, whole: bool = True, moto_log: str | None = None) -> dict[str, Any]:
    """The timings of one catalog (local folder or s3:// URL) where every item is done.

    ``whole=False``: the catalog lacks the per-task feature folders (see :func:`upload`), so only what
    does not read them is measured: the no-op run, ``done()`` and the whole-table reads. ``moto_log``:
    the S3 server's request log, to count the no-op run's requests (and those into per-task folders).
    """
    exs = {n: get_extractor(n) for n in available()}
    key = exs["egemaps"].key
    from emofuse.pipeline.plan import plan_run

    out: dict[str, Any] = {}

    def noop() -> bool:
        cat = Catalog(root).init()
        out["repair s"], _ = _timed(lambda: cat.repair(sweep=False))  # as a run's start repairs
        out["known_files s"], _ = _timed(cat.known_files)
        out["plan s"], plan = _timed(lambda: plan_run(cat, None, CORPUS, None, exs))
        return plan.idle

    offset = os.path.getsize(moto_log) if moto_log else 0
    out["no-op run s"], idle = _timed(noop)
    if moto_log:
        out["no-op requests"], out["of them per-task folders"] = requests_since(moto_log, offset)
    if not idle:
        raise RuntimeError("the simulated catalog is not complete: the no-op run found work")
    cat = Catalog(root)
    out["done() s"], done = _timed(lambda: cat.done(key))
    out["done items"] = len(done)
    if not whole:
        out["read media s"], media = _timed(lambda: pd.read_parquet(cat.layout.media))
        out["read status s"], status = _timed(lambda: pd.read_parquet(cat.layout.status))
        out["media rows"], out["status rows"] = len(media), len(status)
        return out
    ids = [f"extra{i:011d}" for i in range(task_items)]
    tid = "bench-million-extra"
    results = [ExtractResult(i, row={"vector": np.ones(DIMS["egemaps"], np.float32)},
                             sequence=Sequence(np.arange(FRAMES) * 0.04, {"values": np.ones((FRAMES, 4), np.float32)}),
                             n_frames=FRAMES) for i in ids]
    out["claim s"], mine = _timed(lambda: cat.claim(key, tid, ids))
    out["commit s"], _ = _timed(lambda: cat.commit_task(key, tid, [r for r in results if r.item_id in mine]))
    cat.release(key, tid, mine)
    fs = cat.layout.fs
    for path in (f"{cat.layout.status_dir(key)}/part-{tid}.parquet", f"{cat.layout.clips(key)}/part-{tid}.parquet",
                 f"{cat.layout.seq_index(key)}/part-{tid}.parquet", cat.layout.shard(key, tid)):
        fs.rm(fs_path(path), recursive=True)
    out["catalog ls s"], _ = _timed(cat.tables)
    out["read media s"], media = _timed(lambda: pd.read_parquet(cat.layout.media))
    out["read status s"], status = _timed(lambda: pd.read_parquet(cat.layout.status))
    out["media rows"], out["status rows"] = len(media), len(status)
    out["status parts"] = sum(1 for p in fs.find(fs_path(cat.layout.status)) if p.endswith(".parquet"))
    out["files"] = len(fs.find(fs_path(cat.layout.root)))
    return out


def compacted_copy(root: str) -> tuple[str, float]:
    """A hard-linked copy of ``root`` (compaction never changes a file in place), compacted; (copy, seconds)."""
    copy = workdir("million-compacted")
    shutil.rmtree(copy)
    subprocess.run(["cp", "-al", root, copy], check=True)
    t, _ = _timed(lambda: Catalog(copy).compact())
    return copy, t


#: The per-task folders of every feature set: what a no-op run no longer reads (its repair finds
#: crashed tasks by their claims), and 750,000 of the 875,000 files of a million items.
PER_TASK_FOLDERS = ("clips", "index", "shards")


def upload(root: str, url: str, *, whole: bool = True) -> tuple[float, int]:
    """Copy the local catalog ``root`` to ``url`` (s3fs, concurrent PUTs); (seconds, files left out).

    ``whole=False`` leaves out each feature set's :data:`PER_TASK_FOLDERS`.
    """
    cat = Catalog(url)
    fs = cat.layout.fs
    if whole:
        t, _ = _timed(lambda: fs.put(root + "/", fs_path(url), recursive=True))
        return t, 0
    left_out, pairs = 0, []
    for folder, _dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        parts = rel.split("/")
        if parts[0] == "features" and len(parts) > 2 and parts[2] in PER_TASK_FOLDERS:
            left_out += len(files)
            continue
        pairs += [(os.path.join(folder, f), f"{fs_path(url)}/{'' if rel == '.' else rel + '/'}{f}") for f in files]
    t, _ = _timed(lambda: fs.put([a for a, _ in pairs], [b for _, b in pairs]))
    return t, left_out


_REQUEST = re.compile(r'"(GET|PUT|HEAD|DELETE|POST) (\S+) HTTP')
_PER_TASK = re.compile(r"/features/[^/]+/(" + "|".join(PER_TASK_FOLDERS) + r")(/|&|$)")


def requests_since(log: str, offset: int) -> tuple[int, int]:
    """(requests moto logged after byte ``offset`` of ``log``, those of them under a per-task folder:
    an object there or a listing of one, the URL's query decoded)."""
    with open(log, "rb") as f:
        f.seek(offset)
        targets = [urllib.parse.unquote(m.group(2)) for m in map(_REQUEST.search, f.read().decode(errors="replace")
                                                                   .splitlines()) if m]
    return len(targets), sum(1 for t in targets if _PER_TASK.search(t.replace("prefix=", "/")))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench.million")
    ap.add_argument("--items", type=int, default=1_000_000, help="items of the local catalog (default 1,000,000)")
    ap.add_argument("--task-items", type=int, default=32, help="items per task (emofuse extract's default, 32)")
    ap.add_argument("--run-items", type=int, default=50_000, help="items registered per run (one media part each)")
    ap.add_argument("--s3-items", type=int, default=20_000,
                    help="items of the catalog copied to loopback S3 (default 20,000: moto takes ~60 PUTs/s here)")
    ap.add_argument("--no-s3", action="store_true", help="skip the loopback S3 variant")
    ap.add_argument("--compact", action="store_true", help="also measure after `emofuse catalog compact`")
    ap.add_argument("--only-compacted", action="store_true",
                    help="with --compact: measure the compacted copy only (the as-written catalog is large on S3)")
    ap.add_argument("--jobs", type=int, default=2, help="runs of the catalog built at a time (processes; default 2)")
    ap.add_argument("--s3-no-op-tables", action="store_true",
                    help="upload all but the feature sets' per-task folders (clips, index, shards: 750,000 of the "
                    "875,000 files at a million items, 1.5 h into moto) and measure only the no-op run, done() and "
                    "the whole-table reads; moto's request log shows whether any request went to a left-out folder")
    args = ap.parse_args(argv)
    machine = Machine()
    print_header("million: the catalog of a large corpus, simulated (no-op run, done, commit, ls, reads)",
                 ["bench.million", *argv], machine)
    rows = []
    copies: dict[str, str] = {}  # catalog -> its compacted copy (local and S3 at one size share it)
    sizes = [("local", args.items)] + ([] if args.no_s3 else [("s3", args.s3_items)])
    for backend, n in sizes:
        t, root = _timed(lambda: build(n, args.task_items, args.run_items, args.jobs))
        print(f"{n:,} items ({backend}): catalog ready in {t:.0f} s ({root})", flush=True)
        variants = [] if args.compact and args.only_compacted else [("as written", root)]
        if args.compact:
            if root not in copies:
                copies[root], tc = compacted_copy(root)
                print(f"  compacted (hard-linked copy) in {tc:.1f} s", flush=True)
            variants.append(("compacted", copies[root]))
        for label, path in variants:
            where = path
            moto = None
            try:
                if backend == "s3":
                    from bench.storage_s3 import BUCKET, start_moto
                    s3_dir = workdir("million-s3")
                    moto, endpoint = start_moto(s3_dir)
                    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
                    import s3fs
                    s3fs.S3FileSystem.clear_instance_cache()
                    where = f"s3://{BUCKET}/{os.path.basename(path)}"
                    tu, left_out = upload(path, where, whole=not args.s3_no_op_tables)
                    print(f"  uploaded to {where} in {tu:.0f} s" + (f" ({left_out:,} files of per-task folders left "
                                                                       "out)" if left_out else ""), flush=True)
                    res = measure(where, args.task_items, whole=not args.s3_no_op_tables,
                                  moto_log=os.path.join(s3_dir, "moto.log"))
                else:
                    res = measure(where, args.task_items)
            finally:
                if moto is not None:
                    moto.terminate()
                    moto.wait(10)
            rows.append({"catalog": f"{backend}, {label}", "items": n, **res})
            print(f"  {label}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in res.items()), flush=True)
    print()
    print(table(rows))
    print_footer(machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
