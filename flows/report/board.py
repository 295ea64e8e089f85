"""The results board: one offline HTML page over a catalog's ``results/`` table.

:func:`build_board` writes ``<catalog>/reports/board/index.html``: every run with its pooled test
metrics and their 95 % bootstrap intervals (a sortable table and an interval plot), the
train-corpus x test-corpus matrix of cross-corpus evaluations, and paired comparisons of runs
scored on the same test items (paired bootstrap of the accuracy difference and McNemar's test,
significance at 5 % marked), with links to each run's report and plots. It reuses the report's
style, script and content security policy (:mod:`~emofuse.flows.report.assets`): no file,
font or script from elsewhere, every name escaped, so the page makes no request.

Example:
    >>> interval_text(0.5, 0.4, 0.61)
    '0.500 [0.400, 0.610]'
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from html import escape

import pandas as pd

from emofuse.catalog.layout import Layout
from emofuse.catalog.store import Catalog
from emofuse.flows.evaluate_cmd import p_text
from emofuse.flows.report.assets import CSS, JS, csp

#: Metrics shown as columns, in this order, when the results hold them.
METRICS = ("accuracy", "uar", "macro_f1", "ccc_valence", "ccc_arousal")
#: Significance level that marks a comparison.
ALPHA = 0.05
BOARD_CSS = """
.sig{color:#c92a2a;font-weight:700}
td.cell{white-space:nowrap}
svg.ci .dot{fill:#1864ab}
svg.ci .bar{stroke:#1864ab;stroke-width:2}
""".strip()


def interval_text(value: float, low: float, high: float) -> str:
    """``value [low, high]`` with three decimals ('–' for a missing value)."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


@dataclass
class BoardResult:
    """Where the board was written and what it shows."""

    path: str
    runs: int
    evaluations: int
    comparisons: int


def _rel(out_dir: str, target: str) -> str | None:
    """A link from the board's folder to a local file, or None when it does not exist."""
    if "://" in target or not os.path.exists(target):
        return None
    return os.path.relpath(target, out_dir).replace(os.sep, "/")


def _cell(df: pd.DataFrame, metric: str) -> str:
    row = df[df["metric"] == metric]
    if not len(row):
        return '<td class="num cell" data-v="">–</td>'
    r = row.iloc[0]
    return f'<td class="num cell" data-v="{r.value:.6f}">{escape(interval_text(r.value, r.low, r.high))}</td>'


def runs_table(cat: Catalog, res: pd.DataFrame, out_dir: str, metrics: list[str]) -> str:
    """Every run of the catalog: model, feature sets, train corpus, pooled metrics with intervals, links."""
    own = res[(res["kind"] == "train") & (res["fold"] == "pooled")]
    heads = "".join(f'<th class="num" data-sort="num">{escape(m)} (95 % CI)</th>' for m in metrics)
    rows = []
    for run in cat.runs():
        r = own[own["run"] == run]
        first = r.iloc[0] if len(r) else None
        links = []
        for text, target in (("report", os.path.join(cat.layout.reports, run, "index.html")),
                             ("confusion", os.path.join(cat.layout.run(run), "confusion_matrix.png")),
                             ("curves", os.path.join(cat.layout.run(run), "learning_curves.png"))):
            href = _rel(out_dir, target)
            if href:
                links.append(f'<a href="{escape(href)}">{text}</a>')
        cells = "".join(_cell(r, m) for m in metrics) if first is not None else \
            f'<td colspan="{len(metrics)}" class="muted">no results (unfinished run?)</td>'
        n = int(first.n_items) if first is not None else ""
        rows.append(f'<tr data-run="{escape(run)}"><td><code>{escape(run)}</code></td>'
                    f"<td>{escape(str(first.model)) if first is not None else ''}</td>"
                    f"<td>{escape(str(first.feature_sets)) if first is not None else ''}</td>"
                    f"<td>{escape(str(first.train_corpus)) if first is not None else ''}</td>"
                    f'<td class="num">{n}</td>{cells}<td>{" ".join(links)}</td></tr>')
    return ('<section id="runs"><h2>Runs</h2><p class="muted">Pooled test predictions of every fold; interval: '
            '95 % bootstrap over test items (whole videos for per-frame runs).</p><div class="table-wrap">'
            '<table id="file-table"><thead><tr><th data-sort="text">run</th><th data-sort="text">model</th>'
            '<th data-sort="text">feature sets</th><th data-sort="text">train corpus</th>'
            f'<th class="num" data-sort="num">test items</th>{heads}<th>links</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div></section>")


def interval_plot(res: pd.DataFrame, metric: str = "accuracy") -> str:
    """Inline SVG: one line per run (pooled ``metric``), the estimate as a dot, the interval as a bar."""
    own = res[(res["kind"] == "train") & (res["fold"] == "pooled") & (res["metric"] == metric)]
    if not len(own):
        return ""
    own = own.sort_values("value")
    w, left, h = 640, 250, 22
    height = h * len(own) + 30
    x = (lambda v: left + (w - left - 20) * min(max(v, 0.0), 1.0))
    parts = [f'<svg class="plot ci" viewBox="0 0 {w} {height}" role="img" aria-label="{escape(metric)} by run">']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="0" y2="{height - 20}"/>'
                     f'<text class="tl" x="{x(t):.1f}" y="{height - 6}" text-anchor="middle">{t:g}</text>')
    for i, r in enumerate(own.itertuples()):
        y = 14 + i * h
        parts.append(f'<text class="bl" x="{left - 8}" y="{y + 4}" text-anchor="end">{escape(str(r.run))[:40]}</text>')
        if math.isfinite(r.low) and math.isfinite(r.high):
            parts.append(f'<line class="bar" x1="{x(r.low):.1f}" x2="{x(r.high):.1f}" y1="{y}" y2="{y}"/>')
        parts.append(f'<circle class="dot" cx="{x(r.value):.1f}" cy="{y}" r="4"><title>'
                     f'{escape(interval_text(r.value, r.low, r.high))}</title></circle>')
    return "".join(parts) + "</svg>"


def matrix_table(res: pd.DataFrame, metric: str = "accuracy") -> str:
    """Rows: run (train corpus); columns: test corpora; cells: ``metric`` with its interval."""
    m = res[(res["metric"] == metric) & res["fold"].isin(["pooled", "ensemble"])]
    if not len(m):
        return '<section id="matrix"><h2>Cross-corpus matrix</h2><p class="muted">No results yet.</p></section>'
    tests = sorted(set(m["test_corpus"]))
    rows = []
    for (train, run), g in m.groupby(["train_corpus", "run"], sort=True):
        cells = []
        for t in tests:
            c = g[g["test_corpus"] == t]
            if len(c):
                r = c.iloc[0]
                left = f" · {int(r.n_left_out)} left out" if r.n_left_out else ""
                cells.append(f'<td class="num cell" data-test="{escape(t)}">'
                             f'{escape(interval_text(r.value, r.low, r.high))}'
                             f'<br><span class="muted">{int(r.n_items)} items{left}</span></td>')
            else:
                cells.append('<td class="muted">–</td>')
        rows.append(f'<tr data-run="{escape(run)}"><td>{escape(train)}</td><td><code>{escape(run)}</code></td>'
                    + "".join(cells) + "</tr>")
    return ('<section id="matrix"><h2>Cross-corpus matrix</h2>'
            f'<p class="muted">{escape(metric)} with its 95 % interval; the diagonal is the run\'s own folds (pooled), '
            'off it the fold ensemble on another corpus, scored on the shared classes (neutral, happy, sad, angry) '
            'through the corpus recipes\' class maps.</p>'
            '<table id="matrix-table"><thead><tr><th>train corpus</th><th>run</th>'
            + "".join(f"<th>test: {escape(t)}</th>" for t in tests) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def comparisons(root: str, res: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Paired accuracy comparisons of every two runs evaluated on the same corpus's items."""
    from emofuse.fusion.evaluate import compare

    acc = res[(res["metric"] == "accuracy") & res["fold"].isin(["pooled", "ensemble"])]
    out = []
    for test, g in acc.groupby("test_corpus"):
        for a, b in itertools.combinations(sorted(set(g["run"])), 2):
            kinds = set(g.loc[g["run"].isin([a, b]), "kind"])
            corpus = None if kinds == {"train"} else str(test)
            homes = [set(g.loc[g["run"] == r, "train_corpus"]) for r in (a, b)]
            if corpus is None and homes[0] != homes[1]:
                continue
            try:
                c = compare(root, a, b, corpus=corpus, n_boot=n_boot, seed=seed)
            except ValueError:
                continue  # no shared items
            row = c[c["metric"] == "accuracy"].iloc[0].to_dict()
            out.append({**row, "test_corpus": test})
    return pd.DataFrame(out)


def comparisons_table(comp: pd.DataFrame, n_boot: int) -> str:
    """One row per pair: accuracies, difference (b - a) with its interval, both p-values; significant marked."""
    if not len(comp):
        return ('<section id="comparisons"><h2>Paired comparisons</h2><p class="muted">No two runs share test '
                'items yet.</p></section>')
    rows = []
    for r in comp.itertuples():
        sig = r.mcnemar_p < ALPHA or r.p_value < ALPHA
        mark = '<span class="sig" title="significant at 5 %">✱</span>' if sig else ""
        rows.append(f'<tr data-a="{escape(r.run_a)}" data-b="{escape(r.run_b)}" data-significant="{int(sig)}">'
                    f"<td>{escape(str(r.test_corpus))}</td><td><code>{escape(r.run_a)}</code></td>"
                    f"<td><code>{escape(r.run_b)}</code></td><td class=\"num\">{r.a:.3f}</td>"
                    f'<td class="num">{r.b:.3f}</td>'
                    f'<td class="num cell">{escape(interval_text(r.difference, r.low, r.high))}</td>'
                    f'<td class="num">{escape(p_text(r.p_value, n_boot))}</td><td class="num">{r.mcnemar_p:.3g}</td>'
                    f'<td class="num">{int(r.n_items)}</td><td>{mark}</td></tr>')
    return ('<section id="comparisons"><h2>Paired comparisons</h2><p class="muted">Accuracy of run b minus run a '
            'on the same test items: paired bootstrap interval and p-value, and McNemar\'s exact test; '
            f'✱ marks p &lt; {ALPHA:g}.</p><table id="comparison-table"><thead><tr><th>test corpus</th><th>run a</th>'
            '<th>run b</th><th class="num">acc a</th><th class="num">acc b</th>'
            '<th class="num">b - a (95 % CI)</th><th class="num">bootstrap p</th><th class="num">McNemar p</th>'
            '<th class="num">items</th><th></th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></section>")


def render_board(cat: Catalog, res: pd.DataFrame, comp: pd.DataFrame, out_dir: str, n_boot: int = 1000) -> str:
    """The board's HTML document."""
    metrics = [m for m in METRICS if m in set(res["metric"])] or ["accuracy"]
    style = CSS + "\n" + BOARD_CSS
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp(style, JS))}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>emofuse results board · {escape(cat.root)}</title><style>{style}</style></head><body>",
        f'<header><h1>Results board</h1><p class="muted">catalog <code>{escape(cat.root)}</code> · '
        f"{len(cat.runs())} runs · {res['evaluation'].nunique()} evaluations</p>"
        '<nav><a href="#runs">Runs</a><a href="#matrix">Cross-corpus</a><a href="#comparisons">Comparisons</a></nav>'
        "</header><main>",
        runs_table(cat, res, out_dir, metrics), interval_plot(res), matrix_table(res), comparisons_table(comp, n_boot),
        "</main><footer>Written by <code>emofuse board</code> from the catalog's <code>results/</code> table; "
        "this page opens offline and makes no request.</footer>",
        f"<script>{JS}</script></body></html>"]) + "\n"


def build_board(catalog: str | os.PathLike[str] | None, *, out: str | None = None, n_boot: int = 1000,
                seed: int = 0) -> BoardResult:
    """Write the board (default ``<catalog>/reports/board/index.html``); return where and what."""
    from emofuse.catalog import atomic

    layout = Layout.at(catalog)
    cat = Catalog(layout.root)
    out_dir = out or os.path.join(layout.reports, "board")
    res = cat.results()
    comp = comparisons(cat.root, res, n_boot=n_boot, seed=seed)
    path = os.path.join(out_dir, "index.html")
    atomic.write_bytes(path, render_board(cat, res, comp, out_dir, n_boot).encode())
    return BoardResult(path, len(cat.runs()), int(res["evaluation"].nunique()), len(comp))


__all__ = ["BoardResult", "build_board", "comparisons", "interval_text", "matrix_table", "render_board", "runs_table"]
