"""RCMA windows where they are made (fusion.align): 300 steps every 200, the last one aligned to the clip end.

A hand-made clip whose audio value at each step is the step's time, aligned at the frame rate,
so every window's first step, its bounds and its content say where the window starts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emofuse.fusion.align import align_items
from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
from emofuse.fusion.features import Features
from emofuse.fusion.targets import FRAME_WINDOW_HOP, FRAME_WINDOW_STEPS

RATE = 10.0


def _rows(n_steps: int):
    t = np.arange(n_steps) / RATE  # one frame per step, value = its time
    feats = Features({"audio": {"a": {"times": t, "values": t[:, None].astype(np.float32)}}}, hops={"audio": 1 / RATE})
    items = pd.DataFrame({"item_id": ["a"], "duration": [n_steps / RATE], "label": [0]})
    cfg = DataConfig([ModalitySpec("audio", "egemaps")],
                     align=AlignConfig(mode="window", steps=FRAME_WINDOW_STEPS, hop=FRAME_WINDOW_HOP, rate=RATE))
    return align_items(cfg, items, feats, {"audio": 1})


def test_the_paper_windows_are_300_steps_every_200():
    assert (FRAME_WINDOW_STEPS, FRAME_WINDOW_HOP) == (300, 200)


@pytest.mark.parametrize("n_steps, starts", [
    (1000, [0, 200, 400, 600, 700]),       # the last window is pulled back to end at the clip end
    (1100, [0, 200, 400, 600, 800]),       # it already ends there: no duplicate window
    (301, [0, 1]),
    (300, [0]),
    (120, [0]),                            # shorter than a window: one window at 0, padded
])
def test_window_starts_bounds_and_content(n_steps, starts):
    rows = _rows(n_steps)
    assert rows.row_item.tolist() == [0] * len(starts)
    assert rows.row_step.tolist() == starts
    np.testing.assert_allclose(rows.row_start, np.array(starts) / RATE)
    np.testing.assert_allclose(rows.row_end, np.minimum(np.array(starts) + 300, n_steps) / RATE)
    x, m = rows.x["audio"][:, :, 0], rows.mask["audio"]
    assert x.shape == (len(starts), 300)
    for w, s in enumerate(starts):
        n_valid = min(300, n_steps - s)
        assert m[w, :n_valid].all() and not m[w, n_valid:].any()
        np.testing.assert_allclose(x[w, :n_valid], (s + np.arange(n_valid)) / RATE, atol=1e-5)
