"""On-disk layout of a catalog root: the only place that knows folder names.

```
<root>/catalog.json                                  layout version
<root>/media/part-*.parquet                          MEDIA_SCHEMA
<root>/labels/part-*.parquet                         FRAME_LABELS_SCHEMA (per-frame labels)
<root>/status/feature_set=<key>/part-*.parquet       STATUS_SCHEMA (append-only log)
<root>/features/<key>/feature_set.json               name, version, config, provenance
<root>/features/<key>/clips/part-*.parquet           one row per item (functionals, pooled vectors)
<root>/features/<key>/index/part-*.parquet           SEQ_INDEX_SCHEMA, rows of the shards
<root>/features/<key>/shards/<task>.zarr             Zarr v3 group of concatenated sequences
<root>/runs/<run_id>/                                fusion runs (weights, metrics, plots)
<root>/predictions/model=<m>/run=<id>/part-*.parquet predictions (Hive-partitioned)
<root>/attributions/run=<id>/index/part-*.parquet    TIME_ATTRIBUTION_INDEX_SCHEMA (explained scoring)
<root>/attributions/run=<id>/shards/<part>.zarr      Zarr v3: times (step start), end, weight
<root>/locks/                                        claims of running tasks, lock files of short critical sections
<root>/locks/tasks/<task>.json                       a task's claim: held from its first write until its commit
<root>/extract_runs/<run_id>.json                    summary of each extract run that changed the catalog
<root>/reports/<run_id>/index.html                   the HTML report of a scored run (``emofuse report``)
<root>/results/part-<evaluation>.parquet             RESULTS_SCHEMA: metrics with intervals of runs and evaluations
<root>/reports/board/index.html                      the results board (``emofuse board``)
```
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import fsspec

from emofuse.catalog import urls

DEFAULT_ROOT_ENV = "EMOFUSE_CATALOG"
DATA_DIR_ENV = "EMOFUSE_DATA"
DEFAULT_DATA_DIR = "emofuse-data"


def data_dir() -> str:
    """Where the embedded default keeps demo corpus, catalog and logs: ``$EMOFUSE_DATA`` or ``./emofuse-data``."""
    return os.path.abspath(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def default_root() -> str:
    """The catalog root used when none is given: ``$EMOFUSE_CATALOG`` or ``<data dir>/catalog``."""
    return os.environ.get(DEFAULT_ROOT_ENV) or os.path.join(data_dir(), "catalog")


@dataclass(frozen=True)
class Layout:
    """Paths inside one catalog root (a local folder or any fsspec URL)."""

    root: str

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None = None) -> "Layout":
        root = str(root) if root is not None else default_root()
        if urls.is_local(root):
            root = os.path.abspath(os.path.expanduser(urls.local_path(root)))
        else:
            urls.list_afresh(root)
        return cls(root.rstrip("/"))

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return urls.filesystem(self.root)

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    @property
    def manifest(self) -> str:
        return self.join("catalog.json")

    @property
    def media(self) -> str:
        return self.join("media")

    @property
    def labels(self) -> str:
        return self.join("labels")

    @property
    def status(self) -> str:
        return self.join("status")

    def status_dir(self, feature_set: str) -> str:
        return self.join("status", f"feature_set={feature_set}")

    @property
    def features(self) -> str:
        return self.join("features")

    def feature_set(self, key: str) -> str:
        return self.join("features", key)

    def feature_set_info(self, key: str) -> str:
        return self.join("features", key, "feature_set.json")

    def clips(self, key: str) -> str:
        return self.join("features", key, "clips")

    def seq_index(self, key: str) -> str:
        return self.join("features", key, "index")

    def shards(self, key: str) -> str:
        return self.join("features", key, "shards")

    def shard(self, key: str, shard: str) -> str:
        return self.join("features", key, "shards", f"{shard}.zarr")

    @property
    def runs(self) -> str:
        return self.join("runs")

    def run(self, run_id: str) -> str:
        return self.join("runs", run_id)

    @property
    def predictions(self) -> str:
        return self.join("predictions")

    def predictions_dir(self, model: str, run_id: str) -> str:
        return self.join("predictions", f"model={model}", f"run={run_id}")

    @property
    def attributions(self) -> str:
        return self.join("attributions")

    @property
    def results(self) -> str:
        return self.join("results")

    def attributions_dir(self, run_id: str) -> str:
        """Time attributions of one run (index parts and Zarr shards)."""
        return self.join("attributions", f"run={run_id}")

    def attribution_index(self, run_id: str) -> str:
        return self.join("attributions", f"run={run_id}", "index")

    def attribution_shard(self, run_id: str, shard: str) -> str:
        return self.join("attributions", f"run={run_id}", "shards", f"{shard}.zarr")

    @property
    def locks(self) -> str:
        return self.join("locks")

    @property
    def task_claims(self) -> str:
        """Claims of extraction tasks, ``<task>.json``: a stale one is a task that may have left parts."""
        return self.join("locks", "tasks")

    @property
    def extract_runs(self) -> str:
        return self.join("extract_runs")

    def extract_run(self, run_id: str) -> str:
        return self.join("extract_runs", f"{run_id}.json")

    @property
    def reports(self) -> str:
        return self.join("reports")

    def report(self, run_id: str) -> str:
        """The folder of a run's HTML report (``index.html`` and its ``thumbs/``)."""
        return self.join("reports", run_id)
