"""The ``score`` flow: predictions of a trained run for catalog items or a whole video archive.

With ``source`` it first registers the files under it (the ``archive`` recipe by
default: mp4, mkv, mov, webm, avi, m4v and audio-only wav, mp3, m4a, flac, ogg, in nested
folders) and extracts, on Dask, exactly the feature sets the run was trained on (cached
ones are skipped); then it scores in this process and writes Hive-partitioned Parquet
under ``<catalog>/predictions/model=<m>/run=<id>/``: one row per file over the whole clip
(``window="clip"``) and, with ``window``/``hop``, one row per time window
(``window="4s/2s"``) with its ``start``/``end``, for emotion over time.

Idempotent and resumable: every step skips what is already done (registered files,
``ok`` features, written predictions), writes are atomic, so a second call does only what
is missing (after a crash or Ctrl-C, the rest; when nothing is missing, it changes no
file). Every file ends with a prediction or a status with a reason: extraction statuses
per feature set, and a scoring status per (item, run) under the pseudo feature set
``score-<run_id>`` (``ok``, or ``no_features`` with the extraction statuses that explain it).
Files without a face or without speech are scored with the modalities they have (the
models mask a missing modality); the status message says which one was missing and why.

Example (needs media and a trained run; ``tests/test_archive.py`` makes both):
    >>> score(source="/data/videos", model="tacfn", window=4.0, hop=2.0)   # doctest: +SKIP
    $ emofuse score-archive /data/videos --model tacfn --window 4 --hop 2
    $ prefect deployment run score/archive -p source=/data/videos -p model=tacfn -p window=4
    $ emofuse score-archive /data/videos --model tacfn --explain     # attributions too (see fusion/explain.py)
    $ emofuse report --model tacfn        # the HTML report again (score/archive writes it after scoring)
"""
from __future__ import annotations

import os
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from emofuse.catalog.corpora import recipes
from emofuse.catalog.layout import Layout
from emofuse.catalog.predictions import window_label
from emofuse.catalog.store import Catalog
from emofuse.flows.extract import DEFAULT, run_extraction
from emofuse.flows.prefect_env import flow
from emofuse.pipeline.request import ExtractRequest


@flow(name="score", log_prints=True)
def score(
    run_id: str | None = None,
    model: str | None = None,
    catalog: str | None = None,
    source: str | None = None,
    corpus: str = "archive",
    item_ids: list[str] | None = None,
    fold: str = "ensemble",
    window: float | None = None,
    hop: float | None = None,
    dask_address: str | None = None,
    n_workers: int | None = None,
    batch_size: int = DEFAULT.batch_size,
    batch_seconds: float | None = DEFAULT.batch_seconds,
    device: str | None = None,
    threads: int | None = 1,
    explain: bool = False,
    report: bool = True,
    retry_failed: bool = DEFAULT.retry_failed,
) -> dict[str, Any]:
    """Score with a run: catalog items (``item_ids`` or all), or every file under ``source``.

    Args:
        run_id: a run folder under ``<catalog>/runs``.
        model: instead of ``run_id``, the latest finished run of this model (tacfn, rcma, …).
        catalog: catalog root, a folder or fsspec URL (default ``$EMOFUSE_CATALOG``
            or ``./emofuse-data/catalog``).
        source: a folder (or file) of media to register, extract and score; None scores
            what the catalog holds.
        corpus: recipe for ``source``, one of the registered corpora: ``archive`` (any media, nested
            folders), ``ravdess``, …
        item_ids: the catalog items to score (default: all, or those under ``source``).
        fold: ``ensemble`` (mean of the fold models) or one fold number.
        window: also score time windows of this many seconds (None: per clip only).
        hop: seconds between window starts (default ``window / 2``).
        dask_address: an existing Dask scheduler for extraction (default
            ``$EMOFUSE_DASK_ADDRESS``, else a local cluster of ``n_workers``).
        n_workers: workers of the local Dask cluster (default: min(2, cores)).
        batch_size: most items per extraction task.
        batch_seconds: most media seconds per extraction task (none: by count only).
        device: cuda or cpu (default: cuda when available).
        threads: torch CPU threads for scoring (1 is fastest beside busy Dask workers).
        explain: also store attributions: how much each modality moved each prediction
            (attr_<modality> columns) and a weight per time step (attention or occlusion),
            for emofuse report.
        report: after scoring, write the run's HTML report (``<catalog>/reports/<run_id>/index.html``:
            every file the run scored, opens offline) and link it from the flow run.
        retry_failed: with ``source``, also extract again the files whose earlier outcome their
            content decided (no_face, no_speech, no_audio, no_video, too_short, decode_error),
            which a run otherwise keeps (error and unfinished items are always retried).
    """
    from emofuse.fusion.score import ScoreProgress, score_items, score_windows
    from emofuse.fusion.score_report import score_summary
    from emofuse.fusion.torch_threads import torch_threads

    logger = get_run_logger()
    t0 = time.perf_counter()
    root = Layout.at(catalog).root
    cat = Catalog(root)
    run_id = _the_run(cat, run_id, model)
    windows = score_windows(window, hop)
    extraction = None
    paths: list[str] = []
    if source:
        source = os.path.abspath(source) if "://" not in source else source
        extraction = _extract_for_run(cat, run_id, source=source, corpus=corpus, batch_size=batch_size,
                                      batch_seconds=batch_seconds, retry_failed=retry_failed,
                                      dask_address=dask_address, n_workers=n_workers)
        # the files under source now (files deleted since an earlier run are not scored)
        paths = [e.path for e in recipes.discover(corpus, source) if not e.error]
        item_ids = cat.item_ids(paths)
        logger.info("%d files (%d distinct items) under %s", len(paths), len(item_ids), source)
    t_score = time.perf_counter()

    def progress(p: ScoreProgress) -> None:
        logger.info(p.line())

    with torch_threads(threads):
        result = score_items(root, run_id, item_ids=item_ids, fold=fold, device=device, windows=windows,
                             progress=progress, explain=explain)
    wall = time.perf_counter() - t0
    markdown, media_seconds = score_summary(cat, result, source=source, paths=paths, wall_s=wall,
                                            score_wall_s=time.perf_counter() - t_score)
    create_markdown_artifact(markdown, key="score-summary", description=f"emofuse score {run_id}")
    print(markdown)
    page = write_report(root, run_id, fold=fold, window=window_label(windows) if windows else None) if report else None
    return {"run_id": run_id, "model": result.model, "written": result.n_written, "skipped": result.n_skipped,
            "window_rows": result.n_window_rows, "unscorable": result.n_unscorable, "statuses": result.statuses,
            "path": result.path, "status_path": result.status_path, "wall_s": wall, "files": len(paths),
            "media_seconds": media_seconds, "extraction": extraction, "explained": result.explained,
            "attributions_path": cat.layout.attributions_dir(run_id) if result.explained else None,
            "report": page}


def _the_run(cat: Catalog, run_id: str | None, model: str | None) -> str:
    """``run_id``, or the latest finished run of ``model``."""
    from emofuse.fusion.run_config import latest_run

    if run_id is not None:
        return run_id
    if model is None:
        raise ValueError("pass run_id, or model to use its latest run")
    run_id = latest_run(cat, model)
    get_run_logger().info("using the latest %s run: %s", model, run_id)
    return run_id


def _extract_for_run(cat: Catalog, run_id: str, *, source: str, corpus: str, batch_size: int,
                     batch_seconds: float | None, retry_failed: bool, dask_address: str | None,
                     n_workers: int | None) -> dict[str, Any]:
    """Register ``source`` and extract exactly the feature sets ``run_id`` was trained on (cached items are
    skipped; no cluster when all is extracted); the extract run's summary."""
    from emofuse.fusion.run_config import run_feature_sets
    from emofuse.pipeline.registry import get_extractor

    configs = run_feature_sets(cat, run_id, default_key=lambda name: get_extractor(name).key)
    get_run_logger().info("extracting %s for run %s (cached items are skipped)", ", ".join(configs), run_id)
    request = ExtractRequest.resolve(source=source, catalog=cat.root, corpus=corpus, feature_sets=list(configs),
                                     batch_size=batch_size, batch_seconds=batch_seconds, configs=configs,
                                     retry_failed=retry_failed)
    return run_extraction(request, dask_address=dask_address, n_workers=n_workers)


@task(name="report")
def write_report(catalog: str, run_id: str, *, fold: str, window: str | None) -> str:
    """Write the run's HTML report (:func:`emofuse.flows.report.build_report`) and link it from the flow run;
    return the path of its ``index.html``."""
    from emofuse.flows.report import build_report

    res = build_report(catalog, run_id, fold=fold, window=window)
    create_link_artifact(res.url, link_text=f"report of {run_id}: {res.index}", key="score-report",
                         description=f"emofuse report of {run_id}: {res.scored} of {res.files} files scored; "
                                     "open index.html from disk (it works offline)")
    get_run_logger().info("report: %s (%d files written, %.1f MB)", res.url, res.written, res.bytes / 1e6)
    return res.index
