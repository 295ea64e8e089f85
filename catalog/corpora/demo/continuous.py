"""Time-continuous demo media: a face and a voice that follow a latent valence/arousal signal.

The per-frame corpora (Aff-Wild2 layout) need labels that change *within* a clip and media
that carry those changes, so that a per-frame model can track them better than a per-clip
constant. Each subject gets a smooth latent :func:`latent` valence v(t) and arousal a(t) in
[-1, 1] (three slow sinusoids, 0.1-0.4 Hz, plus a per-subject offset), and:

* the face follows **valence**: its expression is the RAVDESS demo's edits blended
  continuously, scowl at v = -1, plain at 0, smile at +1 (:func:`edit_at`); it follows
  **arousal** too, more weakly: the head moves more when a is high;
* the voice follows **arousal**: the subject speaks short sentences one after another, each
  synthesised by espeak-ng with pitch, rate and loudness rising with the arousal of its
  span, and a continuous gain of +/-6 dB over a(t) on top (:func:`speak`), so eGeMAPS
  loudness and F0 rise and fall with the label.

Example:
    >>> v, a = latent(100, 25, np.random.default_rng(0))
    >>> v.shape, bool(np.abs(v).max() <= 1.0), bool(np.std(a) > 0.2)
    ((100,), True, True)
    >>> edit_at(1.0) == FACE_EDITS[1], edit_at(-1.0) == FACE_EDITS[3], edit_at(0.0) == FACE_EDITS[0]
    (True, True, True)
    >>> from emofuse.catalog.corpora.demo.photos import MALE_FACES, aligned_face
    >>> frames = list(render(aligned_face(MALE_FACES[0]), v[:3], a[:3], np.zeros(3), np.random.default_rng(0), 128, 25))
    >>> len(frames), frames[0].shape
    (3, (128, 128, 3))
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from emofuse.catalog.corpora.demo.actors import Actor
from emofuse.catalog.corpora.demo.design import FACE_EDITS, FaceEdit, Prosody
from emofuse.catalog.corpora.demo.faces import _warp_region, speech_envelope, static_edit
from emofuse.catalog.corpora.demo.photos import CANVAS, EYE_MOUTH, VIEW, Aligned
from emofuse.catalog.corpora.demo.speech import synthesize

#: Sentences the subjects say, one after another (short, so prosody can change often).
SENTENCES = (
    "Kids are talking by the door",
    "Dogs are sitting by the door",
    "The birch canoe slid on the smooth planks",
    "Glue the sheet to the dark blue background",
    "It is easy to tell the depth of a well",
    "These days a chicken leg is a rare dish",
    "Rice is often served in round bowls",
    "The juice of lemons makes fine punch",
)
#: Valence steps the face is rendered at (the static part of an edit is cached per step).
VALENCE_STEPS = 20


def latent(n: int, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smooth valence and arousal (float32, ``n`` frames at ``fps``) in [-1, 1]."""
    t = np.arange(n) / fps
    out = []
    for _ in range(2):
        freq = rng.uniform(0.1, 0.4, 3)
        phase = rng.uniform(0, 2 * np.pi, 3)
        amp = np.array([1.0, 0.5, 0.25]) * rng.uniform(0.8, 1.2, 3)
        x = sum(amp[k] * np.sin(2 * np.pi * freq[k] * t + phase[k]) for k in range(3)) / amp.sum()
        x = 1.3 * x + rng.uniform(-0.25, 0.25)
        out.append(np.clip(x, -0.95, 0.95).astype(np.float32))
    return out[0], out[1]


def _blend(a: FaceEdit, b: FaceEdit, w: float) -> FaceEdit:
    """The edit ``w`` of the way from ``a`` to ``b``."""
    mix = lambda x, y: x + (y - x) * w  # noqa: E731
    return FaceEdit(mouth_sx=mix(a.mouth_sx, b.mouth_sx), mouth_sy=mix(a.mouth_sy, b.mouth_sy),
                    brow_dy=mix(a.brow_dy, b.brow_dy), eye_shade=mix(a.eye_shade, b.eye_shade),
                    tint=tuple(mix(x, y) for x, y in zip(a.tint, b.tint)))  # type: ignore[arg-type]


def edit_at(valence: float) -> FaceEdit:
    """The face edit at ``valence``: scowl (-1) .. plain (0) .. smile (+1), blended linearly."""
    v = float(np.clip(valence, -1.0, 1.0))
    if v == 0.0:
        return FACE_EDITS[0]
    return _blend(FACE_EDITS[0], FACE_EDITS[1] if v > 0 else FACE_EDITS[3], abs(v))


def render(face: Aligned, valence: np.ndarray, arousal: np.ndarray, envelope: np.ndarray,
           rng: np.random.Generator, side: int, fps: float) -> Iterator[np.ndarray]:
    """Square RGB frames (``side`` px) of ``face`` following ``valence`` and ``arousal`` per frame.

    The mouth opens with the speech ``envelope`` (0..1 per frame); the head sways more when
    arousal is high.
    """
    from PIL import Image

    n = valence.size
    t = np.arange(n) / fps
    level = 0.4 + 0.6 * (arousal + 1.0) / 2  # head motion 0.4x (calm) .. 1x (aroused)

    def wobble(amplitude: float) -> np.ndarray:
        f = rng.uniform(0.3, 1.0, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        return amplitude * level * (0.65 * np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.35 * np.sin(2 * np.pi * f[1] * t + ph[1]))

    tx, ty, rot, zoom = wobble(8.0), wobble(5.0), np.deg2rad(wobble(4.0)), 1.0 + wobble(0.03)
    mouth_radii = (0.95 * face.mouth_width + 8.0, 0.5 * EYE_MOUTH)
    scale, centre_out, centre_can = VIEW / side, side / 2, CANVAS / 2
    static: dict[int, tuple[FaceEdit, np.ndarray]] = {}  # valence step -> (edit, its static part)
    for i in range(n):
        step = int(round((float(valence[i]) + 1.0) * VALENCE_STEPS / 2))
        if step not in static:
            e = edit_at(step / (VALENCE_STEPS / 2) - 1.0)
            static[step] = (e, static_edit(face, e))
        edit, base = static[step]
        sy = edit.mouth_sy * (1.0 + 0.3 * float(envelope[i]))
        rows, cols, mouth = _warp_region(base, face.mouth, mouth_radii, sx=edit.mouth_sx, sy=sy)
        canvas = np.clip(base + 0.5, 0, 255).astype(np.uint8)
        canvas[rows, cols] = np.clip(mouth + 0.5, 0, 255).astype(np.uint8)
        k = scale / zoom[i]
        c, s = math.cos(rot[i]) * k, math.sin(rot[i]) * k
        ox = centre_can + tx[i] - (c * centre_out - s * centre_out)
        oy = centre_can + ty[i] - (s * centre_out + c * centre_out)
        out = Image.fromarray(canvas).transform((side, side), Image.Transform.AFFINE, (c, -s, ox, s, c, oy),
                                                resample=Image.Resampling.BILINEAR)
        yield np.asarray(out)


def prosody_at(actor: Actor, arousal: float) -> Prosody:
    """espeak-ng prosody for a sentence spoken at ``arousal`` (-1 calm .. +1 aroused), with the actor's offsets."""
    x = (float(np.clip(arousal, -1, 1)) + 1.0) / 2
    return Prosody(pitch=float(np.clip(round(25 + 55 * x + actor.pitch_offset), 0, 99)),
                   rate=float(round(125 + 60 * x + actor.rate_offset)),
                   amplitude=float(np.clip(round((40 + 65 * x) * actor.gain), 1, 110)))


def speak(turns: list[tuple[Actor, np.ndarray]], n_frames: int, fps: int, sample_rate: int,
          rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """Audio of ``n_frames`` video frames in which the subjects of ``turns`` speak in turn.

    ``turns``: (actor, arousal per frame) per subject; sentences alternate between them, each
    spoken at the arousal of its span and scaled by a gain that follows arousal continuously.
    Returns the float32 mono audio and, per subject, its speech envelope per video frame (0..1).
    """
    spf = sample_rate // fps
    n = n_frames * spf
    audio = np.zeros(n, np.float32)
    voiced = [np.zeros(n, np.float32) for _ in turns]
    pos = int(rng.uniform(0.05, 0.2) * sample_rate)
    k = 0
    while pos < n - int(0.3 * sample_rate):
        who = k % len(turns)
        actor, arousal = turns[who]
        f0 = min(pos // spf, n_frames - 1)
        span = arousal[f0: min(n_frames, f0 + int(1.5 * fps))]
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        speech = synthesize(text, voice=actor.voice, prosody=prosody_at(actor, float(span.mean())),
                            sample_rate=sample_rate)[: n - pos]
        frames = np.minimum((pos + np.arange(speech.size)) // spf, n_frames - 1)
        gain = 10.0 ** (6.0 * arousal[frames] / 20.0)  # +/-6 dB over arousal
        fade = np.minimum(1.0, np.arange(speech.size)[::-1] / (0.01 * sample_rate))  # no click where cut
        audio[pos: pos + speech.size] += speech * gain * fade
        voiced[who][pos: pos + speech.size] = speech
        pos += speech.size + int(rng.uniform(0.12, 0.3) * sample_rate)
        k += 1
    audio += rng.normal(0.0, 3e-4, n).astype(np.float32)
    return np.clip(audio, -1.0, 1.0), [speech_envelope(v, n_frames, spf) for v in voiced]


__all__ = ["SENTENCES", "edit_at", "latent", "prosody_at", "render", "speak"]
