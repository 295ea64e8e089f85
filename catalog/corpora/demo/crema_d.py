"""Demo corpus in CREMA-D layout: ``VideoFlash/*.flv``, ``AudioWAV/*.wav`` and ``VideoDemographics.csv``.

The clips are made as the RAVDESS-layout demo's (:func:`~.corpus.render_av`: a packaged face
photo edited per emotion, espeak-ng speech with per-emotion prosody), with CREMA-D's names
(``1001_IEO_HAP_HI``), sentences (the spoken text), actor numbers (1001-1091; actor 1000+n has
the demo identity of actor n: odd male, even female) and files: a Flash video
(``.flv``: Sorenson H.263 video + MP3 audio, by default 240x180 at 30 fps with 22.05 kHz audio)
and a 16 kHz mono 16-bit ``.wav`` of the same speech. ``VideoDemographics.csv`` lists every
actor (``ActorID,Age,Sex,Race,Ethnicity``; sex from the identity, the rest drawn from the seed).

The six emotions take the cues of the RAVDESS emotions of the same name (:data:`CUES`), so
the voice alone confuses sad/disgust and angry/fearful, the face alone neutral/sad and
angry/disgust, and both together separate all six. As in CREMA-D, only ``IEO`` is spoken at
levels (``LO``/``MD``/``HI``; neutral only ``XX``); the other sentences are ``XX``. ``HI`` raises
the voice and strengthens the face edit 1.5x, ``LO`` weakens it to 0.75x.

Deterministic: a clip's bytes depend only on the seed and its own codes.

Example:
    >>> [c.name for c in plan(actors=1, sentences=("IEO", "DFA"), emotions=("NEU", "ANG"), levels=("HI",))]
    ['1001_IEO_NEU_XX', '1001_IEO_ANG_HI', '1001_DFA_NEU_XX', '1001_DFA_ANG_XX']
    >>> paths = generate("crema", actors=1, sentences=("DFA",), emotions=("SAD",), duration_limit=0.4)
    >>> [os.path.relpath(p, "crema") for p in paths]
    ['VideoFlash/1001_DFA_SAD_XX.flv', 'AudioWAV/1001_DFA_SAD_XX.wav', 'VideoDemographics.csv']
    >>> open("crema/VideoDemographics.csv").readline().strip()
    'ActorID,Age,Sex,Race,Ethnicity'
"""
from __future__ import annotations

import dataclasses
import io
import os
import wave
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from emofuse.catalog.atomic import write_bytes
from emofuse.catalog.corpora.crema_d import (ACTORS, AUDIO_DIR, DEMOGRAPHICS, EMOTIONS, LEVELS, SENTENCES, VIDEO_DIR,
                                             make_name)
from emofuse.catalog.corpora.demo.actors import actor_identity
from emofuse.catalog.corpora.demo.corpus import render_av
from emofuse.catalog.corpora.demo.design import MediaFormat
from emofuse.catalog.corpora.demo.speech import espeak_command
from emofuse.catalog.corpora.demo.video import encode_av

#: CREMA-D emotion code -> the RAVDESS emotion code whose voice and face cues the clip gets.
CUES: dict[str, int] = {"NEU": 1, "HAP": 3, "SAD": 4, "ANG": 5, "FEA": 6, "DIS": 7}
#: Level -> (prosody intensity 1|2, face edit strength).
LEVEL_CUES: dict[str, tuple[int, float]] = {"LO": (1, 0.75), "MD": (1, 1.0), "HI": (2, 1.5), "XX": (1, 1.0)}
#: The demo's Flash video: small frames at CREMA-D's 30 fps, MP3 at a rate FLV supports.
FLV_FORMAT = MediaFormat(width=240, height=180, fps=30, sample_rate=22050, audio_bit_rate=32_000)
#: CREMA-D's AudioWAV files: 16 kHz mono, 16-bit PCM.
WAV_RATE = 16000
#: Actors when none are given.
DEFAULT_ACTORS = 4
_RACES = ("Caucasian", "African American", "Asian", "Unknown")


@dataclass(frozen=True)
class CremaClip:
    """One clip of the demo: actor (1001-1091) and its CREMA-D codes."""

    actor: int
    sentence: str
    emotion: str
    level: str

    @property
    def name(self) -> str:
        return make_name(actor=self.actor, sentence=self.sentence, emotion=self.emotion, level=self.level, ext="")


def actor_ids(actors: int | Sequence[int] | None) -> list[int]:
    """CREMA-D actor ids: the first ``actors`` (1001, 1002, …) or the given ids."""
    if actors is None:
        actors = DEFAULT_ACTORS
    if isinstance(actors, int):
        if not 1 <= actors <= len(ACTORS):
            raise ValueError(f"CREMA-D has 1 to {len(ACTORS)} actors, not {actors}")
        return list(ACTORS[:actors])
    ids = [int(a) for a in actors]
    bad = [a for a in ids if a not in ACTORS]
    if bad or not ids:
        raise ValueError(f"CREMA-D actors are 1001-1091; got {bad or ids}")
    return ids


def plan(*, actors: int | Sequence[int] | None = None, sentences: Sequence[str] = ("IEO", "DFA"),
         emotions: Sequence[str] = tuple(CUES), levels: Sequence[str] = ("HI",)) -> list[CremaClip]:
    """The clips :func:`generate` writes, in order (``levels`` apply to ``IEO``; neutral is only ``XX``)."""
    for what, values, table in (("sentence", sentences, SENTENCES), ("emotion", emotions, EMOTIONS),
                                ("level", levels, LEVELS)):
        bad = [v for v in values if v not in table]
        if bad:
            raise ValueError(f"{what} codes {bad} are not CREMA-D's {sorted(table)}")
    return [CremaClip(a, s, e, lv) for a in actor_ids(actors) for s in sentences for e in emotions
            for lv in (("XX",) if s != "IEO" or e == "NEU" else levels)]


def _wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2").tobytes())
    return out.getvalue()


def render(clip: CremaClip, *, seed: int = 0, media: MediaFormat = FLV_FORMAT,
           duration_limit: float | None = None) -> tuple[bytes, bytes]:
    """The clip's ``.flv`` and ``.wav`` bytes (the same speech, the WAV at 16 kHz)."""
    actor = actor_identity(clip.actor - 1000, seed)
    intensity, scale = LEVEL_CUES[clip.level]
    codes = [seed, clip.actor, CUES[clip.emotion], list(SENTENCES).index(clip.sentence),
             list(LEVELS).index(clip.level)]
    text = SENTENCES[clip.sentence]
    frames, audio = render_av(actor, CUES[clip.emotion], intensity, text, np.random.default_rng(codes), media=media,
                              duration_limit=duration_limit, face_scale=scale)
    flv = encode_av(frames, audio, media, fmt="flv", codec="flv", audio_codec="libmp3lame")
    wav_format = dataclasses.replace(media, sample_rate=WAV_RATE, fps=25)
    _, wav_audio = render_av(actor, CUES[clip.emotion], intensity, text, np.random.default_rng(codes),
                             media=wav_format, duration_limit=duration_limit, face_scale=scale)
    return flv, _wav_bytes(wav_audio, WAV_RATE)


def demographics_csv(actors: Sequence[int], seed: int = 0) -> str:
    """``VideoDemographics.csv`` for these actors (sex from the demo identity, age/race drawn from ``seed``)."""
    lines = ["ActorID,Age,Sex,Race,Ethnicity"]
    for a in actors:
        rng = np.random.default_rng([seed, a, 0xDE])
        sex = actor_identity(a - 1000, seed).face.sex
        lines.append(f"{a},{int(rng.integers(20, 75))},{sex.capitalize()},{_RACES[int(rng.integers(len(_RACES)))]},"
                     f"{'Hispanic' if rng.random() < 0.1 else 'Not Hispanic'}")
    return "\n".join(lines) + "\n"


def generate(out: str, *, actors: int | Sequence[int] | None = None, seed: int = 0,
             sentences: Sequence[str] = ("IEO", "DFA"), emotions: Sequence[str] = tuple(CUES),
             levels: Sequence[str] = ("HI",), media: MediaFormat = FLV_FORMAT,
             duration_limit: float | None = None) -> list[str]:
    """Write the demo corpus under ``out`` in CREMA-D layout; return the files written (or kept).

    ``actors``: how many (1001, 1002, …; default :data:`DEFAULT_ACTORS`) or which ids.
    ``sentences``/``emotions``/``levels``: CREMA-D codes (levels apply to ``IEO``).
    ``duration_limit``: cut clips to at most this many seconds. Idempotent: existing clips are
    kept; the demographics file is rewritten to list every actor of this call.
    """
    clips = plan(actors=actors, sentences=sentences, emotions=emotions, levels=levels)
    if any(not os.path.exists(os.path.join(out, VIDEO_DIR, c.name + ".flv")) for c in clips):
        espeak_command()  # fail early, before any work, with an install hint
    paths: list[str] = []
    for c in clips:
        flv, wav = os.path.join(out, VIDEO_DIR, c.name + ".flv"), os.path.join(out, AUDIO_DIR, c.name + ".wav")
        if not (os.path.exists(flv) and os.path.exists(wav)):
            flv_bytes, wav_bytes = render(c, seed=seed, media=media, duration_limit=duration_limit)
            write_bytes(wav, wav_bytes)
            write_bytes(flv, flv_bytes)
        paths += [flv, wav]
    table = os.path.join(out, DEMOGRAPHICS)
    write_bytes(table, demographics_csv(sorted({c.actor for c in clips}), seed).encode())
    return paths + [table]


__all__ = ["CUES", "DEFAULT_ACTORS", "FLV_FORMAT", "LEVEL_CUES", "WAV_RATE", "CremaClip", "actor_ids",
           "demographics_csv", "generate", "plan", "render"]
