"""The ``emofuse demo`` and ``emofuse demo-corpus`` commands: the embedded end-to-end demo, and demo
copies in the layout of any registered corpus with a demo generator."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

#: The corpus `emofuse demo` generates, serves and trains on.
DEMO_CORPUS = "ravdess"
#: The demo corpus's size: with 12 actors (192 clips) TACFN clearly beats face-only and audio-only (docs/benchmarks.md).
DEMO_ACTORS = 12
#: What the demo trains besides the deployments' TACFN and RCMA, to show what fusion adds.
DEMO_BASELINES = ("unimodal_audio", "unimodal_face")
#: The deployments the demo runs (all registered by the serve process it starts).
DEMO_DEPLOYMENTS = (f"extract/{DEMO_CORPUS}", "train/ravdess-tacfn", "train/ravdess-rcma", "score/catalog")



def demo_epochs(model: str) -> int:
    """Epoch cap of the demo's run of preset ``model``: its registered model's ``demo_epochs`` (early
    stopping may end the run sooner)."""
    from emofuse.fusion.models.registry import find_preset

    return find_preset(model)[0].demo_epochs


def add_demo_parser(sub: argparse._SubParsersAction, catalog_arg) -> None:  # noqa: ANN001 - argparse's helper
    p = sub.add_parser("demo", help=f"start the local stack, run extract/{DEMO_CORPUS} on a corpus "
                       "(demo corpus by default)")
    p.add_argument("--source", default=None, help=f"a {DEMO_CORPUS} root (default: generate the demo corpus)")
    catalog_arg(p)
    p.add_argument("--actors", type=int, default=DEMO_ACTORS,
                   help=f"actors in the generated demo corpus (default {DEMO_ACTORS}: enough held-out speakers for "
                        "fusion to beat both unimodal baselines)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=4200, help="Prefect server port on 127.0.0.1 (default 4200)")


def add_demo_corpus_parser(sub: argparse._SubParsersAction) -> None:
    """``demo-corpus``: ``--layout`` choices are the registered recipes with a demo generator."""
    from emofuse.catalog.corpora.registry import demo_layouts

    p = sub.add_parser("demo-corpus", help="generate a demo corpus in a real corpus's layout (TTS speech, real "
                       "face photos)")
    p.add_argument("out")
    p.add_argument("--layout", choices=demo_layouts(), default=DEMO_CORPUS,
                   help=f"whose folder layout, file names and annotation files to generate (default {DEMO_CORPUS}); "
                   "the options after --seed are RAVDESS's")
    p.add_argument("--actors", type=int, default=None,
                   help="actors in the corpus (sessions of two actors for iemocap; subjects for affwild2); "
                   "default: 2 for ravdess, the layout's own small default otherwise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ravdess-shape", action="store_true", default=None,
                   help="the real corpus's shape: 1280x720, 30 fps, 48 kHz AAC, 1 s of silence either side (speech clips "
                   "~3.7 s), speech and song, both intensities "
                   "and repetitions (60 speech + 44 song clips per actor, no song for actor 18; 24 actors: "
                   "1440 + 1012 clips); the options below override parts of it")
    p.add_argument("--size", type=_size, default=None, metavar="WxH", help="frame size (default 256x256)")
    p.add_argument("--fps", type=int, default=None, help="frame rate (default 25)")
    p.add_argument("--audio-rate", type=int, default=None, help="AAC sample rate in Hz (default 16000)")
    p.add_argument("--song", action=argparse.BooleanOptionalAction, default=None,
                   help="add song clips (01-02-*: six emotions) to the speech clips (default: no)")
    p.add_argument("--intensities", type=int, nargs="+", default=None, help="intensity codes (default: 1)")
    p.add_argument("--repetitions", type=int, nargs="+", default=None, help="repetition codes (default: 1)")


def _size(text: str) -> tuple[int, int]:
    from emofuse.catalog.corpora.demo.options import parse_size

    return parse_size(text)


def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from emofuse.catalog.corpora.registry import demo_layouts, get_corpus

    recipe = get_corpus(args.layout)
    given = {k: v for k, v in vars(args).items()  # the layout options given (each recipe says which it takes)
             if k not in ("cmd", "out", "layout", "actors", "seed") and v is not None}
    foreign = [f for f in given if f not in recipe.demo_options]
    if foreign:
        takes = [n for n in demo_layouts() if foreign[0] in get_corpus(n).demo_options]
        print(f"emofuse demo-corpus: --{foreign[0].replace('_', '-')} is not an option of --layout {args.layout} "
              f"(it is one of --layout {', '.join(takes)})", file=sys.stderr)
        return 2

    def progress(done: int, total: int, path: str) -> None:
        if total >= 100 and (done % 50 == 0 or done == total):
            print(f"  {done}/{total} clips", flush=True)

    try:
        paths = recipe.generate_demo(args.out, actors=args.actors, seed=args.seed, progress=progress, **given)
    except ValueError as e:  # too few --actors for the layout, a bad code, an odd frame size
        print(f"emofuse demo-corpus: {e}", file=sys.stderr)
        return 2
    print(f"{len(paths)} files under {os.path.abspath(args.out)} ({args.layout} layout)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's first command, after set-up: the whole embedded default, end to end."""
    from emofuse.catalog.corpora.registry import get_corpus
    from emofuse.catalog.layout import Layout, data_dir
    from emofuse.flows import local_server as ls
    from emofuse.flows.cli import _print_outputs
    from emofuse.flows.deployments import demo_corpus_dir

    t0 = time.perf_counter()
    catalog = Layout.at(args.catalog).root
    if args.source:
        source = os.path.abspath(args.source)
    else:
        source = demo_corpus_dir(DEMO_CORPUS)
        print(f"[1/7] demo corpus: {args.actors} actors -> {source}", flush=True)
        get_corpus(DEMO_CORPUS).generate_demo(source, actors=args.actors, seed=args.seed)
    stack = ls.LocalStack(Path(data_dir()) / "state", args.port)
    print(f"[2/7] Prefect server on {stack.api_url} (log: {stack.server_log})", flush=True)
    api = ls.start_server(stack, env=ls.server_env())
    ls.use_profile(api)
    print(f"[3/7] emofuse serve (log: {stack.serve_log})", flush=True)
    since = dt.datetime.now(dt.timezone.utc)  # deployments an earlier serve left in the database do not count
    ls.start_serve(stack, ["--source", source, "--catalog", catalog])
    ls.wait_for_deployment(DEMO_DEPLOYMENTS, api, since=since)
    env = ls.server_env(api)

    def run(deployment: str, *params: str) -> None:
        cmd = [ls.prefect_bin(), "deployment", "run", deployment, *[a for p in params for a in ("-p", p)], "--watch"]
        print(f"\n$ prefect deployment run {deployment} " + " ".join(f"-p {p}" for p in params), flush=True)
        if subprocess.run(cmd, env=env).returncode != 0:
            raise SystemExit(f"{deployment} failed; see the log above and {stack.serve_log}")

    print("[4/7] extract: eGeMAPS, faces, text, log-mel", flush=True)
    run(f"extract/{DEMO_CORPUS}")
    print("[5/7] train TACFN and RCMA (speaker-independent folds, early stopping on validation)", flush=True)
    run("train/ravdess-tacfn", f"epochs={demo_epochs('tacfn')}", "threads=1")
    # a compact RCMA (TCN widths 64/32/64 instead of 512/64/512) so the demo trains in minutes on a CPU
    run("train/ravdess-rcma", f"epochs={demo_epochs('rcma')}", "lr=0.001", "threads=1",
        'model_options={"channels": {"face": 64, "audio": 32, "text": 64}}')
    print("[6/7] the unimodal baselines, same folds, to see what fusion adds", flush=True)
    from emofuse.fusion import training_run

    for model in DEMO_BASELINES:
        res = training_run.train(catalog, model=model, epochs=demo_epochs(model), threads=1)
        print(f"  {model}: {res.run_id}", flush=True)
    print("[7/7] score the catalog with both fusion runs", flush=True)
    run("score/catalog", "model=tacfn")
    run("score/catalog", "model=rcma")
    print(f"\ndone in {time.perf_counter() - t0:.0f} s")
    _print_outputs(catalog)
    from emofuse.catalog.store import Catalog
    from emofuse.fusion.runs import comparison_markdown

    print("\nheld-out speakers (speaker-independent folds), fusion against each modality alone:")
    print(comparison_markdown(Catalog(catalog), ["tacfn", "rcma", *DEMO_BASELINES]))
    print(f"""
The server and the serve process keep running (UI: http://127.0.0.1:{args.port}). With the
virtualenv active (source .venv/bin/activate), run the deployments again or on your own data:
  prefect deployment run extract/{DEMO_CORPUS}
  prefect deployment run extract/{DEMO_CORPUS} -p source=/data/RAVDESS
  prefect deployment run score/archive -p source=/data/videos -p model=tacfn
Stop them with: emofuse stop""")
    return 0
