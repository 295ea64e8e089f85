"""The ``extract`` flow: register a corpus in the catalog and extract feature sets on Dask.

Work is one Prefect task per (batch of items × feature set); tasks pass paths
and ids, never arrays. Per-item failures end as status rows; the flow fails
only when a feature set fails on every item (a broken set-up, not bad data),
or when the corpus recipe took none of the source's files (it says why, and the fix).

Failures the content decides (``no_face``, ``decode_error``, …) are final for unchanged
files; a run retries ``error`` and unfinished items, and ``retry_failed`` the rest. The
flow's parameters build one :class:`~emofuse.pipeline.request.ExtractRequest` per run,
which the planning, the tasks and the run summary read.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed

from emofuse.catalog import provenance
from emofuse.catalog.schemas import Status
from emofuse.catalog.status import StatusEntry
from emofuse.catalog.store import Catalog
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.flows.failures import quiet_storage_tracebacks, retry_unless_permanent, storage_failures_named
from emofuse.flows.prefect_env import flow
from emofuse.flows.runner import current_api_url, dask_runner
from emofuse.pipeline.batch import BatchSummary, run_batch
from emofuse.pipeline.plan import RunPlan, batches, idle_summary, new_summary, plan_run
from emofuse.pipeline.registry import Extractor, MediaRef
from emofuse.pipeline.request import ExtractRequest
from emofuse.pipeline.threads import limit_threads

log = logging.getLogger(__name__)
#: The defaults of the flows' extract parameters (defined once, in the request).
DEFAULT = ExtractRequest


@task(name="extract-batch", retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_permanent,
      cache_policy=NO_CACHE, task_run_name="{name}[{n}]")
def extract_task(catalog: str, name: str, config: dict[str, Any], items: list[MediaRef],
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
def extract_on_dask(request: ExtractRequest, registered: int = 0) -> dict[str, Any]:
    """Plan ``request`` (registering new files), extract what is left on this flow's Dask runner, publish the summary."""
    logger = get_run_logger()
    t_start = time.perf_counter()
    cat = Catalog(request.catalog).init()
    removed = cat.repair(sweep=False)
    if removed:
        logger.warning("removed %d leftovers of crashed tasks", len(removed))
    extractors = request.extractors()
    # new or changed files are hashed and probed here, in threads (the flow that started this one has
    # usually done it already); unchanged ones are known by size and mtime
    plan = plan_run(cat, request.source, request.corpus, request.selection, extractors, register=True,
                    retry_failed=request.retry_failed)
    summary = new_summary(request, plan, provenance=provenance.collect(), registered=registered + plan.added)
    _log_plan(logger, request, plan, summary)
    _register_feature_sets(cat, extractors.values(), summary)
    seconds = _submit(cat, request, plan, summary, logger)
    _collect(seconds, summary, logger, t_start)
    summary.wall_s = time.perf_counter() - t_start
    return _finish(cat, summary, changed=bool(summary.registered or summary.written))


def _register_feature_sets(cat: Catalog, extractors: Iterable[Extractor], summary: ExtractRunSummary) -> None:
    """Record the description of each feature set the catalog does not describe yet (a key's description is
    written once and never replaced, so describing a known one, which may load its models, is wasted: eGeMAPS
    builds openSMILE, whose first instance scans every installed package's files)."""
    for extractor in extractors:
        if not cat.describes(extractor.key):
            cat.register_feature_set(extractor.describe().with_provenance(summary.provenance))


def _log_plan(logger: logging.Logger | Any, request: ExtractRequest, plan: RunPlan,
              summary: ExtractRunSummary) -> None:
    """Say what the recipe took and rejected, or which catalog items the run covers."""
    for r in plan.rejected:
        logger.warning("skipped: %s", r)
    if request.source:
        logger.info("%d items under %s (%d media files seen, %d taken, %d rejected; %d media rows registered)",
                    len(plan.media), request.source, plan.intake.seen, plan.intake.taken, plan.intake.rejected,
                    summary.registered)
    else:
        logger.info("no source given: extracting the %d items already in %s", len(plan.media), request.catalog)


def _submit(cat: Catalog, request: ExtractRequest, plan: RunPlan, summary: ExtractRunSummary,
            logger: logging.Logger | Any) -> dict[PrefectFuture, float]:
    """Per feature set: record the probe's decode errors, open its summary, submit its batches.
    Returns each submitted task's media seconds."""
    configs = request.feature_configs()
    seconds: dict[PrefectFuture, float] = {}
    for fs in plan.feature_sets:
        written = fs.unrecorded and cat.record_status(
            fs.key, [StatusEntry(i, Status.DECODE_ERROR, msg) for i, msg in fs.unreadable], run_id=request.run_id)
        summary.start(fs.key, name=fs.name, items=fs.items, already_done=fs.already_done, counts=fs.known_counts,
                      written=written)
        logger.info("%s: %d to extract, %d already done", fs.key, len(fs.todo), fs.already_done)
        for b in batches(fs.todo, max_items=request.batch_size, max_seconds=request.batch_seconds):
            fut = extract_task.submit(request.catalog, fs.name, configs[fs.name], b, request.run_id, len(b))
            seconds[fut] = sum(float(it.duration or 0.0) for it in b)
    return seconds


def _collect(seconds: dict[PrefectFuture, float], summary: ExtractRunSummary, logger: logging.Logger | Any,
             t_start: float) -> None:
    """Add each finished batch to the summary, logging progress and an ETA by media seconds."""
    total_s, done_s = sum(seconds.values()), 0.0
    for i, fut in enumerate(as_completed(list(seconds)), 1):
        batch = fut.result()
        totals = summary.add(batch)
        done_s += seconds[fut]
        elapsed = time.perf_counter() - t_start
        eta = elapsed / done_s * (total_s - done_s) if done_s else float("nan")
        logger.info("batch %d/%d done (%s: %s) — %.0f s elapsed, ETA %.0f s", i, len(seconds), totals.name,
                    batch.counts, elapsed, eta)


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
    corpus: str = DEFAULT.corpus,
    feature_sets: list[str] | None = None,
    fps: float = DEFAULT.fps,
    dask_address: str | None = None,
    n_workers: int | None = None,
    batch_size: int = DEFAULT.batch_size,
    selection: list[str] | None = None,
    configs: dict[str, dict] | None = None,
    batch_seconds: float | None = DEFAULT.batch_seconds,
    retry_failed: bool = DEFAULT.retry_failed,
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
        retry_failed: also extract again the items whose earlier outcome the file's content
            decided (no_face, no_speech, no_audio, no_video, too_short, decode_error), which a
            run otherwise keeps (error and unfinished items are always retried).
    """
    request = ExtractRequest.resolve(source=source, catalog=catalog, corpus=corpus, feature_sets=feature_sets,
                                     fps=fps, batch_size=batch_size, selection=selection, configs=configs,
                                     batch_seconds=batch_seconds, retry_failed=retry_failed)
    return run_extraction(request, dask_address=dask_address, n_workers=n_workers)


def run_extraction(request: ExtractRequest, *, dask_address: str | None, n_workers: int | None) -> dict[str, Any]:
    """Inside a flow: register new files (threads); when nothing is left, publish that summary (no Dask
    cluster, no worker), else extract on Dask. Returns the run summary as a dict."""
    idle, registered = nothing_to_do(request)
    if idle is not None:
        return idle
    runner = dask_runner(dask_address, n_workers, api_url=current_api_url())
    return extract_on_dask.with_options(task_runner=runner)(request, registered=registered)


def idle_run(request: ExtractRequest, *, register: bool = False) -> tuple[ExtractRunSummary | None, int]:
    """Without Prefect: (the summary of ``request``'s run when it has nothing to do, else None; rows registered).

    ``register``: hash, probe and record new files first (see :func:`emofuse.pipeline.plan.plan_run`).
    What crashed tasks left behind is removed first, so even a run with nothing to do repairs.
    Raises :class:`~emofuse.pipeline.intake.NothingTaken` when the recipe takes no file of the source.
    """
    removed = Catalog(request.catalog).init().repair(sweep=False)
    if removed:
        log.warning("removed %d leftovers of crashed tasks", len(removed))
    return idle_summary(request, register=register)


def nothing_to_do(request: ExtractRequest) -> tuple[dict[str, Any] | None, int]:
    """Inside a flow: register new files (threads), then (the run's summary, published, when nothing is left
    to extract or record, else None; media rows registered)."""
    summary, registered = idle_run(request, register=True)
    if registered:
        get_run_logger().info("%d media rows registered from %s", registered, request.source)
    if summary is None:
        return None, registered
    get_run_logger().info("nothing to do: every item of %s is extracted (%s)",
                          request.source or request.catalog, ", ".join(summary.feature_sets))
    return _finish(Catalog(request.catalog), summary, changed=bool(registered)), registered
