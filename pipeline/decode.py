"""Media probing and streaming decode with PyAV (bundled FFmpeg, no system binary).

Audio comes out mono float32 at a fixed rate (16 kHz by default); video frames
come out as RGB uint8 arrays sampled at a fixed rate (5 fps by default). Both
are generators, so memory stays bounded whatever a file's length.

Examples:
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

A time range of a file (a segment item) is decoded alone, on a timeline of its own:

    >>> [round(t, 2) for t, _rgb in iter_frames(clip, fps=5, start=0.4, end=0.8)]
    [0.0, 0.2]
    >>> load_audio(wav, start=0.1, end=0.3).shape
    (3200,)
"""
from __future__ import annotations

import itertools
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import av
import numpy as np

DEFAULT_SR = 16_000
DEFAULT_FPS = 5.0


class DecodeError(RuntimeError):
    """The file cannot be read as media (corrupt, truncated, empty or not media at all)."""


#: The kinds of stream an extractor decodes.
StreamKind = Literal["audio", "video"]


class NoStream(DecodeError):
    """The file has no stream of the requested ``kind`` (e.g. a video without audio)."""

    def __init__(self, path: str, kind: StreamKind) -> None:
        super().__init__(path, kind)  # the constructor's arguments: a worker's error pickles back whole
        self.path = path
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.path}: no {self.kind} stream"


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
    """The file opened for reading; :class:`DecodeError` when it is missing, empty or not media."""
    if not os.path.exists(path):
        raise DecodeError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(path, mode="r")
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as e:
        raise DecodeError(f"{path}: not readable as media ({type(e).__name__}: {e})") from e


@contextmanager
def _opened_stream(path: str, kind: StreamKind, *, step: str = "decoding"
                   ) -> Iterator[tuple[av.container.InputContainer, av.stream.Stream]]:
    """The file opened with its first ``kind`` stream: the one opening and validation step of every reader.

    :class:`DecodeError` when the file is not media, :class:`NoStream` when it has no such
    stream; an FFmpeg error while the block reads it becomes a :class:`DecodeError` that
    names ``step`` (``decoding``, ``demuxing``).
    """
    with _open(path) as c:
        streams = c.streams.audio if kind == "audio" else c.streams.video
        if not streams:
            raise NoStream(path, kind)
        stream = streams[0]
        stream.thread_type = "AUTO"
        try:
            yield c, stream
        except av.FFmpegError as e:
            raise DecodeError(f"{path}: {kind} {step} failed ({e})") from e


def _is_range(path: str, start: float | None, end: float | None) -> bool:
    """Whether ``[start, end)`` asks for part of a file (not its whole timeline); rejects empty ranges."""
    if end is not None and end <= (start or 0.0):
        raise ValueError(f"{path}: empty time range [{start}, {end})")
    return bool(start) or end is not None


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


def iter_audio(path: str, *, sr: int = DEFAULT_SR, chunk_seconds: float = 10.0,
               start: float | None = None, end: float | None = None) -> Iterator[np.ndarray]:
    """Yield consecutive chunks of mono float32 audio at ``sr`` Hz (about ``chunk_seconds`` each).

    ``start``/``end`` (seconds on the file's timeline) decode only that range: the file is
    sought to :data:`PREROLL_SECONDS` before ``start`` (codecs that need earlier packets warm
    up), the first sample yielded is the one at ``start`` and decoding stops at ``end``.
    Without them the whole track is decoded from its first sample.
    """
    ranged = _is_range(path, start, end)
    with _opened_stream(path, "audio") as (c, stream):
        skip, limit = 0, None
        if ranged:
            begin = float(start or 0.0)
            frames, at = _frames_from(c, stream, max(0.0, begin - PREROLL_SECONDS))
            skip = max(0, int(round((begin - at) * sr)))
            limit = None if end is None else int(round((end - begin) * sr))
        else:
            frames = _frames(c, stream)
        target = max(1, int(chunk_seconds * sr))
        buf: list[np.ndarray] = []
        held = 0
        for arr in _resampled(frames, sr):
            if skip:
                cut = min(skip, arr.size)
                arr, skip = arr[cut:], skip - cut
            if limit is not None:
                arr = arr[:limit]
                limit -= arr.size
            if arr.size:
                buf.append(arr)
                held += arr.size
            if held >= target:
                yield np.concatenate(buf)
                buf, held = [], 0
            if limit == 0:
                break
        if buf:
            yield np.concatenate(buf)


#: Seconds decoded before a range's start: audio codecs need earlier packets to decode a frame
#: exactly (MP3's bit reservoir, AAC's overlapping windows), and a seek lands on a packet boundary.
PREROLL_SECONDS = 0.5


def _frames(c: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[av.frame.Frame]:
    """Decoded frames of ``stream`` from where the container stands."""
    for packet in c.demux(stream):
        yield from packet.decode()


def _resampled(frames: Iterator[av.AudioFrame], sr: int) -> Iterator[np.ndarray]:
    """Mono float32 arrays at ``sr`` of ``frames``, then the resampler's tail."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
    for frame in frames:
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def _stream_start(stream: av.stream.Stream) -> float:
    """The stream's first timestamp in seconds: time 0 of an item's timeline."""
    if stream.start_time is None or not stream.time_base:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _frame_time(frame: av.frame.Frame | None, stream: av.stream.Stream) -> float | None:
    """A decoded frame's time in seconds on the file's timeline (None when it has no timestamp)."""
    if frame is None or frame.pts is None or not stream.time_base:
        return None
    return float(frame.pts * stream.time_base) - _stream_start(stream)


def _frames_from(c: av.container.InputContainer, stream: av.stream.Stream,
                 t: float) -> tuple[Iterator[av.frame.Frame], float]:
    """(Decoded frames from at or before ``t`` seconds, the time of the first one).

    Seeks to the last key packet at or before ``t``; when the container cannot seek there
    (no index, no timestamps, a seek that lands late), decodes from the file's start (time 0).
    """
    if t > 0 and stream.time_base:
        try:
            c.seek(int((t + _stream_start(stream)) / stream.time_base), stream=stream, backward=True)
            frames = _frames(c, stream)
            first = next(frames, None)
            at = _frame_time(first, stream)
            if first is not None and at is not None and at <= t + 1e-6:
                return itertools.chain([first], frames), at
        except av.FFmpegError:
            pass
        c.seek(stream.start_time or 0, stream=stream, backward=True)
    return _frames(c, stream), 0.0


def load_audio(path: str, *, sr: int = DEFAULT_SR, max_seconds: float | None = None,
               start: float | None = None, end: float | None = None) -> np.ndarray:
    """The whole audio track (or its first ``max_seconds``; or the range ``[start, end)``) as one array."""
    parts: list[np.ndarray] = []
    total = 0
    limit = None if max_seconds is None else int(max_seconds * sr)
    for chunk in iter_audio(path, sr=sr, start=start, end=end):
        parts.append(chunk)
        total += chunk.size
        if limit is not None and total >= limit:
            break
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return audio[:limit] if limit is not None else audio


def iter_frames(path: str, *, fps: float = DEFAULT_FPS, start: float | None = None,
                end: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, rgb_uint8[H, W, 3])`` sampled at ``fps``; one decoded frame per sample time.

    Frames are decoded in order and only the sampled ones are converted, so the
    cost is the decode itself and memory is one frame. ``start``/``end`` (seconds on the
    file's timeline) take only the frames shown in ``[start, end)``: the file is sought to
    the key frame before ``start`` and times are relative to ``start`` (an item that is a
    range of a file has a timeline of its own that starts at 0).
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    ranged = _is_range(path, start, end)
    offset = float(start or 0.0)
    with _opened_stream(path, "video") as (c, stream):
        step = 1.0 / fps
        next_t = 0.0
        tb = float(stream.time_base) if stream.time_base else None
        first = _stream_start(stream)
        frames = _frames_from(c, stream, offset)[0] if ranged else c.decode(stream)
        for frame in frames:
            if frame.pts is None or tb is None:
                t = frame.time - offset if frame.time is not None else next_t
            else:
                t = frame.pts * tb - first - offset
            if end is not None and t + offset >= end - 1e-6:
                break
            if t + 1e-6 < next_t:
                continue
            yield float(t), frame.to_ndarray(format="rgb24")
            next_t = (np.floor(t / step + 1e-6) + 1) * step


def frame_times(path: str, *, key_frames: bool = False) -> np.ndarray:
    """Presentation time (s, ascending) of every frame of the video stream, on the timeline that
    :func:`iter_frames` uses (the stream's first timestamp is 0).

    The container's packets are demuxed, not decoded (cheap for any length); a stream whose
    packets carry no timestamps is decoded instead. Per-frame labels take these times.
    ``key_frames``: only the key frames' times (where a seek lands; see :func:`frames_at`).
    """
    with _opened_stream(path, "video", step="demuxing") as (c, stream):
        pts: list[int] | None = []
        for packet in c.demux(stream):
            if packet.size == 0 or packet.is_discard:  # the flush packet; frames an edit list drops
                continue
            if key_frames and not packet.is_keyframe:
                continue
            if packet.pts is None:
                pts = None
                break
            pts.append(packet.pts)
        if pts is not None and stream.time_base:
            return np.sort(np.asarray(pts, np.float64)) * float(stream.time_base) - _stream_start(stream)
    with _opened_stream(path, "video") as (c, stream):
        times = [_frame_time(f, stream) if f.pts is not None else f.time for f in c.decode(stream)
                 if f.key_frame or not key_frames]
    if any(t is None for t in times):
        raise DecodeError(f"{path}: video frames without timestamps")
    return np.asarray(times, np.float64)


def frames_at(path: str, times: Sequence[float], *, seek_gap: float = 1.0) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t, rgb_uint8[H, W, 3])`` for each of ``times`` (seconds on :func:`iter_frames`'
    timeline), in ascending order: the first frame at or after ``t`` (1 ms tolerance), so a time
    that :func:`iter_frames` or :func:`frame_times` gave yields exactly that frame.

    Decoding goes on from one time to the next unless the next is more than ``seek_gap``
    seconds ahead; then the file is sought to the key frame before it (``seek_gap=math.inf``:
    one pass from the start). Times past the last frame yield nothing.

    Examples:
        >>> import tempfile
        >>> from emofuse.pipeline.dummies import write_video
        >>> frames = [np.full((32, 32, 3), 20 * k, np.uint8) for k in range(10)]     # frame k is 20*k gray
        >>> clip = str(write_video(os.path.join(tempfile.mkdtemp(), "c.mp4"), frames, fps=10))
        >>> [(t, round(float(rgb.mean()) / 20)) for t, rgb in frames_at(clip, [0.5, 0.2, 0.9, 1.5])]
        [(0.2, 2), (0.5, 5), (0.9, 9)]
        >>> frame_times(clip, key_frames=True).tolist()
        [0.0]
    """
    want = sorted({float(t) for t in times})
    if not want:
        return
    with _opened_stream(path, "video") as (c, stream):
        frames: Iterator[av.frame.Frame] | None = None
        got: tuple[float, av.frame.Frame] | None = None
        pos = -np.inf
        for t in want:
            if frames is None or t - pos > seek_gap:
                frames, got = _frames_from(c, stream, max(t, 0.0))[0], None
            if got is None or got[0] < t - 1e-3:  # the last frame decoded may already be this one
                got = None
                for frame in frames:
                    ft = _frame_time(frame, stream)
                    if ft is None:
                        continue
                    pos = ft
                    if ft >= t - 1e-3:
                        got = (ft, frame)
                        break
                if got is None:
                    return
            yield t, got[1].to_ndarray(format="rgb24")
