"""CREMA-D recipe: file names, demographics, discovery, class order and speaker folds.

CREMA-D (Cao et al. 2014) has 7,442 clips of 91 actors (``1001``-``1091``) saying 12
sentences in six emotions, named ``ActorID_Sentence_Emotion_Level`` (``1001_DFA_ANG_XX``):
``VideoFlash/<name>.flv`` (audio and video) and ``AudioWAV/<name>.wav`` (the audio alone).
Only ``IEO`` is spoken at levels ``LO``/``MD``/``HI``; the rest are ``XX`` (unspecified).
``VideoDemographics.csv`` (``ActorID,Age,Sex,Race,Ethnicity``) gives each actor's sex and age.

An item is a ``.flv`` (the audio-visual clip). ``AudioWAV/<name>.wav`` stands in, as an
audio-only item, only where ``VideoFlash`` lacks that name; with ``selection=["audio-only"]``
the WAV files are the items. The sentence text is the transcript; the level goes to
``intensity`` (``low``, ``medium``, ``high``, ``unspecified``). Race and ethnicity have no
media column and are not read.

Models trained on CREMA-D order their classes as :data:`CLASSES`; :func:`evaluation_plan`
deals the actors (sorted) round-robin into five speaker groups: fold k tests group k and
validates on group k+1 (mod 5), the other three train (with all 91 actors, actor 1001+j is
in group j mod 5: 18-19 actors test, 18-19 validate, 54-55 train).

Example:
    >>> f = parse_name("1001_IEO_HAP_HI.flv")
    >>> f["speaker"], f["emotion"], f["intensity"], f["transcript"]
    ('1001', 'happy', 'high', "It's eleven o'clock")
    >>> make_name(actor=1091, sentence="DFA", emotion="NEU", level="XX")
    '1091_DFA_NEU_XX.flv'
    >>> import pandas as pd
    >>> plan = evaluation_plan(pd.DataFrame({"speaker": [str(a) for a in ACTORS]}))
    >>> len(plan), plan[0].by, plan[0].test[:3], len(plan[0].train), len(plan[0].val)
    (5, 'speaker', ('1001', '1006', '1011'), 54, 18)
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any, Iterator

import pandas as pd

from emofuse.catalog.corpora.csv_records import csv_records
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan, Fold
from emofuse.catalog.corpora.recipe import IDENTITY_MAP, CorpusRecipe
from emofuse.catalog.corpora.registry import register_corpus

log = logging.getLogger(__name__)

#: Sentence code -> text (the transcript), in the corpus's own order (``statement`` = position + 1).
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
#: Emotion code -> the ``emotion`` value (RAVDESS's names for the same emotions).
EMOTIONS: dict[str, str] = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral",
                            "SAD": "sad"}
#: Level code -> the ``intensity`` value.
LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
#: The actors of the full corpus.
ACTORS = range(1001, 1092)
#: Class order of models trained on CREMA-D (RAVDESS's order of the six emotions).
CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust")
VIDEO_DIR, AUDIO_DIR, DEMOGRAPHICS = "VideoFlash", "AudioWAV", "VideoDemographics.csv"
#: Speaker groups of :func:`evaluation_plan`.
N_FOLDS = 5

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_SELECTIONS = ("full-AV", "audio-only")


class CremaNameError(ValueError):
    """A file name that does not follow the CREMA-D convention."""


def make_name(*, actor: int, sentence: str, emotion: str, level: str, ext: str = ".flv") -> str:
    """The CREMA-D file name for these codes (the inverse of :func:`parse_name`)."""
    return f"{actor}_{sentence}_{emotion}_{level}{ext}"


def parse_name(name: str) -> dict[str, Any]:
    """Parse a CREMA-D file name into labelled fields; raise :class:`CremaNameError` if malformed."""
    base = os.path.basename(name)
    stem = os.path.splitext(base)[0]
    m = _NAME.match(stem)
    if not m:
        raise CremaNameError(f"{base!r} is not a CREMA-D name: expected ActorID_Sentence_Emotion_Level, "
                             "e.g. 1001_DFA_ANG_XX.flv")
    actor, sentence, emotion, level = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    for value, table, what in ((sentence, SENTENCES, "sentence"), (emotion, EMOTIONS, "emotion"),
                               (level, LEVELS, "level")):
        if value not in table:
            raise CremaNameError(f"{base!r}: {what} code {value!r} is not one of {sorted(table)}")
    if actor not in ACTORS:
        raise CremaNameError(f"{base!r}: actor {actor} is not one of CREMA-D's 1001-1091")
    return {"actor": actor, "speaker": str(actor), "sentence": sentence,
            "statement": list(SENTENCES).index(sentence) + 1, "transcript": SENTENCES[sentence],
            "emotion_code": emotion, "emotion": EMOTIONS[emotion], "level": level, "intensity": LEVELS[level]}


def read_demographics(path: str) -> dict[int, dict[str, Any]]:
    """ActorID -> ``{"sex", "age"}`` from ``VideoDemographics.csv``; ValueError naming ``file:line``
    for a line that does not parse (no guessing)."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8-sig")
    out: dict[int, dict[str, Any]] = {}
    for where, row in csv_records(path, text, ("ActorID", "Age", "Sex"), what="CREMA-D demographics"):
        actor, age, sex = row["ActorID"], row["Age"], row["Sex"]
        if not actor.isdigit() or int(actor) not in ACTORS:
            raise ValueError(f"{where}: ActorID {actor!r} is not one of CREMA-D's 1001-1091")
        if not age.isdigit() or not 0 < int(age) < 150:
            raise ValueError(f"{where}: Age {age!r} is not a whole number of years")
        if sex.lower() not in ("male", "female"):
            raise ValueError(f"{where}: Sex {sex!r} is neither Male nor Female")
        if int(actor) in out:
            raise ValueError(f"{where}: actor {actor} is listed twice")
        out[int(actor)] = {"sex": sex.lower(), "age": int(age)}
    return out


def _find(root: str, name: str) -> str | None:
    """``root/name``, else the first file of that name below ``root`` (sorted walk)."""
    direct = os.path.join(root, name)
    if os.path.isfile(direct):
        return direct
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if name in filenames:
            return os.path.join(dirpath, name)
    return None


def _media_files(root: str, ext: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out += [os.path.abspath(os.path.join(dirpath, f)) for f in sorted(filenames)
                if f.lower().endswith(ext) and not f.startswith(".")]
    return out


def discover(source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """Entries of a CREMA-D tree: each ``.flv`` (a ``.wav`` where its ``.flv`` is missing), with labels;
    malformed names come back with ``error``. ``selection=["audio-only"]``: the ``.wav`` files instead.

    >>> os.makedirs("crema/VideoFlash"); os.makedirs("crema/AudioWAV")
    >>> for rel in ("VideoFlash/1001_DFA_ANG_XX.flv", "AudioWAV/1001_DFA_ANG_XX.wav",
    ...             "AudioWAV/1002_IEO_SAD_LO.wav", "VideoFlash/1001_DFA_ANG.flv"):
    ...     open(os.path.join("crema", rel), "wb").close()
    >>> _ = open("crema/VideoDemographics.csv", "w").write(
    ...     "ActorID,Age,Sex,Race,Ethnicity\\n1001,51,Male,Caucasian,Not Hispanic\\n")
    >>> for e in discover("crema"):
    ...     print(os.path.basename(e.path), e.columns.get("modality"), e.columns.get("sex"), e.error is not None)
    1001_DFA_ANG.flv None None True
    1001_DFA_ANG_XX.flv full-AV male False
    1002_IEO_SAD_LO.wav audio-only None False
    """
    if not os.path.isdir(source):
        raise FileNotFoundError(f"CREMA-D root {source!r} is not a folder")
    bad = [s for s in selection or [] if s not in _SELECTIONS]
    if bad or len(selection or []) > 1:
        raise ValueError(f"CREMA-D selection {selection}: use one of {list(_SELECTIONS)} (default full-AV)")
    audio_only = bool(selection) and selection[0] == "audio-only"
    demo_path = _find(source, DEMOGRAPHICS)
    demographics = read_demographics(demo_path) if demo_path else {}
    if demo_path is None:
        log.warning("no %s under %s: sex and age stay empty", DEMOGRAPHICS, source)
    videos = [] if audio_only else _media_files(source, ".flv")
    have = {os.path.splitext(os.path.basename(p))[0] for p in videos}
    wavs = [p for p in _media_files(source, ".wav") if os.path.splitext(os.path.basename(p))[0] not in have]
    unknown: set[int] = set()
    for path in sorted(videos + wavs, key=os.path.basename):
        try:
            fields = parse_name(path)
        except CremaNameError as e:
            yield Entry(path, {}, str(e))
            continue
        if demographics and fields["actor"] not in demographics:
            unknown.add(fields["actor"])
        demo = demographics.get(fields["actor"], {})
        yield Entry(path, media_columns(fields, demo, audio=path.lower().endswith(".wav")))
    if unknown:
        log.warning("%s lists no demographics for actors %s: their sex and age stay empty", demo_path, sorted(unknown))


def media_columns(fields: dict[str, Any], demographics: dict[str, Any], *, audio: bool = False) -> dict[str, Any]:
    """The MEDIA_SCHEMA corpus columns of one parsed name and its actor's demographics."""
    return {
        "corpus": "crema-d",
        "speaker": fields["speaker"],
        "sex": demographics.get("sex"),
        "age": demographics.get("age"),
        "modality": "audio-only" if audio else "full-AV",
        "vocal_channel": "speech",
        "emotion": fields["emotion"],
        "intensity": fields["intensity"],
        "statement": fields["statement"],
        "transcript": fields["transcript"],
    }


def evaluation_plan(media: pd.DataFrame) -> EvaluationPlan:
    """Five speaker-independent folds over the actors of ``media`` (see module); fewer when fewer than
    five actors (at least three)."""
    actors = sorted(set(media["speaker"].dropna().astype(str))) if "speaker" in media else []
    if len(actors) < 3:
        raise ValueError(f"CREMA-D's speaker folds need at least 3 actors with labelled items, got {actors}")
    k = min(N_FOLDS, len(actors))
    groups = [actors[i::k] for i in range(k)]
    return EvaluationPlan(tuple(
        Fold(i, train=tuple(sorted(s for j, g in enumerate(groups) if j not in (i, (i + 1) % k) for s in g)),
             val=tuple(groups[(i + 1) % k]), test=tuple(groups[i])) for i in range(k)))


@register_corpus
class CremaDRecipe(CorpusRecipe):
    """CREMA-D: ``VideoFlash/*.flv`` (``AudioWAV/*.wav``) named ``ActorID_Sentence_Emotion_Level``, speaker folds."""

    name = "crema-d"
    naming_hint = ("CREMA-D names: VideoFlash/<ActorID>_<Sentence>_<Emotion>_<Level>.flv or AudioWAV/<same>.wav "
                   "(e.g. VideoFlash/1001_DFA_ANG_XX.flv)")
    classes = CLASSES
    class_map = IDENTITY_MAP  # fearful, disgust: not shared
    demo_module = "crema_d"

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
        return discover(source, selection)

    def evaluation_plan(self, media: pd.DataFrame) -> EvaluationPlan:
        return evaluation_plan(media)


__all__ = ["ACTORS", "CLASSES", "EMOTIONS", "LEVELS", "SENTENCES", "CremaDRecipe", "CremaNameError", "discover",
           "evaluation_plan", "make_name", "media_columns", "parse_name", "read_demographics"]
