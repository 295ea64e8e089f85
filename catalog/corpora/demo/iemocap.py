"""Demo corpus in IEMOCAP layout: dialog videos of two actors taking turns, with IEMOCAP's annotation files.

:func:`generate` writes, per session ``n`` (``actors`` = number of sessions, default
:data:`DEFAULT_SESSIONS`; each session has one female and one male actor, speakers
``Ses0n_F`` and ``Ses0n_M``) and per dialog (``Ses0nF_impro01``, ``Ses0nM_impro02``, ...)::

    Session<n>/dialog/avi/DivX/<dialog>.avi
    Session<n>/dialog/EmoEvaluation/<dialog>.txt
    Session<n>/dialog/transcriptions/<dialog>.txt

A dialog is a sequence of turns, the two actors alternating. A turn is the RAVDESS demo's
machinery (:func:`~.corpus.render_av`): the speaker's face photo with an expression edit and
a mouth moving with the speech, and espeak-ng speaking a short line with a prosody, both
chosen by the turn's emotion (:data:`CUES`: neutral, happy/excited, sad and angry are told
apart by the voice's arousal level and by the face's expression), so a short fusion training
beats chance on held-out sessions.
By default each actor has five turns per dialog, one per 4-class emotion (happy as ``hap``
or ``exc``) and one with a label outside the 4 classes (frustrated, undecided, surprised, ...),
in a seeded order; the frame stays on the last speaker for a short pause between turns.

The annotation files have IEMOCAP's quirks: a header line and blank lines, per turn a line
``[start - end]<TAB>turn<TAB>label<TAB>[V, A, D]`` (times with 4 decimals, inside the turn's
speech padding, not on frame boundaries) followed by categorical evaluator lines
(``C-E1:``, ``C-E2:``, a self-evaluation ``C-F1:``/``C-M1:``) and dimensional ones
(``A-E1:<TAB>val 3; act 2; dom  3;<TAB>()``) whose ratings average to the turn's [V, A, D];
``xxx`` turns have evaluators that disagree. Transcriptions have one line per turn
``<turn> [006.2901-008.2357]: text`` plus lines without a turn name (``M: [LAUGHTER]``)
and a turn that the evaluation file does not annotate (``..._MXX0``), as the real ones have.

Media: 192x144 at 25 fps, MPEG-4 Part 2 video (FFmpeg's ``mpeg4``, the codec DivX files use;
the fourcc is FFmpeg's ``FMP4``) with MPEG-1 Layer II audio (``mp2``, 16 kHz mono) in AVI.
Not MP3, the usual companion of DivX video: PyAV's AVI muxer shifts the video of
encoders with priming samples (MP3, AAC) by two frames, and MP2 has none.

Deterministic from ``seed``: a dialog's bytes depend only on the seed and its session and
dialog number. Idempotent: a dialog whose three files exist is kept.

Example:
    >>> paths = generate("demo-iemocap", actors=1, dialogs=1, turns=2)
    >>> [p.split("demo-iemocap/", 1)[1] for p in paths]  # doctest: +NORMALIZE_WHITESPACE
    ['Session1/dialog/avi/DivX/Ses01F_impro01.avi', 'Session1/dialog/EmoEvaluation/Ses01F_impro01.txt',
     'Session1/dialog/transcriptions/Ses01F_impro01.txt']
    >>> from emofuse.catalog.corpora.iemocap import parse_evaluation
    >>> [(t.name, t.label in CUES) for t in parse_evaluation(paths[1])]
    [('Ses01F_impro01_F000', True), ('Ses01F_impro01_M000', True)]
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from emofuse.catalog.atomic import write_bytes
from emofuse.catalog.corpora.demo.actors import actor_identity
from emofuse.catalog.corpora.demo.corpus import render_av
from emofuse.catalog.corpora.demo.design import MediaFormat
from emofuse.catalog.corpora.demo.speech import espeak_command
from emofuse.catalog.corpora.demo.video import encode_av

#: Sessions written when ``actors`` is None (leave-one-session-out with a validation session needs 3).
DEFAULT_SESSIONS = 3
#: Dialogs per session written by default.
DEFAULT_DIALOGS = 2
#: The frame format of the demo dialogs.
IEMOCAP_DEMO_FORMAT = MediaFormat(width=192, height=144, fps=25, sample_rate=16000, audio_bit_rate=64_000)
#: Dialog names per session (``Ses0n`` + these), the first letter says who speaks first.
DIALOG_KINDS = ("F_impro01", "M_impro02", "F_script01_1", "M_script02_2", "F_impro03", "M_impro04")

#: label code -> (RAVDESS demo emotion code whose voice and face cues the turn gets, intensity).
#: The four classes get four different voice levels and four different faces: neutral (low voice,
#: plain face), happy (high-mid, smile), sad (low-mid, scowl: brows down, shaded eyes), angry
#: (high, raised brows and open mouth: RAVDESS demo's "fearful" cues).
CUES: dict[str, tuple[int, int]] = {
    "neu": (1, 1), "hap": (3, 1), "exc": (3, 2), "sad": (7, 1), "ang": (6, 2), "fru": (5, 1),
    "sur": (8, 1), "fea": (6, 1), "dis": (7, 2), "oth": (2, 1), "xxx": (4, 1),
}
#: label code -> mean [valence, arousal, dominance] on IEMOCAP's 1-5 scale.
VAD_MEANS: dict[str, tuple[float, float, float]] = {
    "neu": (3.0, 2.5, 3.0), "hap": (4.0, 3.0, 3.0), "exc": (4.0, 4.0, 3.5), "sad": (2.0, 2.0, 2.5),
    "ang": (1.5, 4.0, 4.0), "fru": (2.0, 3.5, 3.5), "sur": (3.5, 4.0, 3.0), "fea": (2.0, 4.0, 2.0),
    "dis": (2.0, 3.0, 3.5), "oth": (3.0, 3.0, 3.0), "xxx": (2.5, 3.0, 3.0),
}
#: The evaluators' word for each label in ``C-E`` lines.
EVALUATOR_WORDS: dict[str, str] = {
    "neu": "Neutral", "hap": "Happiness", "exc": "Excited", "sad": "Sadness", "ang": "Anger", "fru": "Frustration",
    "sur": "Surprise", "fea": "Fear", "dis": "Disgust", "oth": "Other",
}
#: The labels of each actor's turns in a dialog (shuffled per actor and dialog): one per 4-class
#: emotion (happy as ``hap`` or ``exc``) and one outside the four classes.
LABELS_PER_ACTOR = ("neu", "hap", "sad", "ang")
#: The labels outside the 4 classes, by dialog number (cycled; the F actor's, the M actor's).
OTHER_LABELS = (("fru", "xxx"), ("sur", "oth"), ("fea", "dis"))
#: What the actors say (one line per turn, drawn with the seed).
LINES = (
    "Excuse me.", "Do you have your forms?", "Yeah, I have them here.", "Let me see them.",
    "Is there a problem?", "Who told you to get in this line?", "I waited for an hour.",
    "That is not what I asked.", "Okay, fine.", "We can talk about it later.", "I got the job!",
    "Nobody called me back.", "Where were you last night?", "It was not my fault.",
)
#: Seconds of the pause after each turn (whole frames are used), and of the annotation jitter.
PAUSE = (0.2, 0.4)
JITTER = (0.04, 0.16)


@dataclass(frozen=True)
class DemoTurn:
    """One rendered turn: its name, label, the annotated range (s) and what was said."""

    name: str
    label: str
    start: float
    end: float
    vad_ratings: tuple[tuple[int, int, int], ...]
    text: str

    @property
    def vad(self) -> tuple[float, float, float]:
        """The evaluators' mean [V, A, D]."""
        r = np.asarray(self.vad_ratings, np.float64)
        return tuple(float(x) for x in r.mean(axis=0))  # type: ignore[return-value]


def dialog_name(session: int, dialog: int) -> str:
    """``Ses01F_impro01`` for session 1, dialog 0."""
    return f"Ses{session:02d}{DIALOG_KINDS[dialog % len(DIALOG_KINDS)]}"


def dialog_labels(session: int, dialog: int, turns: int, seed: int) -> list[str]:
    """The labels of a dialog's ``turns`` turns (the actors alternate): each actor's five labels
    (:data:`LABELS_PER_ACTOR` + one other) in a seeded order, cycled for longer dialogs."""
    rng = np.random.default_rng([seed, session, dialog, 0x1E])
    first = dialog_name(session, dialog)[5]
    per: dict[str, list[str]] = {}
    for k, letter in enumerate(("F", "M")):
        pool = [("hap" if (dialog + k) % 2 == 0 else "exc") if c == "hap" else c for c in LABELS_PER_ACTOR]
        pool.append(OTHER_LABELS[dialog % len(OTHER_LABELS)][k])
        per[letter] = [pool[i] for i in rng.permutation(len(pool))]
    second = "M" if first == "F" else "F"
    return [per[first if i % 2 == 0 else second][(i // 2) % 5] for i in range(turns)]


def render_dialog(session: int, dialog: int, *, turns: int, seed: int = 0,
                  media: MediaFormat = IEMOCAP_DEMO_FORMAT) -> tuple[bytes, list[DemoTurn]]:
    """One dialog's AVI bytes and its turns (see module); deterministic from the seed and the numbers."""
    name = dialog_name(session, dialog)
    actors = {"M": actor_identity(2 * session - 1, seed), "F": actor_identity(2 * session, seed)}
    first = name[5]
    spf = media.samples_per_frame
    frames: list[np.ndarray] = []
    audio: list[np.ndarray] = []
    counters = {"F": 0, "M": 0}
    out: list[DemoTurn] = []
    for k, label in enumerate(dialog_labels(session, dialog, turns, seed)):
        rng = np.random.default_rng([seed, session, dialog, k, 0x7A])
        letter = first if k % 2 == 0 else ("M" if first == "F" else "F")
        emotion, intensity = CUES[label]
        text = LINES[int(rng.integers(len(LINES)))]
        turn_frames, turn_audio = render_av(actors[letter], emotion, intensity, text, rng, media=media)
        turn_frames = list(turn_frames)
        t0 = len(frames) * spf / media.sample_rate
        length = turn_audio.size / media.sample_rate
        start = t0 + rng.uniform(*JITTER)
        end = t0 + length - rng.uniform(*JITTER)
        pause = int(round(rng.uniform(*PAUSE) * media.fps))
        frames += turn_frames + [turn_frames[-1]] * pause
        audio += [turn_audio, rng.normal(0.0, 3e-4, pause * spf).astype(np.float32)]
        out.append(DemoTurn(f"{name}_{letter}{counters[letter]:03d}", label, round(start, 4), round(end, 4),
                            _ratings(label, rng), text))
        counters[letter] += 1
    data = encode_av(frames, np.concatenate(audio), media, fmt="avi", codec="mpeg4", audio_codec="mp2")
    return data, out


def _ratings(label: str, rng: np.random.Generator, evaluators: int = 2) -> tuple[tuple[int, int, int], ...]:
    """Integer 1-5 ratings of [V, A, D] by each evaluator, scattered around the label's means."""
    mean = np.asarray(VAD_MEANS[label])
    return tuple(tuple(int(v) for v in np.clip(np.round(mean + rng.normal(0, 0.5, 3)), 1, 5))
                 for _ in range(evaluators))


def evaluation_text(turns: list[DemoTurn], seed: int = 0) -> str:
    """The EmoEvaluation file of a dialog's turns (header, turn lines, evaluator lines, blank lines)."""
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for k, t in enumerate(turns):
        rng = np.random.default_rng([seed, k, len(t.name), 0xE7])
        v, a, d = t.vad
        lines.append(f"[{t.start:.4f} - {t.end:.4f}]\t{t.name}\t{t.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
        if t.label == "xxx":  # no majority: every evaluator says something else
            words = [EVALUATOR_WORDS[c] for c in rng.permutation(["fru", "neu", "ang"])]
        else:
            words = [EVALUATOR_WORDS[t.label]] * 3
            if rng.random() < 0.5:
                words[2] = EVALUATOR_WORDS[str(rng.choice(["neu", "fru", "oth"]))]
        speaker = t.name.rsplit("_", 1)[1][0]
        for e, word in enumerate(words[:2], 1):
            lines.append(f"C-E{e}:\t{word};\t()")
        lines.append(f"C-{speaker}1:\t{words[2]};\t({'' if rng.random() < 0.5 else 'a bit'})")
        for e, (rv, ra, rd) in enumerate(t.vad_ratings, 1):
            lines.append(f"A-E{e}:\tval {rv}; act {ra}; dom  {rd};\t()")
        lines.append("")
    return "\n".join(lines) + "\n"


def transcription_text(turns: list[DemoTurn], seed: int = 0) -> str:
    """The transcription file of a dialog: a line per turn, plus lines without a turn name and an
    unannotated ``XX`` turn, as in the real corpus."""
    rng = np.random.default_rng([seed, len(turns), 0x75])
    lines = []
    for k, t in enumerate(turns):
        lines.append(f"{t.name} [{t.start:08.4f}-{t.end:08.4f}]: {t.text}")
        if k == 0:
            other = "M" if t.name.rsplit("_", 1)[1][0] == "F" else "F"
            lines.append(f"{t.name.rsplit('_', 1)[0]}_{other}XX0 [{t.end:08.4f}-{t.end + 0.2:08.4f}]: [BREATHING]")
        if rng.random() < 0.3:
            lines.append(f"{'MF'[k % 2]}: [LAUGHTER]")
    return "\n".join(lines) + "\n"


def generate(out: str, *, actors: int | None = None, seed: int = 0, dialogs: int = DEFAULT_DIALOGS,
             turns: int = 2 * (len(LABELS_PER_ACTOR) + 1), media: MediaFormat = IEMOCAP_DEMO_FORMAT,
             progress: Callable[[int, int, str], None] | None = None) -> list[str]:
    """Write the demo corpus under ``out`` in IEMOCAP layout; return its files (kept ones too).

    ``actors``: the number of *sessions* (each with a female and a male actor; None:
    :data:`DEFAULT_SESSIONS`). ``dialogs`` per session, ``turns`` per dialog (the default: each
    actor once per 4-class emotion and once with another label; fewer take the first ones).
    ``progress(done, total, path)`` is called after each dialog. Needs ``espeak-ng`` on PATH.
    """
    sessions = DEFAULT_SESSIONS if actors is None else int(actors)
    if not 1 <= sessions <= 99 or dialogs < 1 or turns < 1:
        raise ValueError(f"need 1-99 sessions, >= 1 dialog and >= 1 turn (got {sessions}, {dialogs}, {turns})")
    todo = [(s, d) for s in range(1, sessions + 1) for d in range(dialogs)]
    paths: list[str] = []
    for n, (s, d) in enumerate(todo, 1):
        name = dialog_name(s, d)
        base = os.path.join(out, f"Session{s}", "dialog")
        files = [os.path.join(base, "avi", "DivX", f"{name}.avi"), os.path.join(base, "EmoEvaluation", f"{name}.txt"),
                 os.path.join(base, "transcriptions", f"{name}.txt")]
        if not all(os.path.exists(f) for f in files):
            espeak_command()  # a clear install hint before any work
            video, dialog_turns = render_dialog(s, d, turns=turns, seed=seed, media=media)
            write_bytes(files[0], video)
            write_bytes(files[1], evaluation_text(dialog_turns, seed).encode())
            write_bytes(files[2], transcription_text(dialog_turns, seed).encode())
        paths += files
        if progress is not None:
            progress(n, len(todo), files[0])
    return paths


__all__ = ["CUES", "DEFAULT_DIALOGS", "DEFAULT_SESSIONS", "IEMOCAP_DEMO_FORMAT", "DemoTurn",
           "dialog_labels", "dialog_name", "evaluation_text", "generate", "render_dialog", "transcription_text"]
