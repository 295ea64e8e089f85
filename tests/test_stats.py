"""Bootstrap intervals and paired tests behave at their nominal rates on simulated classifiers."""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.fusion.metrics import accuracy, ccc, unweighted_average_recall
from emofuse.fusion.stats import bootstrap_interval, mcnemar, paired_bootstrap

N_CLASSES = 4


def simulated(rng: np.random.Generator, truth: np.ndarray, acc: float) -> np.ndarray:
    """Predictions right with probability ``acc``, otherwise a uniformly drawn wrong class."""
    right = rng.random(len(truth)) < acc
    wrong = (truth + rng.integers(1, N_CLASSES, len(truth))) % N_CLASSES
    return np.where(right, truth, wrong)


def test_interval_covers_the_true_accuracy_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    reps, covered = 200, 0
    for rep in range(reps):
        truth = rng.integers(0, N_CLASSES, 150)
        ci = bootstrap_interval(accuracy, truth, simulated(rng, truth, 0.7), n_boot=400, seed=rep)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.90 <= covered / reps <= 0.985, covered / reps


def test_interval_is_reproducible_and_brackets_the_estimate():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, N_CLASSES, 80)
    pred = simulated(rng, truth, 0.6)
    one = bootstrap_interval(unweighted_average_recall, truth, pred, n_boot=300, seed=7)
    two = bootstrap_interval(unweighted_average_recall, truth, pred, n_boot=300, seed=7)
    assert one == two
    assert one.low <= one.estimate <= one.high and one.low < one.high
    assert one.estimate == unweighted_average_recall(truth, pred) and one.n == 80


def test_group_bootstrap_is_wider_when_frames_of_a_video_move_together():
    rng = np.random.default_rng(3)
    videos = np.repeat(np.arange(12), 50)
    offset = rng.normal(0, 0.5, 12)[videos]            # a per-video error shared by all its frames
    truth = rng.normal(0, 1, len(videos))
    pred = truth + offset + rng.normal(0, 0.2, len(videos))
    frames = bootstrap_interval(ccc, truth, pred, n_boot=300)
    grouped = bootstrap_interval(ccc, truth, pred, groups=videos, n_boot=300)
    assert grouped.high - grouped.low > 1.5 * (frames.high - frames.low)


def test_paired_bootstrap_finds_a_planted_difference():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, N_CLASSES, 300)
    a, b = simulated(rng, truth, 0.6), simulated(rng, truth, 0.75)
    cmp = paired_bootstrap(accuracy, truth, a, b, n_boot=1000)
    assert cmp.difference == pytest.approx(accuracy(truth, b) - accuracy(truth, a))
    assert cmp.low > 0 and cmp.p_value < 0.01
    assert mcnemar(truth, a, b).p_value < 0.01


def test_paired_bootstrap_uses_the_pairing():
    """b fixes 15 of a's errors and changes nothing else: a small gap, but certain once paired."""
    rng = np.random.default_rng(6)
    truth = rng.integers(0, N_CLASSES, 300)
    a = simulated(rng, truth, 0.7)
    b = a.copy()
    b[np.flatnonzero(a != truth)[:15]] = truth[np.flatnonzero(a != truth)[:15]]
    cmp = paired_bootstrap(accuracy, truth, a, b, n_boot=500)
    assert cmp.difference == pytest.approx(0.05) and cmp.low > 0 and cmp.p_value < 0.01


def test_identical_runs_are_not_different():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, N_CLASSES, 100)
    a = simulated(rng, truth, 0.7)
    cmp = paired_bootstrap(accuracy, truth, a, a.copy(), n_boot=200)
    assert (cmp.difference, cmp.low, cmp.high, cmp.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_tests_reject_at_about_the_nominal_rate_without_a_difference():
    rng = np.random.default_rng(5)
    reps, boot_hits, mcnemar_hits = 200, 0, 0
    for rep in range(reps):
        truth = rng.integers(0, N_CLASSES, 120)
        a, b = simulated(rng, truth, 0.7), simulated(rng, truth, 0.7)
        boot_hits += paired_bootstrap(accuracy, truth, a, b, n_boot=300, seed=rep).p_value < 0.05
        mcnemar_hits += mcnemar(truth, a, b).p_value < 0.05
    assert 0.01 <= boot_hits / reps <= 0.10, boot_hits / reps
    assert mcnemar_hits / reps <= 0.08, mcnemar_hits / reps     # the exact test is conservative


def test_mcnemar_counts_discordant_items_and_matches_the_binomial():
    truth = np.zeros(20, int)
    a = np.array([0] * 12 + [1] * 8)       # right on the first 12
    b = np.array([1] * 2 + [0] * 15 + [1] * 3)  # right on items 2..16
    res = mcnemar(truth, a, b)
    assert (res.a_only, res.b_only) == (2, 5)
    # two-sided exact: 2 * P(X <= 2), X ~ Bin(7, 1/2) = 2 * (1 + 7 + 21) / 128
    assert res.p_value == pytest.approx(2 * 29 / 128)
    assert mcnemar(truth, a, a).p_value == 1.0


@pytest.mark.parametrize("bad", [dict(level=1.0), dict(n_boot=0)])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(ValueError):
        bootstrap_interval(accuracy, [0, 1], [0, 1], **bad)
