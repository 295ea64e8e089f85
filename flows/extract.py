"""The ``extract`` flow: register a corpus in the catalog and extract feature sets on Dask.

Work is one Prefect task per (batch of items × feature set); tasks pass paths
and ids, never arrays. Per-item failures end as status rows; the flow fails
only when a feature set fails on every item (a broken set-up, not bad data).
"""
from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from emofuse.catalog import provenance
from emofuse.catalog.corpora import recipes
from emofuse.catalog.schemas import Status
from emofuse.catalog.status import StatusEntry
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.flows.runner import current_api_url, dask_runner
from emofuse.pipeline import ingest
from emofuse.pipeline.batch import BatchSummary, run_batch
from emofuse.pipeline.registry import get_extractor
from emofuse.pipeline.threads import limit_threads

REGISTER_BATCH = 16


@task(name="register-media", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register_task(entries: list[dict[str, Any]], source: str, known: dict[str, tuple[int, int, str]]) -> list[dict[str, Any]]:
    """Hash and probe a batch of files (media rows, returned to the flow that writes them)."""
    return [ingest.describe(e["path"], root=source, known=known.get(e["path"]), extra=e["columns"])
            for e in entries]


@task(name="extract-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE,
      task_run_name="{name}[{n}]")
def extract_task(catalog: str, name: str, config: dict[str, Any], items: list[dict[str, Any]],
                 run_id: str, n: int) -> BatchSummary:
    """Thin wrapper over :func:`emofuse.pipeline.batch.run_batch` (the same call the CLI makes)."""
    limit_threads(1)
    return run_batch(catalog, name, config, items, run_id=run_id)


def _batches(xs: list[Any], size: int) -> list[list[Any]]:
    return [xs[i:i + size] for i in range(0, len(xs), size)]


def feature_configs(feature_sets: list[str], fps: float, configs: dict[str, dict] | None) -> dict[str, dict]:
    """Per-set config overrides; ``fps`` applies to frame-sampling extractors (faces)."""
    out = {name: dict((configs or {}).get(name, {})) for name in feature_sets}
    if "faces" in out:
        out["faces"].setdefault("fps", fps)
    return out


@flow(name="extract-on-dask", log_prints=True)
def extract_on_dask(source: str | None, catalog: str, corpus: str, feature_sets: list[str], fps: float,
                     batch_size: int, selection: list[str] | None, configs: dict[str, dict] | None,
                     run_id: str) -> dict[str, Any]:
    logger = get_run_logger()
    t_start = time.perf_counter()
    cat = Catalog(catalog).init()
    removed = cat.repair()
    if removed:
        logger.warning("removed %d leftovers of crashed tasks", len(removed))
    summary = ExtractRunSummary(run_id=run_id, catalog=cat.root, source=source, corpus=corpus,
                                provenance=provenance.collect())

    # 1. register media (hash + probe on the workers)
    added = 0
    if source:
        entries = list(recipes.discover(corpus, source, selection))
        summary.rejected = [f"{e.path}: {e.error}" for e in entries if e.error]
        for r in summary.rejected:
            logger.warning("skipped: %s", r)
        good = [{"path": e.path, "columns": e.columns} for e in entries if not e.error]
        known = cat.known_files()
        futures = [register_task.submit(b, source, {e["path"]: known[e["path"]] for e in b if e["path"] in known})
                   for b in _batches(good, REGISTER_BATCH)]
        rows = [row for f in futures for row in f.result()]
        added = cat.add_media(rows)
        logger.info("%d files found under %s (%d newly registered, %d rejected names)",
                    len(rows), source, added, len(summary.rejected))
        media = cat.media(dedupe=False)
        media = media[media["path"].isin({r["path"] for r in rows})].drop_duplicates("item_id")
    else:
        media = cat.media()
        logger.info("no source given: extracting the %d items already in %s", len(media), catalog)

    # 2. per feature set, extract what is not ok yet
    cfgs = feature_configs(feature_sets, fps, configs)
    futures = []
    for name in feature_sets:
        extractor = get_extractor(name, cfgs[name])
        key = extractor.key
        cat.register_feature_set({**extractor.describe(), "provenance": summary.provenance})
        todo = media[~media["item_id"].isin(cat.done(key))]
        unreadable = todo[todo["probe_error"].notna()]  # not media at all: a status now, no task needed
        written = len(unreadable) and cat.record_status(key, [StatusEntry(i, Status.DECODE_ERROR, msg) for i, msg in
                                          zip(unreadable["item_id"], unreadable["probe_error"])], run_id=run_id)
        todo = todo[todo["probe_error"].isna()]
        summary.start(key, name=name, items=len(media), already_done=len(media) - len(todo) - len(unreadable),
                      counts={Status.DECODE_ERROR.value: len(unreadable)} if len(unreadable) else {},
                      written=written)
        items = [{"item_id": r.item_id, "path": r.path, "duration": r.duration, "has_audio": r.has_audio,
                  "has_video": r.has_video, "transcript": r.transcript} for r in todo.itertuples()]
        logger.info("%s: %d to extract, %d already done", key, len(items), summary.feature_sets[key].already_done)
        futures += [extract_task.submit(catalog, name, cfgs[name], b, run_id, len(b))
                    for b in _batches(items, batch_size)]

    for i, fut in enumerate(as_completed(futures), 1):
        batch = fut.result()
        totals = summary.add(batch)
        elapsed = time.perf_counter() - t_start
        logger.info("batch %d/%d done (%s: %s) — %.0f s elapsed, ETA %.0f s", i, len(futures), totals.name,
                    batch.counts, elapsed, elapsed / i * (len(futures) - i))

    summary.wall_s = time.perf_counter() - t_start
    if added or summary.written:  # a run that changed nothing leaves no trace on disk either
        cat.record_extract_run(summary)
    md = summary.markdown()
    create_markdown_artifact(md, key="extract-summary", description="emofuse extract summary")
    print(md)
    summary.raise_if_broken()
    return summary.to_dict()


@flow(name="extract", log_prints=True)
def extract(
    source: str | None = None,
    catalog: str | None = None,
    corpus: str = "ravdess",
    feature_sets: list[str] | None = None,
    fps: float = 5.0,
    dask_address: str | None = None,
    n_workers: int | None = None,
    batch_size: int = 8,
    selection: list[str] | None = None,
    configs: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Register ``source`` (a RAVDESS root or an archive) in ``catalog`` and extract feature sets.

    Args:
        source: corpus root (none given: only extract what the catalog already holds).
        catalog: catalog root, a folder or fsspec URL (default ``$EMOFUSE_CATALOG``
            or ``./emofuse-data/catalog``).
        corpus: corpus recipe, ``ravdess`` or ``archive``.
        feature_sets: extractor names (default: all available).
        fps: frame sampling rate for face features.
        dask_address: an existing Dask scheduler (default ``$EMOFUSE_DASK_ADDRESS``,
            else a local cluster of ``n_workers``).
        n_workers: workers of the local Dask cluster (default: min(2, cores)).
        batch_size: items per task (one Zarr shard per task and feature set).
        selection: RAVDESS files to take, by modality and vocal channel: full-AV speech
            (the default), or e.g. audio-only song.
        configs: config overrides per feature set (name -> config), e.g. faces ->
            ``{"backend": "insightface"}``.
    """
    from emofuse.catalog.layout import Layout

    root = Layout.at(catalog).root
    names = feature_sets or default_feature_sets()
    run_id = ExtractRunSummary.new_run_id()
    runner = dask_runner(dask_address, n_workers, api_url=current_api_url())
    return extract_on_dask.with_options(task_runner=runner)(
        source=os.path.abspath(source) if source and "://" not in source else source, catalog=root,
        corpus=corpus, feature_sets=names, fps=fps, batch_size=batch_size, selection=selection,
        configs=configs, run_id=run_id)


def default_feature_sets() -> list[str]:
    """Every registered extractor: what ``extract/ravdess`` runs when no subset is named."""
    from emofuse.pipeline.registry import available

    return available()
