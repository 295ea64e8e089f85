"""Tiny generated media for examples and tests: a tone, a WAV or AAC file, an H.264 video.

Written with PyAV (its bundled FFmpeg), so no system binary and no file from
elsewhere is needed; every call is deterministic and takes milliseconds.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> wav = write_audio(os.path.join(d, "tone.wav"), tone(0.5))
    >>> wav.name, wav.stat().st_size > 16_000
    ('tone.wav', True)
    >>> frames = [np.full((64, 96, 3), 40 * i, np.uint8) for i in range(5)]
    >>> write_video(os.path.join(d, "clip.mp4"), frames, fps=5, audio=tone(1.0)).name
    'clip.mp4'
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

DEFAULT_SR = 16_000


def tone(seconds: float = 1.0, *, sr: int = DEFAULT_SR, freq: float = 220.0, amp: float = 0.2) -> np.ndarray:
    """A sine of ``freq`` Hz, mono float32 in [-amp, amp], ``seconds * sr`` samples."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _audio_stream(container: av.container.OutputContainer, sr: int, codec: str) -> av.AudioStream:
    stream = container.add_stream(codec, rate=sr)
    stream.layout = "mono"
    return stream


def _encode_audio(container: av.container.OutputContainer, stream: av.AudioStream, x: np.ndarray) -> None:
    if stream.codec_context.name == "pcm_s16le":
        data, fmt = (np.clip(x, -1, 1) * 32767).astype(np.int16)[None, :], "s16"
    else:
        data, fmt = np.asarray(x, np.float32)[None, :], "fltp"
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="mono")
    frame.sample_rate = stream.rate
    for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_audio(path: str | os.PathLike[str], x: np.ndarray, sr: int = DEFAULT_SR, *,
                codec: str = "pcm_s16le") -> Path:
    """Write mono float audio in [-1, 1]: 16-bit PCM (``.wav``) or ``codec="aac"`` (``.m4a``/``.mp4``)."""
    with av.open(os.fspath(path), "w") as c:
        _encode_audio(c, _audio_stream(c, sr, codec), x)
    return Path(path)


def write_video(path: str | os.PathLike[str], frames: Sequence[np.ndarray], *, fps: int = 10,
                audio: np.ndarray | None = None, sr: int = DEFAULT_SR) -> Path:
    """Write RGB uint8 frames (even width and height) as H.264 at ``fps``, with an AAC track when ``audio`` is given."""
    with av.open(os.fspath(path), "w") as c:
        video = c.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        sound = _audio_stream(c, sr, "aac") if audio is not None else None  # every stream before the first packet
        for rgb in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(packet)
        for packet in video.encode():
            c.mux(packet)
        if sound is not None:
            _encode_audio(c, sound, audio)
    return Path(path)


__all__ = ["tone", "write_audio", "write_video"]
