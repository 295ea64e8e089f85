"""The demo corpus's actors: a face, an espeak voice variant and fixed prosody offsets each.

Odd actors are male, even female (as in RAVDESS). Actors 1-8 have the eight photos (four
men for odd actors, four women for even); actors 9-16 and 17-24 have new identities made
from the same photos (:mod:`.identity`: another person's lower face, other proportions,
skin tone, glasses), so no face repeats across the 24 actors of a RAVDESS-sized corpus.
Each actor has a small fixed pitch/rate/loudness offset drawn from the seed; each clip
adds a smaller jitter (:func:`clip_prosody`).

Example:
    >>> a = actor_identity(1, seed=0)
    >>> a.face.name, a.variant, a.voice, actor_identity(2).face.sex
    ('t1_centre_left', 0, 'en-us+m3', 'female')
    >>> b = actor_identity(9)
    >>> b.face == a.face, b.variant  # the same photo, another person
    (True, 1)
    >>> p = clip_prosody(a, emotion=5, intensity=2, rng=np.random.default_rng(0))  # angry, strong
    >>> p.pitch > AUDIO_LEVELS[AUDIO_GROUP[5]].pitch
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emofuse.catalog.corpora.demo.design import AUDIO_GROUP, AUDIO_LEVELS, Prosody
from emofuse.catalog.corpora.demo.identity import identity_face, variant_of
from emofuse.catalog.corpora.demo.photos import FEMALE_FACES, MALE_FACES, Aligned, FaceSource

MALE_VOICES = ("m3", "m2", "m5", "m7", "m4", "m6", "m1")
FEMALE_VOICES = ("f2", "f3", "f4", "f5", "f1")


@dataclass(frozen=True)
class Actor:
    """An actor's identity: face photo and identity variant, espeak voice variant, fixed prosody offsets."""

    number: int
    face: FaceSource
    voice: str
    pitch_offset: float
    rate_offset: float
    gain: float
    #: 0: the photo as it is; 1, 2, ...: another person made from it (:mod:`.identity`).
    variant: int = 0

    def aligned(self) -> Aligned:
        """The actor's aligned face (the photo, or its identity variant)."""
        return identity_face(self.face, self.variant)


def actor_identity(number: int, seed: int = 0) -> Actor:
    """Face, identity variant, voice and prosody offsets of actor ``number`` (odd: male, even: female)."""
    rng = np.random.default_rng([seed, number, 0xAC7])
    k = (number - 1) // 2
    if number % 2:
        face, voice = MALE_FACES[k % len(MALE_FACES)], MALE_VOICES[k % len(MALE_VOICES)]
    else:
        face, voice = FEMALE_FACES[k % len(FEMALE_FACES)], FEMALE_VOICES[k % len(FEMALE_VOICES)]
    return Actor(
        number=number,
        face=face,
        voice=f"en-us+{voice}",
        pitch_offset=float(rng.uniform(-3.0, 3.0)),
        rate_offset=float(rng.uniform(-6.0, 6.0)),
        gain=float(rng.uniform(0.95, 1.05)),
        variant=variant_of(number),
    )


def clip_prosody(actor: Actor, emotion: int, intensity: int, rng: np.random.Generator) -> Prosody:
    """The espeak-ng prosody of one clip: group level + intensity + actor offset + jitter."""
    level = AUDIO_LEVELS[AUDIO_GROUP[emotion]]
    strong = intensity == 2
    pitch = level.pitch + (5.0 if strong else 0.0) + actor.pitch_offset + rng.uniform(-1.5, 1.5)
    rate = level.rate + (8.0 if strong else 0.0) + actor.rate_offset + rng.uniform(-4.0, 4.0)
    amp = level.amplitude * (1.12 if strong else 1.0) * actor.gain * rng.uniform(0.97, 1.03)
    return Prosody(
        pitch=float(np.clip(round(pitch), 0, 99)),
        rate=float(round(rate)),
        amplitude=float(np.clip(round(amp), 1, 110)),  # above ~115 espeak-ng starts to clip
    )
