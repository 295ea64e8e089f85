"""fusion.timeline: bin edges, windows, frame intervals, pooling and interpolation on hand-made frames."""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.fusion.timeline import (
    align_to_edges,
    fixed_edges,
    frame_bounds,
    median_hop,
    pool_sums,
    rate_edges,
    window_starts,
)


def test_pool_and_interp_on_hand_made_sequences():
    # 100 Hz ramp over 1 s into 10 bins: pooling and interpolation both give the bin means
    t = np.arange(100) * 0.01
    s, e = frame_bounds(t, hop=0.01, clip_end=1.0)
    edges = fixed_edges(1.0, 10)
    for method in ("pool", "interp"):
        out, mask = align_to_edges(t[:, None], s, e, edges, method=method)
        assert mask.all()
        np.testing.assert_allclose(out[:, 0], 0.045 + 0.1 * np.arange(10), atol=1e-6)
    # up-sampling two frames (0 and 10, 0.5 s each) to 4 bins
    s, e = frame_bounds(np.array([0.0, 0.5]), hop=0.5, clip_end=1.0)
    v = np.array([[0.0], [10.0]])
    pooled, _ = align_to_edges(v, s, e, fixed_edges(1.0, 4), method="pool")
    interp, _ = align_to_edges(v, s, e, fixed_edges(1.0, 4), method="interp")
    np.testing.assert_allclose(pooled[:, 0], [0, 0, 10, 10])
    np.testing.assert_allclose(interp[:, 0], [0, 2.5, 7.5, 10])
    # a bin straddling two frames is their overlap-weighted mean
    out, _ = align_to_edges(v, s, e, np.array([0.25, 0.75]), method="pool")
    assert out[0, 0] == pytest.approx(5.0)
    # masked frames (no face) leave their bins masked and zero, and never leak into others
    out, mask = align_to_edges(v, s, e, fixed_edges(1.0, 4), method="pool", valid=np.array([True, False]))
    assert mask.tolist() == [True, True, False, False] and np.all(out[2:] == 0)
    # NaN frames are treated as missing
    out, mask = align_to_edges(np.array([[np.nan], [4.0]]), s, e, fixed_edges(1.0, 2))
    assert mask.tolist() == [False, True] and out[1, 0] == 4.0


def test_text_segments_cover_their_time_and_untimed_cover_the_clip():
    starts, ends = np.array([0.6, 1.5]), np.array([0.9, 1.8])
    s, e = frame_bounds(starts, hop=0.0, clip_end=2.0, starts=starts, ends=ends)
    out, mask = align_to_edges(np.array([[1.0], [3.0]]), s, e, fixed_edges(2.0, 8))
    assert mask.tolist() == [False, False, True, True, False, False, True, True]  # steps without speech masked
    assert out[2, 0] == 1.0 and out[6, 0] == 3.0 and out[0, 0] == 0.0
    nan = np.array([np.nan])
    s, e = frame_bounds(nan, hop=0.0, clip_end=2.5, starts=nan, ends=nan)
    out, mask = align_to_edges(np.ones((1, 3)), s, e, fixed_edges(2.5, 5))
    assert mask.all() and np.all(out == 1.0)


def test_windows_cover_the_whole_clip():
    for n_steps in (1, 7, 32, 33, 100, 101, 250):
        starts = window_starts(n_steps, 32, 16)
        covered = np.zeros(max(n_steps, 32), bool)
        for s in starts:
            covered[s:s + 32] = True
        assert covered[:n_steps].all(), n_steps
        assert starts[-1] + 32 == max(n_steps, 32)  # the last window ends at the clip end
        assert starts == sorted(set(starts))
    assert len(rate_edges(2.34, 10.0)) - 1 == 24


def test_pooling_in_pieces_equals_pooling_at_once():
    # how long items are aligned block by block: sums and weights of the pieces add up
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 3.0, 500))
    v = rng.normal(size=(500, 4))
    valid = rng.random(500) > 0.2
    s, e = frame_bounds(t, hop=0.02, clip_end=3.0)
    edges = fixed_edges(3.0, 7)
    whole, mask = align_to_edges(v, s, e, edges, valid=valid)
    sums, wsum = np.zeros((7, 4)), np.zeros(7)
    for piece in np.array_split(np.arange(500), 6):
        s_, w_ = pool_sums(v[piece], s[piece], e[piece], edges, valid=valid[piece])
        sums += s_
        wsum += w_
    assert ((wsum > 0) == mask).all()
    np.testing.assert_allclose(sums[mask] / wsum[mask, None], whole[mask], atol=1e-5)
    # no valid frame: zero sums and weights
    s_, w_ = pool_sums(v[:3], s[:3], e[:3], edges, valid=np.zeros(3, bool))
    assert not s_.any() and not w_.any()


def test_edges_and_frame_period():
    assert fixed_edges(3.0, 3).tolist() == [0.0, 1.0, 2.0, 3.0]
    edges = rate_edges(1.0, 4.0)
    assert edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]  # an exact multiple gets no extra bin
    assert len(rate_edges(0.0, 10.0)) == 2  # an empty clip still has one bin
    seqs = {"a": {"times": np.arange(10) * 0.2}, "b": {"times": np.arange(3) * 0.2 + 5}, "c": {"times": np.zeros(1)}}
    assert median_hop(seqs) == pytest.approx(0.2)
    assert median_hop({"u": {"times": np.array([np.nan])}}) == 0.0  # untimed segments: no period
