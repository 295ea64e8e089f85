"""Property-based checks (Hypothesis) of fusion.metrics and fusion.losses against direct numpy definitions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emofuse.fusion import metrics
from emofuse.fusion.losses import ccc as torch_ccc
from emofuse.fusion.losses import ccc_loss

FAST = settings(max_examples=60, deadline=None, database=None)  # nothing written to the tree
values = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)


def pairs(min_size: int = 2, max_size: int = 40):
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(arrays(np.float64, n, elements=values), arrays(np.float64, n, elements=values)))


def labels(max_classes: int = 5, max_size: int = 40):
    return st.integers(1, max_size).flatmap(lambda n: st.tuples(
        arrays(np.int64, n, elements=st.integers(0, max_classes - 1)),
        arrays(np.int64, n, elements=st.integers(0, max_classes - 1))))


def lin_ccc(t: np.ndarray, p: np.ndarray) -> float:
    """Lin (1989): 2 s_tp / (s_t^2 + s_p^2 + (m_t - m_p)^2), population moments."""
    n = len(t)
    mt, mp = sum(t) / n, sum(p) / n
    stp = sum((a - mt) * (b - mp) for a, b in zip(t, p)) / n
    return 2 * stp / (sum((a - mt) ** 2 for a in t) / n + sum((b - mp) ** 2 for b in p) / n + (mt - mp) ** 2)


@FAST
@given(pairs())
def test_ccc_is_lins_definition(tp):
    t, p = tp
    denom = t.var() + p.var() + (t.mean() - p.mean()) ** 2
    assume(denom > 1e-6)
    got = metrics.ccc(t, p)
    assert got == pytest.approx(lin_ccc(list(t), list(p)), abs=1e-9)
    assert -1 - 1e-12 <= got <= 1 + 1e-12
    assert metrics.ccc(p, t) == pytest.approx(got, abs=1e-12)
    # never larger than Pearson's r in size, and of its sign
    if t.std() > 1e-6 and p.std() > 1e-6:
        r = np.corrcoef(t, p)[0, 1]
        assert abs(got) <= abs(r) + 1e-9 and got * r >= -1e-12
    assert metrics.ccc(t, t) == pytest.approx(1.0) if t.var() > 1e-9 else True


@FAST
@given(pairs(max_size=20))
def test_torch_ccc_and_loss_agree_with_numpy(tp):
    t, p = tp
    assume(t.var() + p.var() + (t.mean() - p.mean()) ** 2 > 1e-3)
    want = metrics.ccc(t, p)
    got = torch_ccc(torch.tensor(p[None]), torch.tensor(t[None])).item()
    assert got == pytest.approx(want, abs=1e-4)
    assert ccc_loss(torch.tensor(p[None]), torch.tensor(t[None])).item() == pytest.approx(1 - want, abs=1e-4)


@FAST
@given(pairs(min_size=0))
def test_rmse_is_the_root_of_the_mean_squared_error(tp):
    t, p = tp
    got = metrics.rmse(t, p)
    if not len(t):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(np.sqrt(np.mean((t - p) ** 2)), abs=1e-9) and got >= 0


@FAST
@given(labels())
def test_classification_metrics_match_their_definitions(tp):
    t, p = tp
    assert metrics.accuracy(t, p) == pytest.approx(sum(a == b for a, b in zip(t, p)) / len(t))
    classes = sorted(set(t.tolist()))
    recalls = [sum(1 for a, b in zip(t, p) if a == c and b == c) / sum(1 for a in t if a == c) for c in classes]
    assert metrics.unweighted_average_recall(t, p) == pytest.approx(sum(recalls) / len(recalls))
    f1 = []
    for c in sorted(set(t.tolist()) | set(p.tolist())):
        tp_ = sum(1 for a, b in zip(t, p) if a == c and b == c)
        fp = sum(1 for a, b in zip(t, p) if a != c and b == c)
        fn = sum(1 for a, b in zip(t, p) if a == c and b != c)
        f1.append(2 * tp_ / (2 * tp_ + fp + fn) if tp_ + fp + fn else 0.0)
    assert metrics.macro_f1(t, p) == pytest.approx(sum(f1) / len(f1))
    cm = metrics.confusion_matrix(t, p, n_classes=5)
    assert cm.sum() == len(t) and cm.trace() == sum(a == b for a, b in zip(t, p))
    for a in range(5):
        for b in range(5):
            assert cm[a, b] == sum(1 for x, y in zip(t, p) if x == a and y == b)


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(["acc", "uar", "f1"]), values, min_size=1), min_size=1, max_size=6))
def test_summarise_folds_is_mean_and_sample_std_over_the_folds_that_have_each_metric(folds):
    out = metrics.summarise_folds(folds)
    assert set(out) == {k for f in folds for k in f}
    for k, s in out.items():
        vals = [f[k] for f in folds if k in f]
        assert s["n"] == len(vals)
        assert s["mean"] == pytest.approx(sum(vals) / len(vals), abs=1e-9)
        want_std = (sum((v - s["mean"]) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
        assert s["std"] == pytest.approx(want_std, abs=1e-6)


@FAST
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(
    arrays(np.float64, (n, 2), elements=values), arrays(np.float64, (n, 2), elements=values),
    arrays(np.bool_, n), arrays(np.int64, n, elements=st.integers(0, 3)))))
def test_regression_and_frame_metrics_select_and_group_as_defined(case):
    t, p, mask, video = case
    out = metrics.regression_metrics(t, p, mask=mask)
    for i, name in enumerate(("valence", "arousal")):
        tt, pp = t[mask, i], p[mask, i]
        want = metrics.ccc(tt, pp)
        assert out[f"ccc_{name}"] == pytest.approx(want, nan_ok=True)
        assert out[f"rmse_{name}"] == pytest.approx(metrics.rmse(tt, pp), nan_ok=True)
    fr = metrics.frame_regression_metrics(t, p, video)
    assert fr["n_frames"] == len(t) and fr["n_videos"] == len(set(video.tolist()))
    per = [metrics.ccc(t[video == v, 0], p[video == v, 0]) for v in sorted(set(video.tolist()))
           if (video == v).sum() >= 2]
    per = [c for c in per if np.isfinite(c)]
    assert fr["ccc_video_valence"] == pytest.approx(np.mean(per) if per else np.nan, nan_ok=True)
