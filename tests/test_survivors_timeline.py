"""Edges of ``fusion/timeline.py`` its mutation run found unchecked.

* :func:`clip_windows`: exact windows when the hop divides the remainder (no repeated last
  window), a clip just over one window long gets two, the 1e-9 tolerance, and the refusal of a
  window length or hop that is not positive (each alone), with the values in the message.
* :func:`frame_bounds`: segments with starts but no ends run to the clip end.
* :func:`pool_sums`: 1-D values are one feature; no bins give empty sums.
* :func:`median_hop`: items of two frames count; zero, negative and non-finite steps do not.
"""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.fusion.timeline import align_to_edges, clip_windows, fixed_edges, frame_bounds, median_hop, pool_sums


def test_clip_windows_when_the_hop_divides_the_rest_exactly():
    assert clip_windows(10.0, 4.0, 2.0).tolist() == [[0.0, 4.0], [2.0, 6.0], [4.0, 8.0], [6.0, 10.0]]
    assert clip_windows(9.0, 3.0, 3.0).tolist() == [[0.0, 3.0], [3.0, 6.0], [6.0, 9.0]]


def test_a_clip_just_over_one_window_gets_two_and_the_tolerance_is_a_nanosecond():
    assert clip_windows(4.5, 4.0, 2.0).tolist() == [[0.0, 4.0], [0.5, 4.5]]
    assert clip_windows(4.0 + 5e-10, 4.0, 2.0).tolist() == [[0.0, 4.0 + 5e-10]]
    assert clip_windows(4.0, 4.0, 2.0).tolist() == [[0.0, 4.0]]


@pytest.mark.parametrize("length,hop", [(0.0, 2.0), (-1.0, 2.0), (4.0, 0.0), (4.0, -2.0)])
def test_clip_windows_refuses_a_length_or_hop_that_is_not_positive(length, hop):
    with pytest.raises(ValueError) as err:
        clip_windows(10.0, length, hop)
    assert str(err.value) == f"window length and hop must be positive, got {length}, {hop}"


def test_segments_without_ends_run_to_the_clip_end():
    seg = np.array([0.5, np.nan, 4.0])
    s, e = frame_bounds(seg, hop=0.0, clip_end=3.0, starts=seg)
    assert s.tolist() == [0.5, 0.0, 4.0] and e.tolist() == [4.0, 4.0, 4.0]  # (a start past the end: to it)
    s, e = frame_bounds(seg[:2], hop=0.0, clip_end=3.0, starts=seg[:2])
    assert e.tolist() == [3.0, 3.0]


def test_pool_sums_takes_one_dimensional_values_and_no_bins():
    t = np.arange(4) * 0.5
    edges = fixed_edges(2.0, 2)
    s1, w1 = pool_sums(np.arange(4.0), t, t + 0.5, edges)
    s2, w2 = pool_sums(np.arange(4.0)[:, None], t, t + 0.5, edges)
    assert s1.shape == (2, 1) and np.array_equal(s1, s2) and np.array_equal(w1, w2)
    assert s1[:, 0].tolist() == [0.5, 2.5] and w1.tolist() == [1.0, 1.0]
    s, w = pool_sums(np.ones((4, 3)), t, t + 0.5, np.array([0.0]))
    assert s.shape == (0, 3) and w.shape == (0,)
    out, mask = align_to_edges(np.arange(4.0), t, t + 0.5, edges)
    assert out[:, 0].tolist() == [0.5, 2.5] and mask.tolist() == [True, True]


def test_median_hop_counts_two_frame_items_and_skips_bad_steps():
    assert median_hop({"a": {"times": np.array([0.0, 0.5])}}) == 0.5
    assert median_hop({"a": {"times": np.array([0.0])}}) == 0.0
    # steps 0.2, 0.0 (a repeated time), -0.3 (out of order), NaN, 0.2: only the two 0.2s count
    times = np.array([0.0, 0.2, 0.2, -0.1, np.nan, 0.4, 0.6])
    assert median_hop({"a": {"times": times}}) == pytest.approx(0.2)
    assert median_hop({"a": {"times": np.array([0.0, 0.1, 0.1, 0.1, 0.1])}}) == pytest.approx(0.1)


def test_segment_bounds_with_no_segments_and_short_clips():
    s, e = frame_bounds(np.zeros(0), hop=0.0, clip_end=3.0, starts=np.zeros(0), ends=np.zeros(0))
    assert s.shape == e.shape == (0,)
    seg = np.array([0.1, np.nan])
    s, e = frame_bounds(seg, hop=0.0, clip_end=0.5, starts=seg)  # a clip under a second: its own end
    assert s.tolist() == [0.1, 0.0] and e.tolist() == [0.5, 0.5]


def test_interp_between_every_pair_of_neighbouring_frames():
    v, t = np.array([[0.0], [10.0], [20.0], [40.0]]), np.arange(4.0)  # centres 0.5, 1.5, 2.5, 3.5
    edges = fixed_edges(4.0, 8)  # bin centres 0.25, 0.75, …, 3.75
    out, mask = align_to_edges(v, t, t + 1.0, edges, method="interp")
    assert out[:, 0].tolist() == [0.0, 2.5, 7.5, 12.5, 17.5, 25.0, 35.0, 40.0] and mask.all()
    # a frame of no length is no frame, for interp as for pool
    v0, s0, e0 = np.r_[v, [[100.0]]], np.r_[t, 1.0], np.r_[t + 1.0, 1.0]
    for method in ("interp", "pool"):
        np.testing.assert_array_equal(align_to_edges(v0, s0, e0, edges, method=method)[0],
                                      align_to_edges(v, t, t + 1.0, edges, method=method)[0])


def test_validity_given_as_integers_and_nothing_valid():
    v, t = np.array([[1.0], [5.0]]), np.array([0.0, 0.5])
    edges = fixed_edges(1.0, 2)
    want = align_to_edges(v, t, t + 0.5, edges, valid=np.array([False, True]))
    for valid in (np.array([0, 1], np.uint8), [0, 1]):
        got = align_to_edges(v, t, t + 0.5, edges, valid=valid)
        assert got[0].tolist() == want[0].tolist() == [[0.0], [5.0]] and got[1].tolist() == [False, True]
    out, mask = align_to_edges(v, t, t + 0.5, edges, valid=np.array([False, False]))
    assert out.dtype == np.float32 and out.tolist() == [[0.0], [0.0]] and not mask.any()


def test_align_to_edges_gives_float32_and_names_an_unknown_method():
    v, t = np.array([[1.0], [5.0]]), np.array([0.0, 0.5])
    for method in ("pool", "interp"):
        assert align_to_edges(v, t, t + 0.5, fixed_edges(1.0, 2), method=method)[0].dtype == np.float32
    with pytest.raises(ValueError, match="^unknown method 'nearest'$"):
        align_to_edges(v, t, t + 0.5, fixed_edges(1.0, 2), method="nearest")
