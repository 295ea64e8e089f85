"""Tests for fusion.losses and fusion.metrics against direct numpy computations and hand cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emofuse.fusion import metrics
from emofuse.fusion.losses import ccc, ccc_loss, cross_entropy


def numpy_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's CCC written out from its definition (population moments)."""
    mx, my = x.mean(), y.mean()
    sxy = ((x - mx) * (y - my)).mean()
    return 2 * sxy / (((x - mx) ** 2).mean() + ((y - my) ** 2).mean() + (mx - my) ** 2)


# ----------------------------------------------------------------------------- losses


def test_ccc_matches_numpy_per_window_and_target_with_masks():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(3, 20, 2))
    target = 0.5 * pred + rng.normal(size=(3, 20, 2)) + 0.3
    mask = np.ones((3, 20), dtype=bool)
    mask[1, 12:] = False
    mask[2, ::3] = False
    pred_padded = pred.copy()
    pred_padded[~mask] = np.nan  # padded content must not leak in
    got = ccc(torch.tensor(pred_padded), torch.tensor(target), torch.tensor(mask)).numpy()
    for n in range(3):
        for k in range(2):
            valid = mask[n]
            assert got[n, k] == pytest.approx(numpy_ccc(pred[n, valid, k], target[n, valid, k]), rel=1e-5)


def test_ccc_special_cases():
    t = torch.linspace(-1, 1, 50).reshape(1, 50)
    assert ccc(t, t).item() == pytest.approx(1.0, abs=1e-6)
    assert ccc(-t, t).item() == pytest.approx(-1.0, abs=1e-6)
    # A shifted copy is perfectly correlated but not concordant.
    shifted = ccc(t + 1.0, t).item()
    expected = 2 * t.var(unbiased=False).item() / (2 * t.var(unbiased=False).item() + 1.0)
    assert shifted == pytest.approx(expected, rel=1e-5)


def test_ccc_loss_means_over_targets_and_windows_and_skips_short_windows():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(4, 10, 2)), rng.normal(size=(4, 10, 2))
    mask = np.ones((4, 10), dtype=bool)
    mask[3, 1:] = False  # a single valid step: no CCC, left out
    loss = ccc_loss(torch.tensor(pred), torch.tensor(target), torch.tensor(mask)).item()
    expected = 1 - np.mean([numpy_ccc(pred[n, :, k], target[n, :, k]) for n in range(3) for k in range(2)])
    assert loss == pytest.approx(expected, rel=1e-5)
    same = torch.tensor(target)
    assert ccc_loss(same, same).item() == pytest.approx(0.0, abs=1e-6)


def test_ccc_loss_has_gradients():
    pred = torch.randn(2, 30, 2, requires_grad=True)
    ccc_loss(pred, torch.randn(2, 30, 2)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_cross_entropy_matches_log_softmax():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    lse = torch.logsumexp(logits, dim=1)
    expected = ((lse[0] - 2.0) + (lse[1] - 0.0)) / 2
    assert cross_entropy(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    weights = torch.tensor([1.0, 1.0, 3.0])
    weighted = ((lse[0] - 2.0) * 1 + (lse[1] - 0.0) * 3) / 4
    assert cross_entropy(logits, labels, class_weights=weights).item() == pytest.approx(weighted.item(), rel=1e-6)


# ----------------------------------------------------------------------------- metrics

Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 1, 0, 1, 2, 2]


def test_accuracy_and_confusion_matrix_by_hand():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED, n_classes=4)
    expected = np.array([[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm, expected)
    assert metrics.confusion_matrix(Y_TRUE, Y_PRED).shape == (3, 3)


def test_uar_and_macro_f1_by_hand():
    # recalls: class 0 2/3, class 1 1/2, class 2 1/1
    assert metrics.unweighted_average_recall(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # F1 = 2tp / (n_true + n_pred): class 0 4/5, class 1 2/4, class 2 2/3
    assert metrics.macro_f1(Y_TRUE, Y_PRED) == pytest.approx((4 / 5 + 2 / 4 + 2 / 3) / 3)
    # A predicted class absent from y_true counts with F1 = 0 in macro F1, not in UAR.
    assert metrics.macro_f1([0, 0], [0, 1]) == pytest.approx((2 / 3 + 0) / 2)
    assert metrics.unweighted_average_recall([0, 0], [0, 1]) == pytest.approx(0.5)
    out = metrics.classification_metrics(Y_TRUE, Y_PRED, n_classes=3)
    assert set(out) == {"accuracy", "uar", "macro_f1", "confusion_matrix"}


def test_regression_metrics_by_hand():
    y_true = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [9.0, 9.0]])
    y_pred = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    mask = np.array([True, True, True, False])
    out = metrics.regression_metrics(y_true, y_pred, mask=mask)
    assert out["ccc_valence"] == pytest.approx(1.0)
    # arousal: true (1, 0, 1), pred (1, 1, 0): means 2/3, var 2/9 each, cov -1/9
    assert out["ccc_arousal"] == pytest.approx(2 * (-1 / 9) / (2 / 9 + 2 / 9))
    assert out["rmse_valence"] == pytest.approx(0.0)
    assert out["rmse_arousal"] == pytest.approx(math.sqrt(2 / 3))
    assert out["ccc_mean"] == pytest.approx((1.0 - 0.5) / 2)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert metrics.ccc(a, b) == pytest.approx(numpy_ccc(a, b))


def test_summarise_folds_mean_and_sample_std():
    folds = [
        {"accuracy": 0.5, "uar": 0.4, "confusion_matrix": np.eye(2), "fold": "a"},
        {"accuracy": 0.7, "uar": 0.6},
        {"accuracy": 0.9},
    ]
    s = metrics.summarise_folds(folds)
    assert set(s) == {"accuracy", "uar"}
    assert s["accuracy"]["mean"] == pytest.approx(0.7)
    assert s["accuracy"]["std"] == pytest.approx(0.2)  # sqrt(((.2)^2 + 0 + (.2)^2) / 2)
    assert s["uar"] == {"mean": pytest.approx(0.5), "std": pytest.approx(math.sqrt(0.02)), "n": 2}
    assert metrics.summarise_folds([{"accuracy": 0.5}])["accuracy"]["std"] == 0.0
    assert metrics.format_summary(s)["accuracy"] == "0.700 ± 0.200"


# The hand cases above have equal means (or rely on numpy_ccc, which a shared misreading of the
# formula would break the same way); these have unequal means, worked out on paper.
# t = (1, 2, 3), p = t + 2: var 2/3 each, cov 2/3, (mean gap)^2 = 4 -> CCC = (4/3) / (16/3) = 0.25.
# t = (0, 1, 2, 3), p = 2 t + 1: var_t 5/4, var_p 5, cov 5/2, gap^2 (4 - 1.5)^2 = 25/4 -> 5 / 12.5 = 0.4.
UNEQUAL_MEANS = [([1.0, 2.0, 3.0], [3.0, 4.0, 5.0], 0.25), ([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0], 0.4),
                 ([0.0, 2.0], [1.0, 1.0], 0.0)]


@pytest.mark.parametrize("t, p, expected", UNEQUAL_MEANS)
def test_ccc_by_hand_with_unequal_means(t, p, expected):
    assert metrics.ccc(t, p) == pytest.approx(expected, abs=1e-12)
    assert metrics.ccc(p, t) == pytest.approx(expected, abs=1e-12)  # symmetric
    got = ccc(torch.tensor([p], dtype=torch.float64), torch.tensor([t], dtype=torch.float64))
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert ccc_loss(torch.tensor([p]), torch.tensor([t])).item() == pytest.approx(1 - expected, abs=1e-6)
    out = metrics.regression_metrics(np.array(t)[:, None], np.array(p)[:, None], names=("valence",))
    assert out["ccc_valence"] == pytest.approx(expected, abs=1e-12) and out["ccc_mean"] == out["ccc_valence"]


def test_ccc_ignores_padded_targets_and_a_single_valid_step_has_none():
    rng = np.random.default_rng(3)
    pred, target = rng.normal(size=(2, 12, 1)), rng.normal(size=(2, 12, 1)) + 0.5
    mask = np.ones((2, 12), dtype=bool)
    mask[0, 7:] = False
    target_padded = target.copy()
    target_padded[~mask] = np.nan  # padded targets (per-frame labels missing) must not leak in either
    got = ccc(torch.tensor(pred), torch.tensor(target_padded), torch.tensor(mask)).numpy()
    assert got[0, 0] == pytest.approx(numpy_ccc(pred[0, :7, 0], target[0, :7, 0]), rel=1e-5)
    assert got[1, 0] == pytest.approx(numpy_ccc(pred[1, :, 0], target[1, :, 0]), rel=1e-5)
    one = np.zeros((1, 12), dtype=bool)
    one[0, 4] = True  # one valid step: no co-variation, CCC 0 whatever the values
    assert ccc(torch.tensor(pred[:1]), torch.tensor(target[:1]), torch.tensor(one)).item() == pytest.approx(0.0, abs=1e-6)


def test_ccc_loss_uses_the_mask_inside_windows_and_keeps_two_step_windows():
    rng = np.random.default_rng(4)
    pred, target = rng.normal(size=(3, 8, 2)), rng.normal(size=(3, 8, 2))
    mask = np.zeros((3, 8), dtype=bool)
    mask[0, :5], mask[1, :2], mask[2, :1] = True, True, True  # 5 steps, 2 steps (kept), 1 step (left out)
    junk_p, junk_t = pred.copy(), target.copy()
    junk_p[~mask], junk_t[~mask] = 1e3, -1e3  # whatever sits in the padding
    loss = ccc_loss(torch.tensor(junk_p), torch.tensor(junk_t), torch.tensor(mask)).item()
    expected = 1 - np.mean([numpy_ccc(pred[n, mask[n], k], target[n, mask[n], k]) for n in range(2) for k in range(2)])
    assert loss == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_label_smoothing_and_weights_of_any_float_type():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    logp = torch.log_softmax(logits, dim=1)
    eps = 0.3  # (1 - eps) * -log p_y + eps * mean over classes of -log p_c
    smoothed = np.mean([(1 - eps) * -logp[i, y].item() - eps * logp[i].mean().item() for i, y in enumerate([0, 2])])
    assert cross_entropy(logits, labels, label_smoothing=eps).item() == pytest.approx(smoothed, rel=1e-6)
    weights = torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64)  # computed in float32 whatever they come as
    weighted = (-logp[0, 0].item() * 1 - logp[1, 2].item() * 3) / 4
    assert cross_entropy(logits.half(), labels, class_weights=weights).item() == pytest.approx(weighted, rel=1e-3)


# Edge cases the mutation run (docs/mutation.md) showed untested: empty input, wrong shapes, mask and
# label types as they come from storage (uint8), keys of the summary dicts.


def test_metrics_of_nothing_are_nan_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a mean of an empty slice would warn: none may be taken
        for fn in (metrics.accuracy, metrics.unweighted_average_recall, metrics.macro_f1, metrics.rmse):
            assert math.isnan(fn([], [])), fn.__name__
        assert math.isnan(metrics.ccc([1.0], [2.0]))  # fewer than two values
        assert math.isnan(metrics.ccc([2.0, 2.0], [2.0, 2.0]))  # no variance and no mean gap: undefined
        assert metrics.confusion_matrix([], []).shape == (0, 0)
        out = metrics.frame_regression_metrics([[0.0], [1.0]], [[0.0], [1.0]], ["a", "b"], names=("valence",))
        assert math.isnan(out["ccc_video_valence"]) and math.isnan(out["ccc_video_mean"])  # no video has 2 frames
        assert out["ccc_valence"] == pytest.approx(1.0) and (out["n_frames"], out["n_videos"]) == (2, 2)


def test_metrics_refuse_mismatched_inputs_with_a_message():
    with pytest.raises(ValueError, match="y_true has 3 labels, y_pred 2"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"shapes \(3, 2\) / \(4, 2\) do not match 2 targets"):
        metrics.regression_metrics(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="do not match 2 targets"):
        metrics.regression_metrics(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="3 frames but 2 video labels"):
        metrics.frame_regression_metrics(np.zeros(3), np.zeros(3), ["a", "b"], names=("valence",))


def test_confusion_matrix_size_and_type():
    cm = metrics.confusion_matrix([0, 0], [0, 0])
    assert cm.shape == (1, 1) and cm.dtype == np.int64 and cm[0, 0] == 2
    assert metrics.confusion_matrix([0, 2], [1, 0]).tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert metrics.confusion_matrix([1], [3]).shape == (4, 4)  # the larger of the two label ranges
    assert metrics.classification_metrics([0, 1], [1, 1], n_classes=5)["confusion_matrix"].shape == (5, 5)


def test_regression_metrics_over_windows_with_stored_masks_and_unsigned_values():
    rng = np.random.default_rng(5)
    t, p = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))  # windows x steps x targets
    mask = (rng.random((3, 4)) > 0.3).astype(np.uint8)  # a mask as Zarr stores it (uint8, not bool)
    mask[0, :2] = 1
    out = metrics.regression_metrics(t, p, mask=mask)
    keep = mask.astype(bool)
    for i, name in enumerate(("valence", "arousal")):
        assert out[f"ccc_{name}"] == pytest.approx(numpy_ccc(t[keep][:, i], p[keep][:, i]))
        assert out[f"rmse_{name}"] == pytest.approx(np.sqrt(np.mean((t[keep][:, i] - p[keep][:, i]) ** 2)))
    assert out["rmse_mean"] == pytest.approx((out["rmse_valence"] + out["rmse_arousal"]) / 2)
    assert out["ccc_mean"] == pytest.approx((out["ccc_valence"] + out["ccc_arousal"]) / 2)
    # unsigned inputs (8-bit annotations) must not wrap around when subtracted
    assert metrics.rmse(np.array([0, 3], np.uint8), np.array([1, 0], np.uint8)) == pytest.approx(math.sqrt(5))


def test_frame_metrics_per_video_and_one_dimensional_input():
    t = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 5.0])
    p = np.array([0.0, 1.0, 2.0, 1.0, 0.0, 5.0])
    video = ["a", "a", "a", "b", "b", "c"]  # c has one frame: no per-video CCC
    out = metrics.frame_regression_metrics(t, p, video, names=("arousal",))
    assert out["ccc_video_arousal"] == pytest.approx((1.0 + numpy_ccc(t[3:5], p[3:5])) / 2)
    assert out["ccc_video_mean"] == out["ccc_video_arousal"] and out["n_videos"] == 3
    assert out["ccc_arousal"] == pytest.approx(numpy_ccc(t, p)) and "ccc_valence" not in out


def test_summarise_folds_skips_non_scalars_wherever_they_are():
    folds = [{"confusion_matrix": np.eye(2), "accuracy": 0.5, "flag": True}, {"accuracy": 0.7}]
    assert metrics.summarise_folds(folds) == {"accuracy": {"mean": pytest.approx(0.6), "std": pytest.approx(
        math.sqrt(0.02)), "n": 2}}
