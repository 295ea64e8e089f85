"""Plots of the report as hand-written inline SVG: no plotting library, no script, no request.

Every plot is a string of SVG markup that the page embeds as is, so the report draws the
same in any browser, offline, with no script. Writing the markup directly takes 2-4 ms
per figure; matplotlib's SVG backend takes 10 to 15 times as long for the same lines, in
as many bytes (``bench/report.py``), which for the two or three figures of each of 400
files is the difference between a few seconds and most of the minute the report may take. Every drawn
element of the data carries the class ``mark``; a plot is an
``<svg class="plot" data-plot=KIND>``, so a check can count what a browser drew.

* :func:`time_lines`: one line per series over time (class probabilities of each window,
  modality attributions), with an optional strip of the dominant series per window and a
  transparent hover target per window whose tooltip lists its largest values;
* :func:`bars`: one horizontal bar per value (clip-level probabilities or attributions),
  diverging from zero when values can be negative;
* :func:`heat_strip`: a weight per time step (time attributions) as a strip of shaded cells.

Example:
    >>> import numpy as np
    >>> svg = time_lines(np.array([0.0, 1.0, 2.0]), np.array([2.0, 3.0, 4.0]),
    ...                  np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]]), ["happy", "sad"],
    ...                  ["#e6a700", "#1f5fb4"], duration=4.0, kind="probabilities", strip=True)
    >>> svg.startswith('<svg class="plot" data-plot="probabilities"'), svg.count('class="mark line"')
    (True, 2)
    >>> bars([0.7, 0.3], ["happy", "sad"], ["#e6a700", "#1f5fb4"], kind="probabilities").count('class="mark bar"')
    2
    >>> heat_strip(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([0.2, -0.5]), duration=2.0).count('class="mark cell')
    2
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

#: Plot geometry in CSS pixels (the SVGs scale to the page width through their viewBox).
WIDTH, LEFT, RIGHT, TOP, BOTTOM = 720, 44, 10, 8, 22
#: At most this many points per line: longer series are averaged in bins first.
MAX_POINTS = 600
#: A window's tooltip lists its largest values, at most this many.
TIP_TOP = 3


def _f(x: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0``."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


#: Tick steps (s) of axes of two minutes or more, labelled m:ss.
CLOCK_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def nice_step(span: float, max_ticks: int = 8) -> float:
    """A round tick step that puts at most ``max_ticks`` ticks on ``span`` seconds: 1, 2, 5 × 10^k,
    or from two minutes on a clock step (30 s, 1 min, 5 min, …).

    >>> nice_step(10.0), nice_step(2.4), nice_step(182.0), nice_step(3600.0)
    (2.0, 0.5, 30.0, 600.0)
    """
    if not span > 0:
        return 1.0
    raw = span / max_ticks
    if span >= 120:
        return float(next((s for s in CLOCK_STEPS if s >= raw), CLOCK_STEPS[-1] * math.ceil(raw / CLOCK_STEPS[-1])))
    mag = 10 ** math.floor(math.log10(raw))
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


def _tick(v: float, clock: bool) -> str:
    """A tick label: seconds, or m:ss on axes of two minutes or more."""
    return f"{int(v // 60)}:{int(round(v % 60)):02d}" if clock else f"{v:g}"


def _open(kind: str, height: int, label: str) -> str:
    return (f'<svg class="plot" data-plot="{kind}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">')


def _x_axis(duration: float, x0: float, x1: float, y: float) -> list[str]:
    """Tick marks and labels in seconds along ``y``."""
    out = [f'<line class="axis" x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x1)}" y2="{_f(y)}"/>']
    step = nice_step(duration)
    clock = duration >= 120
    for k in range(int(duration / step + 1e-9) + 1):
        v = k * step
        x = x0 + (x1 - x0) * v / duration
        out.append(f'<line class="tick" x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x)}" y2="{_f(y + 4)}"/>'
                   f'<text class="tl" x="{_f(x)}" y="{_f(y + 15)}" text-anchor="middle">{_tick(v, clock)}</text>')
    if x1 - (x0 + (x1 - x0) * int(duration / step + 1e-9) * step / duration) > 24:  # room for the unit
        out.append(f'<text class="tl" x="{_f(x1)}" y="{_f(y + 15)}" text-anchor="end">{"min" if clock else "s"}</text>')
    return out


def _binned(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and the rows of ``y`` averaged in ``n`` consecutive bins (for very long series)."""
    edges = np.linspace(0, len(x), n + 1).astype(int)
    xs = np.array([x[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    ys = np.stack([y[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])
    return xs, ys


def time_lines(starts: np.ndarray, ends: np.ndarray, values: np.ndarray, names: Sequence[str],
               colors: Sequence[str], *, duration: float, kind: str, y_range: tuple[float, float] = (0.0, 1.0),
               strip: bool = False, height: int = 170, fmt: str = "{:.2f}") -> str:
    """Lines of ``values[:, j]`` (one per series ``names[j]``) at the middle of each window.

    ``strip``: a band above the plot colored by the largest series of each window;
    ``y_range``: the value axis (a zero line is drawn when it spans zero). One window is
    drawn as flat lines over its span. Each window has a hover target whose tooltip lists
    its values with ``fmt``.
    """
    starts, ends = np.asarray(starts, float), np.asarray(ends, float)
    values = np.asarray(values, float).reshape(len(starts), len(names))
    duration = float(max(duration, float(ends.max()) if len(ends) else 0.0, 1e-3))
    x0, x1 = LEFT, WIDTH - RIGHT
    band = 12 if strip else 0
    y0, y1 = TOP + band, height - BOTTOM
    lo, hi = y_range

    def sx(t: np.ndarray | float) -> np.ndarray | float:
        return x0 + (x1 - x0) * np.asarray(t) / duration

    def sy(v: np.ndarray | float) -> np.ndarray | float:
        return y1 - (y1 - y0) * (np.clip(np.asarray(v), lo, hi) - lo) / (hi - lo)

    out = [_open(kind, height, f"{kind} over time")]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = lo + (hi - lo) * frac
        y = sy(v)
        out.append(f'<line class="grid{" zero" if abs(v) < 1e-12 and lo < 0 else ""}" x1="{x0}" y1="{_f(y)}" '
                   f'x2="{x1}" y2="{_f(y)}"/><text class="tl" x="{x0 - 4}" y="{_f(y + 4)}" '
                   f'text-anchor="end">{v:g}</text>')
    out += _x_axis(duration, x0, x1, y1)
    mids = (starts + ends) / 2
    xs, ys = (np.array([starts[0], ends[0]]), np.repeat(values, 2, axis=0)) if len(starts) == 1 else (mids, values)
    finite = np.isfinite(ys)
    if len(xs) > MAX_POINTS:
        xs, ys = _binned(xs, np.where(finite, ys, np.nan), MAX_POINTS)
        finite = np.isfinite(ys)
    if strip and len(starts):
        bounds = np.concatenate([[starts[0]], (mids[:-1] + mids[1:]) / 2, [ends[-1]]])
        top = np.nan_to_num(values, nan=-np.inf).argmax(axis=1)
        k = 0
        while k < len(top):  # one rect per run of windows with the same dominant series
            j = k
            while j + 1 < len(top) and top[j + 1] == top[k]:
                j += 1
            a, b = sx(bounds[k]), sx(bounds[j + 1])
            out.append(f'<rect class="mark dominant" x="{_f(a)}" y="{TOP}" width="{_f(max(b - a, 0.5))}" '
                       f'height="{band - 5}" fill="{colors[top[k]]}"><title>{escape(names[top[k]])}</title></rect>')
            k = j + 1
    for j, (name, color) in enumerate(zip(names, colors)):
        ok = finite[:, j]
        if not ok.any():
            continue
        px, py = sx(xs[ok]), sy(ys[ok, j])
        d = "M" + " L".join(f"{_f(a)},{_f(b)}" for a, b in zip(px, py))
        if ok.sum() == 1:  # a lone point: a short tick so it shows
            d += " l0.01,0"
        out.append(f'<path class="mark line" d="{d}" stroke="{color}"><title>{escape(name)}</title></path>')
    if len(starts) <= MAX_POINTS:
        edges = np.concatenate([[starts[0]], (mids[:-1] + mids[1:]) / 2, [ends[-1]]]) if len(starts) else []
        for i in range(len(starts)):
            a, b = sx(edges[i]), sx(edges[i + 1])
            order = [j for j in np.argsort(-np.nan_to_num(values[i], nan=-np.inf))[:TIP_TOP] if np.isfinite(values[i][j])]
            tip = ", ".join(f"{names[j]} {fmt.format(values[i][j])}" for j in order)
            out.append(f'<rect class="hover" x="{_f(a)}" y="{y0}" width="{_f(max(b - a, 0.5))}" '
                       f'height="{y1 - y0}"><title>{starts[i]:g}–{ends[i]:g} s: {escape(tip)}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def bars(values: Sequence[float], names: Sequence[str], colors: Sequence[str], *, kind: str,
         x_range: tuple[float, float] = (0.0, 1.0), fmt: str = "{:.2f}", row: int = 18) -> str:
    """One horizontal bar per value, labelled with its name and value; from 0 (or diverging from it)."""
    vals = np.asarray(values, float)
    lo, hi = x_range
    label_w, x0, x1 = 110, 110, WIDTH - 60
    height = TOP + row * len(vals) + 6

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (min(max(v, lo), hi) - lo) / (hi - lo)

    zero = sx(0.0)
    out = [_open(kind, height, kind)]
    out.append(f'<line class="axis" x1="{_f(zero)}" y1="{TOP - 2}" x2="{_f(zero)}" y2="{height - 4}"/>')
    for i, (v, name, color) in enumerate(zip(vals, names, colors)):
        y = TOP + i * row
        out.append(f'<text class="bl" x="{label_w - 6}" y="{y + row * 0.65:.1f}" text-anchor="end">'
                   f'{escape(name)}</text>')
        if not np.isfinite(v):
            out.append(f'<text class="tl" x="{_f(zero + 4)}" y="{y + row * 0.65:.1f}">absent</text>')
            continue
        a, b = sorted((zero, sx(v)))
        out.append(f'<rect class="mark bar" x="{_f(a)}" y="{y + 3}" width="{_f(max(b - a, 1.0))}" '
                   f'height="{row - 6}" fill="{color}"><title>{escape(name)} {fmt.format(v)}</title></rect>'
                   f'<text class="tl" x="{_f(b + 4)}" y="{y + row * 0.65:.1f}">{fmt.format(v)}</text>')
    out.append("</svg>")
    return "".join(out)


def heat_strip(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray, *, duration: float,
               kind: str = "time-attribution", label: str = "weight", height: int = 40) -> str:
    """Cells over time shaded by ``weights``: the darkest is the largest; with negative weights
    (blue) shading is |weight| from zero, else it spans the smallest to the largest weight."""
    starts, ends, w = (np.asarray(a, float) for a in (starts, ends, weights))
    duration = float(max(duration, float(ends.max()) if len(ends) else 0.0, 1e-3))
    x0, x1 = LEFT, WIDTH - RIGHT
    y0, y1 = 4, height - BOTTOM
    fin = w[np.isfinite(w)]
    signed = bool(len(fin)) and float(fin.min()) < 0
    # signed weights (occlusion): |w| against the largest; positive ones (attention, which sums to 1
    # and is rarely far from uniform): the range from the smallest to the largest, so contrast shows
    lo = 0.0 if signed or not len(fin) else float(fin.min())
    scale = float(np.abs(fin).max()) - lo if len(fin) else 0.0
    out = [_open(kind, height, f"{label} over time")]
    out.append(f'<rect class="frame" x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}"/>')
    for a, b, v in zip(starts, ends, w):
        if not np.isfinite(v):
            continue
        xa = x0 + (x1 - x0) * a / duration
        xb = x0 + (x1 - x0) * b / duration
        op = 0.08 + 0.92 * (abs(v) - lo) / scale if scale > 0 else 0.5
        out.append(f'<rect class="mark cell {"neg" if v < 0 else "pos"}" x="{_f(xa)}" y="{y0}" '
                   f'width="{_f(max(xb - xa, 0.5))}" height="{y1 - y0}" fill-opacity="{op:.2f}">'
                   f'<title>{a:g}–{b:g} s: {escape(label)} {v:.3g}</title></rect>')
    out += _x_axis(duration, x0, x1, y1)
    out.append("</svg>")
    return "".join(out)


__all__ = ["bars", "heat_strip", "nice_step", "time_lines"]
