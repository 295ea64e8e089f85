"""Writing a demo clip: RGB frames and mono audio muxed into an mp4 by PyAV's bundled FFmpeg.

Video: H.264 (libx264; mpeg4 when PyAV's FFmpeg lacks libx264), yuv420p, one encoder
thread (so the bytes are deterministic). Audio: AAC, mono. Frame size, frame rate and
audio rate come from a :class:`~emofuse.catalog.corpora.demo.design.MediaFormat`
(default 256x256, 25 fps, 16 kHz).

Example:
    >>> frames = [np.zeros((FRAME_SIZE, FRAME_SIZE, 3), np.uint8)] * 2
    >>> data = encode_mp4(frames, np.zeros(2 * SAMPLES_PER_FRAME, np.float32))
    >>> data[4:8]
    b'ftyp'
    >>> video_codec() in ("libx264", "mpeg4")
    True
"""
from __future__ import annotations

import io
from fractions import Fraction
from typing import Iterable

import numpy as np

from emofuse.catalog.corpora.demo.design import DEMO_FORMAT, FRAME_SIZE, SAMPLES_PER_FRAME, MediaFormat


def video_codec() -> str:
    """``libx264`` when PyAV's FFmpeg has it, else ``mpeg4``."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def encode_mp4(frames: Iterable[np.ndarray], audio: np.ndarray, media: MediaFormat = DEMO_FORMAT) -> bytes:
    """Mux RGB frames and mono float audio (``media``'s size and rates) into mp4 bytes (H.264 + AAC)."""
    return encode_av(frames, audio, media)


def encode_av(frames: Iterable[np.ndarray], audio: np.ndarray, media: MediaFormat = DEMO_FORMAT, *,
              fmt: str = "mp4", codec: str | None = None, audio_codec: str = "aac") -> bytes:
    """Mux RGB frames and mono float audio into ``fmt`` bytes with these encoders (default: an mp4 of
    :func:`video_codec` + AAC; ``fmt="flv", codec="flv", audio_codec="libmp3lame"``: Flash video with
    Sorenson H.263 and MP3, as the CREMA-D-layout demo writes)."""
    import av

    codec = codec or video_codec()
    fps, rate, spf = media.fps, media.sample_rate, media.samples_per_frame
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        vs = container.add_stream(codec, rate=fps)
        vs.width, vs.height = media.width, media.height
        vs.pix_fmt = "yuv420p"
        vs.codec_context.thread_count = 1
        if codec == "libx264":
            vs.options = {"crf": "23", "preset": "veryfast"}
        else:
            vs.bit_rate = 400_000 * max(1, media.width * media.height // FRAME_SIZE ** 2)
        aus = container.add_stream(audio_codec, rate=rate, layout="mono")
        aus.bit_rate = media.audio_bit_rate
        aus.codec_context.thread_count = 1
        chunk = 1024
        a_pos = 0

        def push_audio(until: int) -> None:
            nonlocal a_pos
            while a_pos < min(until, audio.size):
                block = audio[a_pos: a_pos + chunk]
                fr = av.AudioFrame.from_ndarray(block[None, :], format="fltp", layout="mono")
                fr.sample_rate = rate
                fr.pts = a_pos
                fr.time_base = Fraction(1, rate)
                container.mux(aus.encode(fr))
                a_pos += block.size

        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            container.mux(vs.encode(vf))
            push_audio((i + 1) * spf)
        push_audio(audio.size)
        container.mux(vs.encode(None))
        container.mux(aus.encode(None))
    return out.getvalue()
