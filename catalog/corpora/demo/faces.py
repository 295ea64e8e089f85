"""Face edits and animation: a per-emotion expression on an aligned face, a mouth that moves with
the speech, and a small seeded head motion.

:func:`static_edit` applies the parts of a :class:`~emofuse.catalog.corpora.demo.design.FaceEdit`
that hold for the whole clip (brow shift, eye shading, tint); :func:`render_frames` adds
the mouth (scaled by the edit and opened by the speech envelope) and the head motion,
and yields the clip's RGB frames: a square of the format's shorter side, centred on a
plain light backdrop (:data:`BACKDROP`) when the frame is not square.

Example:
    >>> from emofuse.catalog.corpora.demo.design import FACE_EDITS
    >>> from emofuse.catalog.corpora.demo.photos import MALE_FACES, aligned_face
    >>> face = aligned_face(MALE_FACES[2])
    >>> frames = list(render_frames(face, FACE_EDITS[3], np.array([0.0, 1.0]), np.random.default_rng(0)))
    >>> len(frames), frames[0].shape, frames[0].dtype
    (2, (256, 256, 3), dtype('uint8'))
    >>> speech_envelope(np.zeros(2 * SAMPLES_PER_FRAME, np.float32), 2).tolist()
    [0.0, 0.0]
    >>> wide = MediaFormat(width=160, height=96, fps=25, sample_rate=16000)
    >>> frame = next(render_frames(face, FACE_EDITS[0], np.array([0.0]), np.random.default_rng(0), wide))
    >>> frame.shape, frame[0, 0].tolist() == list(BACKDROP)
    ((96, 160, 3), True)
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np

from emofuse.catalog.corpora.demo.design import DEMO_FORMAT, SAMPLES_PER_FRAME, FaceEdit, MediaFormat
from emofuse.catalog.corpora.demo.photos import CANVAS, EYE_MOUTH, VIEW, Aligned


def bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
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
    return slice(y0, y1), slice(x0, x1), bilinear(img, src_y, src_x)


def _local_warp(img: np.ndarray, centre: np.ndarray, radii: tuple[float, float], *,
                sx: float = 1.0, sy: float = 1.0, dy: float = 0.0) -> np.ndarray:
    """A copy of ``img`` warped by :func:`_warp_region`; the rest stays put."""
    if sx == 1.0 and sy == 1.0 and dy == 0.0:
        return img
    rows, cols, values = _warp_region(img, centre, radii, sx=sx, sy=sy, dy=dy)
    out = img.copy()
    out[rows, cols] = values
    return out


def static_edit(face: Aligned, edit: FaceEdit) -> np.ndarray:
    """Brow shift, eye shading and tint (the parts of an edit that do not move with speech)."""
    img = face.image
    d = EYE_MOUTH
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


#: RGB of the plain backdrop around the face square in frames that are not square.
BACKDROP = (226, 226, 222)
#: Width (px) over which the face square fades into the backdrop.
BACKDROP_BLEND = 32


def speech_envelope(audio: np.ndarray, n_frames: int, samples_per_frame: int = SAMPLES_PER_FRAME) -> np.ndarray:
    """Per-video-frame mouth opening 0..1 from the audio RMS."""
    frames = audio[: n_frames * samples_per_frame].reshape(n_frames, samples_per_frame)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    env = np.clip((rms / max(float(rms.max()), 1e-6) - 0.1) / 0.6, 0.0, 1.0)
    return np.convolve(np.pad(env, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")


def render_frames(face: Aligned, edit: FaceEdit, envelope: np.ndarray, rng: np.random.Generator,
                  media: MediaFormat = DEMO_FORMAT) -> Iterator[np.ndarray]:
    """Yield the clip's RGB frames: edited face, mouth moving with speech, small head motion."""
    from PIL import Image

    base = static_edit(face, edit)
    base_u8 = np.clip(base + 0.5, 0, 255).astype(np.uint8)
    n = envelope.size
    t = np.arange(n) / media.fps

    def wobble(amplitude: float) -> np.ndarray:
        f = rng.uniform(0.15, 0.6, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        return amplitude * (0.65 * np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.35 * np.sin(2 * np.pi * f[1] * t + ph[1]))

    tx, ty = wobble(6.0), wobble(4.0)  # canvas px
    rot = np.deg2rad(wobble(2.5))
    zoom = 1.0 + wobble(0.03)
    mouth_radii = (0.95 * face.mouth_width + 8.0, 0.5 * EYE_MOUTH)
    side = media.side
    base_scale = VIEW / side
    centre_out = side / 2
    place = _backdrop(media)
    centre_can = np.array([CANVAS / 2, CANVAS / 2])
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
        out = im.transform((side, side), Image.Transform.AFFINE,
                           (c, -s, ox, s, c, oy), resample=Image.Resampling.BILINEAR)
        yield place(np.asarray(out))


def _backdrop(media: MediaFormat) -> Callable[[np.ndarray], np.ndarray]:
    """A function that puts a rendered face square in the middle of a ``media``-sized frame."""
    w, h, side = media.width, media.height, media.side
    if w == h:
        return lambda square: square
    y0, x0 = (h - side) // 2, (w - side) // 2
    blend = min(BACKDROP_BLEND, side // 4)
    alpha = ((np.arange(blend) + 0.5) / blend).astype(np.float32)  # the square's weight, rising from its edge
    plain = np.asarray(BACKDROP, np.float32)
    backdrop = np.empty((h, w, 3), np.uint8)
    backdrop[:] = BACKDROP

    def place(square: np.ndarray) -> np.ndarray:
        sq = square if w > h else square.transpose(1, 0, 2)  # fade along the long axis
        sq = sq.copy()
        for edge, a in ((sq[:, :blend], alpha), (sq[:, side - blend:], alpha[::-1])):
            edge[:] = np.clip(edge * a[None, :, None] + plain * (1.0 - a[None, :, None]) + 0.5, 0, 255)
        frame = backdrop.copy()
        frame[y0:y0 + side, x0:x0 + side] = sq if w > h else sq.transpose(1, 0, 2)
        return frame

    return place
