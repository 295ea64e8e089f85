"""Run summaries: what an extract run did, per feature set, kept as ``extract_runs/<run_id>.json``.

:class:`ExtractRunSummary` is the typed record the extract flow fills in: one
:class:`FeatureSetRun` per feature set, the totals of its batches added with
:meth:`ExtractRunSummary.add` (a batch is anything shaped like
:class:`emofuse.pipeline.batch.BatchSummary`; storage does not import the pipeline),
a markdown report, and the check that a feature set failing on every item means a
broken set-up. :func:`write_extract_run` stores it where
:meth:`~emofuse.catalog.layout.Layout.extract_run` says (through
:meth:`Catalog.record_extract_run <emofuse.catalog.store.Catalog.record_extract_run>`);
the JSON's keys are the record's fields.

Example:
    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from emofuse.catalog.layout import Layout
    >>> run = ExtractRunSummary(run_id="20250101-120000-abcdef", catalog="cat", source="src", corpus="ravdess")
    >>> run.start("egemaps-v1-0123", name="egemaps", items=3, already_done=1)
    >>> batch = SimpleNamespace(feature_set="egemaps-v1-0123", counts={"ok": 1, "no_speech": 1}, written=2,
    ...                         media_seconds=5.0, wall_s=1.5, errors=[], runtime={"device": "cpu"})
    >>> run.add(batch).counts
    {'ok': 1, 'no_speech': 1}
    >>> run.written
    2
    >>> print(run.markdown().splitlines()[5])
    | `egemaps-v1-0123` | 3 | 1 | 2 | no_speech=1, ok=1 | 5.0 | 1.5 |
    >>> print(run.markdown().splitlines()[7])   # what the recipe took from the source (run.seen, .taken, .rejections)
    source: `src` (ravdess): 0 media files seen, 0 taken, 0 rejected
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> path = write_extract_run(layout, run)
    >>> path.endswith("/extract_runs/20250101-120000-abcdef.json")
    True
    >>> read_extract_runs(layout) == [run]
    True
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import Status
from emofuse.catalog.urls import fs_path


class BatchOutcome(Protocol):
    """What a batch of one feature set reports (the fields of ``pipeline.batch.BatchSummary`` used here)."""

    feature_set: str
    counts: dict[str, int]
    written: int
    media_seconds: float
    wall_s: float
    errors: list[str]
    runtime: dict[str, Any]


@dataclass
class FeatureSetRun:
    """One feature set in an extract run: its items, those done before, and the totals of its batches."""

    name: str
    items: int
    already_done: int
    #: status -> items attempted in this run (decode errors found at registration included).
    counts: dict[str, int] = field(default_factory=dict)
    media_seconds: float = 0.0
    task_wall_s: float = 0.0
    runtime: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: Status rows written (0 when every outcome repeats what the catalog already said).
    written: int = 0

    def add(self, batch: BatchOutcome) -> "FeatureSetRun":
        """Add one batch's counts, seconds, errors and written rows; keep its runtime when it has one."""
        for status, n in batch.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.media_seconds += batch.media_seconds
        self.task_wall_s += batch.wall_s
        self.runtime = batch.runtime or self.runtime
        self.errors += batch.errors
        self.written += batch.written
        return self

    @property
    def attempted(self) -> int:
        return sum(self.counts.values())


@dataclass
class ExtractRunSummary:
    """What one extract run did: per feature set (by key), rejected file names, wall time, provenance."""

    run_id: str
    catalog: str
    source: str | None
    corpus: str
    feature_sets: dict[str, FeatureSetRun] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Media rows the run added (new files, or new paths of known content).
    registered: int = 0
    #: Media files the corpus recipe saw under ``source``, and those it took (items of them).
    seen: int = 0
    taken: int = 0
    #: The rest by reason: reason -> ``{"count": files, "examples": [a few paths]}``.
    rejections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def new_run_id() -> str:
        """A sortable, unique run id: local time and six random hex digits (``20250101-120000-abcdef``)."""
        return time.strftime("%Y%m%d-%H%M%S-") + atomic.new_id()[:6]

    def start(self, key: str, *, name: str, items: int, already_done: int,
              counts: dict[str, int] | None = None, written: int = 0) -> None:
        """Open the record of feature set ``key`` (``counts``/``written``: outcomes known before any task)."""
        self.feature_sets[key] = FeatureSetRun(name=name, items=items, already_done=already_done,
                                               counts=dict(counts or {}), written=written)

    def add(self, batch: BatchOutcome) -> FeatureSetRun:
        """Add a finished batch to its feature set's totals; return that feature set's record."""
        return self.feature_sets[batch.feature_set].add(batch)

    @property
    def written(self) -> int:
        """Status rows written by the run, over all feature sets."""
        return sum(f.written for f in self.feature_sets.values())

    def raise_if_broken(self, min_items: int = 3) -> None:
        """Raise RuntimeError when a feature set failed on every one of at least ``min_items`` items
        (a broken set-up, not bad data)."""
        for key, fs in self.feature_sets.items():
            if fs.attempted >= min_items and fs.counts.get(Status.ERROR.value, 0) == fs.attempted:
                raise RuntimeError(f"{key}: every one of {fs.attempted} items failed — the set-up looks broken. "
                                   f"First error: {fs.errors[0] if fs.errors else '?'}. Run `emofuse doctor`.")

    def markdown(self) -> str:
        """A markdown table of the run (per feature set: items, already done, extracted now, statuses, seconds)."""
        lines = ["| feature set | items | already done | extracted now | statuses | media s | task s |",
                 "|---|---|---|---|---|---|---|"]
        for key, fs in self.feature_sets.items():
            statuses = ", ".join(f"{k}={v}" for k, v in sorted(fs.counts.items())) or "-"
            lines.append(f"| `{key}` | {fs.items} | {fs.already_done} | {fs.attempted} | {statuses} | "
                         f"{fs.media_seconds:.1f} | {fs.task_wall_s:.1f} |")
        return "\n".join([f"# extract run {self.run_id}", f"catalog: `{self.catalog}`", "", *lines, "",
                          *self._intake_lines(),
                          f"{self.registered} media rows registered; wall time {self.wall_s:.1f} s"])

    def _intake_lines(self) -> list[str]:
        """What the run took from its source: files seen, taken, and the rejected ones by reason, with examples."""
        if not self.source:
            return []
        rejected = sum(g["count"] for g in self.rejections.values())
        out = [f"source: `{self.source}` ({self.corpus}): {self.seen} media files seen, {self.taken} taken, "
               f"{rejected} rejected"]
        for reason, g in sorted(self.rejections.items(), key=lambda kv: -kv[1]["count"]):
            more = ", …" if g["count"] > len(g["examples"]) else ""
            out.append(f"- {g['count']} × {reason} (e.g. {', '.join(g['examples'])}{more})")
        return [*out, ""]

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-able data (what the flow returns and the file holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExtractRunSummary":
        sets = {k: FeatureSetRun(**v) for k, v in data.get("feature_sets", {}).items()}
        return cls(**{**data, "feature_sets": sets})


def write_extract_run(layout: Layout, summary: ExtractRunSummary) -> str:
    """Write ``summary`` atomically to ``extract_runs/<run_id>.json``; return the path."""
    path = layout.extract_run(summary.run_id)
    atomic.write_json(summary.to_dict(), path)
    return path


def read_extract_runs(layout: Layout) -> list[ExtractRunSummary]:
    """Every recorded extract run of a catalog, oldest first (run ids sort by time)."""
    fs = layout.fs
    folder = fs_path(layout.extract_runs)
    if not fs.exists(folder):
        return []
    out = []
    for path in sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".json")
                       and not p.rsplit("/", 1)[-1].startswith(".")):
        with fs.open(path, "rb") as f:
            out.append(ExtractRunSummary.from_dict(json.load(f)))
    return out


__all__ = ["BatchOutcome", "ExtractRunSummary", "FeatureSetRun", "read_extract_runs", "write_extract_run"]
