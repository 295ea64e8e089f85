"""The ``extract`` flow: register a corpus in the catalog and extract feature sets on Dask.

Work is one Prefect task per (batch of items × feature set); tasks pass paths
and ids, never arrays. Per-item failures end as status rows; the flow fails
only when a feature set fails on every item (a broken set-up, not bad data).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from emofuse.catalog import provenance
from emofuse.catalog.schemas import Status
from emofuse.catalog.status import StatusEntry
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.flows.failures import quiet_storage_tracebacks, retry_unless_permanent, storage_failures_named
from emofuse.flows.runner import current_api_url, dask_runner
from emofuse.pipeline.batch import BatchSummary, run_batch
from emofuse.pipeline.plan import batches, feature_configs, idle_summary, plan_run
from emofuse.pipeline.registry import get_extractor
from emofuse.pipeline.threads import limit_threads

log = logging.getLogger(__name__)


@task(name="extract-batch", retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_permanent,
      cache_policy=NO_CACHE, task_run_name="{name}[{n}]")
def extract_task(catalog: str, name: str, config: dict[str, Any], items: list[dict[str, Any]],
                 run_id: str, n: int) -> BatchSummary:
    """Thin wrapper over :func:`emofuse.pipeline.batch.run_batch` (the same call the CLI makes).

    A storage failure (full or read-only disk, unreachable store) fails the task with a
    :class:`~emofuse.catalog.storage_errors.StorageError`; only the transient ones are retried.
    """
    limit_threads(1)
    quiet_storage_tracebacks()
    with storage_failures_named(catalog):
        return run_batch(catalog, name, config, items, run_id=run_id)


@flow(name="extract-on-dask", log_prints=True)
def extract_on_dask(source: str | None, catalog: str, corpus: str, feature_sets: list[str], fps: float,
                     batch_size: int, selection: list[str] | None, configs: dict[str, dict] | None,
                     run_id: str, batch_seconds: float | None = None, registered: int = 0) -> dict[str, Any]:
    logger = get_run_logger()
    t_start = time.perf_counter()
    cat = Catalog(catalog).init()
    removed = cat.repair()
    if removed:
        logger.warning("removed %d leftovers of crashed tasks", len(removed))
    cfgs = feature_configs(feature_sets, fps, configs)
    extractors = extractors_for(feature_sets, fps, configs)
    # new or changed files are hashed and probed here, in threads (the flow that started this one has
    # usually done it already); unchanged ones are known by size and mtime
    plan = plan_run(cat, source, corpus, selection, extractors, register=True)
    summary = ExtractRunSummary(run_id=run_id, catalog=cat.root, source=source, corpus=corpus,
                                provenance=provenance.collect(), rejected=plan.rejected, registered=registered)
    for r in plan.rejected:
        logger.warning("skipped: %s", r)
    if source:
        logger.info("%d items under %s (%d rejected names, %d media rows registered)", len(plan.media), source,
                    len(plan.rejected), registered + plan.added)
    else:
        logger.info("no source given: extracting the %d items already in %s", len(plan.media), catalog)
    summary.registered += plan.added

    # 2. per feature set, extract what is not ok yet
    futures, seconds = [], {}
    for name, extractor in extractors.items():
        fs = next(f for f in plan.feature_sets if f.name == name)
        cat.register_feature_set(extractor.describe().with_provenance(summary.provenance))
        written = fs.unrecorded and cat.record_status(
            fs.key, [StatusEntry(i, Status.DECODE_ERROR, msg) for i, msg in fs.unreadable], run_id=run_id)
        summary.start(fs.key, name=name, items=fs.items, already_done=fs.already_done,
                      counts={Status.DECODE_ERROR.value: len(fs.unreadable)} if fs.unreadable else {},
                      written=written)
        logger.info("%s: %d to extract, %d already done", fs.key, len(fs.todo), fs.already_done)
        for b in batches(fs.todo, max_items=batch_size, max_seconds=batch_seconds):
            fut = extract_task.submit(catalog, name, cfgs[name], b, run_id, len(b))
            futures.append(fut)
            seconds[fut] = sum(float(it.get("duration") or 0.0) for it in b)

    total_s, done_s = sum(seconds.values()), 0.0
    for i, fut in enumerate(as_completed(futures), 1):
        batch = fut.result()
        totals = summary.add(batch)
        done_s += seconds[fut]
        elapsed = time.perf_counter() - t_start
        eta = elapsed / done_s * (total_s - done_s) if done_s else float("nan")
        logger.info("batch %d/%d done (%s: %s) — %.0f s elapsed, ETA %.0f s", i, len(futures), totals.name,
                    batch.counts, elapsed, eta)

    summary.wall_s = time.perf_counter() - t_start
    return _finish(cat, summary, changed=bool(summary.registered or summary.written))


def _finish(cat: Catalog, summary: ExtractRunSummary, *, changed: bool) -> dict[str, Any]:
    """Record the run (only when it changed the catalog), publish its summary, fail on a broken set-up."""
    if changed:  # a run that changed nothing leaves no trace on disk either
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
    batch_size: int = 32,
    selection: list[str] | None = None,
    configs: dict[str, dict] | None = None,
    batch_seconds: float | None = 120.0,
) -> dict[str, Any]:
    """Register ``source`` (a corpus root in a registered recipe's layout, or an archive) in ``catalog`` and
    extract feature sets.

    Args:
        source: corpus root (none given: only extract what the catalog already holds).
        catalog: catalog root, a folder or fsspec URL (default ``$EMOFUSE_CATALOG``
            or ``./emofuse-data/catalog``).
        corpus: corpus recipe, one of the registered corpora (built in, or from a package's
            ``emofuse.corpora`` entry point); ``archive`` takes every media file under source.
        feature_sets: extractor names (default: all available).
        fps: frame sampling rate for face features.
        dask_address: an existing Dask scheduler (default ``$EMOFUSE_DASK_ADDRESS``,
            else a local cluster of ``n_workers``).
        n_workers: workers of the local Dask cluster (default: min(2, cores)).
        batch_size: most items per task (one Zarr shard per task and feature set).
        batch_seconds: most media seconds per task (tasks sized by duration: a task of
            long files costs about what a task of short ones does); none: by count only.
        selection: RAVDESS files to take, by modality and vocal channel: full-AV speech
            (the default), or e.g. audio-only song.
        configs: config overrides per feature set (name -> config), e.g. faces ->
            ``{"backend": "insightface"}``.
    """
    params = run_params(source=source, catalog=catalog, corpus=corpus, feature_sets=feature_sets, fps=fps,
                        batch_size=batch_size, selection=selection, configs=configs, batch_seconds=batch_seconds)
    idle, registered = nothing_to_do(**params)  # new files are registered here, in threads
    if idle is not None:  # everything is extracted already: no Dask cluster, no worker
        return idle
    runner = dask_runner(dask_address, n_workers, api_url=current_api_url())
    return extract_on_dask.with_options(task_runner=runner)(**params, registered=registered)


def run_params(*, source: str | None, catalog: str | None, corpus: str, feature_sets: list[str] | None,
               fps: float, batch_size: int, selection: list[str] | None, configs: dict[str, dict] | None,
               batch_seconds: float | None) -> dict[str, Any]:
    """The ``extract`` flow's parameters resolved for one run: absolute paths, feature sets, a new run id."""
    from emofuse.catalog.layout import Layout

    return dict(source=os.path.abspath(source) if source and "://" not in source else source,
                catalog=Layout.at(catalog).root, corpus=corpus, feature_sets=feature_sets or default_feature_sets(),
                fps=fps, batch_size=batch_size, selection=selection, configs=configs,
                run_id=ExtractRunSummary.new_run_id(), batch_seconds=batch_seconds)


def idle_run(params: dict[str, Any], *, register: bool = False) -> tuple[ExtractRunSummary | None, int]:
    """Without Prefect: (the summary of a run (``run_params``) that has nothing to do, else None; rows registered).

    ``register``: hash, probe and record new files first (see :func:`emofuse.pipeline.plan.plan_run`).
    What crashed tasks left behind is removed first, so even a run with nothing to do repairs.
    """
    removed = Catalog(params["catalog"]).init().repair()
    if removed:
        log.warning("removed %d leftovers of crashed tasks", len(removed))
    return idle_summary(catalog=params["catalog"], source=params["source"], corpus=params["corpus"],
                        selection=params["selection"], run_id=params["run_id"], register=register,
                        extractors=extractors_for(params["feature_sets"], params["fps"], params["configs"]))


def nothing_to_do(*, source: str | None, catalog: str, corpus: str, feature_sets: list[str], fps: float,
                  batch_size: int, selection: list[str] | None, configs: dict[str, dict] | None, run_id: str,
                  batch_seconds: float | None) -> tuple[dict[str, Any] | None, int]:
    """Inside a flow: register new files (threads), then (the run's summary, published, when nothing is left
    to extract or record, else None; media rows registered)."""
    summary, registered = idle_run(dict(catalog=catalog, source=source, corpus=corpus, selection=selection,
                                        run_id=run_id, feature_sets=feature_sets, fps=fps, configs=configs),
                                   register=True)
    if registered:
        get_run_logger().info("%d media rows registered from %s", registered, source)
    if summary is None:
        return None, registered
    get_run_logger().info("nothing to do: every item of %s is extracted (%s)",
                          source or catalog, ", ".join(summary.feature_sets))
    return _finish(Catalog(catalog), summary, changed=bool(registered)), registered


def extractors_for(feature_sets: list[str], fps: float, configs: dict[str, dict] | None) -> dict[str, Any]:
    """name -> extractor of a run's feature sets, with the run's fps and config overrides."""
    cfgs = feature_configs(feature_sets, fps, configs)
    return {name: get_extractor(name, cfgs[name]) for name in feature_sets}


def default_feature_sets() -> list[str]:
    """Every registered extractor: what ``extract/ravdess`` runs when no subset is named."""
    from emofuse.pipeline.registry import available

    return available()
