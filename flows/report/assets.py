"""The report's stylesheet, its one script, its colors, and the Content-Security-Policy that pins them.

The page embeds both inline and allows nothing else: :func:`csp` lists the SHA-256 of the
exact style and script text, so a browser runs only these and loads nothing from any
network (images: local files and ``data:`` URLs only).

Example:
    >>> class_colors(["neutral", "happy", "joy", "boredom"])
    ['#868e96', '#f59f00', '#f59f00', '#1098ad']
    >>> csp("body{}", "1;").startswith("default-src 'none'; img-src 'self' file: data:; style-src 'sha256-")
    True
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

#: Colors of the usual emotion classes (and their synonyms across corpora).
EMOTION_COLORS = {
    "neutral": "#868e96", "calm": "#66a3d2", "happy": "#f59f00", "joy": "#f59f00", "happiness": "#f59f00",
    "excited": "#fab005", "sad": "#1c62b4", "sadness": "#1c62b4", "angry": "#e03131", "anger": "#e03131",
    "frustrated": "#c2255c", "fearful": "#7048e8", "fear": "#7048e8", "disgust": "#2f9e44",
    "surprised": "#f76707", "surprise": "#f76707", "contempt": "#5c940d",
}
#: Colors of classes with none above, in order.
FALLBACK = ["#1098ad", "#ae3ec9", "#74b816", "#d9480f", "#495057", "#4263eb", "#e64980", "#0ca678"]
MODALITY_COLORS = {"face": "#d6336c", "audio": "#1971c2", "text": "#2b8a3e", "logmel": "#5f3dc4"}


def class_colors(names: Sequence[str]) -> list[str]:
    """One color per class name: the usual one for known emotions, else the next fallback."""
    out, k = [], 0
    for n in names:
        c = EMOTION_COLORS.get(str(n).lower())
        if c is None:
            c, k = FALLBACK[k % len(FALLBACK)], k + 1
        out.append(c)
    return out


def modality_colors(names: Sequence[str]) -> list[str]:
    """One color per modality (``face``, ``audio``, … or ``face_valence``: by its first word)."""
    return [MODALITY_COLORS.get(n.split("_")[0], FALLBACK[i % len(FALLBACK)]) for i, n in enumerate(names)]


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp(style: str, script: str) -> str:
    """A policy that allows exactly this inline style and script, local images, and no request elsewhere
    (``file:`` beside ``'self'``: browsers differ on whether ``'self'`` covers a page opened from disk)."""
    return (f"default-src 'none'; img-src 'self' file: data:; style-src {_sha(style)}; script-src {_sha(script)}; "
            "base-uri 'none'; form-action 'none'")


CSS = """
:root{--fg:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#fff;--soft:#f8f9fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:1120px;margin:0 auto;padding:0 20px}
header{padding-top:18px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:0 0 2px;word-break:break-all}
h4{font-size:13px;margin:12px 0 4px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.03em}
p{margin:4px 0 8px}
a{color:#1864ab}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:1px 4px;border-radius:3px}
.muted{color:var(--muted)}
nav{margin:8px 0 0;font-size:14px}
nav a{margin-right:14px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:120px;background:var(--soft)}
.card b{display:block;font-size:22px}
.card span{font-size:12.5px;color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);position:sticky;top:0;z-index:1;white-space:nowrap}
th[data-sort]{cursor:pointer;user-select:none}
th[data-sort]::after{content:" \\2195";color:#adb5bd}
th[aria-sort=ascending]::after{content:" \\2191";color:var(--fg)}
th[aria-sort=descending]::after{content:" \\2193";color:var(--fg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
#file-table td:first-child{white-space:nowrap}
#file-table .note-line{color:var(--muted);font-size:12px;white-space:normal;max-width:38em}
tbody tr:hover{background:#f1f3f5}
tr.bad td{color:#862e2e}
.status-ok{color:#2b8a3e}
.status-bad{color:#c92a2a;font-weight:600}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:baseline}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px;margin:2px 0 4px}
#file-filter{font:inherit;padding:5px 8px;width:min(420px,100%);margin:0 0 8px;border:1px solid var(--line);border-radius:6px}
.table-wrap{max-height:70vh;overflow:auto;border:1px solid var(--line);border-radius:6px}
article.item{border:1px solid var(--line);border-radius:10px;padding:12px 16px;margin:14px 0}
.meta{font-size:13.5px;color:var(--muted)}
.note{font-size:13px;color:var(--muted);font-style:italic}
svg.plot{width:100%;height:auto;max-width:720px;display:block}
svg.plot .grid{stroke:#e9ecef}
svg.plot .grid.zero{stroke:#adb5bd}
svg.plot .axis,svg.plot .tick{stroke:#adb5bd}
svg.plot .tl{font:10.5px system-ui,sans-serif;fill:#6c757d}
svg.plot .bl{font:12px system-ui,sans-serif;fill:#343a40}
svg.plot .line{fill:none;stroke-width:1.8;stroke-linejoin:round}
svg.plot .hover{fill:transparent}
svg.plot .hover:hover{fill:rgba(0,0,0,.06)}
svg.plot .frame{fill:none;stroke:#dee2e6}
svg.plot .cell.pos{fill:#e8590c}
svg.plot .cell.neg{fill:#1c7ed6}
.faces{display:flex;flex-wrap:wrap;gap:6px;margin-top:2px}
.faces figure{margin:0;text-align:center;font-size:11px;color:var(--muted)}
.faces img{width:64px;height:64px;border-radius:6px;display:block;background:var(--soft);border:1px solid var(--line)}
.faces figure.top img{outline:3px solid var(--c,#adb5bd);outline-offset:-3px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:14px;margin:6px 0}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0}
footer{max-width:1120px;margin:30px auto 40px;padding:0 20px;font-size:12.5px;color:var(--muted)}
""".strip()

#: Sorting (click or Enter on a header; numbers by ``data-v``, missing values last) and the name filter.
JS = """
"use strict";
(() => {
  const table = document.getElementById("file-table");
  if (!table) return;
  const body = table.tBodies[0];
  const heads = Array.from(table.tHead.rows[0].cells);
  const value = (row, i, num) => {
    const cell = row.cells[i];
    const v = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim();
    if (!num) return v.toLowerCase();
    const x = parseFloat(v);
    return Number.isNaN(x) ? null : x;
  };
  const sortBy = (i, dir) => {
    const num = heads[i].dataset.sort === "num";
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = value(a, i, num), y = value(b, i, num);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    for (const r of rows) body.appendChild(r);
    heads.forEach((h, j) => { if (h.dataset.sort) h.setAttribute("aria-sort", j === i ? (dir > 0 ? "ascending" : "descending") : "none"); });
  };
  heads.forEach((h, i) => {
    if (!h.dataset.sort) return;
    const go = () => sortBy(i, h.getAttribute("aria-sort") === "ascending" ? -1 : 1);
    h.tabIndex = 0;
    h.addEventListener("click", go);
    h.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
  });
  const filter = document.getElementById("file-filter");
  if (filter) filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const r of body.rows) r.hidden = q !== "" && !r.textContent.toLowerCase().includes(q);
  });
})();
""".strip()


#: The page's last section: what each part shows.
READING = """<section id="reading"><h2>How to read it</h2>
<p><b>Emotion over time.</b> Each file is scored over its whole length (the emotion and confidence in the table)
and, when scored with <code>--window</code>, in overlapping time windows: one point per window, at its middle,
for each emotion's probability. The band above the lines is the most probable emotion of each window.</p>
<p><b>What the prediction rests on</b> (with <code>--explain</code>). Per modality: how much the predicted
emotion's probability drops when the model does not see that modality (positive: the modality supported the
prediction; near zero: the prediction did not depend on it). Over time: TACFN's attention over the face
steps, or for other models the drop when one time range is masked; darker cells weigh more.</p>
<p><b>Main face.</b> For each window, the face the pipeline tracked as the main one, at the sampled frame
nearest the window's middle, cropped from its stored box.</p>
<p>Statuses: <code>ok</code> files were scored (a note names a modality that was missing and why, e.g. a
video without audio); files with <code>no_features</code> could not be scored, with each feature set's reason.
The next <code>emofuse score-archive</code> retries them.</p></section>"""


__all__ = ["CSS", "EMOTION_COLORS", "JS", "MODALITY_COLORS", "READING", "class_colors", "csp", "modality_colors"]
