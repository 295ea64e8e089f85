"""``emofuse compare`` and ``emofuse board``: read-only views of the catalog's ``results/`` table.

(``emofuse evaluate`` is a flow, :mod:`emofuse.flows.evaluate`, with options from its parameters.)
"""
from __future__ import annotations

import argparse
from collections.abc import Callable


def add_parsers(sub: argparse._SubParsersAction, catalog_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``compare`` and ``board`` subcommands."""
    p = sub.add_parser("compare", help="paired comparison of two runs on the same test items",
                       description="Paired bootstrap of each metric's difference (run b - run a) and McNemar's test "
                       "of accuracy, on the test items both runs scored (their own folds, or --corpus).")
    p.add_argument("run_a")
    p.add_argument("run_b")
    catalog_arg(p)
    p.add_argument("--corpus", default=None, help="compare on this corpus's items (default: the runs' own test folds)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default: 0)")
    p = sub.add_parser("board", help="write the results board: an offline HTML page of every run's results",
                       description="Write an offline HTML page: runs x metrics with 95 %% intervals, the cross-corpus "
                       "matrix and paired comparisons, with links to each run's report and plots.")
    catalog_arg(p)
    p.add_argument("--out", default=None, help="board folder (default: <catalog>/reports/board)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws of the comparisons (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default: 0)")


def p_text(p: float, n_boot: int) -> str:
    """A bootstrap p-value for people: ``<1/n_boot`` where no draw crossed zero.

    >>> p_text(0.0, 1000), p_text(0.0421, 1000)
    ('<0.001', '0.0421')
    """
    return f"<{1 / n_boot:.3g}" if p == 0 else f"{p:.3g}"


def cmd_compare(args: argparse.Namespace) -> int:
    from emofuse.catalog.layout import Layout
    from emofuse.fusion.evaluate import compare

    df = compare(Layout.at(args.catalog).root, args.run_a, args.run_b, corpus=args.corpus, n_boot=args.n_boot,
                 seed=args.seed)
    print(f"run a: {args.run_a}\nrun b: {args.run_b}\ntest items: {args.corpus or 'the runs’ own folds'}")
    print(f"{'metric':<10} {'a':>7} {'b':>7} {'b - a':>7}  {'95 % interval':<18} {'p':>7} {'McNemar p':>10}  items")
    for r in df.itertuples():
        mc = getattr(r, "mcnemar_p", float("nan"))
        mc_text = f"{mc:10.3g}" if mc == mc else f"{'':>10}"
        print(f"{r.metric:<10} {r.a:7.3f} {r.b:7.3f} {r.difference:+7.3f}  [{r.low:+.3f}, {r.high:+.3f}]   "
              f"{p_text(r.p_value, args.n_boot):>7} {mc_text}  {int(r.n_items)}")
    return 0


def cmd_board(args: argparse.Namespace) -> int:
    from emofuse.flows.report.board import build_board

    res = build_board(args.catalog, out=args.out, n_boot=args.n_boot, seed=args.seed)
    print(f"results board of {res.runs} runs, {res.evaluations} evaluations, {res.comparisons} comparisons: "
          f"{res.path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from emofuse.flows.evaluate import evaluate
    from emofuse.flows.params import COMMANDS

    kwargs = COMMANDS["evaluate"].kwargs(args)
    if not kwargs["matrix"] and not (kwargs["run_id"] and kwargs["corpus"]):
        print("emofuse evaluate: give --run RUN --corpus NAME, or --matrix", flush=True)
        return 2
    out = evaluate(**kwargs)
    print(out["summary"])
    print(out["markdown"])
    return 0


HANDLERS = {"compare": cmd_compare, "board": cmd_board, "evaluate": cmd_evaluate}

__all__ = ["HANDLERS", "add_parsers", "cmd_board", "cmd_compare", "cmd_evaluate"]
