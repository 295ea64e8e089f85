"""The demo corpus as a whole: which clips (:func:`plan`), one clip's bytes (:func:`render_clip`),
and writing them in RAVDESS layout (:func:`generate`).

A clip's bytes depend only on the seed, its own codes and the media format (not on which
other clips are requested), given the same PyAV/FFmpeg and espeak-ng. :data:`RAVDESS_SHAPE`
holds the :func:`generate` keyword arguments that make a corpus shaped like the real one
(:data:`RAVDESS_CLIPS` the :func:`plan` ones): per actor 60
speech clips (8 emotions, both intensities but neutral's, 2 statements, 2 repetitions) and
44 song clips (6 emotions; none for actor 18), 1280x720 at 30 fps with 48 kHz AAC, so 24
actors give 1,440 speech + 1,012 song = 2,452 audio-visual clips, as RAVDESS has.

Example:
    >>> [s.relpath for s in plan(actors=1, emotions=(1, 5), statements=(1,))]
    ['Actor_01/01-01-01-01-01-01-01.mp4', 'Actor_01/01-01-05-01-01-01-01.mp4']
    >>> len(plan(actors=1, **{**RAVDESS_CLIPS, "vocal_channels": (1,)})), len(plan(actors=24, **RAVDESS_CLIPS))
    (60, 2452)
    >>> [s.name for s in plan(actors=1, emotions=(7, 8, 5), statements=(1,), vocal_channels=(2,))]  # song: 6 emotions
    ['01-02-05-01-01-01-01.mp4']
    >>> paths = generate("demo", actors=[2], emotions=(5,), statements=(1,), duration_limit=0.4)
    >>> paths
    ['demo/Actor_02/01-01-05-01-01-01-02.mp4']
    >>> generate("demo", actors=[2], emotions=(5,), statements=(1,)) == paths  # kept, not rewritten
    True
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from emofuse.catalog.atomic import write_bytes
from emofuse.catalog.corpora.demo.actors import Actor, actor_identity, clip_prosody
from emofuse.catalog.corpora.demo.design import (DEMO_FORMAT, FACE_EDITS, FACE_GROUP, NO_SONG_ACTORS,
                                                  RAVDESS_FORMAT, SONG_EMOTIONS, MediaFormat)
from emofuse.catalog.corpora.demo.faces import render_frames, speech_envelope
from emofuse.catalog.corpora.demo.speech import clip_audio, espeak_command, sing, synthesize
from emofuse.catalog.corpora.demo.video import encode_mp4
from emofuse.catalog.corpora.ravdess import EMOTIONS, INTENSITIES, STATEMENTS, VOCAL_CHANNELS, make_name

#: :func:`plan` keyword arguments for RAVDESS's clips per actor: speech and song, every take.
RAVDESS_CLIPS: dict[str, Any] = {"vocal_channels": (1, 2), "statements": (1, 2), "repetitions": (1, 2),
                                 "intensities": (1, 2)}
#: :func:`generate` keyword arguments for a corpus shaped like RAVDESS's audio-visual files.
RAVDESS_SHAPE: dict[str, Any] = {**RAVDESS_CLIPS, "media": RAVDESS_FORMAT}


@dataclass(frozen=True)
class ClipSpec:
    """The RAVDESS codes of one clip and where it goes (vocal channel 1: speech, 2: song)."""

    actor: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    vocal_channel: int = 1

    @property
    def name(self) -> str:
        return make_name(modality=1, vocal_channel=self.vocal_channel, emotion=self.emotion,
                         intensity=self.intensity, statement=self.statement, repetition=self.repetition,
                         actor=self.actor)

    @property
    def relpath(self) -> str:
        return os.path.join(f"Actor_{self.actor:02d}", self.name)


def plan(*, actors: int | Sequence[int] = 2, emotions: Sequence[int] = tuple(EMOTIONS),
         statements: Sequence[int] = (1, 2), repetitions: Sequence[int] = (1,),
         intensities: Sequence[int] = (1,), vocal_channels: Sequence[int] = (1,)) -> list[ClipSpec]:
    """The clips :func:`generate` writes, in order.

    As in RAVDESS: neutral has no strong intensity, song (vocal channel 2) has no disgust or
    surprise (:data:`~.design.SONG_EMOTIONS`; other emotions are skipped for song), and actor
    18 has no song.
    """
    numbers = list(range(1, actors + 1)) if isinstance(actors, int) else [int(a) for a in actors]
    for what, values, allowed in (
        ("actor", numbers, range(1, 100)), ("emotion", emotions, EMOTIONS),
        ("statement", statements, STATEMENTS), ("repetition", repetitions, (1, 2)),
        ("intensity", intensities, INTENSITIES), ("vocal channel", vocal_channels, VOCAL_CHANNELS),
    ):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{what} codes {bad} are not valid RAVDESS codes (valid: {list(allowed)[:10]}...)")
    return [
        ClipSpec(a, e, i, s, r, v)
        for a in numbers for v in vocal_channels for e in emotions for i in intensities
        for s in statements for r in repetitions
        if not (e == 1 and i == 2)
        and not (v == 2 and (e not in SONG_EMOTIONS or a in NO_SONG_ACTORS))
    ]


def render_clip(spec: ClipSpec, *, seed: int = 0, duration_limit: float | None = None,
                media: MediaFormat = DEMO_FORMAT) -> bytes:
    """One clip as mp4 bytes; deterministic from ``seed``, the clip's codes and ``media``."""
    codes = [seed, spec.actor, spec.emotion, spec.intensity, spec.statement, spec.repetition]
    rng = np.random.default_rng(codes + ([spec.vocal_channel] if spec.vocal_channel != 1 else []))
    frames, audio = render_av(actor_identity(spec.actor, seed), spec.emotion, spec.intensity,
                              STATEMENTS[spec.statement], rng, media=media, duration_limit=duration_limit,
                              song=spec.vocal_channel == 2)
    return encode_mp4(frames, audio, media)


def render_av(actor: Actor, emotion: int, intensity: int, text: str, rng: np.random.Generator, *,
              media: MediaFormat = DEMO_FORMAT, duration_limit: float | None = None, song: bool = False,
              face_scale: float | None = None) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """The RGB frames (lazily) and mono audio of ``actor`` saying ``text`` with the cues of RAVDESS
    emotion code ``emotion`` (the other layouts map their emotions onto these codes).

    ``intensity`` 2 raises the voice and makes the face edit 1.5x stronger, unless
    ``face_scale`` sets the edit's strength itself.
    """
    prosody = clip_prosody(actor, emotion, intensity, rng)
    voice = sing if song else synthesize
    speech = voice(text, voice=actor.voice, prosody=prosody, sample_rate=media.sample_rate)
    audio = clip_audio(speech, rng, duration_limit, media)
    n_frames = audio.size // media.samples_per_frame
    scale = face_scale if face_scale is not None else 1.5 if intensity == 2 else 1.0
    edit = FACE_EDITS[FACE_GROUP[emotion]].scaled(scale)
    envelope = speech_envelope(audio, n_frames, media.samples_per_frame)
    return render_frames(actor.aligned(), edit, envelope, rng, media), audio


def generate(out: str, *, actors: int | Sequence[int] = 2, seed: int = 0,
             emotions: Sequence[int] = tuple(EMOTIONS), statements: Sequence[int] = (1, 2),
             repetitions: Sequence[int] = (1,), intensities: Sequence[int] = (1,),
             vocal_channels: Sequence[int] = (1,), media: MediaFormat = DEMO_FORMAT,
             duration_limit: float | None = None,
             progress: Callable[[int, int, str], None] | None = None) -> list[str]:
    """Write the demo corpus under ``out`` in RAVDESS layout; return the clip paths.

    Args:
        out: corpus root; clips go to ``out/Actor_XX/01-VV-EE-II-SS-RR-XX.mp4``.
        actors: number of actors (1..N) or explicit actor numbers. Odd actors are male.
        seed: every random choice (voice offsets, prosody jitter, head motion, noise floor)
            derives from it and the clip's codes; the same seed gives byte-identical files.
        emotions, statements, repetitions, intensities: RAVDESS codes to write
            (neutral/strong is skipped, RAVDESS has none).
        vocal_channels: 1 (speech, ``01-01-…``) and/or 2 (song, ``01-02-…``: six emotions,
            none for actor 18, as in RAVDESS).
        media: frame size, frame rate and audio rate (default 256x256, 25 fps, 16 kHz;
            :data:`~.design.RAVDESS_FORMAT` is the real corpus's; ``**RAVDESS_SHAPE`` also
            sets its clips per actor).
        duration_limit: cut clips to at most this many seconds (whole video frames).
        progress: called as ``progress(done, total, path)`` after each clip
            (skipped ones included).

    Idempotent: a clip whose file exists is kept, whatever format it was written in (files
    are written atomically with :func:`emofuse.catalog.atomic.write_bytes`, so an existing
    file is complete). Needs
    ``espeak-ng`` on PATH; raises :class:`~emofuse.catalog.corpora.demo.speech.EspeakNotFound`
    with install hints otherwise.
    """
    specs = plan(actors=actors, emotions=emotions, statements=statements,
                 repetitions=repetitions, intensities=intensities, vocal_channels=vocal_channels)
    if any(not os.path.exists(os.path.join(out, s.relpath)) for s in specs):
        espeak_command()  # fail early, before any work, with an install hint
    paths: list[str] = []
    for k, spec in enumerate(specs, 1):
        path = os.path.join(out, spec.relpath)
        if not os.path.exists(path):
            write_bytes(path, render_clip(spec, seed=seed, duration_limit=duration_limit, media=media))
        paths.append(path)
        if progress is not None:
            progress(k, len(specs), path)
    return paths
