"""Work a score-archive run must not pay again: what the catalog already holds is not recomputed.

A feature set's description (``feature_set.json``) is written once per key and never
replaced, so an extract run (the one ``emofuse score-archive`` starts for a trained run's
feature sets, whose descriptions the catalog always holds) must not describe a known feature
set again: describing eGeMAPS builds openSMILE in the driver, whose first instance scans the
files of every installed package (measured: the largest CPU cost of the driver's first run).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from emofuse.catalog import provenance
from emofuse.catalog.store import Catalog
from emofuse.flows.extract import _register_feature_sets
from emofuse.pipeline.registry import extractor_class


def test_a_described_feature_set_is_not_described_again(tmp_path: Path) -> None:
    calls: list[str] = []

    class CountingLogmel(extractor_class("logmel")):  # the real extractor, counting its describe() calls
        def describe(self):  # type: ignore[no-untyped-def]
            calls.append(self.key)
            return super().describe()

    cat = Catalog(str(tmp_path / "cat")).init()
    ex = CountingLogmel()
    summary = SimpleNamespace(provenance=provenance.collect())
    _register_feature_sets(cat, [ex], summary)  # type: ignore[arg-type]
    info = Path(cat.layout.feature_set_info(ex.key))
    first = info.read_bytes()
    assert calls == [ex.key] and cat.feature_set_info(ex.key).name == "logmel"

    _register_feature_sets(cat, [ex], summary)  # type: ignore[arg-type]
    assert calls == [ex.key], "a feature set the catalog describes was described again"
    assert info.read_bytes() == first

    other = CountingLogmel(ex.config_cls(n_mels=32))  # another key: described and written
    _register_feature_sets(cat, [ex, other], summary)  # type: ignore[arg-type]
    assert calls == [ex.key, other.key] and cat.feature_set_info(other.key).config["n_mels"] == 32

