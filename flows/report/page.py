"""The report page: summary, a sortable table of files, one section per video.

:func:`render` turns a :class:`~emofuse.flows.report.data.ReportData` and the thumbnail
names into one HTML document: no external file, font, script or style (see
:mod:`~emofuse.flows.report.assets`), plots as inline SVG (:mod:`~emofuse.flows.report.svg`),
thumbnails as ``thumbs/<name>.jpg`` beside it. The table's rows carry ``data-item`` and
each video's section ``id="item-<id>"``, so a reader (or a test) finds every file twice.

The summary section is :mod:`~emofuse.flows.report.summary`'s.

Example:
    >>> _sym_range([0.03, -0.3]), _sym_range([2.0]), _sym_range([])   # symmetric axes' bounds
    (0.4, 1.0, 0.05)
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from emofuse.flows.report import svg
from emofuse.flows.report.assets import CSS, JS, READING, class_colors, csp, modality_colors
from emofuse.flows.report.data import ItemData, ReportData, merge_profiles
from emofuse.flows.report.summary import fmt_seconds, summary_section
from emofuse.flows.report.thumbs import FacePick

#: What a reader is told when the run was scored without attributions.
NO_ATTRIBUTIONS = ("Not computed for this run: score with <code>--explain</code> "
                   "(<code>emofuse score-archive DIR --run {run} --explain</code>) and run "
                   "<code>emofuse report --run {run}</code> again to see which modality and which moments "
                   "the prediction rests on.")
#: Targets of time profiles that are not classes.
DIMENSIONS = {"valence", "arousal"}
KIND_TEXT = {"attention": "the model's attention over its face steps",
             "occlusion": "how much the prediction drops when this time range is masked"}


def _num(v: Any, fmt: str = "{:.2f}") -> tuple[str, str]:
    """(data-v, text) of a number cell; missing values sort last and show as a dash."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v):
        return "", "–"
    return f"{float(v):.6g}", fmt.format(float(v))


class Page:
    """Builds the document of one report (colors and CSS classes are fixed per run)."""

    def __init__(self, data: ReportData, thumbs: dict[str, list[tuple[FacePick, str]]]) -> None:
        self.d = data
        self.thumbs = thumbs
        self.classes = data.run.classes
        self.colors = class_colors(self.classes)
        self.cls = {c: f"k{i}" for i, c in enumerate(self.classes)}
        self.attr_names = [c[len("attr_"):] for c in data.attr_columns]
        self.attr_colors = modality_colors(self.attr_names)

    # -- document -----------------------------------------------------------------
    def render(self) -> str:
        d = self.d
        style = CSS + "\n" + "\n".join(f".{self.cls[c]}{{background:{col}}}" for c, col in zip(self.classes, self.colors))
        title = f"emofuse report · {d.run.model} · {d.run.run_id}"
        scored = [i for i in d.items if i.scored]
        parts = [
            "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{escape(csp(style, JS))}">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{style}</style></head><body>",
            "<header>", f"<h1>Emotions in {len(d.items)} file{'s' if len(d.items) != 1 else ''}</h1>",
            f'<p class="muted">{escape(d.run.model)} run <code>{escape(d.run.run_id)}</code> · predictions of '
            f'<code>{escape(d.fold)}</code>{self._window_text()} · catalog <code>{escape(d.catalog)}</code></p>',
            '<nav><a href="#summary">Summary</a><a href="#files">Files</a>'
            f'<a href="#videos">Videos ({len(scored)})</a><a href="#reading">How to read it</a></nav>',
            "</header><main>",
            summary_section(d), self.table(),
            '<section id="videos"><h2>Videos</h2>', self.legend(),
            *(self.section(i) for i in scored),
            "</section>", self.reading(), "</main>",
            f'<footer>Written by <code>emofuse report --run {escape(d.run.run_id)}</code> from the catalog alone; '
            "this folder opens offline and makes no request.</footer>",
            f"<script>{JS}</script></body></html>",
        ]
        return "\n".join(parts) + "\n"

    def _window_text(self) -> str:
        return f", time windows <code>{escape(self.d.window)}</code>" if self.d.window else ", whole clips only"

    def legend(self) -> str:
        if not self.classes:
            return ""
        return '<div class="legend">' + "".join(
            f'<span><span class="sw {self.cls[c]}"></span>{escape(c)}</span>' for c in self.classes) + "</div>"

    # -- table --------------------------------------------------------------------
    def table(self) -> str:
        d = self.d
        dims = d.run.dimensional
        heads = [("File", "text", ""), ("Duration (s)", "num", "num")]
        if self.classes:
            heads += [("Emotion", "text", ""), ("Confidence", "num", "num")]
        heads += [(t.capitalize(), "num", "num") for t in dims]
        if d.window:
            heads.append(("Windows", "num", "num"))
        heads += [(f"{n} attr.", "num", "num") for n in self.attr_names]
        heads.append(("Status", "text", ""))
        th = "".join(f'<th data-sort="{s}"{" class=num" if c else ""}'
                     f'{" aria-sort=ascending" if k == 0 else ""}>{escape(h)}</th>' for k, (h, s, c) in enumerate(heads))
        rows = [self._row(i) for i in d.items]
        return ('<section id="files"><h2>Files</h2>'
                '<input id="file-filter" type="search" placeholder="Filter by file name, emotion or status" '
                'aria-label="filter the files">'
                f'<div class="table-wrap"><table id="file-table"><thead><tr>{th}</tr></thead><tbody>'
                + "".join(rows) + "</tbody></table></div>"
                '<p class="note">Click a column to sort it (again to reverse). Confidence is the probability of '
                "the predicted emotion over the whole file; an attribution (attr.) is how much that probability "
                "drops when the modality is masked.</p></section>")

    def _row(self, i: ItemData) -> str:
        c = i.clip or {}
        cells = [f'<td data-v="{escape(i.relpath)}">'
                 + (f'<a href="#{i.anchor}">{escape(i.relpath)}</a>' if i.scored else escape(i.relpath))
                 + (f' <span class="muted">(+{len(i.paths) - 1} cop{"y" if len(i.paths) == 2 else "ies"})</span>'
                    if len(i.paths) > 1 else "")
                 + (f'<div class="note-line">{escape(i.message)}</div>' if i.message else "") + "</td>"]
        v, t = _num(i.duration, "{:.1f}")
        cells.append(f'<td class="num" data-v="{v}">{t}</td>')
        if self.classes:
            label = c.get("label")
            if label is not None and not pd.isna(label):
                sw = f'<span class="sw {self.cls[label]}"></span>' if label in self.cls else ""
                cells.append(f'<td data-v="{escape(str(label))}">{sw}{escape(str(label))}</td>')
            else:
                cells.append('<td data-v="">–</td>')
            v, t = _num(c.get("score"))
            cells.append(f'<td class="num" data-v="{v}">{t}</td>')
        for dim in self.d.run.dimensional:
            v, t = _num(c.get(dim))
            cells.append(f'<td class="num" data-v="{v}">{t}</td>')
        if self.d.window:
            cells.append(f'<td class="num" data-v="{len(i.windows)}">{len(i.windows) if i.scored else "–"}</td>')
        for col in self.d.attr_columns:
            v, t = _num(c.get(col), "{:+.2f}")
            cells.append(f'<td class="num" data-v="{v}">{t}</td>')
        ok = i.status == "ok"
        cells.append(f'<td data-v="{escape(i.status)}"><span class="status-{"ok" if ok else "bad"}">'
                     f"{escape(i.status)}</span></td>")
        return f'<tr data-item="{escape(i.item_id)}"{"" if ok else " class=bad"}>' + "".join(cells) + "</tr>"

    # -- one video ----------------------------------------------------------------
    def section(self, i: ItemData) -> str:
        c = i.clip or {}
        label = c.get("label")
        head = [f"{fmt_seconds(i.duration)}"]
        if label is not None and not pd.isna(label):
            sw = f'<span class="sw {self.cls[label]}"></span>' if label in self.cls else ""
            head.append(f"{sw}<b>{escape(str(label))}</b> ({float(c.get('score', np.nan)):.2f} over the whole file)")
        for dim in self.d.run.dimensional:
            if c.get(dim) is not None and pd.notna(c.get(dim)):
                head.append(f"{dim} {float(c[dim]):+.2f}")
        if i.message:
            head.append(escape(i.message))
        also = "".join(f"<br><code>{escape(p)}</code>" for p in i.paths)
        out = [f'<article class="item" id="{i.anchor}" data-item="{escape(i.item_id)}">',
               f"<h3>{escape(i.relpath)}</h3>", f'<p class="meta">{" · ".join(head)}</p>',
               f'<details><summary class="muted">path and id</summary><p class="meta">item <code>{i.item_id}</code>'
               f"{also}</p></details>"]
        out.append(self._emotions(i))
        out.append(self._attributions(i))
        out.append(self._faces(i))
        out.append("</article>")
        return "\n".join(out)

    def _series(self) -> tuple[list[str], list[str], list[str], tuple[float, float]]:
        """(columns, names, colors, y range) of what the emotion plot shows: class probabilities,
        else the dimensional predictions."""
        if self.classes:
            return [f"p_{c}" for c in self.classes], list(self.classes), self.colors, (0.0, 1.0)
        dims = self.d.run.dimensional
        return list(dims), list(dims), modality_colors(["text", "audio", "face"])[:len(dims)], (-1.0, 1.0)

    def _emotions(self, i: ItemData) -> str:
        cols, names, colors, yr = self._series()
        if len(i.windows):
            vals = i.windows.reindex(columns=cols).to_numpy(float)
            plot = svg.time_lines(i.windows["start"].to_numpy(), i.windows["end"].to_numpy(), vals, names, colors,
                                  duration=i.duration or 0.0, kind="emotions", y_range=yr, strip=bool(self.classes))
            title = "Emotion over time" if self.classes else "Valence and arousal over time"
            note = (f'<p class="note">{len(i.windows)} windows of {escape(str(self.d.window))}; the band on top is '
                    "the most probable emotion of each window. Hover a window for its numbers.</p>")
        else:
            vals = [float(i.clip.get(c, np.nan)) for c in cols] if i.clip else []
            plot = svg.bars(vals, names, colors, kind="emotions", x_range=yr)
            title = "Emotion over the whole file"
            note = ('<p class="note">Whole-file prediction only: score with <code>--window 4 --hop 2</code> '
                    "for emotion over time.</p>")
        return f"<h4>{title}</h4>" + (self.legend() if len(i.windows) and self.classes else "") + plot + note

    def _attributions(self, i: ItemData) -> str:
        out = ["<h4>What the prediction rests on</h4>"]
        cols = self.d.attr_columns
        c = i.clip or {}
        has_clip = any(pd.notna(c.get(col)) for col in cols)
        if not cols and not len(i.time_attr):
            out.append(f'<p class="note">{NO_ATTRIBUTIONS.format(run=escape(self.d.run.run_id))}</p>')
            return "".join(out)
        if has_clip:
            vals = [float(c.get(col, np.nan)) if pd.notna(c.get(col)) else np.nan for col in cols]
            m = _sym_range(vals)
            out.append('<p class="meta">Whole file: how much the predicted emotion\'s probability drops when each '
                       "modality is masked (absent: the file lacks it).</p>")
            out.append(svg.bars(vals, self.attr_names, self.attr_colors, kind="modality-attribution",
                                x_range=(-m, m), fmt="{:+.2f}"))
        if cols and len(i.windows) and i.windows.reindex(columns=cols).notna().to_numpy().any():
            vals = i.windows.reindex(columns=cols).to_numpy(float)
            m = _sym_range(vals.ravel())
            out.append('<p class="meta">Per window:</p>' + _legend(self.attr_names, self.attr_colors))
            out.append(svg.time_lines(i.windows["start"].to_numpy(), i.windows["end"].to_numpy(), vals,
                                      self.attr_names, self.attr_colors, duration=i.duration or 1.0,
                                      kind="modality-attribution-time", y_range=(-m, m), height=130, fmt="{:+.2f}"))
        strip = self._time_profile(i)
        if strip:
            out.append(strip)
        elif cols:
            out.append('<p class="note">No time attribution stored for this file.</p>')
        return "".join(out)

    def _time_profile(self, i: ItemData) -> str:
        """The time attribution profile as a heat strip: the whole-file profile of the predicted
        class when stored, else the windows' profiles (each scaled to its largest weight) averaged."""
        ta = i.time_attr
        if not len(ta):
            return ""
        label = (i.clip or {}).get("label")
        clip = ta[ta["window"] == "clip"]
        rows = clip if len(clip) else ta
        targets = set(rows["target"].dropna().astype(str))
        dims = sorted(targets & DIMENSIONS)
        target = ""
        if len(clip) and label in targets:  # the whole file's profile of its predicted class
            rows = rows[rows["target"] == label]
        elif dims:  # valence/arousal runs: one profile per dimension; show the first
            target = dims[0]
            rows = rows[rows["target"] == target]
        kind = str(rows["kind"].iloc[0])
        if len(clip):
            starts, ends, w = rows["start"].to_numpy(), rows["end"].to_numpy(), rows["weight"].to_numpy(float)
            how = "whole file"
        else:
            starts, ends, w = merge_profiles(rows)
            how = "windows averaged"
        strip = svg.heat_strip(starts, ends, w, duration=i.duration or float(np.max(ends)), label=kind)
        of = f", {target}" if target else ""
        return (f'<p class="meta">Over time ({escape(kind)}{of}, {how}): {escape(KIND_TEXT.get(kind, kind))}; '
                "darker = more weight.</p>" + strip)

    def _faces(self, i: ItemData) -> str:
        picks = self.thumbs.get(i.item_id, [])
        out = ["<h4>Main face per window</h4>" if len(i.windows) else "<h4>Main face</h4>"]
        if not picks:
            why = ("the file has no video" if not i.has_video else
                   "no face was found" if i.faces is not None else "no face was found or faces were not extracted")
            out.append(f'<p class="note">No thumbnail: {why}.</p>')
            return "".join(out)
        spans = list(zip(i.windows["start"], i.windows["end"])) if len(i.windows) else [(0.0, i.duration or 0.0)]
        top = i.windows.reindex(columns=[f"p_{c}" for c in self.classes]).to_numpy(float) if len(i.windows) else None
        figs = []
        for pick, name in picks:
            a, b = spans[pick.span]
            label = ""
            if top is not None and self.classes and np.isfinite(top[pick.span]).any():
                label = self.classes[int(np.nanargmax(top[pick.span]))]
            tip = f"{a:g}–{b:g} s" + (f": {label}" if label else "") + f" (frame at {pick.time:.2f} s)"
            sw = f'<span class="sw {self.cls[label]}"></span>' if label in self.cls else ""
            figs.append(f'<figure><img src="thumbs/{escape(name)}" alt="{escape(tip)}" title="{escape(tip)}" '
                        f'loading="lazy" width="64" height="64"><figcaption>{sw}{a:g}–{b:g} s</figcaption></figure>')
        n = len(spans)
        more = (f'<p class="note">{len(picks)} of {n} windows shown (evenly spread).</p>'
                if n > len(picks) and len(picks) >= 48 else "")
        return "".join(out) + '<div class="faces">' + "".join(figs) + "</div>" + more

    def reading(self) -> str:
        return READING


def _legend(names: Sequence[str], colors: Sequence[str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><svg class="sw" viewBox="0 0 10 10" width="10" height="10"><rect width="10" height="10" '
        f'fill="{c}"/></svg>{escape(n)}</span>' for n, c in zip(names, colors)) + "</div>"


#: Bounds of symmetric axes: their halves are round numbers too (the grid has lines at ±m/2).
SYM_BOUNDS = (0.05, 0.1, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)


def _sym_range(values: Iterable[float]) -> float:
    """The smallest of :data:`SYM_BOUNDS` that holds every |value| (1 beyond)."""
    v = np.abs(np.asarray(list(values), float))
    v = v[np.isfinite(v)]
    m = float(v.max()) if len(v) else 0.0
    return next((b for b in SYM_BOUNDS if b >= m - 1e-12), 1.0)


def render(data: ReportData, thumbs: dict[str, list[tuple[FacePick, str]]]) -> str:
    """The report's ``index.html`` (``thumbs``: item_id -> (pick, file name under ``thumbs/``))."""
    return Page(data, thumbs).render()


__all__ = ["NO_ATTRIBUTIONS", "Page", "fmt_seconds", "render"]
