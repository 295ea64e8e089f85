"""The report's summary section: what was scored, what was not and why, how fast, by which run.

:func:`summary_section` turns a :class:`~emofuse.flows.report.data.ReportData` into the page's
``<section id="summary">`` (:mod:`~emofuse.flows.report.page` puts it first); :func:`fmt_seconds`
writes the durations there and in each video's section.

Example:
    >>> fmt_seconds(3.456), fmt_seconds(75.0), fmt_seconds(4000.0), fmt_seconds(None)
    ('3.5 s', '1 min 15 s', '1 h 7 min', '–')
"""
from __future__ import annotations

from html import escape

import numpy as np

from emofuse.flows.report.data import ReportData


def fmt_seconds(s: float | None) -> str:
    """A duration for people: seconds with one decimal, then minutes, then hours (rounded before
    it is split, so 119.6 s is "2 min 0 s", never "1 min 60 s")."""
    if s is None or not np.isfinite(s):
        return "–"
    if s < 59.95:
        return f"{s:.1f} s"
    if (whole := int(round(s))) < 3600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = int(round(s / 60))
    return f"{minutes // 60} h {minutes % 60} min"


def summary_section(d: ReportData) -> str:
    """The summary section: cards, statuses per step, files without predictions or with a modality
    missing, throughput and the run's facts."""
    counts = d.status_counts()
    scored = [i for i in d.items if i.scored]
    masked = [i for i in scored if i.message]
    media_s = sum(i.duration or 0.0 for i in scored)
    n_windows = sum(len(i.windows) for i in scored)
    cards = [(len(d.items), "files"), *([(d.n_files, "paths (a copy counts once)")] if d.n_files > len(d.items) else []),
             (len(scored), "scored"),
             (len(masked), "scored with a modality missing"), (len(d.items) - len(scored), "without predictions"),
             (fmt_seconds(media_s), "of media scored")]
    if d.window:
        cards.append((n_windows, f"time windows ({d.window})"))
    out = ['<section id="summary"><h2>Summary</h2><div class="cards">']
    out += [f'<div class="card"><b>{escape(str(v))}</b><span>{escape(t)}</span></div>' for v, t in cards]
    out.append("</div>")
    out.append(_statuses(d, counts))
    bad = [i for i in d.items if not i.scored]
    if bad:
        out.append(f"<h4>Files without predictions ({len(bad)})</h4><table><thead><tr><th>File</th>"
                   "<th>Status</th><th>Reason</th></tr></thead><tbody>")
        out += [f'<tr class="bad"><td>{escape(i.relpath)}</td><td>{escape(i.status)}</td>'
                f"<td>{escape(i.message)}</td></tr>" for i in bad]
        out.append("</tbody></table>")
    if masked:
        out.append(f"<h4>Scored with a modality missing ({len(masked)})</h4><table><thead><tr><th>File</th>"
                   "<th>Reason</th></tr></thead><tbody>")
        out += [f'<tr><td><a href="#{i.anchor}">{escape(i.relpath)}</a></td><td>{escape(i.message)}</td></tr>'
                for i in masked]
        out.append("</tbody></table>")
    out.append(_throughput(d))
    out.append(_run_facts(d))
    out.append("</section>")
    return "\n".join(out)


def _statuses(d: ReportData, score_counts: dict[str, int]) -> str:
    """Statuses per item of each feature set's extraction and of the scoring, one column per status."""
    rows = [(f"{d.run.names.get(m, m)} ({m})", key, d.extraction.get(m, {}))
            for m, key in d.run.feature_sets.items()]
    rows.append(("scoring", f"score-{d.run.run_id}", score_counts))
    names = sorted({s for _, _, c in rows for s in c}, key=lambda s: (s != "ok", s))
    head = "".join(f'<th class="num">{escape(s)}</th>' for s in names)
    body = "".join(
        f"<tr><td>{escape(label)}</td><td><code>{escape(key)}</code></td>"
        + "".join(f'<td class="num">{c.get(s, 0) or ""}</td>' for s in names) + "</tr>"
        for label, key, c in rows)
    return (f"<h4>Statuses per item</h4><table><thead><tr><th>Step</th><th>Feature set</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _throughput(d: ReportData) -> str:
    """The last extract runs of the run's feature sets and the span in which the files were scored."""
    out = ["<h4>Throughput</h4>"]
    if d.extract_runs:
        out.append('<table><thead><tr><th>Extract run</th><th>Source</th><th class="num">Items extracted</th>'
                   '<th class="num">Media s</th><th class="num">Wall s</th><th class="num">Media s per s</th>'
                   "</tr></thead><tbody>")
        for r in d.extract_runs[-10:]:
            sets = [r.feature_sets[k] for k in d.run.feature_sets.values() if k in r.feature_sets]
            attempted = max((fs.attempted for fs in sets), default=0)
            media = max((fs.media_seconds for fs in sets), default=0.0)
            rate = f"{media / r.wall_s:.1f}" if r.wall_s > 0 and media > 0 else "–"
            out.append(f"<tr><td><code>{escape(r.run_id)}</code></td><td>{escape(str(r.source or '–'))}</td>"
                       f'<td class="num">{attempted}</td><td class="num">{media:.1f}</td>'
                       f'<td class="num">{r.wall_s:.1f}</td><td class="num">{rate}</td></tr>')
        out.append("</tbody></table>")
        if len(d.extract_runs) > 10:
            out.append(f'<p class="note">The last 10 of {len(d.extract_runs)} extract runs.</p>')
    else:
        out.append('<p class="note">No extract run recorded for these feature sets.</p>')
    if d.scored_span is not None:
        a, b = d.scored_span
        n = sum(1 for i in d.items if i.scored)
        media = sum(i.duration or 0.0 for i in d.items if i.scored)
        span = (b - a).total_seconds()
        rate = f" ({n / span:.1f} files/s, {media / span:.0f} media s/s)" if span >= 1 else ""
        out.append(f"<p>Scored {n} files ({fmt_seconds(media)} of media) between "
                   f"{a:%Y-%m-%d %H:%M:%S} and {b:%H:%M:%S} UTC{rate}.</p>")
    return "".join(out)


def _run_facts(d: ReportData) -> str:
    """The run: model, id, when trained, classes, feature sets, held-out metrics."""
    r = d.run
    rows = [("model", r.model), ("run", r.run_id), ("trained", r.created[:19].replace("T", " ")),
            ("classes", ", ".join(r.classes) or "–"),
            ("feature sets", ", ".join(f"{m}: {k}" for m, k in r.feature_sets.items()))]
    if r.dimensional:
        rows.append(("dimensions", ", ".join(r.dimensional)))
    for name, m in r.metrics.items():
        if isinstance(m, dict) and "mean" in m:
            rows.append((f"held-out {name}", f"{m['mean']:.3f} ± {m.get('std', 0.0):.3f} over {m.get('n', '?')} folds"))
    return "<h4>Run</h4><dl class=\"kv\">" + "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows) + "</dl>"


__all__ = ["fmt_seconds", "summary_section"]
