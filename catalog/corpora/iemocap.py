"""IEMOCAP recipe: utterance turns inside dialog videos, their labels and transcripts, leave-one-session-out.

Layout (the corpus's own; only these files are read)::

    Session1/dialog/avi/DivX/Ses01F_impro01.avi          one video per dialog (both actors)
    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt     turns: times, label, [V, A, D] + evaluator lines
    Session1/dialog/transcriptions/Ses01F_impro01.txt    one line per turn: name [start-end]: text
    Session2/ ... Session5/

Every annotated turn is an item: a time range of its dialog video (a *segment item*:
``segment_start``/``segment_end`` in seconds, the item id a hash of the video's content and
the range, so extraction decodes only the turn). An EmoEvaluation file holds a header line,
blank lines, and per turn a line ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000,
2.5000, 2.5000]`` followed by one line per evaluator (``C-E2:<TAB>Neutral;<TAB>()``,
``A-E3:<TAB>val 3; act 2; dom  3;<TAB>()``), which are not turns. A turn line that does not
parse, or any other line that is neither a header, an evaluator line nor blank, is a
:class:`IemocapFormatError` naming ``file:line``. Transcription lines
``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`` give each turn's text; lines that do
not start with a turn name (``M: ...``) are skipped, a turn line that does not parse is an error.

Columns: ``speaker`` = session + the F/M letter of the turn name's last part
(``Ses01F_impro01_M003`` -> ``Ses01_M``, one id per actor), ``sex``; ``emotion_full`` the
annotators' label as a word (:data:`FULL_LABELS`), ``emotion`` the usual 4-class set
(:data:`CLASSES`: excited merged into happy, other labels null); ``valence``, ``arousal``,
``dominance`` on IEMOCAP's 1-5 scale; ``session`` (``Session1``), ``dialogue``, ``utterance``
(the turn name), ``transcript``. IEMOCAP has no official split (``split`` stays null): models
are evaluated leave-one-session-out (:func:`evaluation_plan`).

``selection`` narrows a run: session folder names (``Session1``) and/or ``improvised`` /
``scripted`` (the dialog kinds).

Example:
    >>> ses = os.path.join("iemocap", "Session1", "dialog")
    >>> for d in ("avi/DivX", "EmoEvaluation", "transcriptions"):
    ...     os.makedirs(os.path.join(ses, d))
    >>> open(os.path.join(ses, "avi/DivX/Ses01F_impro01.avi"), "wb").close()
    >>> with open(os.path.join(ses, "EmoEvaluation/Ses01F_impro01.txt"), "w") as f:
    ...     _ = f.write("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\\n\\n"
    ...                 "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\texc\\t[3.5000, 3.0000, 2.5000]\\n"
    ...                 "C-E2:\\tExcited;\\t()\\nA-E3:\\tval 3; act 2; dom  3;\\t()\\n\\n")
    >>> with open(os.path.join(ses, "transcriptions/Ses01F_impro01.txt"), "w") as f:
    ...     _ = f.write("Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\\nM: [BREATHING]\\n")
    >>> (e,) = discover("iemocap")
    >>> os.path.relpath(e.path, "iemocap"), e.columns["speaker"], e.columns["emotion"], e.columns["emotion_full"]
    ('Session1/dialog/avi/DivX/Ses01F_impro01.avi', 'Ses01_F', 'happy', 'excited')
    >>> e.columns["segment_start"], e.columns["segment_end"], e.columns["valence"], e.columns["transcript"]
    (6.2901, 8.2357, 3.5, 'Excuse me.')
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import pandas as pd

from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan, Fold
from emofuse.catalog.corpora.recipe import IDENTITY_MAP, CorpusRecipe
from emofuse.catalog.corpora.registry import register_corpus

#: Class order of ``emotion`` (the usual 4-class IEMOCAP task; excited counts as happy).
CLASSES: list[str] = ["neutral", "happy", "sad", "angry"]

#: IEMOCAP label code -> ``emotion_full`` word (``xxx``: the annotators did not agree).
FULL_LABELS: dict[str, str] = {
    "neu": "neutral", "hap": "happy", "exc": "excited", "sad": "sad", "ang": "angry", "fru": "frustrated",
    "sur": "surprised", "fea": "fearful", "dis": "disgusted", "oth": "other", "xxx": "undecided",
}
#: IEMOCAP label code -> ``emotion`` (the 4 classes); codes not here leave ``emotion`` null.
FOUR_CLASS: dict[str, str] = {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"}

#: The dialog kinds ``selection`` can name, by the word in the dialog names.
KINDS = {"improvised": "_impro", "scripted": "_script"}

_SESSION = re.compile(r"^Session(\d+)$")
_NUM = r"(\d+(?:\.\d*)?)"
_TURN_LINE = re.compile(rf"^\[\s*{_NUM}\s*-\s*{_NUM}\s*\]\s+(\S+)\s+(\S+)\s+\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]\s*$")
_EVALUATOR_LINE = re.compile(r"^[A-Z]+-[A-Z]+\d*\s*:")
_TURN_NAME = re.compile(r"^(Ses(\d\d))[FM]_.+_([FM])[0-9A-Z]*\d$")
_TRANSCRIPT_LINE = re.compile(rf"^(\S+)\s+\[\s*{_NUM}\s*-\s*{_NUM}\s*\]\s*:\s?(.*)$")


class IemocapFormatError(ValueError):
    """An IEMOCAP annotation or transcription line that does not parse (the message names ``file:line``)."""


@dataclass(frozen=True)
class Turn:
    """One annotated turn of an EmoEvaluation file."""

    start: float
    end: float
    name: str
    label: str
    vad: tuple[float, float, float]
    line: int


def parse_evaluation(path: str) -> list[Turn]:
    """The turns of an EmoEvaluation file; raise :class:`IemocapFormatError` (``file:line``) on a bad line."""
    turns = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("%") or _EVALUATOR_LINE.match(line):
                continue
            where = f"{path}:{n}"
            m = _TURN_LINE.match(line)
            if not m or not line.startswith("["):
                raise IemocapFormatError(
                    f"{where}: expected a turn line '[start - end]<TAB>turn<TAB>label<TAB>[V, A, D]' or an "
                    f"evaluator line 'C-E2:<TAB>...', got {line!r}")
            start, end, name, label, v, a, d = m.groups()
            if label not in FULL_LABELS:
                raise IemocapFormatError(f"{where}: unknown emotion label {label!r}; IEMOCAP uses {sorted(FULL_LABELS)}")
            if float(end) <= float(start):
                raise IemocapFormatError(f"{where}: turn {name} ends ({end}) before it starts ({start})")
            vad = (float(v), float(a), float(d))
            if not all(1.0 <= x <= 5.0 for x in vad):
                raise IemocapFormatError(f"{where}: [V, A, D] = {list(vad)} is outside IEMOCAP's 1-5 scale")
            if not _TURN_NAME.match(name):
                raise IemocapFormatError(f"{where}: {name!r} is not an IEMOCAP turn name (e.g. Ses01F_impro01_F000)")
            turns.append(Turn(float(start), float(end), name, label, vad, n))
    return turns


def parse_transcription(path: str, dialogue: str) -> dict[str, str]:
    """Turn name -> text of a transcription file; lines without a turn name of ``dialogue`` are skipped."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line.startswith(dialogue + "_"):
                continue  # "M: [LAUGHTER]", blank lines, ...
            m = _TRANSCRIPT_LINE.match(line)
            if not m:
                raise IemocapFormatError(
                    f"{path}:{n}: expected 'turn [start-end]: text' (e.g. 'Ses01F_impro01_F000 "
                    f"[006.2901-008.2357]: Excuse me.'), got {line!r}")
            out[m.group(1)] = " ".join(m.group(4).split())
    return out


def turn_columns(turn: Turn, *, session: str, dialogue: str, transcript: str | None) -> dict[str, Any]:
    """The MEDIA_SCHEMA corpus columns of one turn (a segment item of its dialog video)."""
    m = _TURN_NAME.match(turn.name)
    assert m is not None  # checked by parse_evaluation
    letter = m.group(3)
    return {
        "corpus": "iemocap",
        "speaker": f"{m.group(1)}_{letter}",
        "sex": "female" if letter == "F" else "male",
        "emotion": FOUR_CLASS.get(turn.label),
        "emotion_full": FULL_LABELS[turn.label],
        "valence": turn.vad[0],
        "arousal": turn.vad[1],
        "dominance": turn.vad[2],
        "session": session,
        "dialogue": dialogue,
        "utterance": turn.name,
        "transcript": transcript,
        "segment_start": turn.start,
        "segment_end": turn.end,
    }


def _selection(selection: Iterable[str] | None) -> tuple[set[str] | None, set[str] | None]:
    """(session folder names or None for all, dialog kinds or None for all)."""
    sessions, kinds = set(), set()
    for v in selection or []:
        if _SESSION.match(v):
            sessions.add(v)
        elif v in KINDS:
            kinds.add(v)
        else:
            raise ValueError(f"unknown IEMOCAP selection {v!r}: use session folders (Session1 ... Session5) "
                             f"and/or {sorted(KINDS)}")
    return sessions or None, kinds or None


def discover(source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """One :class:`Entry` per annotated turn of every dialog under ``source`` (see module).

    A dialog whose video is missing, or a video without an EmoEvaluation file, comes back as
    a rejected entry; a malformed line raises :class:`IemocapFormatError`.
    """
    if not os.path.isdir(source):
        raise FileNotFoundError(f"IEMOCAP root {source!r} is not a folder (expected Session1 ... Session5 in it)")
    sessions, kinds = _selection(selection)
    found = sorted((int(m.group(1)), d) for d in os.listdir(source) if (m := _SESSION.match(d))
                   and os.path.isdir(os.path.join(source, d)))
    if not found:
        raise FileNotFoundError(f"{source}: no Session1 ... Session5 folder: not an IEMOCAP root")
    for _, session in found:
        if sessions is not None and session not in sessions:
            continue
        dialog = os.path.join(source, session, "dialog")
        yield from _session_entries(session, dialog, kinds)


def _session_entries(session: str, dialog: str, kinds: set[str] | None) -> Iterator[Entry]:
    evals = os.path.join(dialog, "EmoEvaluation")
    videos = os.path.join(dialog, "avi", "DivX")
    names = _stems(evals, ".txt") | _stems(videos, ".avi")
    for name in sorted(names):
        if kinds is not None and not any(KINDS[k] in name for k in kinds):
            continue
        video = os.path.abspath(os.path.join(videos, name + ".avi"))
        ev = os.path.join(evals, name + ".txt")
        if not os.path.isfile(ev):
            yield Entry(video, {}, f"no EmoEvaluation file {ev}: the dialog's turns are unknown")
            continue
        if not os.path.isfile(video):
            yield Entry(video, {}, f"the dialog video is missing (annotated in {ev})")
            continue
        tr_path = os.path.join(dialog, "transcriptions", name + ".txt")
        texts = parse_transcription(tr_path, name) if os.path.isfile(tr_path) else {}
        for turn in parse_evaluation(ev):
            if not turn.name.startswith(name + "_"):
                raise IemocapFormatError(f"{ev}:{turn.line}: turn {turn.name} does not belong to dialog {name}")
            yield Entry(video, turn_columns(turn, session=session, dialogue=name, transcript=texts.get(turn.name)))


def _stems(folder: str, ext: str) -> set[str]:
    if not os.path.isdir(folder):
        return set()
    return {f[: -len(ext)] for f in os.listdir(folder)
            if f.endswith(ext) and not f.startswith(".") and os.path.isfile(os.path.join(folder, f))}


def evaluation_plan(media: pd.DataFrame) -> EvaluationPlan:
    """Leave-one-session-out: fold k tests on the k-th session, validates on the next one, trains on the rest.

    Values are those of the ``session`` column (``by: "session"``); needs at least 3 sessions.

    >>> evaluation_plan(pd.DataFrame({"session": ["Session1", "Session2", "Session3"]}))[0]
    Fold(index=0, by='session', train=('Session3',), val=('Session2',), test=('Session1',))
    """
    sessions = sorted(set(media["session"].dropna()), key=lambda s: (len(s), s))
    if len(sessions) < 3:
        raise ValueError(f"leave-one-session-out with a validation session needs at least 3 sessions, "
                         f"got {sessions}")
    plan = []
    for k, test in enumerate(sessions):
        val = sessions[(k + 1) % len(sessions)]
        plan.append(Fold(k, train=tuple(s for s in sessions if s not in (test, val)), val=(val,), test=(test,),
                         by="session"))
    return EvaluationPlan(tuple(plan))


@register_corpus
class IemocapRecipe(CorpusRecipe):
    """IEMOCAP: annotated turns of ``Session*/dialog`` videos as segment items, leave one session out."""

    name = "iemocap"
    naming_hint = ("IEMOCAP layout: Session1 ... Session5/dialog/avi/DivX/<dialog>.avi with "
                   "Session*/dialog/EmoEvaluation/<dialog>.txt (e.g. Session1/dialog/avi/DivX/Ses01F_impro01.avi)")
    classes = tuple(CLASSES)
    class_map = IDENTITY_MAP
    demo_module = "iemocap"

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
        return discover(source, selection)

    def evaluation_plan(self, media: pd.DataFrame) -> EvaluationPlan:
        return evaluation_plan(media)


__all__ = ["CLASSES", "FOUR_CLASS", "FULL_LABELS", "IemocapFormatError", "IemocapRecipe", "Turn", "discover",
           "evaluation_plan", "parse_evaluation", "parse_transcription", "turn_columns"]
