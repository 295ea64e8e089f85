"""One unit of extraction work: a batch of items × one feature set, committed to the catalog.

The flows schedule these; the CLI and benchmarks can call :func:`run_batch`
directly. Per-item failures are data (status rows), never exceptions.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from emofuse.catalog.atomic import new_id
from emofuse.catalog.records import ExtractResult
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog
from emofuse.pipeline.registry import Extractor, MediaRef, get_extractor

log = logging.getLogger(__name__)

_EXTRACTORS: dict[str, Extractor] = {}


def cached_extractor(name: str, config: dict[str, Any] | None) -> Extractor:
    """One extractor (and its loaded models) per process and configuration."""
    key = f"{name}:{json.dumps(config or {}, sort_keys=True)}"
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = get_extractor(name, config)
    return _EXTRACTORS[key]


@dataclass
class BatchSummary:
    """What a batch did: counts per status, items skipped, media seconds, wall time."""

    feature_set: str
    task_id: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    #: Status rows written: 0 when every result repeats what the catalog already says.
    written: int = 0
    media_seconds: float = 0.0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_batch(catalog_root: str, name: str, config: dict[str, Any] | None, items: list[MediaRef],
              *, run_id: str = "", task_id: str | None = None) -> BatchSummary:
    """Extract ``items`` (as :func:`emofuse.pipeline.plan.plan_run` plans them) with one extractor and commit them.

    Items another live task holds, or that are already ``ok``, are skipped.
    """
    t0 = time.perf_counter()
    catalog = Catalog(catalog_root)
    extractor = cached_extractor(name, config)
    key = extractor.key
    task_id = task_id or new_id()
    summary = BatchSummary(feature_set=key, task_id=task_id)
    refs = {ref.item_id: ref for ref in items}
    mine = catalog.claim(key, task_id, refs)
    summary.skipped = len(refs) - len(mine)
    finished = False
    try:
        results = _extract_safely(extractor, [refs[i] for i in mine])
        summary.written = catalog.commit_task(key, task_id, results, run_id=run_id,
                                              sequence_attrs={"columns": extractor.sequence_columns() or []})
        finished = True
    finally:  # a task that did not finish keeps its (now stale) task claim: the next repair finds what it left
        catalog.release(key, task_id, mine, finished=finished)
    for r in results:
        summary.counts[r.status.value] = summary.counts.get(r.status.value, 0) + 1
        if r.status == Status.ERROR:
            summary.errors.append(f"{refs[r.item_id].path}: {r.message.splitlines()[0] if r.message else ''}")
        summary.media_seconds += refs[r.item_id].duration or 0.0
    summary.runtime = extractor.runtime_info()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _extract_safely(extractor: Extractor, refs: list[MediaRef]) -> list[ExtractResult]:
    """Batch extraction; if the batch call raises, fall back per item so one bad file fails alone."""
    if not refs:
        return []
    t0 = time.perf_counter()
    try:
        results = extractor.extract_many(refs)
        share = (time.perf_counter() - t0) / len(results) if results else 0.0
        for r in results:  # batched extractors cannot time items alone: record their share
            r.wall_s = r.wall_s or share
        return results
    except Exception:  # noqa: BLE001 - isolate the culprit below
        log.warning("batch of %d failed in %s; retrying item by item", len(refs), extractor.name)
    out = []
    for ref in refs:
        t0 = time.perf_counter()
        try:
            out.append(extractor.extract(ref))
        except Exception as e:  # noqa: BLE001 - an unexpected failure is a status, with its traceback
            msg = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
            out.append(ExtractResult(item_id=ref.item_id, status=Status.ERROR, message=msg,
                                     wall_s=time.perf_counter() - t0))
    return out
