"""Fair comparisons of runs: metrics with bootstrap intervals, cross-corpus scores, paired tests.

* :func:`run_results` — a trained run's test metrics per fold and pooled (all folds' test items
  together), each with a seeded bootstrap 95 % interval over test items (dimensional metrics of
  runs trained per frame resample whole videos); :func:`record_run_results` writes them to the
  catalog's ``results/`` table (evaluation id ``train-<run>``).
* :func:`evaluate_corpus` — a run scored on another corpus's items of the catalog (features
  extracted): the run's class probabilities are summed into the shared classes through the
  train corpus's ``class_map``, the items' labels mapped through the test corpus's; items whose
  label maps to no shared class are left out and counted. Rows go to ``results/``
  (evaluation id ``<run>@<corpus>``).
* :func:`compare` — two runs on the same test items: paired bootstrap of each metric's
  difference (b - a) and McNemar's test of accuracy (:mod:`emofuse.fusion.stats`).

Example (shared-class probabilities of a RAVDESS-like run):
    >>> import numpy as np
    >>> to_shared(np.array([[0.1, 0.5, 0.4]]), ["neutral", "calm", "happy"], {"neutral": "neutral", "happy": "happy"},
    ...           ("neutral", "happy", "sad")).round(2).tolist()
    [[0.2, 0.8, 0.0]]
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.recipe import SHARED_CLASSES
from emofuse.catalog.corpora.registry import get_corpus
from emofuse.catalog.store import Catalog
from emofuse.fusion.metrics import accuracy, ccc, macro_f1, rmse, unweighted_average_recall
from emofuse.fusion.run_config import RunConfig
from emofuse.fusion.runs import fold_result_name
from emofuse.fusion.stats import bootstrap_interval, mcnemar, paired_bootstrap

#: Metrics of class predictions (label arrays) with their intervals.
CLASS_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy, "uar": unweighted_average_recall, "macro_f1": macro_f1}
#: Metrics of one dimension's predictions.
DIM_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"ccc": ccc, "rmse": rmse}
N_BOOT = 1000
SEED = 0


@dataclass(frozen=True)
class Scored:
    """Per-item test predictions of one run: labels as class names, or valence/arousal, with truth."""

    item_id: np.ndarray
    fold: np.ndarray
    true: np.ndarray | None = None
    pred: np.ndarray | None = None
    true_va: np.ndarray | None = None
    pred_va: np.ndarray | None = None
    dims: tuple[str, ...] = ()


def to_shared(probs: np.ndarray, classes: Sequence[str], class_map: dict[str, str],
              shared: Sequence[str] = SHARED_CLASSES) -> np.ndarray:
    """(N, len(shared)) probabilities: each run class's probability added to the shared class it maps to,
    renormalised over the shared classes (classes that map nowhere drop out)."""
    out = np.zeros((len(probs), len(shared)), np.float64)
    for k, c in enumerate(classes):
        s = class_map.get(c)
        if s in shared:
            out[:, list(shared).index(s)] += probs[:, k]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def _codes(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vocab = {c: i for i, c in enumerate(sorted(set(true.tolist()) | set(pred.tolist())))}
    return (np.array([vocab[c] for c in true], np.int64), np.array([vocab[c] for c in pred], np.int64))


def interval_rows(s: Scored, fold: str, *, n_boot: int, seed: int, groups: np.ndarray | None = None) -> list[dict]:
    """One row per metric of ``s``'s items: value and its bootstrap interval (``groups``: resample those)."""
    rows: list[dict] = []
    if s.true is not None and len(s.true):
        t, p = _codes(s.true, s.pred)
        for name, fn in CLASS_METRICS.items():
            ci = bootstrap_interval(fn, t, p, groups=groups, n_boot=n_boot, seed=seed)
            rows.append({"fold": fold, "metric": name, "value": ci.estimate, "low": ci.low, "high": ci.high,
                         "level": ci.level, "n_items": ci.n})
    if s.true_va is not None and len(s.true_va):
        for j, dim in enumerate(s.dims):
            ok = np.isfinite(s.true_va[:, j]) & np.isfinite(s.pred_va[:, j])
            if not ok.any():
                continue
            g = groups[ok] if groups is not None else None
            for name, fn in DIM_METRICS.items():
                ci = bootstrap_interval(fn, s.true_va[ok, j], s.pred_va[ok, j], groups=g, n_boot=n_boot, seed=seed)
                rows.append({"fold": fold, "metric": f"{name}_{dim}", "value": ci.estimate, "low": ci.low,
                             "high": ci.high, "level": ci.level, "n_items": ci.n})
    return rows


def _subset(s: Scored, keep: np.ndarray) -> Scored:
    pick = (lambda a: a[keep] if a is not None else None)
    return Scored(s.item_id[keep], s.fold[keep], pick(s.true), pick(s.pred), pick(s.true_va), pick(s.pred_va), s.dims)


def run_test_predictions(cat: Catalog, run_id: str) -> tuple[RunConfig, Scored]:
    """The test predictions of every trained fold of a run (from its ``folds/fold-<k>.json``)."""
    run = cat.run(run_id)
    config = RunConfig.load(run)
    ids, folds, true, pred, va = [], [], [], [], []
    for k in config.completed_folds:
        p = run.read_json(fold_result_name(k))["test_predictions"]
        n = len(p["item_id"])
        ids += p["item_id"]
        folds += [str(k)] * n
        if "true" in p:
            true += [config.classes[i] for i in p["true"]]
            pred += [config.classes[i] for i in p["pred"]]
        if "va" in p:
            va += p["va"]
    dims = tuple(config.task.dimensional)
    true_va = pred_va = None
    if va and dims:
        media = cat.media().drop_duplicates("item_id").set_index("item_id")
        true_va = np.stack([media.reindex(ids)[d].to_numpy(np.float64) if d in media else np.full(len(ids), np.nan)
                            for d in dims], axis=1)
        pred_va = np.asarray(va, np.float64).reshape(len(ids), -1)[:, :len(dims)]
    labels = (np.asarray(true, object), np.asarray(pred, object)) if true else (None, None)
    return config, Scored(np.asarray(ids, object), np.asarray(folds, object), *labels, true_va, pred_va, dims)


def corpus_of(cat: Catalog, item_ids: Sequence[str]) -> str:
    """The corpus (or ``a+b``) of these items in the media table."""
    media = cat.media()
    names = sorted(set(media.loc[media["item_id"].isin(set(item_ids)), "corpus"].dropna()))
    return "+".join(names) or "unknown"


def _describe(config: RunConfig) -> dict[str, str]:
    return {"run": config.run_id, "model": config.model,
            "feature_sets": ",".join(f"{m}={k}" for m, k in config.feature_sets.items())}


def run_results(cat: Catalog, run_id: str, *, n_boot: int = N_BOOT, seed: int = SEED) -> pd.DataFrame:
    """A run's test metrics per fold and pooled, with bootstrap intervals (results-table columns)."""
    config, s = run_test_predictions(cat, run_id)
    per_frame = config.data.targets == "frame"
    rows: list[dict] = []
    for k in dict.fromkeys(s.fold.tolist()):
        part = _subset(s, s.fold == k)
        rows += interval_rows(part, k, n_boot=n_boot, seed=seed, groups=part.item_id if per_frame else None)
    rows += interval_rows(s, "pooled", n_boot=n_boot, seed=seed, groups=s.item_id if per_frame else None)
    corpus = corpus_of(cat, s.item_id.tolist())
    df = pd.DataFrame(rows, columns=["fold", "metric", "value", "low", "high", "level", "n_items"])
    df = df.assign(evaluation=f"train-{run_id}", kind="train", train_corpus=corpus, test_corpus=corpus, split="test",
                   n_left_out=0, n_boot=n_boot, seed=seed, classes=[list(config.classes)] * len(df),
                   **_describe(config))
    return df


def record_run_results(catalog_root: str | os.PathLike[str], run_id: str, *, n_boot: int = N_BOOT,
                       seed: int = SEED) -> pd.DataFrame:
    """Compute :func:`run_results` and write them (evaluation ``train-<run>``; kept if already there).
    A run without per-item test predictions to score (none kept) writes nothing."""
    cat = Catalog(catalog_root)
    df = run_results(cat, run_id, n_boot=n_boot, seed=seed)
    if len(df):
        cat.write_results(f"train-{run_id}", df)
    return df


@dataclass
class CorpusEvaluation:
    """A run scored on a corpus: its results rows, the shared classes and the item counts."""

    run_id: str
    corpus: str
    rows: pd.DataFrame
    classes: tuple[str, ...]
    n_scored: int
    n_left_out: int
    n_unscored: int
    scored: Scored


def corpus_predictions(cat: Catalog, run_id: str, corpus: str, *,
                       shared: Sequence[str] = SHARED_CLASSES) -> tuple[RunConfig, Scored, int, int]:
    """Score (when not yet scored) the run on the corpus's labelled items; the mapped predictions, items
    left out (label mapped to no shared class) and items not scored (features missing)."""
    from emofuse.fusion.score import score_items

    run = cat.run(run_id)
    config = RunConfig.load(run)
    _, own = run_test_predictions(cat, run_id)
    train_map = get_corpus(corpus_of(cat, own.item_id.tolist()).split("+")[0]).class_map
    test_map = get_corpus(corpus).class_map
    media = cat.media().drop_duplicates("item_id")
    media = media[(media["corpus"] == corpus) & media["emotion"].notna()]
    mapped = media["emotion"].map(lambda e: test_map.get(e)).where(lambda m: m.isin(list(shared)))
    left_out = int(mapped.isna().sum())
    media = media.assign(shared=mapped)[mapped.notna()]
    ids = media["item_id"].tolist()
    if ids:
        score_items(cat.root, run_id, item_ids=ids, record_status=False)
    preds = cat.predictions(run_id=run_id)
    preds = preds[(preds["fold"] == "ensemble") & (preds["window"] == "clip") & preds["item_id"].isin(set(ids))]
    preds = preds.drop_duplicates("item_id", keep="last").set_index("item_id")
    kept = [i for i in ids if i in preds.index]
    probs = preds.loc[kept, [f"p_{c}" for c in config.classes]].to_numpy(np.float64)
    shared_p = to_shared(probs, config.classes, train_map, shared)
    pred = np.asarray([shared[k] for k in shared_p.argmax(axis=1)], object) if len(kept) else np.zeros(0, object)
    true = media.set_index("item_id").loc[kept, "shared"].to_numpy(object)
    s = Scored(np.asarray(kept, object), np.full(len(kept), "ensemble", object), true, pred)
    return config, s, left_out, len(ids) - len(kept)


def evaluate_corpus(catalog_root: str | os.PathLike[str], run_id: str, corpus: str, *, n_boot: int = N_BOOT,
                    seed: int = SEED, write: bool = True) -> CorpusEvaluation:
    """Score a run on a corpus's items through the class maps; write results rows (``<run>@<corpus>``)."""
    cat = Catalog(catalog_root)
    config, s, left_out, unscored = corpus_predictions(cat, run_id, corpus)
    if not len(s.item_id):
        raise ValueError(f"run {run_id} scored none of corpus {corpus!r}'s items with a shared class "
                         f"({left_out} left out without a mapped label, {unscored} without features)")
    rows = pd.DataFrame(interval_rows(s, "ensemble", n_boot=n_boot, seed=seed))
    _, own = run_test_predictions(cat, run_id)
    rows = rows.assign(evaluation=f"{run_id}@{corpus}", kind="cross-corpus",
                       train_corpus=corpus_of(cat, own.item_id.tolist()), test_corpus=corpus, split="test",
                       n_left_out=left_out, n_boot=n_boot, seed=seed,
                       classes=[list(SHARED_CLASSES)] * len(rows), **_describe(config))
    if write:
        cat.write_results(str(rows["evaluation"].iloc[0]), rows)
    return CorpusEvaluation(run_id, corpus, rows, SHARED_CLASSES, len(s.item_id), left_out, unscored, s)


def labelled_corpora(cat: Catalog) -> list[str]:
    """Corpora of the media table with labelled items and a class map."""
    media = cat.media()
    names = sorted(set(media.loc[media["emotion"].notna(), "corpus"].dropna()))
    return [n for n in names if _class_map(n)]


def _class_map(name: str) -> dict[str, str]:
    try:
        return get_corpus(name).class_map
    except ValueError:
        return {}


def evaluate_matrix(catalog_root: str | os.PathLike[str], *, n_boot: int = N_BOOT,
                    seed: int = SEED) -> pd.DataFrame:
    """Fill the train-corpus x test-corpus matrix: each finished run's own results and its score on every
    other labelled corpus of the catalog; returns the whole results table."""
    cat = Catalog(catalog_root)
    corpora = labelled_corpora(cat)
    for run_id in cat.runs():
        try:
            config, own = run_test_predictions(cat, run_id)
        except (OSError, ValueError, KeyError):
            continue  # not a finished run
        record_run_results(catalog_root, run_id, n_boot=n_boot, seed=seed)
        home = corpus_of(cat, own.item_id.tolist())
        if not config.classes or not _class_map(home.split("+")[0]):
            continue  # nothing to map into the shared classes
        for corpus in corpora:
            if corpus != home and not cat.results()["evaluation"].eq(f"{run_id}@{corpus}").any():
                evaluate_corpus(catalog_root, run_id, corpus, n_boot=n_boot, seed=seed)
    return cat.results()


def compare(catalog_root: str | os.PathLike[str], run_a: str, run_b: str, *, corpus: str | None = None,
            n_boot: int = N_BOOT, seed: int = SEED) -> pd.DataFrame:
    """Paired comparison of two runs on the test items they share (their own folds, or ``corpus``):
    one row per metric with ``difference`` (b - a), its interval and p-value; accuracy adds McNemar's."""
    cat = Catalog(catalog_root)
    if corpus is None:
        (_, a), (_, b) = run_test_predictions(cat, run_a), run_test_predictions(cat, run_b)
    else:
        a, b = (corpus_predictions(cat, r, corpus)[1] for r in (run_a, run_b))
    common = sorted(set(a.item_id.tolist()) & set(b.item_id.tolist()))
    if not common:
        raise ValueError(f"runs {run_a} and {run_b} share no test items")
    ia = pd.Series(np.arange(len(a.item_id)), index=a.item_id).loc[common].to_numpy()
    ib = pd.Series(np.arange(len(b.item_id)), index=b.item_id).loc[common].to_numpy()
    rows = []
    if a.true is not None and b.true is not None:
        if not np.array_equal(a.true[ia], b.true[ib]):
            raise ValueError(f"runs {run_a} and {run_b} label the shared items differently; compare on a corpus")
        vocab = {c: i for i, c in enumerate(sorted(set(a.true[ia]) | set(a.pred[ia]) | set(b.pred[ib])))}
        t, pa_, pb = (np.array([vocab[c] for c in x], np.int64) for x in (a.true[ia], a.pred[ia], b.pred[ib]))
        for name, fn in CLASS_METRICS.items():
            c = paired_bootstrap(fn, t, pa_, pb, n_boot=n_boot, seed=seed)
            row = {"metric": name, "a": fn(t, pa_), "b": fn(t, pb), "difference": c.difference, "low": c.low,
                   "high": c.high, "p_value": c.p_value, "n_items": c.n}
            if name == "accuracy":
                m = mcnemar(t, pa_, pb)
                row.update(mcnemar_p=m.p_value, a_only=m.a_only, b_only=m.b_only)
            rows.append(row)
    if a.true_va is not None and b.true_va is not None:
        for j, dim in enumerate(a.dims):
            if dim not in b.dims:
                continue
            t = a.true_va[ia, j]
            pa_, pb = a.pred_va[ia, j], b.pred_va[ib, b.dims.index(dim)]
            c = paired_bootstrap(ccc, t, pa_, pb, n_boot=n_boot, seed=seed)
            rows.append({"metric": f"ccc_{dim}", "a": ccc(t, pa_), "b": ccc(t, pb), "difference": c.difference,
                         "low": c.low, "high": c.high, "p_value": c.p_value, "n_items": c.n})
    return pd.DataFrame(rows).assign(run_a=run_a, run_b=run_b, corpus=corpus or "own folds")


__all__ = ["CLASS_METRICS", "CorpusEvaluation", "Scored", "compare", "corpus_predictions", "evaluate_corpus",
           "evaluate_matrix", "interval_rows", "labelled_corpora", "record_run_results", "run_results",
           "run_test_predictions", "to_shared"]
