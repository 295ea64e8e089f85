"""Peak RSS of a worker extracting one long video (10 min) against a short one (10 s), per extractor.

The long video repeats the demo corpus's clips (frames and audio decoded with
PyAV, re-encoded as one H.264/AAC mp4, 256x256 at 25 fps, 16 kHz mono). Each
(extractor, video) runs in a fresh process: models are loaded and warmed on a
short clip first, the peak-RSS counter (VmHWM) is reset to the current RSS, then
``emofuse.pipeline.batch.run_batch`` extracts the one file and commits it to a fresh
catalog, exactly what a Dask worker's task does. Reported: RSS after warm-up,
peak during the extraction, their difference, the stored output size, and the
long/short ratios. Memory that grows with length beyond the outputs points at
whole-file buffers (e.g. eGeMAPS reads the whole audio: 16 kHz float32 =
3.84 MB per minute).

Usage: ``.venv/bin/python -m bench.memory [--small]`` (small: 2 minutes instead of 10)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

from bench._common import (Machine, child_env, child_main, corpus, dir_bytes, media_files, peak_rss_mib, print_footer,
                           print_header, ratio, reset_peak_rss, rss_mib, run_child, table, workdir)

NAMES = ["egemaps", "faces", "text", "logmel"]
FPS = 25
SR = 16_000
SIZE = 256
TRANSCRIPT = "Kids are talking by the door"


def _decode_clip(path: str) -> tuple[list[Any], Any]:
    """All RGB frames and the 16 kHz mono float32 audio of one clip."""
    import av
    import numpy as np

    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    with av.open(path) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=SR)
        parts = [o.to_ndarray().reshape(-1) for fr in c.decode(c.streams.audio[0]) for o in rs.resample(fr)]
        parts += [o.to_ndarray().reshape(-1) for o in rs.resample(None)]
    return frames, np.concatenate(parts).astype(np.float32)


def make_video(clips: list[str], out: str, seconds: float) -> str:
    """Write ``out``: the clips' frames and audio repeated, cut to ``seconds`` (streamed, bounded memory)."""
    import av
    import numpy as np

    if os.path.exists(out):
        return out
    tmp = out + ".tmp.mp4"
    n_total = int(round(seconds * FPS))
    per_frame = SR // FPS
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(tmp, mode="w", format="mp4") as c:
        vs = c.add_stream(codec, rate=FPS)
        vs.width = vs.height = SIZE
        vs.pix_fmt = "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": "23", "preset": "veryfast"}
        aus = c.add_stream("aac", rate=SR, layout="mono")
        aus.bit_rate = 32_000
        i = 0
        a_pos = 0
        pending = np.zeros(0, np.float32)
        k = 0
        while i < n_total:
            frames, audio = _decode_clip(clips[k % len(clips)])
            k += 1
            frames = frames[: n_total - i]
            need = len(frames) * per_frame
            audio = np.pad(audio[:need], (0, max(0, need - audio.size)))
            for rgb in frames:
                vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                vf.pts, vf.time_base = i, Fraction(1, FPS)
                c.mux(vs.encode(vf))
                i += 1
            pending = np.concatenate([pending, audio])
            while pending.size >= 1024:
                fr = av.AudioFrame.from_ndarray(pending[None, :1024], format="fltp", layout="mono")
                fr.sample_rate, fr.pts, fr.time_base = SR, a_pos, Fraction(1, SR)
                c.mux(aus.encode(fr))
                a_pos += 1024
                pending = pending[1024:]
        c.mux(vs.encode(None))
        c.mux(aus.encode(None))
    os.replace(tmp, out)
    return out


def mem_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: warm an extractor on a short clip, reset the peak, extract one file with run_batch."""
    from emofuse.catalog.store import Catalog
    from emofuse.pipeline.batch import run_batch
    from emofuse.pipeline.decode import probe
    from emofuse.pipeline.registry import MediaRef
    from emofuse.pipeline.threads import limit_threads

    limit_threads(1)
    name = p["name"]
    warm_cat = Catalog(os.path.join(p["wd"], "warm")).init().root
    run_batch(warm_cat, name, {}, [MediaRef("warm", p["warm"], transcript=TRANSCRIPT, has_audio=True,
                                            has_video=True)])
    rss_warm = rss_mib()
    peak_before = peak_rss_mib()
    reset_ok = reset_peak_rss()
    cat = Catalog(os.path.join(p["wd"], "cat")).init()
    dur = probe(p["path"]).duration
    t0 = time.perf_counter()
    s = run_batch(cat.root, name, {}, [MediaRef("target", p["path"], duration=dur, transcript=TRANSCRIPT,
                                                has_audio=True, has_video=True)])
    wall = time.perf_counter() - t0
    peak = peak_rss_mib()
    stored = dir_bytes(cat.layout.feature_set(s.feature_set))
    return {"rss_warm_mib": rss_warm, "peak_load_mib": peak_before, "peak_mib": peak, "reset_ok": reset_ok,
            "wall_s": wall, "counts": s.counts, "stored_bytes": stored, "duration": dur}


#: Steps measured alone, each in its own process (allocator reuse between steps would hide memory).
STEPS = {"egemaps": ["load_audio", "process", "extract", "commit"], "logmel": ["extract", "commit"]}
STEP_LABELS = {"load_audio": "decode whole track (load_audio)",
               "process": "openSMILE functionals + LLD on the loaded array (EgemapsExtractor.process)",
               "extract": "extract() (decode + features)", "commit": "commit to the catalog (Zarr shard + Parquet)"}


def step_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: peak growth of one step of one extractor on one file, after warm-up (and its inputs made before)."""
    from emofuse.catalog.store import Catalog
    from emofuse.pipeline.batch import cached_extractor
    from emofuse.pipeline.decode import load_audio
    from emofuse.pipeline.registry import MediaRef
    from emofuse.pipeline.threads import limit_threads

    limit_threads(1)
    ex = cached_extractor(p["name"], {})
    ex.extract(MediaRef("warm", p["warm"], transcript=TRANSCRIPT))
    ref = MediaRef("target", p["path"], transcript=TRANSCRIPT, has_audio=True, has_video=True)
    step = p["step"]
    audio = load_audio(p["path"]) if step == "process" else None
    res = ex.extract(ref) if step == "commit" else None
    cat = Catalog(os.path.join(p["wd"], "cat")).init()
    reset_peak_rss()
    before = rss_mib()
    if step == "load_audio":
        out = load_audio(p["path"])
        extra = {"array_mib": out.nbytes / 2**20}
    elif step == "process":
        r = ex.process("target", audio)
        extra = {"input_mib": audio.nbytes / 2**20,
                 "outputs_mib": (r.sequence.times.nbytes + sum(x.nbytes for x in r.sequence.arrays.values())) / 2**20}
    elif step == "extract":
        r = ex.extract(ref)
        extra = {"outputs_mib": (r.sequence.times.nbytes + sum(x.nbytes for x in r.sequence.arrays.values())) / 2**20}
    else:
        cat.commit_task(ex.key, "t1", [res], sequence_attrs={"columns": []})
        extra = {}
    return {"growth_mib": peak_rss_mib() - before, "resident_after_mib": rss_mib() - before, **extra}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"mem": mem_child, "step": step_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.memory", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a 2-minute long video instead of 10 minutes")
    ap.add_argument("--long-s", type=float, default=None)
    ap.add_argument("--short-s", type=float, default=10.0)
    ap.add_argument("--faces-long-s", type=float, default=None,
                    help="length of the faces extractor's long video (default: the same as the others)")
    ap.add_argument("--steps-only", action="store_true", help="only the per-step breakdown on the long video")
    ap.add_argument("--workdir", default=None, help="reuse this work dir (and the videos already built there)")
    ap.add_argument("--parallel", type=int, default=2, help="children run at once (peak RSS is per process)")
    args = ap.parse_args(argv)
    long_s = args.long_s or (120.0 if args.small else 600.0)
    machine = Machine()
    print_header("memory: peak RSS of one worker, long vs short video", ["bench.memory", *argv], machine)
    clips = media_files(corpus(1))
    wd = args.workdir or workdir("memory")
    t0 = time.perf_counter()
    videos = {"short": make_video(clips, os.path.join(wd, f"short-{args.short_s:g}s.mp4"), args.short_s),
              "long": make_video(clips, os.path.join(wd, f"long-{long_s:g}s.mp4"), long_s)}
    faces_long_s = args.faces_long_s or long_s
    videos["faces-long"] = videos["long"] if faces_long_s == long_s else make_video(
        clips, os.path.join(wd, f"long-{faces_long_s:g}s.mp4"), faces_long_s)
    print(f"videos: {args.short_s:g} s ({os.path.getsize(videos['short']) / 1e6:.2f} MB) and {long_s:g} s "
          f"({os.path.getsize(videos['long']) / 1e6:.1f} MB), built in {time.perf_counter() - t0:.1f} s; "
          f"work dir {wd}", flush=True)

    jobs = [(name, which) for which in ("long", "short") for name in NAMES]
    jobs.sort(key=lambda j: (j[0] != "faces" or j[1] != "long"))  # the longest first
    if args.steps_only:
        jobs = []
    jobs += [(name, f"step:{st}") for name, steps in STEPS.items() for st in steps]

    def run(job: tuple[str, str]) -> tuple[tuple[str, str], dict[str, Any]]:
        name, which = job
        tag = f"{name}-{which.replace(':', '-')}"
        payload: dict[str, Any] = {"what": "mem", "name": name, "warm": clips[0], "wd": os.path.join(wd, tag)}
        if which.startswith("step:"):
            payload.update(what="step", step=which[5:], path=videos["long"])
        else:
            payload["path"] = videos["faces-long"] if (name, which) == ("faces", "long") else videos[which]
        res = run_child("bench.memory", payload, log=os.path.join(wd, f"{tag}.log"), env=child_env())
        print(f"  {tag}: " + (f"peak {res['peak_mib']:.0f} MiB, {res['wall_s']:.1f} s" if "peak_mib" in res
                              else f"growth {res['growth_mib']:.0f} MiB"), flush=True)
        return job, res

    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        results = dict(pool.map(run, jobs))

    if not args.steps_only:
        print_main_table(results, args.short_s)
    print(f"\n## where it goes on the {long_s:g} s video (each step alone in a fresh process after warm-up)\n")
    print("growth = peak during the step - RSS before it; resident after = what the step left allocated "
          "(freed memory the allocator keeps counts here too).\n")
    srows = []
    for name, steps in STEPS.items():
        for st in steps:
            r = results[(name, f"step:{st}")]
            srows.append({"extractor": name, "step": STEP_LABELS[st], "growth MiB": r["growth_mib"],
                          "resident after MiB": r["resident_after_mib"],
                          "its input MiB": r.get("input_mib", r.get("array_mib")),
                          "outputs in memory MiB": r.get("outputs_mib")})
    print(table(srows))
    audio_mib_min = SR * 4 * 60 / 2**20
    print(f"\nreference: 16 kHz mono float32 audio = {audio_mib_min:.2f} MiB per minute "
          f"({audio_mib_min * long_s / 60:.1f} MiB for {long_s:g} s)")
    print_footer(machine)
    return 0


def print_main_table(results: dict[tuple[str, str], dict[str, Any]], short_s: float) -> None:
    """The long-vs-short table per extractor."""
    rows = []
    for name in NAMES:
        s, lg = results[(name, "short")], results[(name, "long")]
        ds, dl = s["peak_mib"] - s["rss_warm_mib"], lg["peak_mib"] - lg["rss_warm_mib"]
        rows.append({"extractor": name, "RSS after warm-up MiB": lg["rss_warm_mib"],
                     "long video s": lg["duration"], f"peak {short_s:g} s MiB": s["peak_mib"],
                     "peak long MiB": lg["peak_mib"],
                     "peak long/short": ratio(lg["peak_mib"], s["peak_mib"]),
                     "growth short MiB": ds, "growth long MiB": dl,
                     "growth per min MiB": (dl - ds) / ((lg["duration"] - s["duration"]) / 60),
                     "stored long MiB": lg["stored_bytes"] / 2**20,
                     "long s": lg["wall_s"], "status": ",".join(lg["counts"])})
    print("\n## peak RSS of the process extracting one file (run_batch: decode, extract, commit)\n")
    print("growth = peak during the extraction - RSS after loading the models; per min = (growth long - growth "
          "short) / extra minutes (fixed costs that only appear on longer files count in it too: for the slope, "
          "compare two long lengths with --long-s).\n")
    print(table(rows))
    if not all(r.get("reset_ok", True) for r in results.values()):
        print("\nnote: the peak counter could not be reset here; peaks include model loading")


if __name__ == "__main__":
    raise SystemExit(main())
