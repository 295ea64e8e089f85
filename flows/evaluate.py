"""The ``evaluate`` flow: score trained runs on other corpora of the catalog, write ``results/`` rows.

``emofuse evaluate --run RUN --corpus NAME`` scores one run on one corpus's items (features
already extracted) through the corpus recipes' class maps (the shared classes neutral, happy,
sad, angry); ``emofuse evaluate --matrix`` fills the train-corpus x test-corpus matrix for
every finished run of the catalog. The work is :mod:`emofuse.fusion.evaluate`'s; this module
adds the flow, its log lines and a markdown artifact.
"""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from emofuse.catalog.layout import Layout
from emofuse.flows.prefect_env import flow


def results_markdown(rows: Any) -> str:
    """A markdown table of results rows (run, train -> test corpus, fold, metric, value [low, high])."""
    lines = ["| run | train → test | fold | metric | value | 95 % interval | items | left out |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows.itertuples():
        lines.append(f"| `{r.run}` | {r.train_corpus} → {r.test_corpus} | {r.fold} | {r.metric} | {r.value:.3f} | "
                     f"[{r.low:.3f}, {r.high:.3f}] | {r.n_items} | {r.n_left_out} |")
    return "\n".join(lines) + "\n"


@flow(name="evaluate", log_prints=True)
def evaluate(
    catalog: str | None = None,
    run_id: str | None = None,
    corpus: str | None = None,
    matrix: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score trained runs on other corpora's items; write metrics with 95 % bootstrap intervals to ``results/``.

    Args:
        catalog: catalog root, a folder or fsspec URL (default ``$EMOFUSE_CATALOG``
            or ``./emofuse-data/catalog``).
        run_id: the trained run to evaluate (with ``corpus``).
        corpus: the corpus whose items the run is scored on; labels are mapped to the shared
            classes through the recipes' class maps, items without a mapped label are left out and counted.
        matrix: evaluate every finished run of the catalog on every other labelled corpus in it.
        n_boot: bootstrap draws of each interval.
        seed: seed of the bootstrap draws.
    """
    from emofuse.fusion import evaluate as ev

    logger = get_run_logger()
    root = Layout.at(catalog).root
    if matrix:
        rows = ev.evaluate_matrix(root, n_boot=n_boot, seed=seed)
        summary = f"results table: {len(rows)} rows, {rows['evaluation'].nunique()} evaluations"
    else:
        if not (run_id and corpus):
            raise ValueError("give --run and --corpus, or --matrix")
        res = ev.evaluate_corpus(root, run_id, corpus, n_boot=n_boot, seed=seed)
        rows = res.rows
        summary = (f"run {run_id} on {corpus}: {res.n_scored} items scored, {res.n_left_out} left out "
                   f"(no shared class), {res.n_unscored} without features")
    logger.info(summary)
    shown = rows[rows["fold"].isin(["pooled", "ensemble"])]
    text = results_markdown(shown)
    create_markdown_artifact(text, key="evaluate", description="emofuse evaluation (results/ rows)")
    return {"rows": len(rows), "evaluations": sorted(set(rows["evaluation"])), "summary": summary, "markdown": text}
