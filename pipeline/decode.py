"""Media probing and streaming decode with PyAV (bundled FFmpeg, no system binary).

Audio comes out mono float32 at a fixed rate (16 kHz by default); video frames
come out as RGB uint8 arrays sampled at a fixed rate (5 fps by default). Both
are generators, so memory stays bounded whatever a file's length.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from emofuse.pipeline.dummies import tone, write_audio, write_video
    >>> d = tempfile.mkdtemp()
    >>> wav = str(write_audio(os.path.join(d, "tone.wav"), tone(0.5, sr=44_100), sr=44_100))
    >>> p = probe(wav)
    >>> p.duration, p.sample_rate, p.has_video
    (0.5, 44100, False)
    >>> load_audio(wav).shape  # resampled to 16 kHz
    (8000,)
    >>> clip = str(write_video(os.path.join(d, "clip.mp4"), [np.zeros((64, 96, 3), np.uint8)] * 10, fps=10))
    >>> [(round(t, 2), rgb.shape) for t, rgb in iter_frames(clip, fps=5)]
    [(0.0, (64, 96, 3)), (0.2, (64, 96, 3)), (0.4, (64, 96, 3)), (0.6, (64, 96, 3)), (0.8, (64, 96, 3))]
    >>> load_audio(clip)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emofuse.pipeline.decode.NoStream: .../clip.mp4: no audio stream
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import av
import numpy as np

DEFAULT_SR = 16_000
DEFAULT_FPS = 5.0


class DecodeError(RuntimeError):
    """The file cannot be read as media (corrupt, truncated, empty or not media at all)."""


class NoStream(DecodeError):
    """The file has no stream of the requested kind (e.g. a video without audio)."""


@dataclass(frozen=True)
class Probe:
    """Container-level facts about a media file."""

    container: str
    duration: float | None
    has_audio: bool
    has_video: bool
    sample_rate: int | None
    fps: float | None
    width: int | None
    height: int | None


def _open(path: str) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise DecodeError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(path, mode="r")
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as e:
        raise DecodeError(f"{path}: not readable as media ({type(e).__name__}: {e})") from e


def probe(path: str) -> Probe:
    """Read stream headers only; raise :class:`DecodeError` for files that are not media."""
    with _open(path) as c:
        a = c.streams.audio[0] if c.streams.audio else None
        v = c.streams.video[0] if c.streams.video else None
        if a is None and v is None:
            raise DecodeError(f"{path}: no audio or video stream")
        duration = None
        if c.duration is not None:
            duration = c.duration / av.time_base
        else:
            for s in (v, a):
                if s is not None and s.duration is not None and s.time_base is not None:
                    duration = float(s.duration * s.time_base)
                    break
        fps = None
        if v is not None:
            rate = v.average_rate or v.base_rate or v.guessed_rate
            fps = float(rate) if rate else None
        return Probe(
            container=c.format.name,
            duration=duration,
            has_audio=a is not None,
            has_video=v is not None,
            sample_rate=a.rate if a is not None else None,
            fps=fps,
            width=v.codec_context.width if v is not None else None,
            height=v.codec_context.height if v is not None else None,
        )


def iter_audio(path: str, *, sr: int = DEFAULT_SR, chunk_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Yield consecutive chunks of mono float32 audio at ``sr`` Hz (about ``chunk_seconds`` each)."""
    with _open(path) as c:
        if not c.streams.audio:
            raise NoStream(f"{path}: no audio stream")
        stream = c.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        target = max(1, int(chunk_seconds * sr))
        buf: list[np.ndarray] = []
        held = 0
        try:
            for packet in c.demux(stream):
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        arr = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                        buf.append(arr)
                        held += arr.size
                        if held >= target:
                            yield np.concatenate(buf)
                            buf, held = [], 0
            for out in resampler.resample(None):
                buf.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except av.FFmpegError as e:
            raise DecodeError(f"{path}: audio decoding failed ({e})") from e
        if buf:
            yield np.concatenate(buf)


def load_audio(path: str, *, sr: int = DEFAULT_SR, max_seconds: float | None = None) -> np.ndarray:
    """The whole audio track (or its first ``max_seconds``) as one mono float32 array."""
    parts: list[np.ndarray] = []
    total = 0
    limit = None if max_seconds is None else int(max_seconds * sr)
    for chunk in iter_audio(path, sr=sr):
        parts.append(chunk)
        total += chunk.size
        if limit is not None and total >= limit:
            break
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return audio[:limit] if limit is not None else audio


def iter_frames(path: str, *, fps: float = DEFAULT_FPS) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, rgb_uint8[H, W, 3])`` sampled at ``fps``; one decoded frame per sample time.

    Frames are decoded in order and only the sampled ones are converted, so the
    cost is the decode itself and memory is one frame.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    with _open(path) as c:
        if not c.streams.video:
            raise NoStream(f"{path}: no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        step = 1.0 / fps
        next_t = 0.0
        tb = float(stream.time_base) if stream.time_base else None
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None and tb else 0.0
        try:
            for frame in c.decode(stream):
                if frame.pts is None or tb is None:
                    t = frame.time if frame.time is not None else next_t
                else:
                    t = frame.pts * tb - start
                if t + 1e-6 < next_t:
                    continue
                yield float(t), frame.to_ndarray(format="rgb24")
                next_t = (np.floor(t / step + 1e-6) + 1) * step
        except av.FFmpegError as e:
            raise DecodeError(f"{path}: video decoding failed ({e})") from e
