"""What the demo corpus encodes: its media format and the emotion -> cue tables.

Emotion is split across the modalities so that neither separates all eight classes on
its own but together they do: the voice carries an arousal-like level (four prosody
groups, :data:`AUDIO_GROUP`), the face a valence-like expression (four edit groups,
:data:`FACE_GROUP`), and every emotion has its own (audio group, face group) pair.
Strong intensity makes the face edit 1.5x stronger (:meth:`FaceEdit.scaled`).

Example:
    >>> AUDIO_GROUP[5], FACE_GROUP[5], FACE_GROUP_NAMES[FACE_GROUP[5]]  # angry: loud voice, scowl
    (3, 3, 'scowl')
    >>> AUDIO_LEVELS[AUDIO_GROUP[1]]
    Prosody(pitch=28, rate=120, amplitude=45)
    >>> FACE_EDITS[3].scaled(1.5).eye_shade
    0.675
    >>> RAVDESS_FORMAT.side, RAVDESS_FORMAT.samples_per_frame, DEMO_FORMAT == MediaFormat()
    (720, 1600, True)
"""
from __future__ import annotations

from dataclasses import dataclass

FPS = 25
SAMPLE_RATE = 16000
FRAME_SIZE = 256  # default output frames are FRAME_SIZE x FRAME_SIZE
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
PAD_SECONDS = 0.3  # silence before and after the speech (the demo's default)
#: RAVDESS's silence before and after the statement: with it a clip lasts ~3.7 s, the real corpus's mean.
RAVDESS_PAD_SECONDS = 1.0


@dataclass(frozen=True)
class MediaFormat:
    """Frame size, frame rate, audio and lead-in/lead-out silence of the clips (H.264 yuv420p video,
    mono AAC audio).

    A face is rendered on a ``min(width, height)`` square; a wider (or taller) frame puts
    that square in the middle of a plain light backdrop, as in RAVDESS's studio shots.
    ``pad_seconds`` of silence (the face at rest) come before and after the speech.
    """

    width: int = FRAME_SIZE
    height: int = FRAME_SIZE
    fps: int = FPS
    sample_rate: int = SAMPLE_RATE
    audio_bit_rate: int = 32_000
    pad_seconds: float = PAD_SECONDS

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 64:
            raise ValueError(f"frame size {self.width}x{self.height}: sides must be even and at least 64 (yuv420p)")
        if self.fps < 1 or self.sample_rate % self.fps:
            raise ValueError(f"audio rate {self.sample_rate} must be a multiple of the frame rate {self.fps}")
        if self.pad_seconds < 0:
            raise ValueError(f"pad_seconds {self.pad_seconds}: the silence around the speech cannot be negative")

    @property
    def side(self) -> int:
        """Side of the square the face is rendered on."""
        return min(self.width, self.height)

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps


#: What the demo corpus writes unless told otherwise: small clips that extract fast.
DEMO_FORMAT = MediaFormat()
#: The real corpus's audio-visual files: 1280x720 at 30 fps, 48 kHz AAC, ~1 s of silence either side.
RAVDESS_FORMAT = MediaFormat(width=1280, height=720, fps=30, sample_rate=48000, audio_bit_rate=64_000,
                             pad_seconds=RAVDESS_PAD_SECONDS)

#: RAVDESS's song (vocal channel 02) has six emotions: no disgust, no surprise.
SONG_EMOTIONS = (1, 2, 3, 4, 5, 6)
#: Actors without song files in the real corpus (and so in the demo corpus).
NO_SONG_ACTORS = (18,)
#: espeak-ng pitch offsets, one per sung word (a simple rising-falling tune; cycled for longer lines).
MELODY = (0, 6, 12, 8, 14, 4)

#: emotion code -> audio (prosody) group, 0..3 from low to high arousal.
AUDIO_GROUP: dict[int, int] = {1: 0, 2: 0, 4: 1, 7: 1, 3: 2, 8: 2, 5: 3, 6: 3}
#: emotion code -> face (expression) group: 0 plain, 1 smile, 2 raised, 3 scowl.
FACE_GROUP: dict[int, int] = {1: 0, 4: 0, 2: 1, 3: 1, 6: 2, 8: 2, 5: 3, 7: 3}
FACE_GROUP_NAMES = ("plain", "smile", "raised", "scowl")


@dataclass(frozen=True)
class Prosody:
    """espeak-ng prosody: pitch (0-99), rate (words per minute), amplitude (0-200)."""

    pitch: float
    rate: float
    amplitude: float


#: Prosody per audio group (index = AUDIO_GROUP value).
AUDIO_LEVELS: tuple[Prosody, ...] = (
    Prosody(28, 120, 45),
    Prosody(42, 140, 60),
    Prosody(58, 160, 80),
    Prosody(74, 182, 100),
)


@dataclass(frozen=True)
class FaceEdit:
    """A visible expression edit, in units of the eye-mouth distance where geometric.

    ``mouth_sx``/``mouth_sy``: mouth region scale; ``brow_dy``: brow/eye band shift (negative
    is up); ``eye_shade``: darkening of a band over the eyes (0..1); ``tint``: RGB offset
    added over the face.
    """

    mouth_sx: float = 1.0
    mouth_sy: float = 1.0
    brow_dy: float = 0.0
    eye_shade: float = 0.0
    tint: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def scaled(self, k: float) -> "FaceEdit":
        """The same edit, k times as strong."""
        return FaceEdit(
            mouth_sx=1.0 + (self.mouth_sx - 1.0) * k,
            mouth_sy=1.0 + (self.mouth_sy - 1.0) * k,
            brow_dy=self.brow_dy * k,
            eye_shade=min(0.9, self.eye_shade * k),
            tint=tuple(t * k for t in self.tint),  # type: ignore[arg-type]
        )


#: Face edit per face group (index = FACE_GROUP value).
FACE_EDITS: tuple[FaceEdit, ...] = (
    FaceEdit(),
    FaceEdit(mouth_sx=1.38, mouth_sy=0.8, tint=(22.0, 8.0, -18.0)),
    FaceEdit(mouth_sx=0.88, mouth_sy=1.5, brow_dy=-0.2, tint=(-16.0, 0.0, 24.0)),
    FaceEdit(mouth_sx=0.8, mouth_sy=0.9, brow_dy=0.1, eye_shade=0.45, tint=(-12.0, 12.0, -8.0)),
)
