"""What a training run leaves in its folder ``<catalog>/runs/<run_id>/``, and the reports made from it.

```
config.json              model name + config, feature-set keys, alignment, fold plan, seed,
                         device, parameter count, provenance (:class:`~emofuse.fusion.run_config.RunConfig`)
norm_stats.safetensors   z-normalisation statistics per fold (``fold-<k>/<modality>.mean|std``)
fold-<k>.safetensors     best-on-validation weights of fold k
folds/fold-<k>.json      fold result: history, best epoch, val/test metrics, test predictions
metrics.json             per fold + mean ± std (accuracy, UAR, macro F1; CCC/RMSE), summed confusion matrix
confusion_matrix.png     summed over folds, class names, row-normalised annotations
learning_curves.png      train/val loss and the validation metric per epoch per fold
manifest.json            sha256 and size of every file above
checkpoints/             per-epoch checkpoints of unfinished folds (removed when a fold finishes)
```

The folder itself is a :class:`~emofuse.catalog.runs.RunFolder` (``Catalog.run(run_id)``):
it writes atomically, records every file in ``manifest.json`` and hands a file back only
after checking it. Weights and statistics are safetensors only: loading refuses a pickle
(or a ``torch.save`` zip), any file that is not a safetensors file, and any file whose
sha256 differs from the one recorded (:class:`~emofuse.catalog.runs.RunIntegrityError`).

Example:
    >>> import tempfile, torch
    >>> from emofuse.catalog.runs import RunFolder
    >>> run = RunFolder(tempfile.mkdtemp() + "/runs/demo")
    >>> _ = save_weights(run, 0, {"w": torch.ones(2, 3)})
    >>> load_weights(run, 0)["w"].shape
    torch.Size([2, 3])
    >>> summarise([{"test": {"accuracy": 0.5}}, {"test": {"accuracy": 0.7}}])["accuracy"]["mean"]
    0.6
    >>> summed_confusion([{"test": {"confusion_matrix": [[1, 0], [1, 2]]}}] * 2, 2).tolist()
    [[2, 0], [2, 4]]
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from emofuse.catalog.runs import RunFolder, RunIntegrityError
from emofuse.fusion.dataset import NormStats
from emofuse.fusion.inference import Task
from emofuse.fusion.run_config import RunConfig

METRICS = "metrics.json"
NORM_STATS = "norm_stats.safetensors"
CATEGORICAL_METRICS = ("accuracy", "uar", "macro_f1")
DIMENSIONAL_METRICS = ("ccc_valence", "ccc_arousal", "ccc_mean", "rmse_valence", "rmse_arousal", "rmse_mean")


def weights_name(fold: int) -> str:
    return f"fold-{fold}.safetensors"


def fold_result_name(fold: int) -> str:
    return f"folds/fold-{fold}.json"


# --------------------------------------------------------------------------- tensors
def save_tensors(run: RunFolder, name: str, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> str:
    """Save CPU tensors as safetensors (atomically, recorded in the manifest)."""
    if not name.endswith(".safetensors"):
        raise ValueError(f"{name}: tensors are saved as .safetensors only")
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return run.write_bytes(name, st_save(clean, metadata=metadata))


def load_tensors(run: RunFolder, name: str) -> dict[str, torch.Tensor]:
    """Load a verified safetensors file of the run onto the CPU."""
    return st_load(run.read_verified(name))


def save_weights(run: RunFolder, fold: int, state: dict[str, torch.Tensor]) -> str:
    return save_tensors(run, weights_name(fold), state, metadata={"fold": str(fold)})


def load_weights(run: RunFolder, fold: int) -> dict[str, torch.Tensor]:
    return load_tensors(run, weights_name(fold))


def save_norm_stats(run: RunFolder, stats: dict[int, NormStats]) -> str:
    tensors: dict[str, torch.Tensor] = {}
    for fold, st in stats.items():
        tensors.update(st.to_tensors(prefix=f"fold-{fold}/"))
    return save_tensors(run, NORM_STATS, tensors)


def load_norm_stats(run: RunFolder) -> dict[int, NormStats]:
    tensors = load_tensors(run, NORM_STATS)
    folds = sorted({int(k.split("/", 1)[0][len("fold-"):]) for k in tensors})
    return {f: NormStats.from_tensors(tensors, prefix=f"fold-{f}/") for f in folds}


# --------------------------------------------------------------------------- metrics
def fold_metrics_row(fold: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in fold.get("test", {}).items() if isinstance(v, (int, float))}


def summarise(folds: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean ± std (ddof=1) over folds of every scalar test metric."""
    from emofuse.fusion.metrics import summarise_folds

    return summarise_folds([fold_metrics_row(f) for f in folds])


def summed_confusion(folds: Sequence[dict[str, Any]], n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), np.int64)
    for f in folds:
        m = f.get("test", {}).get("confusion_matrix")
        if m is not None:
            cm += np.asarray(m, np.int64)
    return cm


def write_report(run: RunFolder, config: RunConfig, folds: list[dict[str, Any]], task: Task,
                 throughput: dict[str, float], data_timings: dict[str, float]) -> dict[str, Any]:
    """Write ``metrics.json`` and the plots of a finished run; return the metrics."""
    summary = summarise(folds)
    metrics: dict[str, Any] = {
        "run_id": config.run_id, "model": config.model, "n_parameters": config.n_parameters,
        "classes": config.classes, "task": config.to_dict()["task"],
        "folds": [{k: v for k, v in f.items() if k not in ("history", "test_predictions")} for f in folds],
        "summary": summary, "throughput": throughput, "data_timings": data_timings,
    }
    title = f"{config.model} ({config.run_id})"
    if task.n_classes:
        cm = summed_confusion(folds, task.n_classes)
        metrics["confusion_matrix"] = cm.tolist()
        acc = summary.get("accuracy", {}).get("mean", float("nan"))
        run.write_bytes("confusion_matrix.png", plot_confusion(cm, config.classes, title=f"{title}: accuracy {acc:.3f}"))
    run.write_bytes("learning_curves.png",
                    plot_learning_curves({f["fold"]: f.get("history", []) for f in folds}, task.monitor, title=title))
    run.write_json(METRICS, metrics)
    return metrics


def comparison_markdown(cat: Any, models: Sequence[str], metric: str = "accuracy") -> str:
    """A table of each model's latest finished run: held-out ``metric`` mean ± std over folds.

    ``cat`` is a :class:`~emofuse.catalog.store.Catalog`; models without a finished run are left out.
    """
    from emofuse.fusion.run_config import latest_run

    rows = ["| model | run | parameters | test " + metric + " (mean ± std over folds) |", "|---|---|---|---|"]
    for model in models:
        try:
            run_id = latest_run(cat, model)
        except ValueError:
            continue
        try:
            m = cat.run(run_id).read_json(METRICS)
        except (OSError, ValueError, RunIntegrityError) as e:  # still training, or damaged: say so
            rows.append(f"| {model} | `{run_id}` | | no metrics ({type(e).__name__}) |")
            continue
        s = m["summary"].get(metric, {})
        rows.append(f"| {model} | `{run_id}` | {m['n_parameters']:,} | "
                    f"{s.get('mean', float('nan')):.3f} ± {s.get('std', float('nan')):.3f} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- plots
def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_confusion(cm: np.ndarray, classes: Sequence[str], *, title: str = "") -> bytes:
    """PNG of a confusion matrix (rows true, columns predicted): colour and text = row share, with counts."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * k, 0.8 + 0.7 * k))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if cm[i, j] or i == j:
                ax.text(j, i, f"{share[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.55 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_title(title or "confusion matrix (summed over folds)")
    return _png(fig)


def plot_learning_curves(histories: dict[int, list[dict[str, Any]]], monitor: str, *, title: str = "") -> bytes:
    """PNG with train/val loss per epoch (left) and the validation metric (right), one colour per fold."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.get_cmap("tab10")
    for n, (fold, hist) in enumerate(sorted(histories.items())):
        if not hist:
            continue
        ep = [h["epoch"] for h in hist]
        c = colours(n % 10)
        a1.plot(ep, [h["train_loss"] for h in hist], color=c, label=f"fold {fold} train")
        a1.plot(ep, [h["val_loss"] for h in hist], color=c, linestyle="--", label=f"fold {fold} val")
        a2.plot(ep, [h.get(f"val_{monitor}", np.nan) for h in hist], color=c, label=f"fold {fold}")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend(fontsize=7, ncol=2)
    a2.set_xlabel("epoch")
    a2.set_ylabel(f"validation {monitor}")
    a2.legend(fontsize=7)
    fig.suptitle(title or "learning curves")
    return _png(fig)


# --------------------------------------------------------------------------- markdown
def markdown_summary(config: RunConfig, metrics: dict[str, Any]) -> str:
    """A markdown report (table per fold + mean ± std) for a Prefect artifact or a README."""
    folds = metrics.get("folds", [])
    categorical = bool(config.classes) and config.task.n_classes > 0
    cols = list(CATEGORICAL_METRICS) if categorical else []
    per_frame = bool(config.task.dimensional) and config.data.targets == "frame"
    if config.task.dimensional:
        cols += ["ccc_valence", "ccc_arousal", "rmse_mean"] + (["ccc_video_mean"] if per_frame else [])
    names = {"accuracy": "accuracy", "uar": "UAR", "macro_f1": "macro F1", "ccc_valence": "CCC valence",
             "ccc_arousal": "CCC arousal", "rmse_mean": "RMSE", "ccc_video_mean": "per-video CCC (mean)"}
    lines = [
        f"### emofuse run `{config.run_id}`",
        "",
        f"model **{config.model}** ({config.n_parameters:,} parameters) on "
        + ", ".join(f"{m}=`{k}`" for m, k in config.feature_sets.items())
        + f"; device {config.device}; seed {config.seed}.",
    ]
    if categorical:
        lines.append(f"{len(config.classes)} classes (chance {1 / len(config.classes):.3f}); "
                     "test scores of the model selected on validation (folds held out by "
                     f"{' / '.join(sorted({f.get('by', 'speaker') for f in folds}) or ['speaker'])}).")
    if per_frame:
        lines.append("Trained per frame: CCC over all valid frames of each fold's test split (ABAW), and the "
                     "mean over its videos of each video's CCC (valence and arousal averaged).")
    by = sorted({f.get("by", "speaker") for f in folds}) or ["speaker"]
    held_out = "test " + ("speakers" if by == ["speaker"] else "sessions" if by == ["session"] else
                          "split" if by == ["split"] else "groups")
    lines += ["", f"| fold | {held_out} | test items | best epoch | " + " | ".join(names[c] for c in cols) + " |",
              "|---|---|---|---|" + "---|" * len(cols)]
    for f in folds:
        t = f.get("test", {})
        vals = " | ".join(f"{t.get(c, float('nan')):.3f}" for c in cols)
        lines.append(f"| {f['fold']} | {', '.join(f.get('test_speakers', []))} | {f.get('n_test_items', '')} | "
                     f"{f.get('best_epoch', '')} | {vals} |")
    summ = metrics.get("summary", {})
    if folds:
        vals = " | ".join(f"**{summ[c]['mean']:.3f} ± {summ[c]['std']:.3f}**" if c in summ else "" for c in cols)
        lines.append(f"| **mean ± std** | | {sum(f.get('n_test_items', 0) for f in folds)} | | {vals} |")
    return "\n".join(lines) + "\n"


__all__ = [
    "METRICS", "NORM_STATS", "comparison_markdown", "fold_result_name", "load_norm_stats", "load_tensors", "load_weights",
    "markdown_summary", "plot_confusion", "plot_learning_curves", "save_norm_stats", "save_tensors", "save_weights",
    "summarise", "summed_confusion", "weights_name", "write_report",
]
