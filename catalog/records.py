"""Records that cross the pipeline → catalog boundary: one item's extracted output."""
from __future__ import annotations

from dataclasses import dataclass
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
