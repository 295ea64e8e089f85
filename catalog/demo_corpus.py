"""Demo corpus: a small RAVDESS-shaped audio-visual corpus generated from real material.

:func:`generate` writes ``out/Actor_XX/01-01-EE-II-SS-RR-XX.mp4`` (full-AV speech,
RAVDESS names from :func:`emofuse.catalog.ravdess.make_name`). Every clip is a real face photo
shipped by an installed package (six faces of insightface's ``t1.jpg``, insightface's
``Tom_Hanks_54745.png``, scikit-image's astronaut), aligned, edited per emotion and moved
a little over time, together with real speech from the espeak-ng TTS saying the RAVDESS
statement. Video: H.264 (libx264; mpeg4 when PyAV's FFmpeg lacks libx264), 256x256,
25 fps, yuv420p. Audio: AAC, 16 kHz mono. Clip length is the speech length plus 0.3 s of
silence on either side (about 2-3 s); video and audio have the same length. Everything
is encoded by PyAV's bundled FFmpeg; only ``espeak-ng`` (or ``espeak``) must be on PATH.

Emotion is split across the modalities so that neither separates all eight classes on
its own but together they do: the voice carries an arousal-like level (four prosody
groups), the face a valence-like expression (four edit groups), and every emotion has
its own (audio group, face group) pair. Each modality alone confuses two emotions.

=========  ====  ===========================  ====  ==========================================
emotion    code  audio group (prosody)        face  face group (visible edit)
=========  ====  ===========================  ====  ==========================================
neutral    01    A0 low                        F0    plain: no edit
calm       02    A0 low                        F1    smile: mouth stretched wide, warm tint
sad        04    A1 low-mid                    F0    plain: no edit
disgust    07    A1 low-mid                    F3    scowl: dark band over eyes, brows down,
                                                     mouth narrowed, green-grey tint
happy      03    A2 high-mid                   F1    smile
surprised  08    A2 high-mid                   F2    raised: brows up, mouth open, cool tint
angry      05    A3 high                       F3    scowl
fearful    06    A3 high                       F2    raised
=========  ====  ===========================  ====  ==========================================

Prosody per audio group (espeak-ng ``-p`` pitch 0-99, ``-s`` rate in words/min, ``-a``
amplitude): A0 (28, 120, 45), A1 (42, 140, 60), A2 (58, 160, 80), A3 (74, 182, 100).
Strong intensity (code 02) adds +5 pitch, +8 wpm, x1.12 amplitude and makes the face
edit 1.5x stronger. Each actor has its own espeak voice variant (odd actors male, even
female, as in RAVDESS) and a small fixed pitch/rate/loudness offset drawn from the seed;
each clip adds a smaller jitter. Face identities cycle through the eight photos (four
men for odd actors, four women for even), so with more than eight actors faces repeat
(voices still differ). The mouth opens with the speech envelope, so the lips move with
the audio.

Measured on the eight photos (dlib ResNet embeddings of a mid-clip frame, distance to
the plain face): smile 0.17-0.31, raised 0.39-0.65, scowl 0.42-0.61; between two edit
groups 0.45-0.80; between people 0.61-0.90 (mean 0.79). Measured on the voice (median
F0 of a male / female actor): A0 82 / 153 Hz, A1 93 / 175 Hz, A2 109 / 204 Hz,
A3 129 / 239 Hz, with voiced RMS rising about 2.5x from A0 to A3.

Everything is deterministic: a clip's bytes depend only on the seed and its own codes
(not on which other clips are requested), given the same PyAV/FFmpeg and espeak-ng.

Example:
    >>> paths = generate("/tmp/demo", actors=1, emotions=(1, 5))  # doctest: +SKIP
    >>> [p.rsplit("/", 1)[1] for p in paths]  # doctest: +SKIP
    ['01-01-01-01-01-01-01.mp4', '01-01-01-01-02-01-01.mp4', '01-01-05-01-01-01-01.mp4', ...]
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Iterator, Sequence

import numpy as np

from emofuse.catalog.ravdess import EMOTIONS, INTENSITIES, STATEMENTS, make_name

FPS = 25
SAMPLE_RATE = 16000
FRAME_SIZE = 256  # output frames are FRAME_SIZE x FRAME_SIZE
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
_CANVAS = 384  # aligned face canvas: the output views its central 320 px (1.25x the output
#: size, so the per-frame warp keeps detail) and the margin absorbs the head motion
_VIEW = 320
_EYE_MID = (192.0, 165.0)  # where the eye midpoint lands on the canvas
_EYE_MOUTH = 64.0  # eye-midpoint to mouth-centre distance on the canvas (px)
_PAD_SECONDS = 0.3  # silence before and after the speech

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


@dataclass(frozen=True)
class FaceSource:
    """One face in a packaged photo, with landmarks (dlib 68-point means) in photo pixels."""

    name: str
    image: str  # "insightface:t1.jpg", "insightface:Tom_Hanks_54745.png" or "skimage:astronaut"
    sex: str
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    brow: tuple[float, float]
    mouth: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]


# Landmarks measured once with dlib's frontal detector + 68-point shape predictor
# (face_recognition_models); tests check that dlib finds the face in generated frames.
MALE_FACES: tuple[FaceSource, ...] = (
    FaceSource("t1_centre_left", "insightface:t1.jpg", "male", (491.7, 320.3), (540.5, 333.7),
               (519.7, 316.6), (504.9, 382.9), (481.0, 369.0), (531.0, 380.0)),
    FaceSource("t1_top_right", "insightface:t1.jpg", "male", (916.8, 117.8), (950.3, 114.7),
               (928.6, 102.9), (939.4, 173.1), (929.0, 176.0), (959.0, 169.0)),
    FaceSource("tom_hanks", "insightface:Tom_Hanks_54745.png", "male", (36.0, 51.7), (72.2, 50.0),
               (55.6, 40.9), (55.5, 94.0), (37.0, 92.0), (66.0, 91.0)),
    FaceSource("t1_laughing", "insightface:t1.jpg", "male", (761.8, 398.7), (800.5, 403.8),
               (780.4, 390.7), (780.4, 445.1), (764.0, 436.0), (807.0, 442.0)),
)
FEMALE_FACES: tuple[FaceSource, ...] = (
    FaceSource("astronaut", "skimage:astronaut", "female", (203.2, 101.5), (246.5, 104.2),
               (225.9, 91.6), (223.3, 145.5), (201.0, 139.0), (246.0, 141.0)),
    FaceSource("t1_right", "insightface:t1.jpg", "female", (1149.3, 327.7), (1192.0, 324.8),
               (1169.5, 309.4), (1171.1, 368.5), (1153.0, 367.0), (1196.0, 364.0)),
    FaceSource("t1_left", "insightface:t1.jpg", "female", (87.7, 330.2), (128.8, 310.5),
               (100.2, 301.9), (131.8, 362.1), (114.0, 372.0), (148.0, 352.0)),
    FaceSource("t1_dark_hair", "insightface:t1.jpg", "female", (291.8, 212.3), (320.5, 194.3),
               (298.3, 191.7), (321.3, 243.7), (313.0, 249.0), (338.0, 234.0)),
)
MALE_VOICES = ("m3", "m2", "m5", "m7", "m4", "m6", "m1")
FEMALE_VOICES = ("f2", "f3", "f4", "f5", "f1")


class EspeakNotFound(RuntimeError):
    """Neither ``espeak-ng`` nor ``espeak`` is on PATH."""


# --------------------------------------------------------------------------- actors


@dataclass(frozen=True)
class Actor:
    """An actor's identity: face photo, espeak voice variant and fixed prosody offsets."""

    number: int
    face: FaceSource
    voice: str
    pitch_offset: float
    rate_offset: float
    gain: float


def actor_identity(number: int, seed: int = 0) -> Actor:
    """Face, voice and prosody offsets of actor ``number`` (odd: male, even: female)."""
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


# --------------------------------------------------------------------------- speech


def espeak_command() -> str:
    """Path of the ``espeak-ng`` (or legacy ``espeak``) binary; raise :class:`EspeakNotFound`."""
    for name in ("espeak-ng", "espeak"):
        path = shutil.which(name)
        if path:
            return path
    raise EspeakNotFound(
        "the demo corpus speaks its sentences with espeak-ng, which is not on PATH. "
        "Install it with `apt-get install espeak-ng` (Debian/Ubuntu), `brew install espeak-ng` "
        "(macOS) or `dnf install espeak-ng` (Fedora), then run again."
    )


def _wav_pcm(data: bytes) -> tuple[np.ndarray, int]:
    """Mono int16 samples and rate from espeak's WAV (its streamed header has bogus sizes)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError(f"espeak-ng did not return a WAV stream (got {data[:16]!r})")
    pos, rate, channels = 12, 0, 1
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if cid == b"fmt ":
            channels = int.from_bytes(data[body + 2:body + 4], "little")
            rate = int.from_bytes(data[body + 4:body + 8], "little")
            bits = int.from_bytes(data[body + 14:body + 16], "little")
            if bits != 16:
                raise RuntimeError(f"espeak-ng wrote {bits}-bit audio; expected 16-bit")
        elif cid == b"data":
            pcm = data[body:]
            pcm = pcm[: len(pcm) - len(pcm) % (2 * channels)]
            x = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)[:, 0]
            return x.copy(), rate
        pos = body + size + (size & 1)
    raise RuntimeError("espeak-ng WAV stream has no data chunk")


def synthesize(text: str, *, voice: str, prosody: Prosody) -> np.ndarray:
    """Speak ``text`` with espeak-ng; float32 mono at 16 kHz, silence trimmed."""
    import av

    cmd = [
        espeak_command(), "--stdout", "-v", voice,
        "-s", str(int(prosody.rate)), "-p", str(int(prosody.pitch)), "-a", str(int(prosody.amplitude)),
        text,
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace').strip()}")
    pcm, rate = _wav_pcm(proc.stdout)
    voiced = np.nonzero(np.abs(pcm.astype(np.int32)) > 200)[0]
    if voiced.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    pcm = pcm[voiced[0]: voiced[-1] + 1]
    # Resample to 16 kHz with FFmpeg's swresample (deterministic).
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def _clip_audio(speech: np.ndarray, rng: np.random.Generator, duration_limit: float | None) -> np.ndarray:
    """Pad speech with silence (+ a faint seeded noise floor) to a whole number of video frames."""
    pad = int(_PAD_SECONDS * SAMPLE_RATE)
    n = speech.size + 2 * pad
    n = -(-n // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME
    if duration_limit is not None:
        n = min(n, max(1, int(duration_limit * FPS)) * SAMPLES_PER_FRAME)
    audio = np.zeros(n, np.float32)
    seg = speech[: max(0, n - pad)]
    audio[pad: pad + seg.size] = seg
    audio += rng.normal(0.0, 3e-4, n).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


# --------------------------------------------------------------------------- faces


def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the demo corpus takes face photos from the {package!r} package; install it")
    return list(spec.submodule_search_locations)[0]


@lru_cache(maxsize=4)
def _photo(image: str) -> np.ndarray:
    """A packaged photo as RGB uint8."""
    kind, name = image.split(":", 1)
    if kind == "skimage":
        import skimage.data

        return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    from PIL import Image

    path = os.path.join(_package_dir(kind), "data", "images", name)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


@dataclass(frozen=True)
class _Aligned:
    """A face aligned on the canvas (float32 RGB) with its landmarks in canvas pixels."""

    image: np.ndarray
    eye_mid: np.ndarray
    eye_dist: float
    brow: np.ndarray
    mouth: np.ndarray
    mouth_width: float


@lru_cache(maxsize=16)
def _aligned(src: FaceSource) -> _Aligned:
    """Rotate/scale the photo so the eyes are level and the face has a standard size."""
    from PIL import Image, ImageFilter

    img = _photo(src.image)
    h, w = img.shape[:2]
    le, re_ = np.array(src.left_eye), np.array(src.right_eye)
    eye_mid = (le + re_) / 2
    angle = math.atan2(re_[1] - le[1], re_[0] - le[0])
    scale = _EYE_MOUTH / float(np.linalg.norm(np.array(src.mouth) - eye_mid))
    c, s = math.cos(angle) / scale, math.sin(angle) / scale
    a = np.array([[c, -s], [s, c]])  # canvas -> photo (rotation by the eye-line angle)
    b = eye_mid - a @ np.array(_EYE_MID)

    def to_photo(p: np.ndarray) -> np.ndarray:
        return p @ a.T + b

    corners = to_photo(np.array([[0, 0], [_CANVAS, 0], [0, _CANVAS], [_CANVAS, _CANVAS]], float))
    x0, y0 = np.floor(corners.min(0)).astype(int) - 8
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 8
    region = img[max(y0, 0): min(y1, h), max(x0, 0): min(x1, w)]
    pads = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0))
    if any(p for pair in pads[:2] for p in pair):
        # Outside the photo: its blurred edge colours, blended in over a soft border.
        padded = np.pad(region, pads, mode="edge")
        blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(12)), np.float32)
        inside = np.zeros(padded.shape[:2], np.uint8)
        inside[pads[0][0]: pads[0][0] + region.shape[0], pads[1][0]: pads[1][0] + region.shape[1]] = 255
        inside_img = Image.fromarray(inside).filter(ImageFilter.MinFilter(9)).filter(ImageFilter.GaussianBlur(3))
        alpha = np.asarray(inside_img, np.float32)[..., None] / 255.0
        region = np.clip(padded * alpha + blurred * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    origin = np.array([x0, y0], float)
    b_local = b - origin
    coeffs = (a[0, 0], a[0, 1], b_local[0], a[1, 0], a[1, 1], b_local[1])
    canvas = Image.fromarray(np.ascontiguousarray(region)).transform(
        (_CANVAS, _CANVAS), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)
    inv = np.linalg.inv(a)

    def to_canvas(p: tuple[float, float]) -> np.ndarray:
        return inv @ (np.array(p) - b)

    ml, mr = to_canvas(src.mouth_left), to_canvas(src.mouth_right)
    return _Aligned(
        image=np.asarray(canvas, np.float32),
        eye_mid=to_canvas(tuple(eye_mid)),
        eye_dist=float(np.linalg.norm(to_canvas(src.right_eye) - to_canvas(src.left_eye))),
        brow=to_canvas(src.brow),
        mouth=to_canvas(src.mouth),
        mouth_width=float(np.linalg.norm(mr - ml)),
    )


def _bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample ``img`` (H, W, C) at float coordinates, clamped to the image."""
    h, w = img.shape[:2]
    ys = np.clip(ys, 0, h - 1.001)
    xs = np.clip(xs, 0, w - 1.001)
    y0, x0 = ys.astype(np.int32), xs.astype(np.int32)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bot = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def _warp_region(img: np.ndarray, centre: np.ndarray, radii: tuple[float, float], *,
                 sx: float = 1.0, sy: float = 1.0, dy: float = 0.0) -> tuple[slice, slice, np.ndarray]:
    """Scale (sx, sy) and shift (dy) the content inside a soft ellipse: (rows, cols, new pixels)."""
    h, w = img.shape[:2]
    cx, cy = float(centre[0]), float(centre[1])
    rx, ry = radii
    x0, x1 = max(0, int(cx - rx)), min(w, int(math.ceil(cx + rx)) + 1)
    y0, y1 = max(0, int(cy - ry)), min(h, int(math.ceil(cy + ry)) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    r2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    wgt = np.clip(1.0 - r2, 0.0, 1.0) ** 2
    src_x = xx + wgt * ((cx + (xx - cx) / sx) - xx)
    src_y = yy + wgt * ((cy + (yy - cy) / sy - dy) - yy)
    return slice(y0, y1), slice(x0, x1), _bilinear(img, src_y, src_x)


def _local_warp(img: np.ndarray, centre: np.ndarray, radii: tuple[float, float], *,
                sx: float = 1.0, sy: float = 1.0, dy: float = 0.0) -> np.ndarray:
    """A copy of ``img`` warped by :func:`_warp_region`; the rest stays put."""
    if sx == 1.0 and sy == 1.0 and dy == 0.0:
        return img
    rows, cols, values = _warp_region(img, centre, radii, sx=sx, sy=sy, dy=dy)
    out = img.copy()
    out[rows, cols] = values
    return out


def _static_edit(face: _Aligned, edit: FaceEdit) -> np.ndarray:
    """Brow shift, eye shading and tint (the parts of an edit that do not move with speech)."""
    img = face.image
    d = _EYE_MOUTH
    if edit.brow_dy:
        centre = np.array([face.eye_mid[0], (face.brow[1] + face.eye_mid[1]) / 2])
        img = _local_warp(img, centre, (1.25 * face.eye_dist, 0.55 * d), dy=edit.brow_dy * d)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ex, ey = face.eye_mid
    if edit.eye_shade:
        band = np.exp(-0.5 * ((yy - (ey - 0.08 * d)) / (0.16 * d)) ** 2)
        band *= np.exp(-0.5 * (np.maximum(np.abs(xx - ex) - 0.7 * face.eye_dist, 0) / (0.12 * d)) ** 2)
        img = img * (1.0 - edit.eye_shade * band)[..., None]
    if any(edit.tint):
        fy = (ey + face.mouth[1]) / 2
        mask = np.exp(-0.5 * (((xx - ex) / (1.0 * face.eye_dist)) ** 2 + ((yy - fy) / (0.9 * d)) ** 2))
        img = img + mask[..., None] * np.array(edit.tint, np.float32)
    return np.clip(img, 0, 255).astype(np.float32)


def _speech_envelope(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-video-frame mouth opening 0..1 from the audio RMS."""
    frames = audio[: n_frames * SAMPLES_PER_FRAME].reshape(n_frames, SAMPLES_PER_FRAME)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    env = np.clip((rms / max(float(rms.max()), 1e-6) - 0.1) / 0.6, 0.0, 1.0)
    return np.convolve(np.pad(env, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")


def _render_frames(face: _Aligned, edit: FaceEdit, envelope: np.ndarray,
                   rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield the clip's RGB frames: edited face, mouth moving with speech, small head motion."""
    from PIL import Image

    base = _static_edit(face, edit)
    base_u8 = np.clip(base + 0.5, 0, 255).astype(np.uint8)
    n = envelope.size
    t = np.arange(n) / FPS

    def wobble(amplitude: float) -> np.ndarray:
        f = rng.uniform(0.15, 0.6, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        return amplitude * (0.65 * np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.35 * np.sin(2 * np.pi * f[1] * t + ph[1]))

    tx, ty = wobble(6.0), wobble(4.0)  # canvas px
    rot = np.deg2rad(wobble(2.5))
    zoom = 1.0 + wobble(0.03)
    mouth_radii = (0.95 * face.mouth_width + 8.0, 0.5 * _EYE_MOUTH)
    base_scale = _VIEW / FRAME_SIZE
    centre_out = FRAME_SIZE / 2
    centre_can = np.array([_CANVAS / 2, _CANVAS / 2])
    for i in range(n):
        sy = edit.mouth_sy * (1.0 + 0.3 * float(envelope[i]))
        rows, cols, mouth = _warp_region(base, face.mouth, mouth_radii, sx=edit.mouth_sx, sy=sy)
        canvas = base_u8.copy()
        canvas[rows, cols] = np.clip(mouth + 0.5, 0, 255).astype(np.uint8)
        k = base_scale / zoom[i]
        c, s = math.cos(rot[i]) * k, math.sin(rot[i]) * k
        ox = centre_can[0] + tx[i] - (c * centre_out - s * centre_out)
        oy = centre_can[1] + ty[i] - (s * centre_out + c * centre_out)
        im = Image.fromarray(canvas)
        out = im.transform((FRAME_SIZE, FRAME_SIZE), Image.Transform.AFFINE,
                           (c, -s, ox, s, c, oy), resample=Image.Resampling.BILINEAR)
        yield np.asarray(out)


# --------------------------------------------------------------------------- encoding


def video_codec() -> str:
    """``libx264`` when PyAV's FFmpeg has it, else ``mpeg4``."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _encode(path: str, frames: Iterator[np.ndarray], audio: np.ndarray) -> None:
    """Mux RGB frames (25 fps) and 16 kHz mono float audio into an mp4 at ``path``."""
    import av

    codec = video_codec()
    with av.open(path, mode="w", format="mp4") as container:
        vs = container.add_stream(codec, rate=FPS)
        vs.width = vs.height = FRAME_SIZE
        vs.pix_fmt = "yuv420p"
        vs.codec_context.thread_count = 1
        if codec == "libx264":
            vs.options = {"crf": "23", "preset": "veryfast"}
        else:
            vs.bit_rate = 400_000
        aus = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        aus.bit_rate = 32_000
        aus.codec_context.thread_count = 1
        chunk = 1024
        a_pos = 0

        def push_audio(until: int) -> None:
            nonlocal a_pos
            while a_pos < min(until, audio.size):
                block = audio[a_pos: a_pos + chunk]
                fr = av.AudioFrame.from_ndarray(block[None, :], format="fltp", layout="mono")
                fr.sample_rate = SAMPLE_RATE
                fr.pts = a_pos
                fr.time_base = Fraction(1, SAMPLE_RATE)
                container.mux(aus.encode(fr))
                a_pos += block.size

        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, FPS)
            container.mux(vs.encode(vf))
            push_audio((i + 1) * SAMPLES_PER_FRAME)
        push_audio(audio.size)
        container.mux(vs.encode(None))
        container.mux(aus.encode(None))


# --------------------------------------------------------------------------- corpus


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


def render_clip(spec: ClipSpec, path: str, *, seed: int = 0, duration_limit: float | None = None) -> None:
    """Write one clip to ``path`` (overwriting); deterministic from ``seed`` and the clip's codes."""
    rng = np.random.default_rng([seed, spec.actor, spec.emotion, spec.intensity, spec.statement, spec.repetition])
    actor = actor_identity(spec.actor, seed)
    prosody = clip_prosody(actor, spec.emotion, spec.intensity, rng)
    speech = synthesize(STATEMENTS[spec.statement], voice=actor.voice, prosody=prosody)
    audio = _clip_audio(speech, rng, duration_limit)
    n_frames = audio.size // SAMPLES_PER_FRAME
    edit = FACE_EDITS[FACE_GROUP[spec.emotion]].scaled(1.5 if spec.intensity == 2 else 1.0)
    frames = _render_frames(_aligned(actor.face), edit, _speech_envelope(audio, n_frames), rng)
    _encode(path, frames, audio)


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

    Idempotent: a clip whose file exists is kept (files are written to a hidden temporary
    name and renamed, so an existing file is complete). Needs ``espeak-ng`` on PATH; raises
    :class:`EspeakNotFound` with install hints otherwise.

    Example:
        >>> generate("demo", actors=1, emotions=(1, 5), statements=(1,))  # doctest: +SKIP
        ['demo/Actor_01/01-01-01-01-01-01-01.mp4', 'demo/Actor_01/01-01-05-01-01-01-01.mp4']
    """
    specs = plan(actors=actors, emotions=emotions, statements=statements,
                 repetitions=repetitions, intensities=intensities)
    if any(not os.path.exists(os.path.join(out, s.relpath)) for s in specs):
        espeak_command()  # fail early, before any work, with an install hint
    paths: list[str] = []
    for k, spec in enumerate(specs, 1):
        path = os.path.join(out, spec.relpath)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".tmp", dir=os.path.dirname(path))
            os.close(fd)
            try:
                render_clip(spec, tmp, seed=seed, duration_limit=duration_limit)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        paths.append(path)
        if progress is not None:
            progress(k, len(specs), path)
    return paths
