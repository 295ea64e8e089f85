"""The run folder ``<catalog>/runs/<run_id>/``: what a training run leaves behind.

```
config.json              model name + config, feature-set keys, alignment, fold plan, seed,
                         device, parameter count, provenance (package versions, git revision)
norm_stats.safetensors   z-normalisation statistics per fold (``fold-<k>/<modality>.mean|std``)
fold-<k>.safetensors     best-on-validation weights of fold k
folds/fold-<k>.json      fold result: history, best epoch, val/test metrics, test predictions
metrics.json             per fold + mean ± std (accuracy, UAR, macro F1; CCC/RMSE), summed confusion matrix
confusion_matrix.png     summed over folds, class names, row-normalised annotations
learning_curves.png      train/val loss and the validation metric per epoch per fold
manifest.json            sha256 and size of every file above
checkpoints/             per-epoch checkpoints of unfinished folds (removed when a fold finishes)
```

Weights and statistics are safetensors only. :func:`read_verified` refuses a pickle (or a
``torch.save`` zip), any file that is not a safetensors file, and any file whose sha256
differs from the one recorded in ``manifest.json`` (:class:`RunIntegrityError`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from fsspec.core import url_to_fs
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from emofuse.catalog import atomic
from emofuse.catalog.atomic import is_local, new_id
from emofuse.fusion.data import NormStats

MANIFEST = "manifest.json"
CONFIG = "config.json"
METRICS = "metrics.json"
NORM_STATS = "norm_stats.safetensors"
CATEGORICAL_METRICS = ("accuracy", "uar", "macro_f1")
DIMENSIONAL_METRICS = ("ccc_valence", "ccc_arousal", "ccc_mean", "rmse_valence", "rmse_arousal", "rmse_mean")


class RunIntegrityError(RuntimeError):
    """A run file is missing, not safetensors (e.g. a pickle), or differs from its recorded checksum."""


def new_run_id(model: str) -> str:
    """``<model>-<UTC yyyymmdd-HHMMSS>-<6 hex>``: sortable, unique, never all digits."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{model}-{now}-{new_id()[:6]}"


def weights_name(fold: int) -> str:
    return f"fold-{fold}.safetensors"


# --------------------------------------------------------------------------- raw file access
def _fs(path: str) -> tuple[Any, str]:
    fs, p = url_to_fs(path)
    return fs, p


def write_bytes(run_dir: str, name: str, data: bytes, *, record: bool = True) -> str:
    """Write ``run_dir/name`` atomically (:func:`emofuse.catalog.atomic.write_bytes`); record its sha256."""
    path = f"{run_dir}/{name}"
    atomic.write_bytes(path, data)
    if record:
        _record(run_dir, name, data)
    return path


def read_bytes(run_dir: str, name: str) -> bytes:
    fs, p = _fs(f"{run_dir}/{name}")
    if not fs.exists(p):
        raise FileNotFoundError(f"{run_dir}/{name} does not exist")
    with fs.open(p, "rb") as f:
        return f.read()


def exists(run_dir: str, name: str) -> bool:
    fs, p = _fs(f"{run_dir}/{name}")
    return bool(fs.exists(p))


def read_manifest(run_dir: str) -> dict[str, Any]:
    if not exists(run_dir, MANIFEST):
        return {"files": {}}
    return json.loads(read_bytes(run_dir, MANIFEST))


def _record(run_dir: str, name: str, data: bytes) -> None:
    man = read_manifest(run_dir)
    man.setdefault("files", {})[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    write_bytes(run_dir, MANIFEST, json.dumps(man, indent=2, sort_keys=True).encode(), record=False)


def write_json(run_dir: str, name: str, obj: Any) -> str:
    """Write JSON keeping key order (model configs rely on the order of their modality dicts)."""
    return write_bytes(run_dir, name, json.dumps(obj, indent=2, default=_jsonable).encode())


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _looks_like_pickle(data: bytes) -> str | None:
    if data[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save format, which holds a pickle)"
    if data[:1] == b"\x80" and len(data) > 1 and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    return None


def check_safetensors(name: str, data: bytes) -> None:
    """Raise RunIntegrityError unless ``data`` is a well-formed safetensors file (never unpickle)."""
    what = _looks_like_pickle(data)
    if what:
        raise RunIntegrityError(f"{name} is {what}; only safetensors files are loaded (pickles can run code)")
    if len(data) < 10:
        raise RunIntegrityError(f"{name} is too short to be a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data) or data[8:9] != b"{":
        raise RunIntegrityError(f"{name} is not a safetensors file (bad header)")
    try:
        json.loads(data[8:8 + n])
    except ValueError as e:
        raise RunIntegrityError(f"{name} is not a safetensors file (header is not JSON: {e})") from None


def read_verified(run_dir: str, name: str) -> bytes:
    """Bytes of ``run_dir/name`` after checking it against ``manifest.json`` (and its format for tensors)."""
    if name.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")):
        raise RunIntegrityError(f"{name}: only safetensors weights are loaded, never pickle-based formats")
    man = read_manifest(run_dir).get("files", {})
    if name not in man:
        raise RunIntegrityError(f"{run_dir}/{name} is not recorded in {MANIFEST}; refusing to load it")
    try:
        data = read_bytes(run_dir, name)
    except FileNotFoundError:
        raise RunIntegrityError(f"{run_dir}/{name} is recorded in the manifest but missing") from None
    if name.endswith(".safetensors"):
        check_safetensors(f"{run_dir}/{name}", data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != man[name]["sha256"]:
        raise RunIntegrityError(
            f"{run_dir}/{name} has sha256 {digest[:16]}…, but the run's manifest records "
            f"{man[name]['sha256'][:16]}…: the file was changed after training; refusing to load it")
    return data


# --------------------------------------------------------------------------- tensors
def save_tensors(run_dir: str, name: str, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> str:
    """Save CPU tensors as safetensors (atomically, recorded in the manifest)."""
    if not name.endswith(".safetensors"):
        raise ValueError(f"{name}: tensors are saved as .safetensors only")
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return write_bytes(run_dir, name, st_save(clean, metadata=metadata))


def load_tensors(run_dir: str, name: str) -> dict[str, torch.Tensor]:
    """Load a verified safetensors file of the run onto the CPU."""
    return st_load(read_verified(run_dir, name))


def save_weights(run_dir: str, fold: int, state: dict[str, torch.Tensor]) -> str:
    return save_tensors(run_dir, weights_name(fold), state, metadata={"fold": str(fold)})


def load_weights(run_dir: str, fold: int) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir, weights_name(fold))


def save_norm_stats(run_dir: str, stats: dict[int, NormStats]) -> str:
    tensors: dict[str, torch.Tensor] = {}
    for fold, st in stats.items():
        tensors.update(st.to_tensors(prefix=f"fold-{fold}/"))
    return save_tensors(run_dir, NORM_STATS, tensors)


def load_norm_stats(run_dir: str) -> dict[int, NormStats]:
    tensors = load_tensors(run_dir, NORM_STATS)
    folds = sorted({int(k.split("/", 1)[0][len("fold-"):]) for k in tensors})
    return {f: NormStats.from_tensors(tensors, prefix=f"fold-{f}/") for f in folds}


def read_config(run_dir: str) -> dict[str, Any]:
    return json.loads(read_verified(run_dir, CONFIG))


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
def markdown_summary(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A markdown report (table per fold + mean ± std) for a Prefect artifact or a README."""
    folds = metrics.get("folds", [])
    categorical = bool(config.get("classes")) and config.get("task", {}).get("n_classes", 0) > 0
    cols = list(CATEGORICAL_METRICS) if categorical else []
    if config.get("task", {}).get("dimensional"):
        cols += ["ccc_valence", "ccc_arousal", "rmse_mean"]
    names = {"accuracy": "accuracy", "uar": "UAR", "macro_f1": "macro F1", "ccc_valence": "CCC valence",
             "ccc_arousal": "CCC arousal", "rmse_mean": "RMSE"}
    lines = [
        f"### emofuse run `{config.get('run_id')}`",
        "",
        f"model **{config.get('model')}** ({config.get('n_parameters', 0):,} parameters) on "
        + ", ".join(f"{m}=`{k}`" for m, k in config.get("feature_sets", {}).items())
        + f"; device {config.get('device')}; seed {config.get('seed')}.",
    ]
    if categorical:
        lines.append(f"{len(config['classes'])} classes (chance {1 / len(config['classes']):.3f}); "
                     "test scores of the model selected on validation (speaker-independent folds).")
    lines += ["", "| fold | test speakers | test items | best epoch | " + " | ".join(names[c] for c in cols) + " |",
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
    "CONFIG", "MANIFEST", "METRICS", "NORM_STATS", "RunIntegrityError", "check_safetensors", "exists",
    "load_norm_stats", "load_tensors", "load_weights", "markdown_summary", "new_run_id", "plot_confusion",
    "plot_learning_curves", "read_bytes", "read_config", "read_manifest", "read_verified", "save_norm_stats",
    "save_tensors", "save_weights", "summarise", "summed_confusion", "weights_name", "write_bytes", "write_json",
]
