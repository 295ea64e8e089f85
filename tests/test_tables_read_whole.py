"""Every table folder of a catalog reads whole with plain pandas, pyarrow.dataset and DuckDB.

pyarrow and DuckDB take a folder's schema from one part, so the catalog must never leave parts
of one table with different schemas. The awkward mixes are written with the real writers:
a run scored once without and once with ``explain`` (clip and window rows), runs of other
class sets, a run without classes (valence/arousal, per frame), media of two corpora, per-frame
labels, a per-clip table whose first task's optional fields are empty. Each folder is then read
with pandas (with and without ``filters``), ``pyarrow.dataset`` and DuckDB, and must give every
column any of its parts has and every row. Old catalogs (wide ``p_<class>``/``attr_*`` parts)
are migrated by ``repair``, and a crash in the middle of a migration loses and repeats nothing.
"""
from __future__ import annotations

import glob
import json
import os

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from emofuse.catalog import atomic
from emofuse.catalog.records import ExtractResult, FeatureSetDescription
from emofuse.catalog.status import StatusEntry
from emofuse.catalog.store import Catalog
from emofuse.fusion import training_run
from emofuse.fusion.score import score_items
from emofuse.fusion.torch_threads import torch_threads
from tests.test_explain import KEYS, PLAN, build_catalog

TEXT_KEY = "text-v1-mix"
OTHER_CLASSES = ["angry", "calm", "fearful"]
NOW = pd.Timestamp("2026-01-01", tz="UTC")


def _rows(ids, classes, *, window="clip", attrs=(), start=0.0, valence=np.nan):
    n = len(ids)
    rng = np.random.default_rng(len(classes) + n)
    p = rng.dirichlet(np.ones(len(classes)), size=n) if classes else np.zeros((n, 0))
    df = pd.DataFrame({"item_id": ids, "fold": "ensemble", "window": window, "start": start, "end": start + 1.0,
                       "label": [classes[k] for k in p.argmax(1)] if classes else None,
                       "score": p.max(1) if classes else np.nan, "valence": valence, "arousal": np.nan,
                       "scored_at": NOW})
    for k, c in enumerate(classes):
        df[f"p_{c}"] = p[:, k].astype(np.float32)
    for a in attrs:
        df[a] = rng.normal(size=n).astype(np.float32)
    return df


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> dict:
    """One catalog holding every awkward mix, written by the real writers."""
    root = str(tmp_path_factory.mktemp("whole") / "cat")
    cat = build_catalog(root)
    run = training_run.train(root, model="concat_mlp", model_config={"hidden": [8]}, align={"steps": 4}, epochs=2,
                             folds=PLAN[:1], seed=0, threads=1).run_id
    ids = cat.media()["item_id"].tolist()
    with torch_threads(1):
        score_items(root, run, item_ids=ids[:10], device="cpu")                         # no attributions
        score_items(root, run, item_ids=ids[10:], windows=(1.0, 0.5), explain=True, device="cpu")
    # a run of another class set, a run without classes (valence, per frame), both written by the writer
    cat.write_predictions("rcma", "rcma-classes", _rows(ids[:4], OTHER_CLASSES), OTHER_CLASSES, fold="ensemble")
    va = _rows(ids[:3], [], attrs=["attr_face_valence", "attr_audio_valence"], valence=0.25)
    cat.write_predictions("rcma", "rcma-frames", va, [], fold="ensemble",
                          attributions=["attr_face_valence", "attr_audio_valence"])
    steps = _rows([ids[0]] * 3, [], window="frame", valence=0.5).assign(start=[0.0, 0.1, 0.2])
    cat.write_predictions("rcma", "rcma-frames", steps, [], fold="ensemble", window="frame")
    # media of another corpus (other fields filled), per-frame labels in two writes
    cat.add_media([{"item_id": "meld-1", "path": "/meld/dia1_utt1.mp4", "relpath": "dia1_utt1.mp4",
                    "corpus": "meld", "season": 1, "episode": 2, "dialogue": "1", "utterance": "1",
                    "sentiment": "positive", "split": "train"}])
    cat.add_frame_labels(pd.DataFrame({"item_id": "v1", "frame": [0, 1], "time": [0.0, 0.04],
                                       "valence": [0.1, np.nan], "arousal": [0.2, np.nan],
                                       "expression": [None, None]}))
    cat.add_frame_labels(pd.DataFrame({"item_id": "v2", "frame": [0], "time": [0.0], "valence": [0.3],
                                       "arousal": [0.4], "expression": ["Happiness"]}))
    # a per-clip table whose first task has only empty optional fields, the second filled ones
    cat.register_feature_set(FeatureSetDescription(name="text", key=TEXT_KEY, version=1))
    cat.commit_task(TEXT_KEY, "t-empty", [ExtractResult(ids[0], row={
        "embedding": np.ones(4, np.float32), "transcript": None, "source": None, "texts": []})])
    cat.commit_task(TEXT_KEY, "t-full", [ExtractResult(ids[1], row={
        "embedding": np.zeros(4, np.float32), "transcript": "kids are talking", "source": "statement",
        "texts": ["kids are talking"]})])
    return {"root": root, "cat": cat, "run": run, "ids": ids}


def _folders(cat: Catalog, run: str) -> dict[str, tuple[str, list | None]]:
    """name -> (folder, a filter for pandas)."""
    lay = cat.layout
    return {
        "media": (lay.media, [("corpus", "=", "meld")]),
        "labels": (lay.labels, [("item_id", "=", "v2")]),
        "status": (lay.status, [("feature_set", "=", KEYS["faces"])]),
        "predictions": (lay.predictions, [("model", "=", "concat_mlp")]),
        "predictions/rcma": (lay.predictions, [("model", "=", "rcma")]),
        "clips": (lay.clips(TEXT_KEY), [("item_id", "!=", "")]),
        "faces clips": (lay.clips(KEYS["faces"]), [("item_id", "!=", "")]),
        "index": (lay.seq_index(KEYS["faces"]), [("item_id", "!=", "")]),
        "attributions index": (lay.attribution_index(run), [("kind", "=", "occlusion")]),
    }


def _parts(folder: str) -> list[str]:
    return sorted(p for p in glob.glob(f"{folder}/**/*.parquet", recursive=True)
                  if not os.path.basename(p).startswith((".", "_")))


def _hive(folder: str, part: str) -> dict[str, str]:
    keys = [seg.split("=", 1) for seg in os.path.relpath(os.path.dirname(part), folder).split(os.sep) if "=" in seg]
    return dict(keys)


def _expected(folder: str, filters: list | None = None) -> tuple[set[str], int]:
    """Columns any (selected) part has, with the Hive keys of its path, and the rows they hold."""
    cols: set[str] = set()
    rows = 0
    for part in _parts(folder):
        keys = _hive(folder, part)
        table = pq.read_table(part)
        cols |= set(table.schema.names) | set(keys)
        df = table.to_pandas().assign(**keys)
        for col, op, value in filters or []:
            df = df[df[col] == value] if op == "=" else df[df[col] != value]
        rows += len(df)
    return cols, rows


@pytest.mark.parametrize("name", ["media", "labels", "status", "predictions", "predictions/rcma", "clips",
                                  "faces clips", "index", "attributions index"])
def test_every_table_folder_reads_whole(mixed, name):
    folder, filters = _folders(mixed["cat"], mixed["run"])[name]
    assert _parts(folder), f"{name}: nothing written to {folder}"
    cols, rows = _expected(folder)
    df = pd.read_parquet(folder)
    assert cols <= set(df.columns), f"{name}: pandas lost {cols - set(df.columns)}"
    assert len(df) == rows, name
    fcols, frows = _expected(folder, filters)
    df = pd.read_parquet(folder, filters=filters)
    assert fcols <= set(df.columns), f"{name} with {filters}: pandas lost {fcols - set(df.columns)}"
    assert len(df) == frows > 0, name
    table = pads.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert cols <= set(table.schema.names), f"{name}: pyarrow lost {cols - set(table.schema.names)}"
    assert table.num_rows == rows, name
    rel = duckdb.sql(f"select * from read_parquet('{folder}/**/*.parquet', hive_partitioning=true)")
    assert cols <= set(rel.columns), f"{name}: DuckDB lost {cols - set(rel.columns)}"
    assert duckdb.sql(f"select count(*) from read_parquet('{folder}/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()[0][0] == rows, name


def test_plain_pandas_sees_every_class_and_attribution(mixed):
    """The documented pandas pivots give every run's probabilities and attributions back."""
    cat, run = mixed["cat"], mixed["run"]
    p = pd.read_parquet(cat.layout.predictions)
    probs = p.explode(["classes", "probs"]).dropna(subset=["classes"])
    assert set(probs["classes"]) == {"happy", "sad", *OTHER_CLASSES}
    wide = probs.pivot_table(index=["model", "run", "item_id", "fold", "window", "start"], columns="classes",
                             values="probs", aggfunc="first")
    api_wide = cat.predictions().set_index(["model", "run", "item_id", "fold", "window", "start"])
    for c in ("happy", "sad", *OTHER_CLASSES):
        got = wide[c].dropna()
        np.testing.assert_allclose(got.to_numpy(np.float64), api_wide.loc[got.index, f"p_{c}"].to_numpy(np.float64))
    attr = p.explode(["attribution_modality", "attribution_target", "attribution"]).dropna(subset=["attribution"])
    assert set(attr.groupby(["run", "attribution_target"]).size().index) >= {
        (run, "label"), ("rcma-frames", "valence")}
    assert set(attr["attribution_modality"]) == {"face", "audio"}
    explained = p[p.attribution.notna()]
    assert set(explained["item_id"]) <= set(mixed["ids"][10:]) | set(mixed["ids"][:3])


def test_catalog_api_keeps_the_wide_columns(mixed):
    cat, run = mixed["cat"], mixed["run"]
    ids = mixed["ids"]
    p = cat.predictions(run_id=run)
    assert {"p_happy", "p_sad", "attr_face", "attr_audio"} <= set(p.columns)
    assert p.loc[p.item_id.isin(ids[:10]), "attr_face"].isna().all()
    assert p.loc[p.item_id.isin(ids[10:]), "attr_audio"].notna().all()
    np.testing.assert_allclose(p[["p_happy", "p_sad"]].sum(axis=1), 1.0, rtol=1e-5)
    frames = cat.predictions(run_id="rcma-frames")
    assert {"attr_audio_valence", "attr_face_valence"} <= set(frames.columns)
    assert frames.filter(like="attr_face_valence").notna().sum().sum() == 3
    assert (frames.loc[frames.window == "frame", "valence"] == 0.5).all()
    everything = cat.predictions()
    assert {f"p_{c}" for c in ("happy", "sad", *OTHER_CLASSES)} <= set(everything.columns)
    parts = cat.existing_predictions("concat_mlp", run, parts=True)
    explained = parts.groupby("part")["explained"].first()
    assert explained.any() and not explained.all()
    assert set(parts.loc[parts.explained, "item_id"]) <= set(ids[10:])
    assert set(parts.loc[~parts.explained, "item_id"]) <= set(ids[:10])


# -- old catalogs -------------------------------------------------------------------------------------
_OLD_BASE = [("item_id", pa.string()), ("fold", pa.string()), ("window", pa.string()), ("start", pa.float64()),
             ("end", pa.float64()), ("label", pa.string()), ("score", pa.float32()), ("valence", pa.float32()),
             ("arousal", pa.float32()), ("scored_at", pa.timestamp("us", tz="UTC"))]


def _write_legacy(cat: Catalog, model: str, run: str, rows: pd.DataFrame, name: str) -> str:
    """A part as emofuse wrote predictions before: one column per class and per attribution."""
    extra = [(c, pa.float32()) for c in rows.columns if c.startswith(("p_", "attr_"))]
    schema = pa.schema(_OLD_BASE + extra)
    table = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
    folder = cat.layout.predictions_dir(model, run)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(table, f"{folder}/part-{name}.parquet")
    return f"{folder}/part-{name}.parquet"


def _legacy_catalog(root: str) -> Catalog:
    cat = Catalog(root).init()
    with open(cat.layout.manifest) as f:
        manifest = json.load(f)
    with open(cat.layout.manifest, "w") as f:
        json.dump({**manifest, "layout_version": 1}, f)
    ids = [f"i{k}" for k in range(6)]
    _write_legacy(cat, "tacfn", "old-a", _rows(ids[:3], ["happy", "sad"]), "ensemble-aaa")
    _write_legacy(cat, "tacfn", "old-a", _rows(ids[3:], ["happy", "sad"], attrs=["attr_face", "attr_audio"]),
                  "ensemble-bbb")
    _write_legacy(cat, "rcma", "old-b", _rows(ids[:2], OTHER_CLASSES), "ensemble-ccc")
    _write_legacy(cat, "rcma", "old-c", _rows(ids[:2], [], attrs=["attr_face_valence"], valence=0.1),
                  "ensemble-ddd")
    # a media part from before the later corpus fields, a status part that still held its feature set
    os.makedirs(cat.layout.media)
    pq.write_table(pa.table({"item_id": ["i0"], "path": ["/v/i0.mp4"], "emotion": ["happy"]}),
                   f"{cat.layout.media}/part-0old.parquet")
    cat.add_media([{"item_id": "i1", "path": "/v/i1.mp4", "relpath": "i1.mp4", "season": 3}])
    os.makedirs(cat.layout.status_dir("egemaps-v1"))
    pq.write_table(pa.table({"item_id": ["i0"], "status": ["ok"], "message": [""], "task_id": ["t"],
                             "feature_set": ["egemaps-v1"]}), f"{cat.layout.status_dir('egemaps-v1')}/part-0t.parquet")
    cat.record_status("egemaps-v1", [StatusEntry("i1", "no_audio", "none")])
    return cat


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    df = df[sorted(df.columns)]
    return df.sort_values(["run", "item_id", "window", "start"], ignore_index=True)


def test_repair_migrates_old_wide_parts_and_a_crash_midway_loses_nothing(tmp_path, monkeypatch):
    cat = _legacy_catalog(str(tmp_path / "old"))
    before = _sorted(cat.predictions())                      # old catalogs read through the API as they were
    assert {"p_happy", "p_angry", "attr_face", "attr_face_valence"} <= set(before.columns)
    parts = _parts(cat.layout.predictions)
    real_write = atomic.write_parquet
    calls = []

    def crash_on_second(table, folder, name=None):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("killed midway")
        return real_write(table, folder, name)

    monkeypatch.setattr(atomic, "write_parquet", crash_on_second)
    with pytest.raises(OSError, match="killed midway"):
        cat.repair(grace_s=0)
    monkeypatch.setattr(atomic, "write_parquet", real_write)
    assert _parts(cat.layout.predictions) == parts              # each part replaced in one step, none added
    pd.testing.assert_frame_equal(_sorted(cat.predictions()), before, check_exact=True)
    cat.repair(grace_s=0)
    assert _parts(cat.layout.predictions) == parts
    schemas = {pq.read_schema(p).remove_metadata() for p in parts}
    assert len(schemas) == 1
    with open(cat.layout.manifest) as f:
        assert json.load(f)["layout_version"] >= 2
    pd.testing.assert_frame_equal(_sorted(cat.predictions()), before, check_exact=True)
    cols, rows = _expected(cat.layout.predictions)
    df = pd.read_parquet(cat.layout.predictions)
    assert cols <= set(df.columns) and len(df) == rows == 10
    assert set(df.explode(["classes", "probs"])["classes"].dropna()) == {"happy", "sad", *OTHER_CLASSES}
    for folder in (cat.layout.media, cat.layout.status):
        cols, rows = _expected(folder)
        df = pd.read_parquet(folder)
        assert cols <= set(df.columns) and len(df) == rows == 2, folder
    st = cat.status("egemaps-v1")
    assert dict(zip(st.item_id, st.status)) == {"i0": "ok", "i1": "no_audio"}


def test_catalog_ls_counts_rows_not_frames(tmp_path):
    """A sequence index of 3 items with 100 frames each holds 3 rows; the frames are said as such."""
    from emofuse.catalog.records import Sequence

    cat = Catalog(tmp_path / "cat").init()
    t = np.arange(100) * 0.01
    cat.commit_task("demo-v1", "task-1", [ExtractResult(f"i{k}", sequence=Sequence(
        t, {"values": np.zeros((100, 2), np.float32)}), n_frames=100) for k in range(3)])
    tables = cat.tables().set_index("table")
    idx = tables.loc["features/demo-v1/index"]
    assert idx["rows"] == 3 and idx["items"] == 3
    assert "300 frames" in idx["details"] and idx["unit"] == "item"
    assert tables.loc["features/demo-v1/clips", "rows"] == 0


def test_catalog_ls_lists_the_results_table(tmp_path):
    """``emofuse catalog ls`` names every table folder, the results of runs and evaluations among them."""
    from emofuse.catalog.results import write_results

    cat = Catalog(tmp_path / "cat").init()
    assert "results" not in set(cat.tables()["table"])
    rows = pd.DataFrame({"kind": "train", "run": "r1", "model": "tacfn", "metric": ["uar", "war"],
                         "value": [0.5, 0.6]})
    write_results(cat.layout, "train-r1", rows)
    write_results(cat.layout, "train-r2", rows.assign(run="r2"))
    res = cat.tables().set_index("table").loc["results"]
    assert (res["rows"], res["path"], res["details"]) == (4, cat.layout.results, "2 evaluations")
