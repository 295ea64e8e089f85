"""Property-based checks (Hypothesis) of the timeline and window arithmetic (fusion.timeline).

Pooling is checked against a direct per-bin, per-frame loop over interval overlaps.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emofuse.fusion.timeline import (
    align_to_edges,
    clip_windows,
    fixed_edges,
    frame_bounds,
    median_hop,
    median_of_counts,
    pool_sums,
    rate_edges,
    step_counts,
    window_starts,
)

FAST = settings(max_examples=100, deadline=None, database=None)


@FAST
@given(st.integers(1, 5000), st.integers(1, 400), st.integers(1, 400))
def test_window_starts_tile_the_clip_hop_by_hop_and_end_at_its_end(n, window, hop):
    assume(hop <= window)
    starts = window_starts(n, window, hop)
    assert starts[0] == 0 and starts == sorted(set(starts))
    if n <= window:
        assert starts == [0]
        return
    assert starts[-1] == n - window  # the last window ends at the clip end
    assert all(b - a == hop for a, b in zip(starts[:-2], starts[1:-1]))  # every hop but the last
    assert 0 < starts[-1] - starts[-2] <= hop
    assert len(starts) == math.ceil((n - window) / hop) + 1
    covered = np.zeros(n, bool)
    for s in starts:
        covered[s:s + window] = True
    assert covered.all()


@FAST
@given(st.floats(0, 600, allow_nan=False), st.floats(0.5, 30), st.floats(0.1, 30))
def test_clip_windows_tile_the_file_and_the_last_ends_at_its_end(duration, length, hop):
    assume(hop <= length)
    w = clip_windows(duration, length, hop)
    assert w.shape[1] == 2 and w[0, 0] == 0.0
    if duration <= length + 1e-9:
        assert w.tolist() == [[0.0, duration]]
        return
    assert w[-1, 1] == pytest.approx(duration) and np.allclose(w[:, 1] - w[:, 0], length)
    gaps = np.diff(w[:, 0])
    assert np.allclose(gaps[:-1], hop) and (gaps[-1] > -1e-9) and gaps[-1] <= hop + 1e-9
    assert len(w) == math.ceil((duration - length) / hop - 1e-9) + 1
    assert (w[:, 0] < duration).all() and (w[:, 1] <= duration + 1e-9).all()


@FAST
@given(st.floats(0.01, 600), st.integers(1, 500), st.floats(1.0, 100.0))
def test_bin_edges(duration, steps, rate):
    e = fixed_edges(duration, steps)
    assert len(e) == steps + 1 and e[0] == 0.0 and e[-1] == pytest.approx(duration)
    assert np.allclose(np.diff(e), duration / steps)
    r = rate_edges(duration, rate)
    assert r[0] == 0.0 and np.allclose(np.diff(r), 1 / rate)
    assert r[-1] >= duration - 1e-6 * max(1.0, 1 / rate) and r[-2] < duration  # covers the clip, no bin past it


def _direct_pool(v, fs, fe, edges):
    """Per bin: the overlap-weighted mean of the frames overlapping it (zero and invalid when none)."""
    out, mask = np.zeros((len(edges) - 1, v.shape[1])), np.zeros(len(edges) - 1, bool)
    for b in range(len(edges) - 1):
        w = np.array([max(0.0, min(e, edges[b + 1]) - max(s, edges[b])) for s, e in zip(fs, fe)])
        w[w <= 1e-9 * max(edges[b + 1] - edges[b], 1.0)] = 0.0
        if w.sum() > 0:
            out[b], mask[b] = (w[:, None] * v).sum(0) / w.sum(), True
    return out, mask


frames = st.integers(1, 30).flatmap(lambda n: st.tuples(
    arrays(np.float64, (n, 2), elements=st.floats(-10, 10)),
    arrays(np.float64, n, elements=st.floats(0, 5)),
    arrays(np.float64, n, elements=st.floats(0.01, 2))))


@FAST
@given(frames, st.floats(0.5, 6), st.integers(1, 20), st.integers(0, 30))
def test_pooling_is_the_overlap_weighted_mean_and_adds_up_in_pieces(case, duration, steps, cut):
    v, t, length = case
    fs, fe = frame_bounds(t, hop=0.0, clip_end=duration, starts=t, ends=t + length)
    edges = fixed_edges(duration, steps)
    out, mask = align_to_edges(v, fs, fe, edges)
    want, want_mask = _direct_pool(v, fs, fe, edges)
    assert mask.tolist() == want_mask.tolist()
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    cut = min(cut, len(v))
    s1, w1 = pool_sums(v[:cut], fs[:cut], fe[:cut], edges)
    s2, w2 = pool_sums(v[cut:], fs[cut:], fe[cut:], edges)
    w = w1 + w2
    assert ((w > 0) == mask).all()
    np.testing.assert_allclose((s1 + s2)[mask] / w[mask, None], want[mask], rtol=1e-4, atol=1e-4)


@FAST
@given(frames, st.floats(0.5, 6), st.integers(1, 20))
def test_interpolation_stays_within_the_valid_frames_and_masks_like_pooling(case, duration, steps):
    v, t, length = case
    edges = fixed_edges(duration, steps)
    valid = np.arange(len(v)) % 3 != 1
    out, mask = align_to_edges(v, t, t + length, edges, method="interp", valid=valid)
    _, pool_mask = align_to_edges(v, t, t + length, edges, valid=valid)
    assert (mask == pool_mask).all() and (out[~mask] == 0).all()
    if valid.any():
        lo, hi = v[valid].min(0) - 1e-4, v[valid].max(0) + 1e-4
        assert ((out[mask] >= lo) & (out[mask] <= hi)).all()


@pytest.mark.parametrize("method", ["pool", "interp"])
def test_valid_frames_that_overlap_no_bin_leave_every_bin_invalid(method):
    """Found by the pooling property: a frame starting at the clip end used to raise IndexError."""
    v = np.array([[3.0, 4.0]])
    out, mask = align_to_edges(v, np.array([1.0]), np.array([2.0]), fixed_edges(1.0, 2), method=method)
    assert not mask.any() and not out.any()
    s, w = pool_sums(v, np.array([1.0]), np.array([2.0]), fixed_edges(1.0, 2))
    assert not w.any() and not s.any()


@FAST
@given(st.lists(st.lists(st.sampled_from([0.01, 0.02, 0.04, 1 / 30, 0.1, np.nan, -0.01]), max_size=12),
                max_size=8), st.integers(1, 4))
def test_the_median_of_step_counts_merged_batch_by_batch_is_np_median_of_every_step(steps, batch):
    """What load_aligned's survey does (counts per batch of items, merged) against np.median of all steps."""
    seqs = {str(k): {"times": np.cumsum(np.r_[0.0, s])} for k, s in enumerate(steps)}
    every = np.concatenate([np.diff(q["times"]) for q in seqs.values()] or [np.zeros(0)])
    every = every[np.isfinite(every) & (every > 0)]
    want = float(np.median(every)) if every.size else 0.0
    assert median_hop(seqs) == want
    keys = list(seqs)
    parts = [step_counts({k: seqs[k] for k in keys[i:i + batch]}) for i in range(0, len(keys), batch)]
    values = np.concatenate([v for v, _ in parts] or [np.zeros(0)])
    counts = np.concatenate([c for _, c in parts] or [np.zeros(0, np.int64)])
    assert median_of_counts(values, counts) == want
