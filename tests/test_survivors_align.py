"""``fusion/align.py``: a long item read block by block aligns as it would whole, ``interp`` as well as ``pool``.

Items with more than ``max_item_rows`` frames are never read whole for ``pool`` (summed block
by block) and read whole for ``interp``; either way the result is the one of a short item.
"""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Catalog:
    cat = Catalog(str(tmp_path_factory.mktemp("survivors-align") / "cat")).init()
    cat.add_media([{"item_id": f"clip{k}", "path": f"/v/clip{k}.mp4", "relpath": f"clip{k}.mp4", "corpus": "demo",
                    "speaker": "s1", "emotion": e, "duration": 2.0} for k, e in enumerate(["sad", "happy"])])
    t = np.arange(200) * 0.01
    ramp = np.stack([t, t ** 2, np.sin(7 * t)], axis=1).astype(np.float32)
    cat.commit_task("egemaps-v1", "task-1", [
        ExtractResult(f"clip{k}", sequence=Sequence(t, {"values": ramp + k}), n_frames=200) for k in range(2)])
    return cat


@pytest.mark.parametrize("method", ["pool", "interp"])
def test_a_long_item_aligns_as_it_would_whole(catalog, method):
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1", method=method)], align=AlignConfig(steps=7))
    whole = load_aligned(catalog, cfg)
    lazy = load_aligned(catalog, cfg, max_item_rows=30)
    np.testing.assert_allclose(lazy.x["audio"], whole.x["audio"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(lazy.mask["audio"], whole.mask["audio"])
    assert lazy.x["audio"].dtype == whole.x["audio"].dtype == np.float32
    assert whole.mask["audio"].all() and np.ptp(whole.x["audio"][0, :, 0]) > 0.5


def test_pool_and_interp_differ_on_a_curve(catalog):
    """(So the test above would notice a long item pooled where it should be interpolated.)"""
    x = {m: load_aligned(catalog, DataConfig([ModalitySpec("audio", "egemaps-v1", method=m)],
                                             align=AlignConfig(steps=7)), max_item_rows=30).x["audio"]
         for m in ("pool", "interp")}
    assert not np.allclose(x["pool"], x["interp"], atol=1e-4)


@pytest.fixture(scope="module")
def masked(tmp_path_factory) -> Catalog:
    """One 2-s item of a face-like set: frames every 0.1 s, the face missing from 1.0 s on."""
    cat = Catalog(str(tmp_path_factory.mktemp("survivors-align-masked") / "cat")).init()
    cat.add_media([{"item_id": "clip0", "path": "/v/clip0.mp4", "relpath": "clip0.mp4", "corpus": "demo",
                    "speaker": "s1", "emotion": "sad", "duration": 2.0}])
    t = np.arange(20) * 0.1
    values = np.where((t < 1.0)[:, None], 1.0, 0.0).astype(np.float32) * np.ones((20, 4), np.float32)
    cat.commit_task("faces-v1", "task-1", [
        ExtractResult("clip0", sequence=Sequence(t, {"values": values, "mask": t < 1.0}), n_frames=20)])
    return cat


@pytest.mark.parametrize("max_item_rows", [None, 5])
def test_windows_keep_the_face_mask(masked, max_item_rows):
    """Aligned window by window (as scoring does), frames without a face stay masked: the window
    after 1.0 s has no valid step, the one across it only its first half, read whole or in blocks."""
    cfg = DataConfig([ModalitySpec("face", "faces-v1")], align=AlignConfig(steps=4))
    data = load_aligned(masked, cfg, windows=(1.0, 0.5), max_item_rows=max_item_rows)
    starts = [round(float(s), 3) for s in data.items["start"]] if "start" in data.items else None
    mask = data.mask["face"]
    assert mask.shape == (3, 4), (mask.shape, starts)
    np.testing.assert_array_equal(mask, [[True] * 4, [True, True, False, False], [False] * 4])
    np.testing.assert_array_equal(data.x["face"][0], np.ones((4, 4), np.float32))


def test_a_long_item_whose_later_windows_hold_no_frame(tmp_path):
    """Windows of a long item are read in groups of up to 600 s; a group with no frame at all (a
    face seen only in the first seconds of a 22-min recording) gives masked windows, as read whole."""
    cat = Catalog(str(tmp_path / "cat")).init()
    cat.add_media([{"item_id": "long", "path": "/v/long.mp4", "relpath": "long.mp4", "corpus": "demo",
                    "speaker": "s1", "emotion": "sad", "duration": 1300.0}])
    t = np.arange(40) * 0.25
    cat.commit_task("faces-v1", "task-1", [ExtractResult("long", sequence=Sequence(
        t, {"values": np.ones((40, 3), np.float32), "mask": np.ones(40, bool)}), n_frames=40)])
    cfg = DataConfig([ModalitySpec("face", "faces-v1")], align=AlignConfig(steps=4))
    whole = load_aligned(cat, cfg, windows=(300.0, 300.0))
    lazy = load_aligned(cat, cfg, windows=(300.0, 300.0), max_item_rows=10)
    assert list(lazy.items["start"]) == list(whole.items["start"]) == [0.0, 300.0, 600.0, 900.0, 1000.0]
    np.testing.assert_array_equal(lazy.mask["face"], whole.mask["face"])
    np.testing.assert_array_equal(lazy.x["face"], whole.x["face"])
    assert whole.mask["face"][0, 0] and not whole.mask["face"][1:].any()
    assert lazy.x["face"].dtype == np.float32 and lazy.x["face"].shape == (5, 4, 3)
