"""The ``train`` flow: fit a fusion model on cached features, publish its metrics as an artifact.

Training runs in the flow's own process (one device, batched): the GPU, when
there is one, is used by a single process rather than shared between Dask workers.
"""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from emofuse.catalog.layout import Layout
from emofuse.flows.prefect_env import flow


@flow(name="train", log_prints=True)
def train(
    catalog: str | None = None,
    model: str = "tacfn",
    feature_sets: dict[str, str] | None = None,
    model_options: dict[str, Any] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    device: str | None = None,
    run_id: str | None = None,
    threads: int | None = None,
    corpus: str | None = None,
) -> dict[str, Any]:
    """Train a fusion model on the catalog's cached features over speaker-independent folds.

    Folds keep a validation split for early stopping; the run folder lands in
    ``<catalog>/runs/<run_id>`` (weights as safetensors, metrics, plots). The command
    ``emofuse train`` takes the same parameters as options (``--model-option KEY=VALUE``
    for ``model_options``).

    Args:
        catalog: catalog root, a folder or fsspec URL (default ``$EMOFUSE_CATALOG``
            or ``./emofuse-data/catalog``).
        model: model preset, one of the registered models' (tacfn, rcma, concat_mlp, unimodal_audio,
            unimodal_face, and those of installed plug-ins).
        feature_sets: feature set per modality (modality -> feature-set name or key, e.g.
            face -> faces; default: the preset's inputs).
        model_options: overrides of the model's configuration (key -> value, e.g.
            bidirectional -> true, or for a compact RCMA on a CPU channels ->
            ``{"face": 64, "audio": 32, "text": 64}``; default: the preset's).
        epochs: maximum epochs (default: the preset's; early stopping may end sooner).
        batch_size: training batch size (default: the preset's).
        lr: learning rate (default: the preset's).
        folds: number of speaker folds (default: the RAVDESS protocol, else 5).
        seed: seed of every random choice (folds, initialisation, batches).
        device: cuda or cpu (default: cuda when available).
        run_id: an existing run to resume after an interruption (finished folds are kept).
        threads: torch CPU threads (default: torch's choice; 1 is fastest on a busy 2-core machine).
        corpus: train on this corpus's items only, e.g. to evaluate the run on another corpus of the
            same catalog with ``emofuse evaluate`` (default: every labelled item).
    """
    from emofuse.fusion import training_run

    logger = get_run_logger()

    def progress(r: Any) -> None:
        metrics = " ".join(f"{k}={v:.3f}" for k, v in r.val_metrics.items())
        logger.info("fold %d epoch %d/%d  train loss %.4f  val loss %.4f  %s%s", r.fold, r.epoch, r.epochs,
                    r.train_loss, r.val_loss, metrics, "  (best)" if r.improved else "")

    result = training_run.train(Layout.at(catalog).root, model=model, feature_sets=feature_sets,
                                model_config=model_options, epochs=epochs, batch_size=batch_size, lr=lr, folds=folds,
                                seed=seed, device=device, progress=progress, run_id=run_id, threads=threads,
                                corpus=corpus)
    create_markdown_artifact(result.markdown, key=f"train-{model.replace('_', '-')}",
                             description=f"emofuse {model} run {result.run_id}")
    print(result.markdown)
    from emofuse.catalog.store import Catalog
    from emofuse.flows.evaluate import results_markdown

    rows = Catalog(Layout.at(catalog).root).results()
    rows = rows[(rows["run"] == result.run_id) & (rows["fold"] == "pooled")]
    create_markdown_artifact(f"### results of `{result.run_id}` (pooled test items, 95 % bootstrap intervals)\n\n"
                             + results_markdown(rows) + "\nAll runs side by side: `emofuse board`.",
                             key=f"results-{model.replace('_', '-')}",
                             description=f"emofuse results of {result.run_id}")
    return {"run_id": result.run_id, "run_dir": result.run_dir, "metrics": result.metrics,
            "n_parameters": result.n_parameters, "seconds": result.seconds}
