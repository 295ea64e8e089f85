"""Records that cross the pipeline → catalog boundary: one item's extracted output and the
description of a feature set (``features/<key>/feature_set.json``)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emofuse.catalog.schemas import Status


@dataclass
class Sequence:
    """Frame-level rows of one item: ``times`` (T,) seconds and named arrays of first dim T.

    ``arrays`` must hold ``"values"`` (T, D) float32; other entries (mask, bbox,
    det_score, ...) are stored beside it in the same shard with the same offsets.
    """

    times: np.ndarray
    arrays: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)
        if "values" not in self.arrays:
            raise ValueError("a Sequence needs a 'values' array")
        for name, arr in self.arrays.items():
            if len(arr) != len(self.times):
                raise ValueError(f"array {name!r} has {len(arr)} rows, times has {len(self.times)}")

    def __len__(self) -> int:
        return len(self.times)


@dataclass
class ExtractResult:
    """One item's output for one feature set: a status, a per-clip row, a sequence."""

    item_id: str
    status: Status = Status.OK
    message: str = ""
    row: dict[str, Any] | None = None
    sequence: Sequence | None = None
    n_frames: int = 0
    wall_s: float = 0.0

    @classmethod
    def failed(cls, item_id: str, status: Status, message: str) -> "ExtractResult":
        return cls(item_id=item_id, status=status, message=message)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


@dataclass(frozen=True)
class FeatureSetDescription:
    """What ``features/<key>/feature_set.json`` says: enough to reproduce a feature set's output.

    The extractor that wrote it (``name``, ``version``, ``config``, ``weights_checksum``, which
    together give ``key``), its output (``row_columns`` of the per-clip row, width and column
    names of the sequences) and the provenance of the run that first extracted it. The JSON
    keys are the field names; keys this class does not know are kept in ``extra`` and written
    back unchanged, so a description round-trips byte for byte.

    >>> d = FeatureSetDescription(name="demo", key="demo-v1-abc", version=1, sequence_dim=2)
    >>> FeatureSetDescription.from_json(d.to_json()) == d
    True
    >>> FeatureSetDescription.from_json('{"name": "demo", "key": "demo-v1", "future": 1}').extra
    {'future': 1}
    """

    name: str
    key: str
    version: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    weights_checksum: str | None = None
    #: Per-clip columns (None: the feature set has no per-clip row).
    row_columns: list[str] | None = None
    #: Width of a sequence's ``values`` (None: no sequence) and their column names, if meaningful.
    sequence_dim: int | None = None
    sequence_columns: list[str] | None = None
    #: Package versions, git revision, device (:func:`emofuse.catalog.provenance.collect`).
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Keys of the JSON this class does not know (written back unchanged).
    extra: dict[str, Any] = field(default_factory=dict)

    def with_provenance(self, provenance: dict[str, Any]) -> "FeatureSetDescription":
        """This description with the provenance of the run that extracts it."""
        return dataclasses.replace(self, provenance=dict(provenance))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSetDescription":
        """The description a ``feature_set.json`` object holds (any written by emofuse so far)."""
        missing = [k for k in ("name", "key") if k not in data]
        if missing:
            raise ValueError(f"a feature-set description needs {missing}; it has {sorted(data)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: one key per field, then the unknown keys read with it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return out | self.extra

    @classmethod
    def from_json(cls, text: str | bytes) -> "FeatureSetDescription":
        """Parse a ``feature_set.json``."""
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        """The ``feature_set.json`` text (indented, keys sorted: the layout catalogs have always used)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)
