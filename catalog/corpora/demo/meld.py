"""Demo corpus in MELD layout: three split folders of ``dia{D}_utt{U}.mp4`` and their ``*_sent_emo.csv``.

Dialogues between two of the demo's characters (:data:`CHARACTERS`, each a demo identity:
a packaged face photo and an espeak-ng voice), one clip per utterance, made as the
RAVDESS-layout demo's (:func:`~.corpus.render_av`): the seven MELD emotions take the cues of
the RAVDESS emotions of the same meaning (:data:`CUES`), so voice and face together separate
them and neither does alone. The utterances cycle through :data:`CLASSES` so every split
holds every emotion it has room for.

The CSVs are written as the real ones: the header ``Sr No.,Utterance,Speaker,Emotion,
Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime``, CSV quoting for
utterances with commas and quotes, times ``HH:MM:SS,mmm`` in the episode, and the text in
Windows-1252 bytes (``’`` is ``\\x92``, ``…`` is ``\\x85``, ``—`` is ``\\x97``), as real copies
have them. The last clip of the test split is named ``final_videos_testdia{D}_utt{U}.mp4``, as
some are in the release. Video: H.264 320x180 at 24 fps with 48 kHz AAC (small frames of
MELD's 16:9 format).

Deterministic: a clip's bytes depend only on the seed and its (split, dialogue, utterance).

Example:
    >>> for u in plan(dialogues={"train": 1, "dev": 1})[:4]:
    ...     print(u.split, u.dialogue, u.utterance, u.speaker, u.emotion, repr(u.text))
    train 0 0 Monica neutral 'I don’t know…'
    train 0 1 Chandler joy 'How you doin’?'
    train 0 2 Monica surprise 'I’m fine—totally fine.'
    dev 0 0 Ross anger 'I don’t know…'
    >>> paths = generate("meld", dialogues={"test": 1}, utterances=2, duration_limit=0.4)
    >>> sorted(os.path.relpath(p, "meld") for p in paths)[:2]
    ['output_repeated_splits_test/dia0_utt0.mp4', 'output_repeated_splits_test/final_videos_testdia0_utt1.mp4']
    >>> b"\\x92" in open("meld/test_sent_emo.csv", "rb").read()
    True
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from emofuse.catalog.atomic import write_bytes
from emofuse.catalog.corpora.demo.actors import actor_identity
from emofuse.catalog.corpora.demo.corpus import render_av
from emofuse.catalog.corpora.demo.design import MediaFormat
from emofuse.catalog.corpora.demo.speech import espeak_command
from emofuse.catalog.corpora.demo.video import encode_mp4
from emofuse.catalog.corpora.meld import CLASSES, COLUMNS, SPLITS, TEST_PREFIX

#: MELD emotion -> the RAVDESS emotion code whose voice and face cues the clip gets.
CUES: dict[str, int] = {"neutral": 1, "joy": 3, "surprise": 8, "anger": 5, "sadness": 4, "disgust": 7, "fear": 6}
SENTIMENT: dict[str, str] = {"neutral": "neutral", "joy": "positive", "surprise": "positive", "anger": "negative",
                             "sadness": "negative", "disgust": "negative", "fear": "negative"}
#: Speakers, in the order ``actors=N`` takes them; character k is demo identity k+1 (odd: male).
CHARACTERS = ("Chandler", "Rachel", "Joey", "Monica", "Ross", "Phoebe", "Gunther", "Janice")
#: Utterances (with the Windows-1252 characters real copies have: ’ … —, and commas and quotes).
LINES = (
    "I don’t know…",
    "Oh my God!",
    "We’re on a break!",
    "How you doin’?",
    "It’s a moo point.",
    'She said, "Unagi."',
    "I’m fine—totally fine.",
    "Pivot… pivot!",
    "Could this be any worse?",
    "Joey doesn’t share food!",
)
#: The demo's MELD clips: small 16:9 frames at 24 fps, 48 kHz AAC.
MELD_FORMAT = MediaFormat(width=320, height=180, fps=24, sample_rate=48000, audio_bit_rate=64_000)
#: Dialogues per split when none are given.
DEFAULT_DIALOGUES: dict[str, int] = {"train": 4, "dev": 2, "test": 2}


@dataclass(frozen=True)
class Utterance:
    """One utterance of the demo: where it sits, who says what, with which emotion, and when in the episode."""

    split: str
    dialogue: int
    utterance: int
    speaker: str
    text: str
    emotion: str
    season: int
    episode: int
    start: float
    end: float


def plan(*, actors: int | None = None, dialogues: Mapping[str, int] | None = None, utterances: int = 3,
         seed: int = 0) -> list[Utterance]:
    """The utterances :func:`generate` writes, split by split (dialogue ids restart per split, as in MELD)."""
    n_spk = len(CHARACTERS) if actors is None else int(actors)
    if not 2 <= n_spk <= len(CHARACTERS):
        raise ValueError(f"the MELD demo has 2 to {len(CHARACTERS)} speakers, not {actors}")
    counts = dict(DEFAULT_DIALOGUES if dialogues is None else dialogues)
    bad = [s for s in counts if s not in SPLITS]
    if bad or utterances < 1 or any(n < 0 for n in counts.values()):
        raise ValueError(f"dialogues per split ({list(SPLITS)}) must be >= 0 and utterances >= 1; got {counts}, "
                         f"{utterances}")
    out: list[Utterance] = []
    k = 0
    for si, split in enumerate(SPLITS):
        for d in range(counts.get(split, 0)):
            rng = np.random.default_rng([seed, si, d, 0x3E1D])
            pair = rng.choice(n_spk, 2, replace=False)
            t = float(rng.uniform(60, 1200))
            season, episode = int(rng.integers(1, 11)), int(rng.integers(1, 25))
            for u in range(utterances):
                text = LINES[(k * 3 + si) % len(LINES)]
                length = round(0.6 + 0.08 * len(text), 3)
                out.append(Utterance(split, d, u, CHARACTERS[int(pair[u % 2])], text, CLASSES[k % len(CLASSES)],
                                     season, episode, round(t, 3), round(t + length, 3)))
                t += length + float(rng.uniform(0.2, 1.5))
                k += 1
    return out


def _time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def annotation_csv(rows: Sequence[Utterance]) -> bytes:
    """One split's ``*_sent_emo.csv`` as Windows-1252 bytes (see module)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for n, u in enumerate(rows, 1):
        w.writerow([n, u.text, u.speaker, u.emotion, SENTIMENT[u.emotion], u.dialogue, u.utterance, u.season,
                    u.episode, _time(u.start), _time(u.end)])
    return buf.getvalue().encode("cp1252")


def render(u: Utterance, *, seed: int = 0, media: MediaFormat = MELD_FORMAT,
           duration_limit: float | None = None) -> bytes:
    """The utterance's clip as mp4 bytes."""
    actor = actor_identity(CHARACTERS.index(u.speaker) + 1, seed)
    rng = np.random.default_rng([seed, list(SPLITS).index(u.split), u.dialogue, u.utterance])
    frames, audio = render_av(actor, CUES[u.emotion], 1, u.text, rng, media=media, duration_limit=duration_limit)
    return encode_mp4(frames, audio, media)


def generate(out: str, *, actors: int | None = None, seed: int = 0, dialogues: Mapping[str, int] | None = None,
             utterances: int = 3, media: MediaFormat = MELD_FORMAT,
             duration_limit: float | None = None) -> list[str]:
    """Write the demo corpus under ``out`` in MELD layout; return the files written (or kept).

    ``actors``: how many speakers (2-8, default all); ``dialogues``: split -> number of dialogues
    (default :data:`DEFAULT_DIALOGUES`); ``utterances`` per dialogue. Idempotent: existing clips
    are kept; the CSVs are rewritten.
    """
    rows = plan(actors=actors, dialogues=dialogues, utterances=utterances, seed=seed)
    last_test = max((r for r in rows if r.split == "test"), key=lambda r: (r.dialogue, r.utterance), default=None)
    paths: list[str] = []
    checked = False
    for u in rows:
        name = f"{TEST_PREFIX if u is last_test else ''}dia{u.dialogue}_utt{u.utterance}.mp4"
        path = os.path.join(out, SPLITS[u.split][0], name)
        if not os.path.exists(path):
            if not checked:
                espeak_command()  # fail early, with an install hint
                checked = True
            write_bytes(path, render(u, seed=seed, media=media, duration_limit=duration_limit))
        paths.append(path)
    for split, (_, table) in SPLITS.items():
        mine = [u for u in rows if u.split == split]
        if mine:
            paths.append(os.path.join(out, table))
            write_bytes(paths[-1], annotation_csv(mine))
    return paths


__all__ = ["CHARACTERS", "CUES", "DEFAULT_DIALOGUES", "LINES", "MELD_FORMAT", "SENTIMENT", "Utterance",
           "annotation_csv", "generate", "plan", "render"]
