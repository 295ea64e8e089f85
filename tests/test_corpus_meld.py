"""The MELD recipe end to end: split CSVs with Windows-1252 bytes read without mangling, malformed
lines rejected with ``file:line``, clips without rows and rows without clips reported, a generated
MELD-layout corpus extracted by the extract flow with real extractors, and TACFN trained on the
official train/dev/test split (one fold, ``by="split"``)."""
from __future__ import annotations

import os
import shutil

import pytest

from emofuse.catalog.corpora import meld
from emofuse.catalog.corpora.recipes import discover
from emofuse.catalog.runs import RunFolder
from emofuse.catalog.store import Catalog
from emofuse.fusion.run_config import RunConfig

HEADER = ",".join(meld.COLUMNS)
ROW = '{n},"{text}",Ross,{emotion},negative,0,{u},3,7,"00:01:02,345","00:01:04,000"'
TINY_TACFN = {"n_layers": 1, "d_ff": 64, "n_heads": 4}
DIALOGUES = {"train": 3, "dev": 1, "test": 1}


def _csv(path, *rows: bytes) -> str:
    path.write_bytes(HEADER.encode() + b"\r\n" + b"\r\n".join(rows) + b"\r\n")
    return str(path)


def test_cp1252_and_utf8_lines_both_read_without_mangling(tmp_path):
    table = _csv(tmp_path / "dev_sent_emo.csv",
                 ROW.format(n=1, text="I don\x92t know\x85", emotion="anger", u=0).encode("latin-1"),  # cp1252 bytes
                 ROW.format(n=2, text="Caf\u00e9 \u2014 ok", emotion="fear", u=1).encode("utf-8"))
    rows = meld.read_annotations(table, "dev")
    assert rows[(0, 0)].columns["transcript"] == "I don\u2019t know\u2026"  # ’ and …
    assert rows[(0, 1)].columns["transcript"] == "Caf\u00e9 \u2014 ok"
    assert rows[(0, 0)].columns["episode_start"] == 62.345 and rows[(0, 1)].columns["episode_end"] == 64.0
    assert rows[(0, 0)].where == f"{table}:2" and rows[(0, 1)].where == f"{table}:3"
    bad = _csv(tmp_path / "bad.csv", ROW.format(n=1, text="ok", emotion="joy", u=0).encode(),
               ROW.format(n=2, text="x\x81y", emotion="joy", u=1).encode("latin-1"))  # 0x81: not cp1252 either
    with pytest.raises(ValueError, match=f"{bad}:3: byte 0x81"):
        meld.read_annotations(bad, "dev")


@pytest.mark.parametrize("row, words", [
    (ROW.format(n=2, text="hi", emotion="happy", u=1), "emotion 'happy'"),
    (ROW.format(n=2, text="hi", emotion="joy", u=1).replace("negative", "mixed"), "sentiment 'mixed'"),
    (ROW.format(n=2, text="hi", emotion="joy", u="one"), "invalid literal"),
    (ROW.format(n=2, text="hi", emotion="joy", u=1).replace('"00:01:02,345"', '"1:02"'), "time '1:02'"),
    (ROW.format(n=2, text="a, b", emotion="joy", u=1).replace('"a, b"', "a, b"), "12 fields"),
    (ROW.format(n=2, text="again", emotion="joy", u=0), "dia0_utt0 is annotated twice"),
])
def test_malformed_annotation_line_is_rejected_with_file_and_line(tmp_path, row, words):
    (tmp_path / "dev_splits_complete").mkdir()
    table = _csv(tmp_path / "dev_sent_emo.csv", ROW.format(n=1, text="fine", emotion="joy", u=0).encode(),
                 row.encode())
    with pytest.raises(ValueError, match=f"{table}:3: .*{words}"):
        list(discover("meld", str(tmp_path)))


def test_test_clip_names_of_the_release(tmp_path):
    folder = tmp_path / "output_repeated_splits_test"
    folder.mkdir()
    for name in ("dia0_utt0.mp4", "final_videos_testdia0_utt0.mp4", "final_videos_testdia0_utt1.mp4",
                 "._dia0_utt1.mp4", "notes.mp4"):
        (folder / name).write_bytes(b"")
    _csv(tmp_path / "test_sent_emo.csv", ROW.format(n=1, text="a", emotion="joy", u=0).encode(),
         ROW.format(n=2, text="b", emotion="fear", u=1).encode())
    entries = {os.path.basename(e.path): e for e in discover("meld", str(tmp_path))}
    assert sorted(entries) == ["dia0_utt0.mp4", "final_videos_testdia0_utt0.mp4", "final_videos_testdia0_utt1.mp4",
                               "notes.mp4"]  # macOS ._ files are skipped
    assert entries["dia0_utt0.mp4"].error is None and entries["dia0_utt0.mp4"].columns["split"] == "test"
    assert "a second copy of dia0_utt0: dia0_utt0.mp4 is the item" in entries["final_videos_testdia0_utt0.mp4"].error
    assert entries["final_videos_testdia0_utt1.mp4"].columns["emotion"] == "fear"  # the only copy: the item
    assert "not a MELD clip name" in entries["notes.mp4"].error


def test_a_clip_folder_without_its_csv_is_an_error(tmp_path):
    (tmp_path / "MELD.Raw" / "train_splits").mkdir(parents=True)
    with pytest.raises(ValueError, match="no train_sent_emo.csv"):
        list(discover("meld", str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="no MELD clip folder"):
        list(discover("meld", str(tmp_path / "MELD.Raw" / "train_splits")))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    """A small MELD-layout corpus with a clip missing and a stray clip, through the extract flow."""
    from emofuse.catalog.corpora.demo import meld as demo
    from emofuse.flows.extract import extract

    base = tmp_path_factory.mktemp("meld")
    src = str(base / "MELD.Raw")
    demo.generate(src, dialogues=DIALOGUES, utterances=3)
    os.remove(os.path.join(src, "train_splits", "dia1_utt2.mp4"))  # annotated, no clip
    shutil.copy(os.path.join(src, "dev_splits_complete", "dia0_utt0.mp4"),
                os.path.join(src, "dev_splits_complete", "dia7_utt0.mp4"))  # a clip without a row
    catalog = str(base / "catalog")
    record = extract(source=src, catalog=catalog, corpus="meld", feature_sets=["egemaps", "faces"], fps=2.5,
                     n_workers=2)
    return {"src": src, "catalog": catalog, "record": record}


def test_extract_fills_every_label_column_and_reports_what_does_not_match(extracted):
    media = Catalog(extracted["catalog"]).media()
    assert len(media) == 3 * sum(DIALOGUES.values()) - 1
    assert media.groupby("split").size().to_dict() == {"train": 8, "dev": 3, "test": 3}
    cols = ["speaker", "emotion", "sentiment", "split", "dialogue", "utterance", "season", "episode",
            "episode_start", "episode_end", "transcript"]
    assert media[cols].notna().all().all(), media[cols]
    assert set(media["emotion"]) == set(meld.CLASSES) and set(media["corpus"]) == {"meld"}
    assert "I don\u2019t know\u2026" in set(media["transcript"])  # from cp1252 bytes, not mangled
    assert (media["episode_end"] > media["episode_start"]).all()
    assert media["relpath"].str.contains("final_videos_testdia").sum() == 1  # the re-named test clip is an item
    rejected = extracted["record"]["rejected"]
    assert len(rejected) == 2, rejected
    assert any("dia1_utt2.mp4" in r and "train_sent_emo.csv:" in r and "has no clip" in r for r in rejected)
    assert any("dia7_utt0.mp4" in r and "no row for dia7_utt0 in" in r for r in rejected)
    counts = {k.split("-")[0]: v["counts"] for k, v in extracted["record"]["feature_sets"].items()}
    assert counts == {"egemaps": {"ok": len(media)}, "faces": {"ok": len(media)}}


def test_tacfn_trains_on_the_official_split(extracted):
    from emofuse.fusion import training_run

    res = training_run.train(extracted["catalog"], model="tacfn", model_config=TINY_TACFN, align={"steps": 16}, epochs=3,
                             seed=0, threads=1)
    cfg = RunConfig.load(RunFolder(res.run_dir))
    assert cfg.folds.to_dicts() == [{"fold": 0, "by": "split", "train": ["train"], "val": ["dev"], "test": ["test"]}]
    assert cfg.classes == [c for c in meld.CLASSES]  # every class is present: MELD's order
    (fold,) = res.folds
    assert fold["by"] == "split" and (fold["n_train_items"], fold["n_val_items"], fold["n_test_items"]) == (8, 3, 3)
    assert 0.0 <= res.metrics["accuracy"]["mean"] <= 1.0
