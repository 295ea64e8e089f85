"""``fusion/align.py``: text segments (own ``start``/``end``) and one-frame sequences on the timeline.

A text set's frames are segments ``[start, end)`` of their own, not ``[t, t + hop)``: a gap
between segments stays masked, whole clip, time window or block by block. A set whose items
have one frame each has no frame period (``hop`` 0): the frame covers ``[t, t + duration)``.
Expected values are worked out by hand in each test.
"""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec

_MEDIA = {"item_id": "clip0", "path": "/v/clip0.mp4", "relpath": "clip0.mp4", "corpus": "demo",
          "speaker": "s1", "emotion": "sad", "duration": 2.0}


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Catalog:
    """One 2-s item with two text segments: [0, 0.5) valued 1 and [1, 2) valued 3 (a gap in between).

    Their start times are 0 and 1, so the set's median step (``hop``) is 1 s: read as frames
    ``[t, t + hop)`` the first segment would wrongly cover [0.5, 1) too.
    """
    cat = Catalog(str(tmp_path_factory.mktemp("survivors-align-text") / "cat")).init()
    cat.add_media([dict(_MEDIA)])
    start, end = np.array([0.0, 1.0]), np.array([0.5, 2.0])
    values = np.array([[1.0, 1.0], [3.0, 3.0]], np.float32)
    cat.commit_task("text-v1", "task-1", [
        ExtractResult("clip0", sequence=Sequence(start.copy(), {"values": values, "start": start, "end": end}),
                      n_frames=2)])
    return cat


def _text_cfg(method: str = "pool") -> DataConfig:
    return DataConfig([ModalitySpec("text", "text-v1", method=method)], align=AlignConfig(steps=4))


def test_text_segments_keep_their_own_end_on_a_whole_clip(text):
    """Bins of 0.5 s: [0, .5) segment 1, [.5, 1) no segment (masked), [1, 2) segment 2."""
    data = load_aligned(text, _text_cfg())
    np.testing.assert_array_equal(data.mask["text"], [[True, False, True, True]])
    np.testing.assert_allclose(data.x["text"][0, :, 0], [1.0, 0.0, 3.0, 3.0])


def test_text_segments_in_time_windows(text):
    """Windows (1 s every 0.5 s) of 4 bins of 0.25 s: [0, 1), [0.5, 1.5), [1, 2)."""
    data = load_aligned(text, _text_cfg(), windows=(1.0, 0.5))
    assert data.items["start"].tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_array_equal(data.mask["text"], [[True, True, False, False],
                                                      [False, False, True, True],
                                                      [True, True, True, True]])
    np.testing.assert_allclose(data.x["text"][:, :, 0], [[1, 1, 0, 0], [0, 0, 3, 3], [3, 3, 3, 3]])


@pytest.mark.parametrize("method", ["pool", "interp"])
def test_text_segments_read_block_by_block(text, method):
    """An item over ``max_item_rows`` (read lazily) aligns its segments as when read whole."""
    whole = load_aligned(text, _text_cfg(method))
    lazy = load_aligned(text, _text_cfg(method), max_item_rows=1)
    np.testing.assert_allclose(lazy.x["text"], whole.x["text"], atol=1e-6)
    np.testing.assert_array_equal(lazy.mask["text"], whole.mask["text"])
    np.testing.assert_array_equal(lazy.mask["text"], [[True, False, True, True]])
    if method == "pool":
        np.testing.assert_allclose(lazy.x["text"][0, :, 0], [1.0, 0.0, 3.0, 3.0])


@pytest.fixture(scope="module")
def one_frame(tmp_path_factory) -> Catalog:
    """One 2-s item whose sequence has a single frame at 0.5 s (so the set's ``hop`` is 0)."""
    cat = Catalog(str(tmp_path_factory.mktemp("survivors-align-one") / "cat")).init()
    cat.add_media([dict(_MEDIA)])
    cat.commit_task("vec-v1", "task-1", [
        ExtractResult("clip0", sequence=Sequence(np.array([0.5]), {"values": np.full((1, 2), 4.0, np.float32)}),
                      n_frames=1)])
    return cat


def _one_cfg() -> DataConfig:
    return DataConfig([ModalitySpec("vec", "vec-v1")], align=AlignConfig(steps=4))


def test_a_one_frame_sequence_covers_the_rest_of_the_clip(one_frame):
    """No frame period: the frame covers [0.5, 0.5 + 2), so every bin from 0.5 s on is valid."""
    data = load_aligned(one_frame, _one_cfg())
    np.testing.assert_array_equal(data.mask["vec"], [[False, True, True, True]])
    np.testing.assert_allclose(data.x["vec"][0, :, 0], [0.0, 4.0, 4.0, 4.0])


def test_a_one_frame_sequence_in_time_windows(one_frame):
    data = load_aligned(one_frame, _one_cfg(), windows=(1.0, 0.5))
    np.testing.assert_array_equal(data.mask["vec"], [[False, False, True, True],
                                                     [True, True, True, True],
                                                     [True, True, True, True]])
    np.testing.assert_allclose(data.x["vec"][:, :, 0], [[0, 0, 4, 4], [4, 4, 4, 4], [4, 4, 4, 4]])
