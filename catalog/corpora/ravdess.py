"""RAVDESS corpus recipe: file naming, label parsing, discovery, class order and fold plan.

RAVDESS names every file ``MM-VV-EE-II-SS-RR-AA.ext`` inside ``Actor_AA/``:
modality, vocal channel, emotion, intensity, statement, repetition, actor
(odd actors are male, even are female).

Models trained on RAVDESS order their classes as :data:`EMOTION_CLASSES`, and
evaluate on :func:`ravdess_plan`: the official protocol's five test folds of four
actors (1-4, 5-8, ..., 17-20; actors 21-24 always train). The official code has no
validation split; ours takes the next fold's four actors (fold k validates on the
test actors of fold k+1 mod 5), so training keeps 16 actors.

Example:
    >>> parse_name("03-01-05-02-01-01-12.wav")["emotion"]
    'angry'
    >>> make_name(modality=1, vocal_channel=1, emotion=5, intensity=2, statement=1, repetition=1, actor=12)
    '01-01-05-02-01-01-12.mp4'
    >>> EMOTION_CLASSES[:3]
    ['neutral', 'calm', 'happy']
    >>> fold = ravdess_plan()[0]
    >>> fold.test, fold.val, len(fold.train)
    (('Actor_01', 'Actor_02', 'Actor_03', 'Actor_04'), ('Actor_05', 'Actor_06', 'Actor_07', 'Actor_08'), 16)
    >>> RavdessRecipe().evaluation_plan(pd.DataFrame({"speaker": RAVDESS_ACTORS[:20]})) is None  # not all 24
    True
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import pandas as pd

from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan, Fold
from emofuse.catalog.corpora.recipe import IDENTITY_MAP, CorpusRecipe, Progress
from emofuse.catalog.corpora.registry import register_corpus
MODALITIES = {1: "full-AV", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
#: Class order used by models trained on RAVDESS.
EMOTION_CLASSES: list[str] = [EMOTIONS[k] for k in sorted(EMOTIONS)]

#: The 24 actors of the full corpus (speaker names as :func:`parse_name` gives them).
RAVDESS_ACTORS: list[str] = [f"Actor_{i:02d}" for i in range(1, 25)]

MEDIA_EXTENSIONS = (".mp4", ".wav")
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


class RavdessNameError(ValueError):
    """A file name that does not follow the RAVDESS convention."""


def make_name(*, modality: int, vocal_channel: int, emotion: int, intensity: int,
              statement: int, repetition: int, actor: int, ext: str = ".mp4") -> str:
    """The RAVDESS file name for these codes (the inverse of :func:`parse_name`)."""
    codes = (modality, vocal_channel, emotion, intensity, statement, repetition, actor)
    return "-".join(f"{c:02d}" for c in codes) + ext


def parse_name(name: str) -> dict[str, Any]:
    """Parse a RAVDESS file name into labelled fields; raise :class:`RavdessNameError` if malformed."""
    base = os.path.basename(name)
    stem, ext = os.path.splitext(base)
    m = _NAME.match(stem)
    if not m:
        raise RavdessNameError(
            f"{base!r} is not a RAVDESS name: expected seven two-digit codes "
            "MM-VV-EE-II-SS-RR-AA, e.g. 01-01-05-02-01-01-12.mp4"
        )
    mod, voc, emo, inten, stmt, rep, actor = (int(g) for g in m.groups())

    def check(value: int, table: dict[int, str], what: str) -> str:
        if value not in table:
            raise RavdessNameError(f"{base!r}: {what} code {value:02d} is not one of {sorted(table)}")
        return table[value]

    modality = check(mod, MODALITIES, "modality")
    vocal = check(voc, VOCAL_CHANNELS, "vocal channel")
    emotion = check(emo, EMOTIONS, "emotion")
    intensity = check(inten, INTENSITIES, "intensity")
    statement_text = check(stmt, STATEMENTS, "statement")
    if rep not in (1, 2):
        raise RavdessNameError(f"{base!r}: repetition code {rep:02d} is not 01 or 02")
    if not 1 <= actor <= 99:
        raise RavdessNameError(f"{base!r}: actor code {actor:02d} is out of range")
    if emo == 1 and inten == 2:
        raise RavdessNameError(f"{base!r}: neutral emotion has no strong intensity in RAVDESS")
    return {
        "modality": modality,
        "modality_code": mod,
        "vocal_channel": vocal,
        "vocal_channel_code": voc,
        "emotion": emotion,
        "emotion_code": emo,
        "intensity": intensity,
        "statement": stmt,
        "transcript": statement_text,
        "repetition": rep,
        "actor": actor,
        "speaker": f"Actor_{actor:02d}",
        "sex": "male" if actor % 2 else "female",
        "ext": ext.lower(),
    }


@dataclass(frozen=True)
class Selection:
    """Which RAVDESS files a run takes. Default: audio-visual speech (``01-01-*.mp4``)."""

    modalities: tuple[str, ...] = ("full-AV",)
    vocal_channels: tuple[str, ...] = ("speech",)
    actors: tuple[int, ...] | None = None

    def accepts(self, fields: dict[str, Any]) -> bool:
        return (
            fields["modality"] in self.modalities
            and fields["vocal_channel"] in self.vocal_channels
            and (self.actors is None or fields["actor"] in self.actors)
        )


@dataclass(frozen=True)
class Found:
    """A discovered file: its path, its labels, or why its name was rejected."""

    path: str
    fields: dict[str, Any] | None
    error: str | None = None


def discover(root: str, selection: Selection | None = None) -> Iterator[Found]:
    """Walk ``root`` for ``Actor_XX/*.mp4|*.wav``; yield selected files and malformed names.

    Files whose name parses but that the selection excludes are skipped silently
    (that is the point of a selection); malformed names come back with ``error``.

    >>> os.makedirs("ravdess/Actor_12")
    >>> for name in ("01-01-05-02-01-01-12.mp4", "03-01-05-02-01-01-12.wav", "clip.mp4"):
    ...     open(os.path.join("ravdess/Actor_12", name), "wb").close()
    >>> [(os.path.basename(f.path), f.fields and f.fields["emotion"], bool(f.error)) for f in discover("ravdess")]
    [('01-01-05-02-01-01-12.mp4', 'angry', False), ('clip.mp4', None, True)]
    """
    selection = selection or Selection()
    if not os.path.isdir(root):
        raise FileNotFoundError(f"RAVDESS root {root!r} is not a folder")
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.lower().endswith(MEDIA_EXTENSIONS) or fn.startswith("."):
                continue
            path = os.path.abspath(os.path.join(dirpath, fn))
            try:
                fields = parse_name(fn)
            except RavdessNameError as e:
                yield Found(path, None, str(e))
                continue
            folder = os.path.basename(dirpath)
            if folder.startswith("Actor_") and folder != fields["speaker"]:
                yield Found(path, None, f"{fn!r} names actor {fields['actor']:02d} but lies in {folder}")
                continue
            if selection.accepts(fields):
                yield Found(path, fields)


def media_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """The MEDIA_SCHEMA corpus columns for one parsed name."""
    return {
        "corpus": "ravdess",
        "speaker": fields["speaker"],
        "sex": fields["sex"],
        "modality": fields["modality"],
        "vocal_channel": fields["vocal_channel"],
        "emotion": fields["emotion"],
        "emotion_code": fields["emotion_code"],
        "intensity": fields["intensity"],
        "statement": fields["statement"],
        "transcript": fields["transcript"],
        "repetition": fields["repetition"],
    }


def parse_selection(values: Iterable[str] | None) -> Selection:
    """Build a selection from names like ``["full-AV", "audio-only", "speech", "song"]``."""
    if not values:
        return Selection()
    vals = list(values)
    mods = tuple(v for v in vals if v in MODALITIES.values())
    vocs = tuple(v for v in vals if v in VOCAL_CHANNELS.values())
    bad = [v for v in vals if v not in MODALITIES.values() and v not in VOCAL_CHANNELS.values()]
    if bad:
        raise ValueError(
            f"unknown RAVDESS selection {bad}; use modalities {list(MODALITIES.values())} "
            f"and vocal channels {list(VOCAL_CHANNELS.values())}"
        )
    return Selection(modalities=mods or Selection.modalities, vocal_channels=vocs or Selection.vocal_channels)


def is_ravdess(speakers: Iterable[str]) -> bool:
    """True when all 24 RAVDESS actors are present.

    >>> is_ravdess(RAVDESS_ACTORS), is_ravdess(RAVDESS_ACTORS[:20])
    (True, False)
    """
    return set(RAVDESS_ACTORS) <= set(speakers)


def ravdess_plan() -> EvaluationPlan:
    """The official 5-fold RAVDESS actor split with a validation group per fold (see module)."""
    groups = [[f"Actor_{a:02d}" for a in range(4 * g + 1, 4 * g + 5)] for g in range(5)]
    always = [f"Actor_{a:02d}" for a in range(21, 25)]
    folds = []
    for k in range(5):
        val = groups[(k + 1) % 5]
        train = [s for g, grp in enumerate(groups) if g not in (k, (k + 1) % 5) for s in grp] + always
        folds.append(Fold(k, train=tuple(sorted(train)), val=tuple(val), test=tuple(groups[k])))
    return EvaluationPlan(tuple(folds))


@register_corpus
class RavdessRecipe(CorpusRecipe):
    """RAVDESS: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4|.wav``, labels from the name, the official actor folds."""

    name = "ravdess"
    naming_hint = ("RAVDESS names: Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4 or .wav (seven two-digit codes, "
                   "e.g. Actor_12/01-01-05-02-01-01-12.mp4)")
    classes = tuple(EMOTION_CLASSES)
    class_map = IDENTITY_MAP  # calm, fearful, disgust, surprised: not shared
    demo_options = ("ravdess_shape", "size", "fps", "audio_rate", "song", "intensities", "repetitions")
    root_env = "EMOFUSE_RAVDESS_ROOT"
    demo_folder = "demo-corpus"

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
        """Entries of a RAVDESS tree; ``selection`` names modalities and vocal channels (``["audio-only"]``)."""
        for f in discover(source, parse_selection(selection)):
            yield Entry(f.path, media_columns(f.fields) if f.fields else {}, f.error)

    def evaluation_plan(self, media: pd.DataFrame) -> EvaluationPlan | None:
        """The official folds when all 24 actors are there (other speakers always train), else None."""
        speakers = set(media["speaker"].dropna()) if "speaker" in media else set()
        if not is_ravdess(speakers):
            return None
        extra = sorted(speakers - set(RAVDESS_ACTORS))
        return EvaluationPlan(tuple(Fold(f.index, train=tuple(sorted(f.train + tuple(extra))), val=f.val, test=f.test)
                                    for f in ravdess_plan()))

    def generate_demo(self, out: str, *, actors: int | None = None, seed: int = 0,
                      progress: Progress | None = None, **options: Any) -> list[str]:
        """The demo corpus (:mod:`emofuse.catalog.corpora.demo`): ``actors`` (default 2), format and clip options."""
        from emofuse.catalog.corpora import demo

        kwargs = demo.corpus_options(**options)
        actors = 2 if actors is None else actors
        demo.plan(actors=actors, **{k: v for k, v in kwargs.items() if k != "media"})  # bad codes: ValueError
        return demo.generate(out, actors=actors, seed=seed, progress=progress, **kwargs)
