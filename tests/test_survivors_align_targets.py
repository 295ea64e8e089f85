"""Per-frame targets: what mutation testing of ``align_items``/``load_aligned`` found unchecked (issue 21).

``load_aligned`` refuses a set with no item, so only a direct call of :func:`align_items` with an
empty items table reaches the empty ``frame_targets``/``frame_mask`` (a caller that filters its
items first). They must keep the shapes and types of a non-empty result so that concatenating
and batching code need no special case. And a config with other dimensional targets than the
default (valence, arousal) gets exactly those. See docs/mutation.md (fusion/align.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from emofuse.catalog.records import ExtractResult, Sequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.align import align_items, load_aligned
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.features import read_features


def one_clip(root) -> Catalog:
    """A 2 s clip with 100 Hz features and 10 Hz labels: valence = frame number, arousal = minus it."""
    cat = Catalog(str(root)).init()
    cat.add_media([{"item_id": "clip0", "path": "/v/clip0.mp4", "relpath": "clip0.mp4", "corpus": "demo",
                    "speaker": "s1", "duration": 2.0}])
    t = np.arange(200) * 0.01
    cat.commit_task("egemaps-v1", "task-1", [ExtractResult("clip0", sequence=Sequence(
        t, {"values": np.ones((200, 3), np.float32)}), n_frames=200)])
    k = np.arange(20)
    cat.add_frame_labels(pd.DataFrame({"frame": k.astype(np.int32), "time": k / 10.0, "valence": k.astype(np.float32),
                                       "arousal": -k.astype(np.float32), "expression": None, "item_id": "clip0"}))
    return cat


def test_frame_targets_are_the_configured_dimensions(tmp_path):
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(mode="window", steps=8, hop=4, rate=10.0),
                     targets="frame", dimensional=("arousal",))
    data = load_aligned(one_clip(tmp_path), cfg)
    assert data.frame_targets.shape == (data.n_rows, 8, 1) and data.frame_mask.all()
    np.testing.assert_allclose(data.frame_targets[..., 0], -(data.row_step[:, None] + np.arange(8)), atol=1e-5)


def test_no_item_gives_empty_typed_frame_targets(tmp_path):
    cat = one_clip(tmp_path)
    cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(mode="window", steps=8, hop=4),
                     targets="frame").resolved(cat)
    feats = read_features(cat, cfg, ["clip0"])
    items = cat.media()[["item_id", "duration"]].iloc[:0]
    rows = align_items(cfg, items, feats, {"audio": 3}, targets={})
    assert rows.frame_targets.shape == (0, 8, len(cfg.dimensional)) and rows.frame_targets.dtype == np.float32
    assert rows.frame_mask.shape == (0, 8) and rows.frame_mask.dtype == bool
    assert "has_frame_targets" in rows.items and len(rows.items) == 0
    assert rows.items["has_frame_targets"].dtype == bool
