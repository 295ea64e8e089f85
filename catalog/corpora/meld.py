"""MELD recipe: the split CSVs (with their Windows-1252 bytes), video names, discovery, class order
and the official train/dev/test plan.

MELD (Poria et al. 2019) cuts 13,708 utterances of 1,433 dialogues from the TV series
*Friends*. The raw release holds one folder of ``dia{D}_utt{U}.mp4`` per split and one CSV:

=========  ===============================  ====================
split      videos                           labels and text
=========  ===============================  ====================
train      ``train_splits/``                ``train_sent_emo.csv``
dev        ``dev_splits_complete/``         ``dev_sent_emo.csv``
test       ``output_repeated_splits_test/``  ``test_sent_emo.csv``
=========  ===============================  ====================

CSV columns: ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID,
Season, Episode, StartTime, EndTime`` (times ``HH:MM:SS,mmm`` in the episode). Dialogue ids
restart in every split, so an utterance is (split, dialogue, utterance). The folders and CSVs
may sit anywhere below the source root (each name once).

Quirks of real copies, and what the recipe does with them:

* the CSVs mix UTF-8 and Windows-1252 (``\\x92`` for a right quote, ``\\x85`` for an
  ellipsis): every line is decoded as UTF-8, else as cp1252 (:func:`read_text`), so neither
  kind is mangled; a byte that is neither raises naming ``file:line``;
* some test clips exist only as ``final_videos_testdia{D}_utt{U}.mp4``; such a file is the
  item when the plain name is missing, and is reported as a duplicate when the plain one
  exists (the plain name is the item, as most MELD loaders take it);
* a CSV row without its video (train ``dia125_utt3``, dev ``dia110_utt7`` in the release)
  and a video without a CSV row are reported as rejected entries, never dropped silently;
* macOS ``._*`` files in the folders are skipped.

Columns: ``speaker``, ``emotion`` (:data:`CLASSES`), ``sentiment``, ``split``, ``dialogue``,
``utterance`` (the ids as text), ``season``, ``episode``, ``episode_start``/``episode_end``
(seconds), ``transcript`` (the utterance). :func:`evaluation_plan` is the official split:
one fold, ``by="split"``.

Example:
    >>> parse_video_name("final_videos_testdia12_utt3.mp4")
    (12, 3)
    >>> parse_time("00:16:16,059")
    976.059
    >>> read_text_bytes(b"I don\\x92t know\\x85\\n", "x.csv")  # cp1252 quote and ellipsis
    'I don’t know…\\n'
    >>> evaluation_plan(pd.DataFrame({"split": ["train", "dev", "test"]})).to_dicts()
    [{'fold': 0, 'by': 'split', 'train': ['train'], 'val': ['dev'], 'test': ['test']}]
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

import pandas as pd

from emofuse.catalog.corpora.csv_records import csv_records
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan, Fold
from emofuse.catalog.corpora.recipe import CorpusRecipe
from emofuse.catalog.corpora.registry import register_corpus

#: split -> (video folder, annotation CSV), as the raw release names them.
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train_splits", "train_sent_emo.csv"),
    "dev": ("dev_splits_complete", "dev_sent_emo.csv"),
    "test": ("output_repeated_splits_test", "test_sent_emo.csv"),
}
#: Class order of models trained on MELD (the dataset's own order and names).
CLASSES: tuple[str, ...] = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
SENTIMENTS: tuple[str, ...] = ("neutral", "positive", "negative")
#: The CSV header.
COLUMNS: tuple[str, ...] = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
                            "Season", "Episode", "StartTime", "EndTime")
#: Prefix of test clips that MELD re-exported under another name.
TEST_PREFIX = "final_videos_test"

_VIDEO = re.compile(rf"^(?:{TEST_PREFIX})?dia(\d+)_utt(\d+)\.mp4$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[,.](\d{1,3})$")


@dataclass(frozen=True)
class Row:
    """One annotated utterance of a split CSV and where it was written (``file:line``)."""

    where: str
    dialogue: int
    utterance: int
    columns: dict[str, Any]


def read_text_bytes(data: bytes, path: str) -> str:
    """Decode a MELD CSV line by line: UTF-8 where valid, else Windows-1252; ValueError naming
    ``path:line`` for a line that is neither (a UTF-8 byte-order mark is dropped)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out = []
    for n, line in enumerate(data.splitlines(keepends=True), 1):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                out.append(line.decode("cp1252"))
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: byte 0x{line[e.start]:02x} is neither UTF-8 nor Windows-1252; "
                                 "fix or re-download the file") from None
    return "".join(out)


def read_text(path: str) -> str:
    """The text of a MELD CSV (see :func:`read_text_bytes`)."""
    with open(path, "rb") as f:
        return read_text_bytes(f.read(), path)


def parse_time(text: str) -> float:
    """``HH:MM:SS,mmm`` -> seconds; ValueError otherwise."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"time {text!r} is not HH:MM:SS,mmm")
    h, mi, s, ms = m.groups()
    return round(int(h) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000, 3)


def parse_video_name(name: str) -> tuple[int, int]:
    """(dialogue, utterance) of ``dia{D}_utt{U}.mp4`` (or the ``final_videos_test`` form); ValueError otherwise."""
    m = _VIDEO.match(os.path.basename(name))
    if not m:
        raise ValueError(f"{os.path.basename(name)!r} is not a MELD clip name: expected dia<D>_utt<U>.mp4")
    return int(m.group(1)), int(m.group(2))


def read_annotations(path: str, split: str) -> dict[tuple[int, int], Row]:
    """(dialogue, utterance) -> :class:`Row` of a split CSV; ValueError naming ``file:line`` for a row
    that does not parse (wrong field count, unknown emotion/sentiment, non-integer id, bad time,
    a repeated utterance)."""
    rows: dict[tuple[int, int], Row] = {}
    for where, v in csv_records(path, read_text(path), COLUMNS, what="MELD"):
        try:
            ids = {c: int(v[c]) for c in ("Dialogue_ID", "Utterance_ID", "Season", "Episode")}
            if min(ids.values()) < 0:
                raise ValueError("a negative id")
            t0, t1 = parse_time(v["StartTime"]), parse_time(v["EndTime"])
        except ValueError as e:
            raise ValueError(f"{where}: {e} (Dialogue_ID, Utterance_ID, Season, Episode are whole numbers, "
                             "StartTime/EndTime HH:MM:SS,mmm)") from None
        emotion, sentiment = v["Emotion"].lower(), v["Sentiment"].lower()
        if emotion not in CLASSES:
            raise ValueError(f"{where}: emotion {v['Emotion']!r} is not one of {list(CLASSES)}")
        if sentiment not in SENTIMENTS:
            raise ValueError(f"{where}: sentiment {v['Sentiment']!r} is not one of {list(SENTIMENTS)}")
        key = (ids["Dialogue_ID"], ids["Utterance_ID"])
        if key in rows:
            raise ValueError(f"{where}: dia{key[0]}_utt{key[1]} is annotated twice (first at {rows[key].where})")
        rows[key] = Row(where, *key, {
            "corpus": "meld", "split": split, "speaker": v["Speaker"] or None, "emotion": emotion,
            "sentiment": sentiment, "dialogue": str(key[0]), "utterance": str(key[1]), "season": ids["Season"],
            "episode": ids["Episode"], "episode_start": t0, "episode_end": t1,
            "transcript": v["Utterance"] or None,
        })
    return rows


def locate(source: str) -> dict[str, tuple[str | None, str | None]]:
    """split -> (video folder, CSV) found below ``source`` (None where absent); ValueError when a name
    occurs twice (which copy is meant is not guessed)."""
    names = {n for pair in SPLITS.values() for n in pair}
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for n in [d for d in dirnames if d in names] + [f for f in filenames if f in names]:
            path = os.path.join(dirpath, n)
            if n in found:
                raise ValueError(f"{n} is in two places under {source}: {found[n]} and {path}; keep one")
            found[n] = path
        dirnames[:] = [d for d in dirnames if d not in names]  # no need to list the clips' folders twice
    return {s: (found.get(d), found.get(c)) for s, (d, c) in SPLITS.items()}


def _videos(folder: str) -> tuple[dict[tuple[int, int], str], list[Entry]]:
    """(dialogue, utterance) -> clip path of a split folder, and rejected files (bad names, duplicates)."""
    plain: dict[tuple[int, int], str] = {}
    prefixed: dict[tuple[int, int], str] = {}
    rejected: list[Entry] = []
    for fn in sorted(os.listdir(folder)):
        path = os.path.abspath(os.path.join(folder, fn))
        if fn.startswith(".") or not fn.lower().endswith(".mp4") or not os.path.isfile(path):
            continue
        try:
            key = parse_video_name(fn)
        except ValueError as e:
            rejected.append(Entry(path, {}, str(e)))
            continue
        (prefixed if fn.startswith(TEST_PREFIX) else plain)[key] = path
    for key, path in prefixed.items():
        if key in plain:
            rejected.append(Entry(path, {}, f"a second copy of dia{key[0]}_utt{key[1]}: "
                                            f"{os.path.basename(plain[key])} is the item"))
        else:
            plain[key] = path
    return plain, rejected


def discover(source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """Entries of a MELD tree (see module): one per annotated clip, with labels; clips without a CSV
    row and CSV rows without a clip come back with ``error``. ``selection``: splits to take (default
    every split whose folder is there). A split folder without its CSV, or a malformed CSV line,
    raises ValueError.
    """
    if not os.path.isdir(source):
        raise FileNotFoundError(f"MELD root {source!r} is not a folder")
    bad = [s for s in selection or [] if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown MELD splits {bad}: choose from {list(SPLITS)}")
    where = locate(source)
    splits = [s for s in (selection or SPLITS) if where[s][0] is not None]
    if not splits:
        raise FileNotFoundError(f"no MELD clip folder ({', '.join(d + '/' for d, _ in SPLITS.values())}) under "
                                f"{source}")
    for split in splits:
        folder, table = where[split]
        if table is None:
            raise ValueError(f"{folder} has no {SPLITS[split][1]} under {source}: its labels and text are in it; "
                             "put the CSV next to the folder")
        rows = read_annotations(table, split)
        videos, rejected = _videos(folder)
        yield from rejected
        for key in sorted(set(videos) | set(rows)):
            if key not in rows:
                yield Entry(videos[key], {}, f"no row for dia{key[0]}_utt{key[1]} in {table}")
            elif key not in videos:
                yield Entry(os.path.abspath(os.path.join(folder, f"dia{key[0]}_utt{key[1]}.mp4")), {},
                            f"{rows[key].where}: annotated, but {folder} has no clip of it")
            else:
                yield Entry(videos[key], dict(rows[key].columns))


def evaluation_plan(media: pd.DataFrame) -> EvaluationPlan:
    """The official split as one fold (``by="split"``); ValueError when a split has no labelled items."""
    present = set(media["split"].dropna()) if "split" in media else set()
    missing = [s for s in SPLITS if s not in present]
    if missing:
        raise ValueError(f"MELD's official plan trains on train, validates on dev and tests on test; the catalog "
                         f"has no labelled items of {missing}: extract "
                         + ", ".join(f"{SPLITS[s][0]}/ with {SPLITS[s][1]}" for s in missing)
                         + " (or train with --folds N for speaker folds instead)")
    return EvaluationPlan((Fold(0, train=("train",), val=("dev",), test=("test",), by="split"),))


@register_corpus
class MeldRecipe(CorpusRecipe):
    """MELD: ``dia{D}_utt{U}.mp4`` clips of the three split folders with their CSVs, the official split."""

    name = "meld"
    naming_hint = ("MELD layout: train_splits/, dev_splits_complete/, output_repeated_splits_test/ of "
                   "dia<D>_utt<U>.mp4 next to train_sent_emo.csv, dev_sent_emo.csv, test_sent_emo.csv")
    classes = CLASSES
    class_map = {"neutral": "neutral", "joy": "happy", "sadness": "sad", "anger": "angry"}
    demo_module = "meld"

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
        return discover(source, selection)

    def evaluation_plan(self, media: pd.DataFrame) -> EvaluationPlan:
        return evaluation_plan(media)


__all__ = ["CLASSES", "COLUMNS", "SENTIMENTS", "SPLITS", "TEST_PREFIX", "MeldRecipe", "Row", "discover",
           "evaluation_plan", "locate", "parse_time", "parse_video_name", "read_annotations", "read_text",
           "read_text_bytes"]
