"""Write a run's report folder: ``index.html`` and ``thumbs/*.jpg``, changed files only.

:func:`build_report` reads the catalog (:func:`~emofuse.flows.report.data.load_report_data`),
crops the face thumbnails (decoding in threads: PyAV and Pillow release the GIL), renders
the page and writes the folder. The output depends on the catalog only (no clock, no
random names), and a file whose bytes are unchanged is not rewritten, so building the
report of an unchanged catalog again changes no file (a re-run of ``score/archive`` with
nothing new stays a no-op). Thumbnails no longer referenced are removed.

Example (on a generated scored catalog, :mod:`emofuse.flows.report.dummies`):
    >>> import tempfile
    >>> from emofuse.flows.report.dummies import scored_catalog
    >>> root = tempfile.mkdtemp()
    >>> run_id = scored_catalog(root, n_files=2, durations=(3.0,))
    >>> res = build_report(root, run_id)
    >>> res.index == f"{root}/reports/{run_id}/index.html", res.scored, res.thumbnails, res.written
    (True, 2, 2, 3)
    >>> build_report(root, run_id).written          # an unchanged catalog: no file rewritten
    0
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from emofuse.catalog.layout import Layout, data_dir
from emofuse.catalog.store import Catalog
from emofuse.flows.report.data import ItemData, ReportData, load_report_data
from emofuse.flows.report.page import render
from emofuse.flows.report.thumbs import SEEK_ABOVE_S, FacePick, crop_jpeg, grab_frames, key_frames, pick_faces

THUMBS = "thumbs"


@dataclass
class ReportResult:
    """Where the report went and what it holds."""

    folder: str
    index: str
    files: int
    scored: int
    thumbnails: int
    #: Files written now (0 when the report was already up to date).
    written: int
    bytes: int
    seconds: float

    @property
    def url(self) -> str:
        """``file://`` URL of ``index.html`` (what the Prefect artifact links)."""
        return "file://" + self.index


def default_out(catalog: str | os.PathLike[str] | None, run_id: str) -> str:
    """``<catalog>/reports/<run_id>`` for a local catalog; ``<data dir>/reports/<run_id>`` for a remote one.

    >>> default_out("/data/cat", "tacfn-1")
    '/data/cat/reports/tacfn-1'
    >>> default_out("s3://bucket/cat", "tacfn-1").endswith("/reports/tacfn-1")
    True
    """
    layout = Layout.at(catalog)
    if "://" in layout.root:
        return os.path.join(data_dir(), "reports", run_id)
    return layout.report(run_id)


def _thumb_name(item_id: str, t: float) -> str:
    return f"{item_id[:16]}-{int(round(t * 1000)):08d}.jpg"


def item_thumbnails(item: ItemData) -> tuple[list[tuple[FacePick, str]], dict[str, bytes]]:
    """The face thumbnails of one item: (pick, file name) per window shown, and the JPEG bytes by name."""
    if item.faces is None or not item.has_video or not item.scored:
        return [], {}
    spans = (list(zip(item.windows["start"].astype(float), item.windows["end"].astype(float))) if len(item.windows)
             else [(0.0, float(item.duration or 1e9))])
    path = next((p for p in item.paths if "://" not in p and os.path.exists(p)), None)
    if path is None:
        return [], {}
    sequential = (item.duration or 0.0) <= SEEK_ABOVE_S
    picks = pick_faces(item.faces, spans, key_frames=None if sequential else key_frames(path, item.offset))
    if not picks:
        return [], {}
    frames = grab_frames(path, [p.time for p in picks], sequential=sequential, offset=item.offset)
    shown, files = [], {}
    for p in picks:
        rgb = frames.get(p.time)
        if rgb is None:
            continue
        name = _thumb_name(item.item_id, p.time)
        if name not in files:
            files[name] = crop_jpeg(rgb, p.box)
        shown.append((p, name))
    return shown, files


def _write_if_changed(path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` (temporary name, then rename) unless it already holds exactly that."""
    try:
        if os.path.getsize(path) == len(data):
            with open(path, "rb") as f:
                if f.read() == data:
                    return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{threading.get_ident()}-{os.path.basename(path)}")
    try:
        with open(tmp, "wb") as f:  # open(), not mkstemp: the file gets the umask's permissions (readable)
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return True


def write_folder(out: str, files: dict[str, bytes]) -> int:
    """Write ``files`` (relative name -> bytes) under ``out``; delete thumbnails not among them. Returns files written."""
    written = sum(_write_if_changed(os.path.join(out, name), data) for name, data in sorted(files.items()))
    thumbs = os.path.join(out, THUMBS)
    if os.path.isdir(thumbs):
        keep = {os.path.basename(n) for n in files if n.startswith(THUMBS + "/")}
        for name in os.listdir(thumbs):
            if name.endswith(".jpg") and name not in keep:
                os.remove(os.path.join(thumbs, name))
    return written


def build_report(catalog: str | os.PathLike[str] | None, run_id: str, *, out: str | None = None,
                 fold: str | None = None, window: str | None = None, workers: int | None = None) -> ReportResult:
    """Write the HTML report of ``run_id`` to ``out`` (default :func:`default_out`) and return where it is.

    Args:
        catalog: catalog root (default ``$EMOFUSE_CATALOG`` or ``./emofuse-data/catalog``).
        run_id: the scored run.
        out: the report folder (created; files of an earlier report of it are replaced).
        fold: which predictions (default ``ensemble`` when present).
        window: which time windows to plot (default the most frequent kind, e.g. ``4s/2s``).
        workers: threads decoding thumbnails (default: the machine's cores, at most 8).
    """
    t0 = time.perf_counter()
    cat = Catalog(catalog)
    data: ReportData = load_report_data(cat, run_id, fold=fold, window=window)
    out = os.path.abspath(out or default_out(cat.root, run_id))
    n = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(item_thumbnails, data.items))
    thumbs = {i.item_id: shown for i, (shown, _) in zip(data.items, results)}
    files: dict[str, bytes] = {}
    for _, blobs in results:
        files.update({f"{THUMBS}/{name}": b for name, b in blobs.items()})
    files["index.html"] = render(data, thumbs).encode()
    written = write_folder(out, files)
    return ReportResult(folder=out, index=os.path.join(out, "index.html"), files=data.n_files,
                        scored=sum(1 for i in data.items if i.scored), thumbnails=len(files) - 1, written=written,
                        bytes=sum(len(b) for b in files.values()), seconds=time.perf_counter() - t0)


__all__ = ["ReportResult", "THUMBS", "build_report", "default_out", "item_thumbnails", "write_folder"]
