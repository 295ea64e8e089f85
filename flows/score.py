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

Example:
    >>> score(source="/data/videos", model="tacfn", window=4.0, hop=2.0)   # doctest: +SKIP
    $ emofuse score-archive /data/videos --model tacfn --window 4 --hop 2
    $ prefect deployment run score/archive -p source=/data/videos -p model=tacfn -p window=4
"""
from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from emofuse.catalog import recipes
from emofuse.catalog.atomic import new_id
from emofuse.catalog.layout import Layout
from emofuse.catalog.store import Catalog
from emofuse.flows.extract import extract_on_dask
from emofuse.flows.runner import current_api_url, dask_runner

#: Files listed by name (with their reason) in the summary when they have no prediction.
SUMMARY_MAX_LISTED = 25


def run_feature_sets(cat: Catalog, run_id: str) -> dict[str, dict[str, Any]]:
    """name -> extractor config of every feature set a run was trained on (so extraction reproduces its keys).

    A catalog that holds the run folder but not the feature set's description (the run
    was copied from another catalog) gets the extractor's default config when that
    reproduces the run's key; otherwise the error says what to copy.
    """
    from emofuse.fusion import runs
    from emofuse.pipeline.registry import get_extractor

    config = runs.read_config(cat.layout.run(run_id))
    names = config.get("feature_set_names") or {}
    out = {}
    for modality, key in config["feature_sets"].items():
        if cat.exists(cat.layout.feature_set_info(key)):
            info = cat.feature_set_info(key)
            out[info["name"]] = info["config"]
            continue
        name = names.get(modality) or key.split("-v", 1)[0]
        try:
            default_key = get_extractor(name).key
        except Exception as e:  # noqa: BLE001 - an unknown extractor name ends in the message below
            default_key = f"? ({e})"
        if default_key != key:
            raise FileNotFoundError(
                f"run {run_id} was trained on feature set {key}, which {cat.root} does not describe and the "
                f"default {name} config does not reproduce (it gives {default_key}); copy "
                f"features/{key}/feature_set.json from the training catalog into this one")
        out[name] = {}
    return out


def latest_run(cat: Catalog, model: str) -> str:
    """The most recent run of ``model`` in the catalog that finished all its folds."""
    from emofuse.fusion import runs

    found = []
    for run_id in cat.listdir(cat.layout.runs):
        try:
            config = runs.read_config(cat.layout.run(run_id))
        except Exception:  # noqa: BLE001 - unfinished or foreign folders are not candidates
            continue
        if config.get("model") == model and config.get("completed_folds"):
            found.append((config.get("created", ""), run_id))
    if not found:
        raise ValueError(f"no finished {model} run in {cat.layout.runs}; train one first: emofuse train --model {model}")
    return max(found)[1]


def _files_under(source: str, corpus: str) -> list[str]:
    """The paths the recipe finds under ``source`` now (files deleted since an earlier run are not scored)."""
    return [e.path for e in recipes.discover(corpus, source) if not e.error]


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
    batch_size: int = 8,
    device: str | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Score with a run: catalog items (``item_ids`` or all), or every file under ``source``.

    Args:
        run_id: a run folder under ``<catalog>/runs``.
        model: instead of ``run_id``, the latest finished run of this model (tacfn, rcma, …).
        source: a folder (or file) of media to register, extract and score; None scores
            what the catalog holds.
        corpus: recipe for ``source``: ``archive`` (any media, nested folders) or ``ravdess``.
        fold: ``ensemble`` (mean of the fold models) or one fold number.
        window: also score time windows of this many seconds (None: per clip only).
        hop: seconds between window starts (default ``window / 2``).
        dask_address: an existing Dask scheduler for extraction (default
            ``$EMOFUSE_DASK_ADDRESS``, else a local cluster of ``n_workers``).
        batch_size: items per extraction task.
        threads: torch CPU threads for scoring (1 is fastest beside busy Dask workers).
    """
    from emofuse.fusion.api import torch_threads
    from emofuse.fusion.score import ScoreProgress, score_items

    logger = get_run_logger()
    t0 = time.perf_counter()
    root = Layout.at(catalog).root
    cat = Catalog(root)
    if run_id is None:
        if model is None:
            raise ValueError("pass run_id, or model to use its latest run")
        run_id = latest_run(cat, model)
        logger.info("using the latest %s run: %s", model, run_id)
    windows = None
    if window is not None:
        hop = float(hop) if hop is not None else float(window) / 2
        if not (float(window) > 0 and hop > 0):
            raise ValueError(f"window and hop must be positive seconds, got window={window}, hop={hop}")
        windows = (float(window), hop)
    elif hop is not None:
        raise ValueError("hop needs window (seconds per window)")
    extraction = None
    paths: list[str] = []
    if source:
        source = os.path.abspath(source) if "://" not in source else source
        configs = run_feature_sets(cat, run_id)
        logger.info("extracting %s for run %s (cached items are skipped)", ", ".join(configs), run_id)
        extraction = extract_on_dask.with_options(task_runner=dask_runner(dask_address, n_workers, api_url=current_api_url()))(
            source=source, catalog=root, corpus=corpus, feature_sets=list(configs), fps=5.0,
            batch_size=batch_size, selection=None, configs=configs,
            run_id=time.strftime("%Y%m%d-%H%M%S-") + new_id()[:6])
        paths = _files_under(source, corpus)
        media = cat.media(dedupe=False)
        media = media[media["path"].isin(set(paths))]
        item_ids = list(dict.fromkeys(media.sort_values("path")["item_id"]))
        logger.info("%d files (%d distinct items) under %s", len(paths), len(item_ids), source)
    t_score = time.perf_counter()

    def progress(p: ScoreProgress) -> None:
        logger.info(p.line())

    with torch_threads(threads):
        result = score_items(root, run_id, item_ids=item_ids, fold=fold, device=device, windows=windows,
                             progress=progress)
    wall = time.perf_counter() - t0
    summary = _summary(cat, run_id, result, source, paths, wall, time.perf_counter() - t_score)
    create_markdown_artifact(summary["markdown"], key="score-summary", description=f"emofuse score {run_id}")
    print(summary["markdown"])
    return {"run_id": run_id, "model": result.model, "written": result.n_written, "skipped": result.n_skipped,
            "window_rows": result.n_window_rows, "unscorable": result.n_unscorable, "statuses": result.statuses,
            "path": result.path, "status_path": result.status_path, "wall_s": wall, "files": len(paths),
            "media_seconds": summary["media_seconds"], "extraction": extraction}


def _summary(cat: Catalog, run_id: str, result: Any, source: str | None, paths: list[str], wall: float,
             score_wall: float) -> dict[str, Any]:
    """A markdown report: statuses, rows, throughput, where the outputs are, the files without predictions."""
    media = cat.media(dedupe=False)
    if source:
        media = media[media["path"].isin(set(paths))]
    else:
        media = media.drop_duplicates("item_id")
    items = media.drop_duplicates("item_id")
    media_s = float(items["duration"].astype("float64").fillna(0.0).sum()) if len(items) else 0.0
    n_files = len(paths) if source else len(items)
    counts = ", ".join(f"{k} = {v}" for k, v in sorted(result.statuses.items())) or "-"
    windows = f"{result.n_window_rows} ({result.windows})" if result.windows else "-"
    lines = [
        f"# score run {run_id} ({result.model}, {result.fold})", "",
        (f"source: `{source}`" if source else f"catalog items: {len(items)}"), "",
        "| files | items | statuses | clip rows written | window rows written | already scored | wall s | files/s | media s/s |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {n_files} | {len(items)} | {counts} | {result.n_written} | {windows} | {result.n_skipped} | {wall:.1f} | "
        f"{n_files / max(wall, 1e-9):.2f} | {media_s / max(wall, 1e-9):.1f} |", "",
        f"scoring alone: {score_wall:.1f} s for {result.media_seconds:.0f} media s not scored before", "",
    ]
    if result.reasons:
        by_item = media.groupby("item_id")["relpath"].apply(lambda s: ", ".join(sorted(map(str, s)))).to_dict()
        lines += [f"## {len(result.reasons)} items without predictions (status `no_features`)", "",
                  "| file | reason |", "|---|---|"]
        for k, (item, why) in enumerate(sorted(result.reasons.items(), key=lambda kv: by_item.get(kv[0], kv[0]))):
            if k == SUMMARY_MAX_LISTED:
                lines.append(f"| … {len(result.reasons) - k} more | see the status table |")
                break
            lines.append(f"| `{by_item.get(item, item)}` | {why.replace('|', '/')} |")
        lines.append("")
    lines += [
        "## outputs", "",
        f"- predictions: `{result.path}`",
        f"- scoring statuses: `{result.status_path}`",
        f"- extraction statuses: `{cat.layout.status}`",
        f"- read: `pd.read_parquet('{cat.layout.predictions}').merge("
        f"pd.read_parquet('{cat.layout.media}').drop_duplicates('item_id'), on='item_id')`",
    ]
    return {"markdown": "\n".join(lines), "media_seconds": media_s}
