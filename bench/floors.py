"""Per extractor: time inside the flow against the bare library call on already-decoded input (the floor).

Three levels per extractor, all single-threaded (as a Dask worker runs them):

* flow: task wall seconds of the ``extract`` flow with one local worker (decode,
  extraction, catalog claim/commit, Prefect task), from the flow's record;
* extract(): ``get_extractor(name).extract(ref)`` in a plain process (decode +
  extraction, no catalog, no Prefect);
* floor: the library alone on input decoded beforehand: openSMILE
  ``process_signal`` (functionals + LLD) on the array, YuNet + dlib on the
  sampled RGB frames, MiniLM (tokenizer + model, mean pool) on the strings in
  the flow's batches of 8, torchaudio ``MelSpectrogram`` + log on the array.

Decode: the pipeline's decode (16 kHz mono float32; RGB frames at 5 fps) against
PyAV decoding every frame without resampling or conversion.

Usage: ``.venv/bin/python -m bench.floors [--small]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from bench._common import (Machine, child_env, child_main, corpus, media_files, print_footer, print_header, ratio,
                           run_child, table, workdir)

NAMES = ["egemaps", "faces", "text", "logmel"]
BATCH = 8  # items per flow task: the text model sees the same batches


def _timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def floor_child(p: dict[str, Any]) -> dict[str, Any]:
    """Child: extract() per extractor, pipeline and raw decode, and the bare library floors."""
    import av
    import opensmile
    import torch
    import torchaudio

    from emofuse.catalog.corpora.ravdess import STATEMENTS, parse_name
    from emofuse.pipeline import model_files
    from emofuse.pipeline.decode import iter_frames, load_audio
    from emofuse.pipeline.faces.detect import YuNetDetector
    from emofuse.pipeline.faces.embed import DlibEmbedder
    from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder
    from emofuse.pipeline.registry import MediaRef, get_extractor
    from emofuse.pipeline.text import default_model_dir, load_model
    from emofuse.pipeline.threads import limit_threads

    limit_threads(1)
    files: list[str] = p["files"]
    texts = [STATEMENTS[parse_name(os.path.basename(f))["statement"]] for f in files]
    refs = [MediaRef(item_id=f"i{k}", path=f, transcript=t) for k, (f, t) in enumerate(zip(files, texts))]
    out: dict[str, Any] = {"extract_s": {}, "floor_s": {}, "decode": {}, "first_s": {}}

    # 1. extract() per extractor (models loaded by a warm-up call on the first file, not timed)
    for name in NAMES:
        t0 = time.perf_counter()
        ex = get_extractor(name, {})
        ex.extract(refs[0])
        out["first_s"][name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if name == "text":  # the task batches text items; so does this
            for i in range(0, len(refs), BATCH):
                ex.extract_many(refs[i:i + BATCH])
        else:
            for r in refs:
                ex.extract(r)
        out["extract_s"][name] = time.perf_counter() - t0

    # 2. decode: the pipeline's against raw PyAV
    audio, t_audio = _timed(lambda: [load_audio(f) for f in files])
    frames, t_frames = _timed(lambda: [[rgb for _t, rgb in iter_frames(f, fps=5.0)] for f in files])

    def raw(kind: str) -> int:
        n = 0
        for f in files:
            with av.open(f) as c:
                s = c.streams.audio[0] if kind == "audio" else c.streams.video[0]
                s.thread_type = "AUTO"
                for _fr in c.decode(s):
                    n += 1
        return n

    n_audio_frames, t_raw_audio = _timed(raw, "audio")
    n_video_frames, t_raw_video = _timed(raw, "video")
    out["decode"] = {"audio_s": t_audio, "raw_audio_s": t_raw_audio, "frames_s": t_frames,
                     "raw_video_s": t_raw_video, "n_video_frames": n_video_frames,
                     "n_sampled_frames": sum(len(x) for x in frames), "n_audio_frames": n_audio_frames,
                     "audio_seconds": sum(a.size for a in audio) / 16000}

    # 3. floors on decoded input
    smile_f = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    smile_l = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    smile_f.process_signal(audio[0], 16000), smile_l.process_signal(audio[0], 16000)
    t0 = time.perf_counter()
    for a in audio:
        smile_f.process_signal(a, 16000)
        smile_l.process_signal(a, 16000)
    out["floor_s"]["egemaps"] = time.perf_counter() - t0
    eg = get_extractor("egemaps", {})
    t0 = time.perf_counter()
    for r, a in zip(refs, audio):
        eg.process(r.item_id, a)
    out["process_s_egemaps"] = time.perf_counter() - t0

    det = YuNetDetector(model_files.yunet_path())
    dl = model_files.dlib_model_paths()
    emb = DlibEmbedder(dl.shape_predictor_5, dl.face_recognition,  # the faces extractor's default backend
                       engine=DlibResNetEmbedder(dl.face_recognition, device="cpu", threads=1))

    def faces(fs: list[Any]) -> Any:
        chips = []
        for rgb in fs:
            d = det.detect(rgb)
            if len(d):
                chips += emb.align(rgb, d.largest(1))
        return emb.embed_crops(chips)

    faces(frames[0])
    t_det = t_align = t_embed = 0.0
    for fs in frames:
        chips = []
        for rgb in fs:
            a = time.perf_counter()
            d = det.detect(rgb)
            b = time.perf_counter()
            if len(d):
                chips += emb.align(rgb, d.largest(1))
            t_det += b - a
            t_align += time.perf_counter() - b
        a = time.perf_counter()
        emb.embed_crops(chips)
        t_embed += time.perf_counter() - a
    out["floor_s"]["faces"] = t_det + t_align + t_embed
    out["faces_parts"] = {"detect": t_det, "align": t_align, "embed": t_embed}

    tok, model = load_model(default_model_dir(), "cpu")

    def text_batch(batch: list[str]) -> Any:
        with torch.inference_mode():
            enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=1)

    text_batch(texts[:BATCH])
    t0 = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        text_batch(texts[i:i + BATCH])
    out["floor_s"]["text"] = time.perf_counter() - t0

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, win_length=400, hop_length=160,
                                               n_mels=64, power=2.0, center=True, norm=None, mel_scale="htk")
    with torch.inference_mode():
        torch.log(mel(torch.from_numpy(audio[0])) + 1e-6)
        t0 = time.perf_counter()
        for a in audio:
            torch.log(mel(torch.from_numpy(a)) + 1e-6).T.numpy()
        out["floor_s"]["logmel"] = time.perf_counter() - t0
    out["media_s"] = out["decode"]["audio_seconds"]
    out["n"] = len(files)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, {"floor": floor_child}):
        return 0
    ap = argparse.ArgumentParser(prog="bench.floors", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="1 actor (16 clips) instead of 2 (32 clips)")
    ap.add_argument("--actors", type=int, default=None)
    args = ap.parse_args(argv)
    actors = args.actors or (1 if args.small else 2)
    machine = Machine()
    print_header("floors: each extractor in the flow vs the bare library call", ["bench.floors", *argv], machine)
    src = corpus(actors)
    files = media_files(src)
    n = len(files)
    wd = workdir("floors")
    print(f"corpus: {src} ({n} clips); work dir {wd}", flush=True)
    env = child_env(os.path.join(wd, "prefect-home"))
    run_child("bench._flows", {"what": "noop", "n": 1, "workers": 1}, log=os.path.join(wd, "warmup.log"), env=env)
    flow = run_child("bench._flows", {"what": "extract", "source": src, "catalog": os.path.join(wd, "cat"),
                                      "feature_sets": NAMES, "workers": 1},
                     log=os.path.join(wd, "flow.log"), env=env)
    print(f"  flow (1 worker): {flow['wall_s']:.1f} s", flush=True)
    fl = run_child("bench.floors", {"what": "floor", "files": files}, log=os.path.join(wd, "floor.log"),
                   env=child_env())
    print(f"  floors child: {fl['process_s']:.1f} s\n", flush=True)

    d = fl["decode"]
    rows = []
    for name in NAMES:
        task_s = flow["sets"][name]["task_wall_s"]
        ext_s = fl["extract_s"][name]
        floor_s = fl["floor_s"][name]
        decode_s = {"egemaps": d["audio_s"], "logmel": d["audio_s"], "faces": d["frames_s"], "text": 0.0}[name]
        rows.append({"extractor": name, "flow task s": task_s, "first call s (load)": fl["first_s"][name],
                     "extract() s": ext_s, "decode s": decode_s,
                     "floor s": floor_s, "floor ms/clip": 1000 * floor_s / n,
                     "flow/floor": ratio(task_s, floor_s), "flow/extract()": ratio(task_s, ext_s),
                     "extract()/(decode+floor)": ratio(ext_s, decode_s + floor_s)})
    tot_task = sum(flow["sets"][k]["task_wall_s"] for k in NAMES)
    tot_floor = sum(fl["floor_s"].values())
    rows.append({"extractor": "all four", "flow task s": tot_task, "extract() s": sum(fl["extract_s"].values()),
                 "floor s": tot_floor, "floor ms/clip": 1000 * tot_floor / n, "flow/floor": ratio(tot_task, tot_floor),
                 "flow/extract()": ratio(tot_task, sum(fl["extract_s"].values()))})
    print(f"## per extractor ({n} clips, {fl['media_s']:.1f} s of media; single thread)\n")
    print("flow task s: sum of the flow's task wall seconds (1 worker); first call: building the extractor and "
          "its first extract() (model load, not in extract() s); extract() s: all clips after that; ")
    print("decode s: the pipeline's decode that extractor needs (audio for egemaps/logmel, 5 fps frames for "
          "faces; measured once, it appears in both audio rows).\n")
    print(table(rows))
    fp = fl["faces_parts"]
    print(f"\nfaces floor split: detect (YuNet) {fp['detect']:.2f} s, align (dlib 5-point + chip) {fp['align']:.2f} s, "
          f"embed (dlib ResNet) {fp['embed']:.2f} s for {d['n_sampled_frames']} frames "
          f"({1000 * fl['floor_s']['faces'] / max(d['n_sampled_frames'], 1):.0f} ms/frame)")
    print(f"egemaps: EgemapsExtractor.process on the array {fl['process_s_egemaps']:.2f} s vs openSMILE alone "
          f"{fl['floor_s']['egemaps']:.2f} s")
    print(f"whole flow wall {flow['wall_s']:.1f} s (body {flow['inner_s']:.1f} s) vs sum of floors {tot_floor:.1f} s: "
          f"{ratio(flow['wall_s'], tot_floor):.2f}x")

    print("\n## decode: pipeline vs raw PyAV\n")
    drows = [
        {"stream": "audio", "pipeline s": d["audio_s"], "what the pipeline does": "decode + resample to 16 kHz mono float32",
         "raw PyAV s": d["raw_audio_s"], "raw: what": f"decode {d['n_audio_frames']} AAC frames, no conversion",
         "pipeline/raw": ratio(d["audio_s"], d["raw_audio_s"]),
         "media s per s (pipeline)": ratio(d["audio_seconds"], d["audio_s"])},
        {"stream": "video", "pipeline s": d["frames_s"],
         "what the pipeline does": f"decode all, convert {d['n_sampled_frames']} sampled (5 fps) to RGB",
         "raw PyAV s": d["raw_video_s"], "raw: what": f"decode {d['n_video_frames']} frames, no conversion",
         "pipeline/raw": ratio(d["frames_s"], d["raw_video_s"]),
         "media s per s (pipeline)": ratio(d["audio_seconds"], d["frames_s"])},
    ]
    print(table(drows))
    print(f"\nraw video decode: {d['n_video_frames'] / max(d['raw_video_s'], 1e-9):.0f} frames/s")
    print_footer(machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
