"""A long item is read in bounded pieces: what mutation testing of ``fusion/align.py`` found unchecked (issue 21).

A lazily read item (more rows than ``max_item_rows``) promises bounded memory: its time windows
are read in groups spanning at most :data:`~emofuse.fusion.align.WINDOW_SPAN_S` seconds (plus a
pad of two frame periods before each group), and a whole clip that is pooled is read block by
block, never whole. The aligned values are the same however the item is read (checked in
``tests/test_survivors_align.py``), so only the reads show a broken grouping: these tests record
every :meth:`LazySequence.read` (the real reads, passed through) and check their ranges.
See docs/mutation.md (fusion/align.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.sequences import LazySequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import WINDOW_SPAN_S, load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec

HOP = 0.25  # a frame every 0.25 s over a 1300 s recording: 5200 rows, read lazily in blocks of 200
N = 5200
# the read pad is 2 * HOP = 0.5 s: over its 1e-3 s floor, and told apart from a 1.001 s floor or 3 * HOP


@pytest.fixture
def long_item(tmp_path) -> Catalog:
    cat = Catalog(str(tmp_path / "cat")).init()
    cat.add_media([{"item_id": "long", "path": "/v/long.mp4", "relpath": "long.mp4", "corpus": "demo",
                    "speaker": "s1", "emotion": "sad", "duration": 1300.0}])
    t = np.arange(N) * HOP
    values = np.stack([t, -t, np.ones_like(t)], axis=1).astype(np.float32)
    cat.commit_task("faces-v1", "task-1", [ExtractResult("long", sequence=Sequence(
        t, {"values": values, "mask": np.ones(N, bool)}), n_frames=N)])
    return cat


@pytest.fixture
def reads(monkeypatch) -> list[tuple[float, float]]:
    """Every ``LazySequence.read(t0, t1)`` made while a test runs (the read itself is the real one)."""
    seen: list[tuple[float, float]] = []
    real = LazySequence.read

    def read(self: LazySequence, t0: float = -np.inf, t1: float = np.inf):
        seen.append((float(t0), float(t1)))
        return real(self, t0, t1)

    monkeypatch.setattr(LazySequence, "read", read)
    return seen


def test_windows_of_a_long_item_are_read_in_groups_of_at_most_the_span(long_item, reads):
    """Windows of 300 s every 300 s over 1300 s start at 0, 300, 600, 900, 1000: grouped into
    [0, 600), [600, 1200), [1000, 1300), each read from two frame periods before its start."""
    cfg = DataConfig([ModalitySpec("face", "faces-v1")], align=AlignConfig(steps=4))
    lazy = load_aligned(long_item, cfg, windows=(300.0, 300.0), max_item_rows=200)
    assert list(lazy.items["start"]) == [0.0, 300.0, 600.0, 900.0, 1000.0]
    pad = 2 * HOP
    assert reads == [(0.0 - pad, 600.0), (600.0 - pad, 1200.0), (1000.0 - pad, 1300.0)]
    assert all(t1 - t0 <= WINDOW_SPAN_S + pad for t0, t1 in reads)
    reads.clear()
    whole = load_aligned(long_item, cfg, windows=(300.0, 300.0))
    assert reads == []  # read in one piece: not a LazySequence
    np.testing.assert_array_equal(lazy.x["face"], whole.x["face"])
    np.testing.assert_array_equal(lazy.mask["face"], whole.mask["face"])


def test_a_pooled_long_clip_is_read_block_by_block_and_an_interpolated_one_whole(long_item, reads):
    pooled = load_aligned(long_item, DataConfig([ModalitySpec("face", "faces-v1", method="pool")],
                                                align=AlignConfig(steps=13)), max_item_rows=200)
    assert reads == []  # blocks(), never one read of the whole item
    assert pooled.mask["face"].all()
    np.testing.assert_allclose(pooled.x["face"][0, :, 0], np.arange(13) * 100.0 + 49.875)  # mean of 400 frames a bin
    load_aligned(long_item, DataConfig([ModalitySpec("face", "faces-v1", method="interp")],
                                       align=AlignConfig(steps=13)), max_item_rows=200)
    assert reads == [(-np.inf, np.inf)]
