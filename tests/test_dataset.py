"""fusion.dataset: train-only normalisation statistics, batches as gathers (on the synthetic catalog)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from emofuse.fusion.align import load_aligned
from emofuse.fusion.dataset import FusionDataset, NormStats, loader_throughput
from synthetic_catalog import FACE_DIM, build_synthetic_catalog, data_config


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    cat, media = build_synthetic_catalog(tmp_path_factory.mktemp("fusion-data") / "cat")
    return cat, media


def test_norm_stats_use_the_training_split_only(tmp_path):
    cat_a, media = build_synthetic_catalog(tmp_path / "a", n_speakers=4, reps=2, with_text=False)
    test_item = next(m["item_id"] for m in media if m["speaker"] == "Actor_04")
    cat_b, _ = build_synthetic_catalog(tmp_path / "b", n_speakers=4, reps=2, with_text=False,
                                       tweak=test_item, tweak_scale=50.0)
    stats = []
    for cat in (cat_a, cat_b):
        data = load_aligned(cat, data_config())
        train = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02"]))
        everything = np.arange(data.n_rows)
        stats.append((NormStats.compute(data, train), NormStats.compute(data, everything)))
    for m in ("audio", "face"):
        assert np.array_equal(stats[0][0].mean[m], stats[1][0].mean[m])
        assert np.array_equal(stats[0][0].std[m], stats[1][0].std[m])
    assert not np.array_equal(stats[0][1].std["audio"], stats[1][1].std["audio"])  # the change is visible
    # applied: training rows standardised on valid steps, invalid steps stay zero
    data = load_aligned(cat_a, data_config())
    train = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02", "Actor_03"]))
    norm = NormStats.compute(data, train)
    ds = FusionDataset(data, train, norm)
    x = ds.inputs(torch.arange(len(ds)))
    z = x["audio"][ds.mask["audio"]]
    assert torch.allclose(z.mean(0), torch.zeros(25), atol=1e-4) and torch.allclose(z.std(0), torch.ones(25), atol=1e-2)
    assert torch.all(x["face"][~ds.mask["face"]] == 0)
    back = NormStats.from_tensors(norm.to_tensors("fold-0/"), "fold-0/")
    assert np.array_equal(back.mean["face"], norm.mean["face"])


def test_batches_are_gathers_and_fast(synth):
    cat, media = synth
    t0 = time.perf_counter()
    data = load_aligned(cat, data_config(text=True))
    load_s = time.perf_counter() - t0
    rows = np.arange(data.n_rows)
    ds = FusionDataset(data, rows, NormStats.compute(data, rows))
    b = ds.batch(torch.tensor([3, 1]))
    assert b.inputs["face"].shape == (2, 32, FACE_DIM) and b.masks["text"].dtype == torch.bool
    assert b.labels.tolist() == [int(data.items["label"][3]), int(data.items["label"][1])]
    assert sum(len(x.rows) for x in ds.batches(5, shuffle=True, generator=torch.Generator().manual_seed(0))) == len(ds)
    ips = loader_throughput(ds, 16)
    print(f"catalog load+align: {len(media) / load_s:.0f} items/s; batch gathering: {ips:.0f} items/s")
    assert ips > 2000
