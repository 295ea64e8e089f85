"""The feature-set description is a typed record that reads and writes ``feature_set.json`` byte for byte.

``tests/data/feature_set_logmel_v1.json`` was written by emofuse at 0dc433f (before the record
existed: ``{**extractor.describe(), "provenance": provenance.collect()}`` through
``atomic.write_json``), so an old catalog's description must read back into the record and
write back unchanged.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emofuse.catalog import provenance
from emofuse.catalog.records import FeatureSetDescription
from emofuse.catalog.store import Catalog
from emofuse.pipeline.registry import get_extractor

OLD = Path(__file__).parent / "data" / "feature_set_logmel_v1.json"
#: The keys every description written by ``emofuse extract`` has had since the first commit.
KEYS = {"name", "version", "config", "weights_checksum", "key", "row_columns", "sequence_dim",
        "sequence_columns", "provenance"}


def test_old_json_reads_into_the_record_and_writes_back_the_same_bytes() -> None:
    text = OLD.read_text()
    d = FeatureSetDescription.from_json(text)
    assert (d.name, d.version, d.key) == ("logmel", 1, "logmel-v1-d0ece27c-torchaudio2.11.0")
    assert d.weights_checksum == "torchaudio2.11.0" and d.config["n_mels"] == 64
    assert d.row_columns is None and d.sequence_dim == 64 and d.sequence_columns[:2] == ["mel_00", "mel_01"]
    assert d.provenance["packages"]["torchaudio"] == "2.11.0" and d.extra == {}
    assert d.to_json() == text
    assert FeatureSetDescription.from_json(d.to_json()) == d


def test_an_old_catalog_reads_back_identically(tmp_path: Path) -> None:
    """A catalog holding today's file: the store returns the record, and registering it again elsewhere
    writes the very same bytes."""
    old = Catalog(str(tmp_path / "old")).init()
    key = json.loads(OLD.read_text())["key"]
    os.makedirs(tmp_path / "old" / "features" / key)
    (tmp_path / "old" / "features" / key / "feature_set.json").write_bytes(OLD.read_bytes())
    d = old.feature_set_info(key)
    assert d == FeatureSetDescription.from_json(OLD.read_text())
    assert old.find_feature_set("logmel") == key
    new = Catalog(str(tmp_path / "new")).init()
    new.register_feature_set(d)
    assert (tmp_path / "new" / "features" / key / "feature_set.json").read_bytes() == OLD.read_bytes()


@pytest.mark.parametrize("name", ["egemaps", "logmel", "text"])
def test_an_extractor_description_round_trips_through_the_catalog(name: str, tmp_path: Path) -> None:
    """What ``emofuse extract`` registers: the extractor's description with the run's provenance."""
    ex = get_extractor(name)
    d = ex.describe().with_provenance(provenance.collect())
    cat = Catalog(str(tmp_path)).init()
    cat.register_feature_set(d)
    path = tmp_path / "features" / ex.key / "feature_set.json"
    assert set(json.loads(path.read_text())) == KEYS
    assert cat.feature_set_info(ex.key) == d
    assert (d.name, d.key, d.sequence_dim, d.row_columns) == (name, ex.key, ex.sequence_dim(), ex.row_columns())


def test_unknown_keys_are_kept_and_required_keys_checked() -> None:
    text = json.dumps({"name": "x", "key": "x-v1", "version": 1, "from_the_future": [1, 2]}, indent=2, sort_keys=True)
    d = FeatureSetDescription.from_json(text)
    assert d.extra == {"from_the_future": [1, 2]}
    assert json.loads(d.to_json())["from_the_future"] == [1, 2]
    with pytest.raises(ValueError, match="needs \\['key'\\]"):
        FeatureSetDescription.from_json('{"name": "x"}')
