"""catalog.sequences through Catalog: shard reads, the lazy block-wise reader, per-clip vectors, status counts.

Real Zarr shards written by ``Catalog.commit_task`` into a temporary catalog, from generated arrays.
"""
from __future__ import annotations

import numpy as np
import pytest

from emofuse.catalog import sequences
from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.schemas import Status
from emofuse.catalog.sequences import LazySequence
from emofuse.catalog.store import Catalog

KEY = "faces-v1-test"


def _seq(n: int, t0: float = 0.0, *, width: int = 3, mask: bool = True, seed: int = 0) -> Sequence:
    rng = np.random.default_rng(seed)
    arrays = {"values": rng.normal(size=(n, width)).astype(np.float32),
              "bbox": rng.uniform(size=(n, 4)).astype(np.float32)}
    if mask:
        arrays["mask"] = rng.random(n) > 0.3
    return Sequence(t0 + np.arange(n) * 0.1, arrays)


@pytest.fixture()
def cat(tmp_path):
    """Shard A: items a (25 rows) and b (4); shard B: item c (7 rows, no mask); d failed (no_face)."""
    cat = Catalog(tmp_path / "cat").init()
    cat.commit_task(KEY, "task-a", [ExtractResult("a", sequence=_seq(25, seed=1), row={"embedding": np.ones(3)}),
                                    ExtractResult("b", sequence=_seq(4, 1.0, seed=2), row={"embedding": np.zeros(3)})])
    cat.commit_task(KEY, "task-b", [ExtractResult("c", sequence=_seq(7, mask=False, seed=3),
                                                  row={"embedding": np.full(3, 2.0)}),
                                    ExtractResult.failed("d", Status.NO_FACE, "no face")])
    return cat


def test_whole_shard_reads_give_back_what_was_written(cat):
    seqs = cat.load_sequences(KEY)
    assert sorted(seqs) == ["a", "b", "c"]
    want = _seq(4, 1.0, seed=2)
    np.testing.assert_array_equal(seqs["b"]["times"], want.times)
    np.testing.assert_array_equal(seqs["b"]["values"], want.arrays["values"])
    np.testing.assert_array_equal(seqs["b"]["mask"].astype(bool), want.arrays["mask"])
    assert set(seqs["c"]) == {"times", "values", "bbox"}
    only = cat.load_sequences(KEY, ["c"], arrays=["values"])
    assert list(only) == ["c"] and set(only["c"]) == {"times", "values"}


def test_sequence_arrays_are_those_every_shard_has(cat):
    assert cat.sequence_arrays(KEY) == ["bbox", "values"]  # shard B has no mask
    assert cat.sequence_arrays(KEY, ["a", "b"]) == ["bbox", "mask", "values"]
    assert cat.sequence_arrays(KEY, ["d"]) == []  # no sequence rows
    assert cat.sequence_arrays("other-v1") == []


def test_read_sequences_reads_long_items_lazily(cat):
    seqs = cat.read_sequences(KEY, ["a", "b", "c", "d"], max_item_rows=10)
    assert sorted(seqs) == ["a", "b", "c"]  # d has no sequence
    assert isinstance(seqs["a"], LazySequence)
    assert isinstance(seqs["b"], dict) and isinstance(seqs["c"], dict)
    assert set(seqs["b"]) == {"times", "values", "bbox"}  # arrays every shard has
    lazy = seqs["a"]
    assert (lazy.length, lazy.width, lazy.block_rows) == (25, 3, 10)
    assert lazy.t_start == 0.0 and lazy.t_end == pytest.approx(2.4)
    full = cat.read_sequences(KEY, ["a"], arrays=["values", "mask"])["a"]
    assert isinstance(full, dict) and set(full) == {"times", "values", "mask"}
    np.testing.assert_array_equal(lazy.read()["values"], full["values"])


def test_lazy_sequence_reads_block_by_block_and_by_time(cat):
    want = _seq(25, seed=1)
    lazy = cat.read_sequences(KEY, ["a"], arrays=["values", "mask"], max_item_rows=10)["a"]
    assert [(a, b) for a, b, _, _ in lazy.spans()] == [(0, 10), (10, 20), (20, 25)]
    assert lazy.spans()[1][2:] == pytest.approx((1.0, 1.9))
    blocks = list(lazy.blocks())
    assert [len(b["times"]) for b in blocks] == [10, 10, 5]
    assert all(set(b) == {"times", "values", "mask"} for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b["values"] for b in blocks]), want.arrays["values"])
    part = lazy.read(0.75, 1.25)  # rows 8..12, across two blocks
    np.testing.assert_allclose(part["times"], [0.8, 0.9, 1.0, 1.1, 1.2])
    np.testing.assert_array_equal(part["values"], want.arrays["values"][8:13])
    np.testing.assert_array_equal(part["mask"].astype(bool), want.arrays["mask"][8:13])
    assert [len(b["times"]) for b in lazy.blocks(1.05, 1.15)] == [1]  # blocks outside the range are skipped
    assert lazy.read(10.0, 11.0) is None
    np.testing.assert_allclose(lazy.first_steps(5), 0.1)
    assert "rows=25" in repr(lazy)


def test_untimed_rows_are_in_every_time_range(tmp_path):
    cat = Catalog(tmp_path / "cat").init()
    times = np.array([np.nan, 0.0, 1.0, 2.0, np.nan])
    values = np.arange(5, dtype=np.float32)  # 1-d values: width 1
    cat.commit_task("text-v1", "t", [ExtractResult("x", sequence=Sequence(times, {"values": values}))])
    lazy = cat.read_sequences("text-v1", ["x"], max_item_rows=2)["x"]
    assert lazy.width == 1
    assert lazy.read(0.5, 1.5)["values"].tolist() == [0.0, 2.0, 4.0]
    assert lazy.read()["values"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_items_of_big_shards_are_read_one_by_one(cat, monkeypatch):
    expected = cat.load_sequences(KEY, arrays=["values"])

    def whole_shard(*a, **k):
        raise AssertionError("a shard above max_shard_rows was read whole")

    monkeypatch.setattr(sequences, "load_sequences", whole_shard)
    got = sequences.read_sequences(cat.layout, KEY, cat.sequence_index(KEY), ["b", "c"], ["values"],
                                   max_shard_rows=5)
    assert sorted(got) == ["b", "c"]
    for i in got:
        assert set(got[i]) == {"times", "values"}
        np.testing.assert_array_equal(got[i]["values"], expected[i]["values"])


def test_clip_vectors_and_status_counts(cat, tmp_path):
    vecs = cat.clip_vectors(KEY, ["a", "c", "d"])
    assert sorted(vecs) == ["a", "c"] and vecs["c"].dtype == np.float32 and vecs["c"].tolist() == [2.0, 2.0, 2.0]
    assert cat.clip_vectors("other-v1", ["a"]) == {}
    # a table of named functionals: the declared numeric columns
    other = Catalog(tmp_path / "other").init()
    other.register_feature_set(FeatureSetDescription(name="egemaps", key="egemaps-v1", row_columns=["loudness", "pitch"]))
    other.commit_task("egemaps-v1", "t", [ExtractResult(i, row={"loudness": float(k), "pitch": 2.0 * k,
                                                                "duration": 3.0, "note": "x"})
                                          for k, i in enumerate("pq")])
    assert {k: v.tolist() for k, v in other.clip_vectors("egemaps-v1", ["p", "q"]).items()} == \
        {"p": [0.0, 0.0], "q": [1.0, 2.0]}
    assert cat.status_counts(KEY, ["a", "b", "d", "zz"]) == {"ok": 2, "no_face": 1, "not extracted": 1}
    assert cat.status_counts(KEY, []) == {}
