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

from emofuse.catalog import atomic, recipes
from emofuse.catalog.records import ExtractResult
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog
from emofuse.flows.runner import current_api_url, dask_runner
from emofuse.pipeline import ingest, provenance
from emofuse.pipeline.batch import run_batch
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
                 run_id: str, n: int) -> dict[str, Any]:
    """Thin wrapper over :func:`emofuse.pipeline.batch.run_batch` (the same call the CLI makes)."""
    limit_threads(1)
    return run_batch(catalog, name, config, items, run_id=run_id).to_dict()


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

    # 1. register media (hash + probe on the workers)
    rejected: list[str] = []
    added = 0
    if source:
        entries = list(recipes.discover(corpus, source, selection))
        rejected = [f"{e.path}: {e.error}" for e in entries if e.error]
        for r in rejected:
            logger.warning("skipped: %s", r)
        good = [{"path": e.path, "columns": e.columns} for e in entries if not e.error]
        known = cat.known_files()
        futures = []
        for b in _batches(good, REGISTER_BATCH):
            known_here = {e["path"]: known[e["path"]] for e in b if e["path"] in known}
            futures.append(register_task.submit(b, source, known_here))
        rows = [row for f in futures for row in f.result()]
        added = cat.add_media(rows)
        paths = {r["path"] for r in rows}
        logger.info("%d files found under %s (%d newly registered, %d rejected names)",
                    len(rows), source, added, len(rejected))
        media = cat.media(dedupe=False)
        media = media[media["path"].isin(paths)].drop_duplicates("item_id")
    else:
        media = cat.media()
        logger.info("no source given: extracting the %d items already in %s", len(media), catalog)

    # 2. per feature set, extract what is not ok yet
    cfgs = feature_configs(feature_sets, fps, configs)
    provenance_info = provenance.collect()
    summaries: dict[str, dict[str, Any]] = {}
    futures = []
    for name in feature_sets:
        extractor = get_extractor(name, cfgs[name])
        key = extractor.key
        cat.register_feature_set({**extractor.describe(), "provenance": provenance_info})
        done = cat.done(key)
        todo = media[~media["item_id"].isin(done)]
        unreadable = todo[todo["probe_error"].notna()]
        written = 0
        if len(unreadable):  # files that are not media at all: a status now, no task needed
            written = cat.commit_task(key, atomic.new_id(), [
                ExtractResult.failed(i, Status.DECODE_ERROR, msg)
                for i, msg in zip(unreadable["item_id"], unreadable["probe_error"])], run_id=run_id)
        todo = todo[todo["probe_error"].isna()]
        summaries[key] = {"name": name, "items": len(media), "already_done": len(media) - len(todo) - len(unreadable),
                          "counts": {Status.DECODE_ERROR.value: len(unreadable)} if len(unreadable) else {},
                          "media_seconds": 0.0, "task_wall_s": 0.0, "runtime": {}, "errors": [],
                          "written": written}
        items = [{"item_id": r.item_id, "path": r.path, "duration": r.duration, "has_audio": r.has_audio,
                  "has_video": r.has_video, "transcript": r.transcript} for r in todo.itertuples()]
        logger.info("%s: %d to extract, %d already done", key, len(items), summaries[key]["already_done"])
        for b in _batches(items, batch_size):
            futures.append(extract_task.submit(catalog, name, cfgs[name], b, run_id, len(b)))

    total = len(futures)
    for i, fut in enumerate(as_completed(futures), 1):
        s = fut.result()
        agg = summaries[s["feature_set"]]
        for k, v in s["counts"].items():
            agg["counts"][k] = agg["counts"].get(k, 0) + v
        agg["media_seconds"] += s["media_seconds"]
        agg["task_wall_s"] += s["wall_s"]
        agg["runtime"] = s["runtime"] or agg["runtime"]
        agg["errors"] += s["errors"]
        agg["written"] += s["written"]
        elapsed = time.perf_counter() - t_start
        logger.info("batch %d/%d done (%s: %s) — %.0f s elapsed, ETA %.0f s", i, total, agg["name"],
                    s["counts"], elapsed, elapsed / i * (total - i))

    wall = time.perf_counter() - t_start
    record = {"run_id": run_id, "catalog": cat.root, "source": source, "corpus": corpus,
              "feature_sets": summaries, "rejected": rejected, "wall_s": wall, "provenance": provenance_info}
    changed = added + sum(a["written"] for a in summaries.values())
    if changed:  # a run that changed nothing leaves no trace on disk either
        atomic.write_json(record, cat.layout.join("extract_runs", f"{run_id}.json"))
    _report(record)
    for key, agg in summaries.items():
        attempted = sum(agg["counts"].values())
        if attempted >= 3 and agg["counts"].get(Status.ERROR.value, 0) == attempted:
            raise RuntimeError(f"{key}: every one of {attempted} items failed — the set-up looks broken. "
                               f"First error: {agg['errors'][0] if agg['errors'] else '?'}. Run `emofuse doctor`.")
    return record


def _report(record: dict[str, Any]) -> None:
    """A markdown summary as a Prefect artifact and in the log."""
    lines = ["| feature set | items | already done | extracted now | statuses | media s | task s |",
             "|---|---|---|---|---|---|---|"]
    for key, a in record["feature_sets"].items():
        now = sum(a["counts"].values())
        st = ", ".join(f"{k}={v}" for k, v in sorted(a["counts"].items())) or "-"
        lines.append(f"| `{key}` | {a['items']} | {a['already_done']} | {now} | {st} | "
                     f"{a['media_seconds']:.1f} | {a['task_wall_s']:.1f} |")
    md = "\n".join([f"# extract run {record['run_id']}", f"catalog: `{record['catalog']}`", "", *lines, "",
                    f"wall time {record['wall_s']:.1f} s"])
    create_markdown_artifact(md, key="extract-summary", description="emofuse extract summary")
    print(md)


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
        source: corpus root (None: only extract what the catalog already holds).
        catalog: catalog root, a folder or fsspec URL (default ``$EMOFUSE_CATALOG``
            or ``./emofuse-data/catalog``).
        corpus: recipe, ``ravdess`` or ``archive``.
        feature_sets: extractor names (default: all available).
        fps: frame sampling rate for face features.
        dask_address: an existing Dask scheduler (default ``$EMOFUSE_DASK_ADDRESS``,
            else a local cluster of ``n_workers``).
        batch_size: items per task (one Zarr shard per task and feature set).
        selection: RAVDESS selection, e.g. ``["full-AV", "speech"]`` (the default).
        configs: per-feature-set config overrides, e.g. ``{"faces": {"backend": "insightface"}}``.
    """
    from emofuse.catalog.layout import Layout

    root = Layout.at(catalog).root
    names = feature_sets or default_feature_sets()
    run_id = time.strftime("%Y%m%d-%H%M%S-") + atomic.new_id()[:6]
    runner = dask_runner(dask_address, n_workers, api_url=current_api_url())
    return extract_on_dask.with_options(task_runner=runner)(
        source=os.path.abspath(source) if source and "://" not in source else source, catalog=root,
        corpus=corpus, feature_sets=names, fps=fps, batch_size=batch_size, selection=selection,
        configs=configs, run_id=run_id)


def default_feature_sets() -> list[str]:
    """Every registered extractor: what ``extract/ravdess`` runs when no subset is named."""
    from emofuse.pipeline.registry import available

    return available()
