"""The demo corpus as a whole: which clips (:func:`plan`), one clip's bytes (:func:`render_clip`),
and writing them in RAVDESS layout (:func:`generate`).

A clip's bytes depend only on the seed and its own codes (not on which other clips
are requested), given the same PyAV/FFmpeg and espeak-ng.

Example:
    >>> [s.relpath for s in plan(actors=1, emotions=(1, 5), statements=(1,))]
    ['Actor_01/01-01-01-01-01-01-01.mp4', 'Actor_01/01-01-05-01-01-01-01.mp4']
    >>> paths = generate("demo", actors=[2], emotions=(5,), statements=(1,), duration_limit=0.4)
    >>> paths
    ['demo/Actor_02/01-01-05-01-01-01-02.mp4']
    >>> generate("demo", actors=[2], emotions=(5,), statements=(1,)) == paths  # kept, not rewritten
    True
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from emofuse.catalog.atomic import write_bytes
from emofuse.catalog.corpora.demo.actors import actor_identity, clip_prosody
from emofuse.catalog.corpora.demo.design import FACE_EDITS, FACE_GROUP, SAMPLES_PER_FRAME
from emofuse.catalog.corpora.demo.faces import render_frames, speech_envelope
from emofuse.catalog.corpora.demo.photos import aligned_face
from emofuse.catalog.corpora.demo.speech import clip_audio, espeak_command, synthesize
from emofuse.catalog.corpora.demo.video import encode_mp4
from emofuse.catalog.corpora.ravdess import EMOTIONS, INTENSITIES, STATEMENTS, make_name


@dataclass(frozen=True)
class ClipSpec:
    """The RAVDESS codes of one clip and where it goes."""

    actor: int
    emotion: int
    intensity: int
    statement: int
    repetition: int

    @property
    def name(self) -> str:
        return make_name(modality=1, vocal_channel=1, emotion=self.emotion, intensity=self.intensity,
                         statement=self.statement, repetition=self.repetition, actor=self.actor)

    @property
    def relpath(self) -> str:
        return os.path.join(f"Actor_{self.actor:02d}", self.name)


def plan(*, actors: int | Sequence[int] = 2, emotions: Sequence[int] = tuple(EMOTIONS),
         statements: Sequence[int] = (1, 2), repetitions: Sequence[int] = (1,),
         intensities: Sequence[int] = (1,)) -> list[ClipSpec]:
    """The clips :func:`generate` writes, in order (neutral has no strong intensity, as in RAVDESS)."""
    numbers = list(range(1, actors + 1)) if isinstance(actors, int) else [int(a) for a in actors]
    for what, values, allowed in (
        ("actor", numbers, range(1, 100)), ("emotion", emotions, EMOTIONS),
        ("statement", statements, STATEMENTS), ("repetition", repetitions, (1, 2)),
        ("intensity", intensities, INTENSITIES),
    ):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{what} codes {bad} are not valid RAVDESS codes ({what}s: {list(allowed)[:10]}...)")
    return [
        ClipSpec(a, e, i, s, r)
        for a in numbers for e in emotions for i in intensities
        for s in statements for r in repetitions
        if not (e == 1 and i == 2)
    ]


def render_clip(spec: ClipSpec, *, seed: int = 0, duration_limit: float | None = None) -> bytes:
    """One clip as mp4 bytes; deterministic from ``seed`` and the clip's codes."""
    rng = np.random.default_rng([seed, spec.actor, spec.emotion, spec.intensity, spec.statement, spec.repetition])
    actor = actor_identity(spec.actor, seed)
    prosody = clip_prosody(actor, spec.emotion, spec.intensity, rng)
    speech = synthesize(STATEMENTS[spec.statement], voice=actor.voice, prosody=prosody)
    audio = clip_audio(speech, rng, duration_limit)
    n_frames = audio.size // SAMPLES_PER_FRAME
    edit = FACE_EDITS[FACE_GROUP[spec.emotion]].scaled(1.5 if spec.intensity == 2 else 1.0)
    frames = render_frames(aligned_face(actor.face), edit, speech_envelope(audio, n_frames), rng)
    return encode_mp4(frames, audio)


def generate(out: str, *, actors: int | Sequence[int] = 2, seed: int = 0,
             emotions: Sequence[int] = tuple(EMOTIONS), statements: Sequence[int] = (1, 2),
             repetitions: Sequence[int] = (1,), intensities: Sequence[int] = (1,),
             duration_limit: float | None = None,
             progress: Callable[[int, int, str], None] | None = None) -> list[str]:
    """Write the demo corpus under ``out`` in RAVDESS layout; return the clip paths.

    Args:
        out: corpus root; clips go to ``out/Actor_XX/01-01-EE-II-SS-RR-XX.mp4``.
        actors: number of actors (1..N) or explicit actor numbers. Odd actors are male.
        seed: every random choice (voice offsets, prosody jitter, head motion, noise floor)
            derives from it and the clip's codes; the same seed gives byte-identical files.
        emotions, statements, repetitions, intensities: RAVDESS codes to write
            (neutral/strong is skipped, RAVDESS has none).
        duration_limit: cut clips to at most this many seconds (whole video frames).
        progress: called as ``progress(done, total, path)`` after each clip
            (skipped ones included).

    Idempotent: a clip whose file exists is kept (files are written atomically with
    :func:`emofuse.catalog.atomic.write_bytes`, so an existing file is complete). Needs
    ``espeak-ng`` on PATH; raises :class:`~emofuse.catalog.corpora.demo.speech.EspeakNotFound`
    with install hints otherwise.
    """
    specs = plan(actors=actors, emotions=emotions, statements=statements,
                 repetitions=repetitions, intensities=intensities)
    if any(not os.path.exists(os.path.join(out, s.relpath)) for s in specs):
        espeak_command()  # fail early, before any work, with an install hint
    paths: list[str] = []
    for k, spec in enumerate(specs, 1):
        path = os.path.join(out, spec.relpath)
        if not os.path.exists(path):
            write_bytes(path, render_clip(spec, seed=seed, duration_limit=duration_limit))
        paths.append(path)
        if progress is not None:
            progress(k, len(specs), path)
    return paths
