"""The ``score`` flow: predictions of a trained run for catalog items or a whole video archive.

With ``source`` it first registers the files under it (the ``archive`` recipe by
default) and extracts, on Dask, exactly the feature sets the run was trained on
(cached ones are skipped); then it scores and writes Hive-partitioned Parquet
under ``<catalog>/predictions/model=<m>/run=<id>/``.
"""
from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from catalog.atomic import new_id
from catalog.layout import Layout
from catalog.store import Catalog
from flows.extract import extract_on_dask
from flows.runner import dask_runner


def run_feature_sets(cat: Catalog, run_id: str) -> dict[str, dict[str, Any]]:
    """name -> extractor config of every feature set a run was trained on (so extraction reproduces its keys)."""
    from fusion import runs

    config = runs.read_config(cat.layout.run(run_id))
    out = {}
    for key in config["feature_sets"].values():
        info = cat.feature_set_info(key)
        out[info["name"]] = info["config"]
    return out


def latest_run(cat: Catalog, model: str) -> str:
    """The most recent run of ``model`` in the catalog that finished all its folds."""
    from fusion import runs

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


@flow(name="score", log_prints=True)
def score(
    run_id: str | None = None,
    model: str | None = None,
    catalog: str | None = None,
    source: str | None = None,
    corpus: str = "archive",
    item_ids: list[str] | None = None,
    fold: str = "ensemble",
    dask_address: str | None = None,
    n_workers: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
) -> dict[str, Any]:
    """Score with a run: catalog items (``item_ids`` or all), or every file under ``source``.

    Args:
        run_id: a run folder under ``<catalog>/runs``.
        model: instead of ``run_id``, the latest finished run of this model (tacfn, rcma, …).
        source: a folder (or file) of media to register, extract and score; None scores
            what the catalog holds.
        corpus: recipe for ``source``: ``archive`` (any media, nested folders) or ``ravdess``.
        fold: ``ensemble`` (mean of the fold models) or one fold number.
    """
    from fusion import api

    logger = get_run_logger()
    t0 = time.perf_counter()
    root = Layout.at(catalog).root
    cat = Catalog(root)
    if run_id is None:
        if model is None:
            raise ValueError("pass run_id, or model to use its latest run")
        run_id = latest_run(cat, model)
        logger.info("using the latest %s run: %s", model, run_id)
    extraction = None
    if source:
        source = os.path.abspath(source) if "://" not in source else source
        configs = run_feature_sets(cat, run_id)
        extraction = extract_on_dask.with_options(task_runner=dask_runner(dask_address, n_workers))(
            source=source, catalog=root, corpus=corpus, feature_sets=list(configs), fps=5.0,
            batch_size=batch_size, selection=None, configs=configs,
            run_id=time.strftime("%Y%m%d-%H%M%S-") + new_id()[:6])
        media = cat.media(dedupe=False)
        inside = media["path"].str.startswith(source.rstrip("/") + "/") | (media["path"] == source)
        item_ids = list(dict.fromkeys(media.loc[inside, "item_id"]))
        logger.info("%d items under %s", len(item_ids), source)
    result = api.score(root, run_id, item_ids=item_ids, fold=fold, device=device)
    wall = time.perf_counter() - t0
    md = "\n".join([
        f"# score run {run_id} ({result.model}, {result.fold})", "",
        "| predictions written | already scored | without features | wall s |", "|---|---|---|---|",
        f"| {result.n_written} | {result.n_skipped} | {result.n_unscorable} | {wall:.1f} |", "",
        f"predictions: `{result.path}`",
        f"read: `pd.read_parquet('{cat.layout.predictions}')`"])
    create_markdown_artifact(md, key="score-summary", description=f"emofuse score {run_id}")
    print(md)
    return {"run_id": run_id, "model": result.model, "written": result.n_written, "skipped": result.n_skipped,
            "unscorable": result.n_unscorable, "path": result.path, "wall_s": wall,
            "extraction": extraction}
