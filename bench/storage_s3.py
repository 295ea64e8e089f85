"""Extraction throughput with the catalog on a loopback S3-API server vs a local folder, side by side.

The ``extract`` flow as ``emofuse extract`` runs it (in-process flow, temporary Prefect
server, local Dask cluster of 2 workers, default batch sizes), eGeMAPS + faces, over the
same demo corpus into a fresh catalog: a local folder, or ``s3://<bucket>/cat-N`` on
moto's S3-API server (``moto_server`` on 127.0.0.1, started here; the children reach it
through ``AWS_ENDPOINT_URL`` as a user's run would). Each run is a fresh child process;
the two backends alternate (local, s3, local, s3, …) after a warm-up child that creates
the Prefect home's database. Media seconds are the probed durations in the catalog's
media table; the ratio is S3 throughput over local throughput.

Usage: ``.venv/bin/python -m bench.storage_s3 [--small] [--repeat N]`` (default 2 actors,
32 clips; ``--small``: 1 actor, 16 clips).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request

from bench._common import (Machine, child_env, corpus, median, print_footer, print_header, ratio, run_child, spread,
                           table, workdir)

FEATURE_SETS = ["egemaps", "faces"]
WORKERS = 2
BUCKET = "emofuse-bench"


def start_moto(wd: str) -> tuple[subprocess.Popen, str]:
    """``moto_server`` on a free loopback port with one bucket; returns (process, endpoint URL)."""
    import boto3

    from emofuse.flows.local_server import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p",
                             str(port)], stdout=open(os.path.join(wd, "moto.log"), "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not answer on {url}") from None
            time.sleep(0.2)
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=BUCKET)
    return proc, url


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench.storage_s3")
    ap.add_argument("--small", action="store_true", help="1 actor (16 clips) instead of 2 (32 clips)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per backend, interleaved (default 2)")
    args = ap.parse_args(argv)
    machine = Machine()
    print_header("storage_s3: extraction with the catalog on a loopback S3-API server vs a local folder",
                 ["bench.storage_s3", *argv], machine)
    src = corpus(1 if args.small else 2)
    wd = workdir("storage-s3")
    moto, endpoint = start_moto(wd)
    s3_vars = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}
    env = child_env(os.path.join(wd, "prefect-home"), s3_vars)
    try:
        t0 = time.perf_counter()
        run_child("bench._flows", {"what": "noop", "n": 1, "workers": 1}, log=os.path.join(wd, "warmup.log"), env=env)
        print(f"warm-up (Prefect home database, cold temporary server): {time.perf_counter() - t0:.1f} s\n", flush=True)
        runs: dict[str, list[dict]] = {"local": [], "s3": []}
        for r in range(args.repeat):
            for backend in ("local", "s3"):
                catalog = (os.path.join(wd, f"cat-{r}") if backend == "local" else f"s3://{BUCKET}/cat-{r}")
                res = run_child("bench._flows", {"what": "extract", "source": src, "catalog": catalog,
                                                 "feature_sets": FEATURE_SETS, "workers": WORKERS},
                                log=os.path.join(wd, f"{backend}-{r}.log"), env=env)
                res["media_s"] = max(s["media_s"] for s in res["sets"].values())
                counts = {name: s["counts"] for name, s in res["sets"].items()}
                print(f"{backend} run {r + 1}: {res['wall_s']:.1f} s, {counts}", flush=True)
                runs[backend].append(res)
    finally:
        moto.terminate()
        moto.wait(10)
    rows = []
    for backend, rs in runs.items():
        media = rs[0]["media_s"]
        rows.append({"catalog": "local folder" if backend == "local" else "s3:// (moto, loopback)",
                     "clips": sum(s["items"] for s in rs[0]["sets"].values()) // len(FEATURE_SETS),
                     "media s": media, "wall s (median)": median(r["wall_s"] for r in rs),
                     "wall s (spread)": spread([r["wall_s"] for r in rs]),
                     "flow body s": median(r["inner_s"] for r in rs),
                     "media-s per wall-s": ratio(media, median(r["wall_s"] for r in rs))})
    print()
    print(table(rows))
    loc, s3 = rows[0]["media-s per wall-s"], rows[1]["media-s per wall-s"]
    print(f"\nthroughput on S3 / local: {ratio(s3, loc):.2f} of the whole run, "
          f"{ratio(rows[0]['flow body s'], rows[1]['flow body s']):.2f} of the flow body (registration and "
          f"extraction, no server or cluster start) ({', '.join(FEATURE_SETS)}; {WORKERS} local Dask workers; "
          f"{args.repeat} runs each, interleaved)")
    print(f"work dir: {wd}")
    print_footer(machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
