"""Log-mel extractor ``logmel``: 64 mel bands at 100 frames/s, a second audio representation.

Settings (16 kHz mono from :mod:`emofuse.pipeline.decode`): Hann window of 25 ms
(``n_fft = win_length = 400`` samples), hop 10 ms (160 samples), power
spectrum, 64 HTK mel bands over 0-8 kHz (torchaudio ``MelSpectrogram``, no
filter normalisation), then ``log(mel + 1e-6)`` -- natural log with a floor of
1e-6 so digital silence gives a finite value (about -13.8) instead of -inf.

Frames follow the "centred" convention: the signal is reflect-padded by half a
window at both ends (as ``torch.stft(center=True)`` does), frame ``i`` is
centred on sample ``i * hop``, so its time is ``i * hop / sr`` seconds and a
clip of N samples gives ``1 + N // hop`` frames (exactly 100 per second).

Long files are processed chunk by chunk as they are decoded: each chunk keeps
the last ``n_fft - hop`` samples of the previous one, so every frame sees the
same samples as in whole-file processing and the output equals it, while
memory stays at one chunk (plus the output, 256 bytes per frame).

Example:
    >>> import os, tempfile
    >>> from emofuse.pipeline.dummies import tone, write_audio
    >>> from emofuse.pipeline.registry import MediaRef
    >>> wav = str(write_audio(os.path.join(tempfile.mkdtemp(), "tone.wav"), tone(3.0)))
    >>> r = LogMelExtractor().extract(MediaRef("id", wav))
    >>> r.status.value, r.sequence.arrays["values"].shape
    ('ok', (301, 64))
    >>> r.sequence.times[:3]
    array([0.  , 0.01, 0.02])
    >>> int(r.sequence.arrays["values"][150].argmax())  # the mel band of the 220 Hz tone
    6
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from emofuse.pipeline.decode import DecodeError, iter_audio
from emofuse.pipeline.outcomes import decode_failure, missing_stream
from emofuse.pipeline.registry import Extractor, ExtractResult, MediaRef, Sequence, Status, register


@dataclass
class LogMelConfig:
    """Options of the ``logmel`` extractor (defaults: 64 bands, 25 ms window, 10 ms hop at 16 kHz).

    ``chunk_seconds`` bounds memory only; it does not change the output.
    ``min_seconds``: shorter clips are ``too_short``. ``silence_rms``: clips whose
    RMS (full scale = 1.0) is below it are ``no_speech`` (1e-4 is -80 dBFS).
    """

    sample_rate: int = 16_000
    n_mels: int = 64
    n_fft: int = 400
    win_length: int = 400
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float | None = None
    log_offset: float = 1e-6
    min_seconds: float = 0.1
    silence_rms: float = 1e-4
    chunk_seconds: float = 30.0


class _MelTransform:
    """torchaudio ``MelSpectrogram`` without centring (padding is done by the streamer), float32 on one device."""

    def __init__(self, config: LogMelConfig, device: str = "cpu") -> None:
        import torch
        import torchaudio

        self.config = config
        self.device = torch.device(device)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            window_fn=torch.hann_window,
            power=2.0,
            center=False,
            norm=None,
            mel_scale="htk",
        ).to(device=self.device, dtype=torch.float32)

    def __call__(self, padded: np.ndarray) -> np.ndarray:
        """Log-mel frames (T, n_mels) float32 of an already padded stretch of samples."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32)).to(self.device)
            m = self.mel(x)  # (n_mels, T)
            return torch.log(m + self.config.log_offset).T.contiguous().cpu().numpy().astype(np.float32, copy=False)


def stream_logmel(chunks: Iterable[np.ndarray], config: LogMelConfig, *, device: str = "cpu") -> Iterator[np.ndarray]:
    """Yield log-mel frames (t, n_mels) for consecutive audio chunks; equal to whole-signal processing.

    The signal is reflect-padded by ``n_fft // 2`` at both ends, like
    ``torch.stft(center=True)``. The total number of frames is ``1 + N // hop``.
    Raises ``ValueError`` if the signal is not longer than ``n_fft // 2`` samples
    (reflect padding needs that much; callers check length first).
    """
    transform = _MelTransform(config, device)
    n_fft, hop, pad = config.n_fft, config.hop_length, config.n_fft // 2
    buf = np.zeros(0, np.float32)   # padded samples not yet consumed by a frame
    head: list[np.ndarray] = []     # original samples held until the left pad can be built
    started = False
    tail = np.zeros(0, np.float32)  # last pad + 1 original samples (for the right pad)

    def frames(buffer: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        if buffer.size < n_fft:
            return None, buffer
        t = 1 + (buffer.size - n_fft) // hop
        out = transform(buffer[: (t - 1) * hop + n_fft])
        return out, buffer[t * hop:]

    for chunk in chunks:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        if chunk.size == 0:
            continue
        tail = np.concatenate([tail, chunk])[-(pad + 1):]
        if not started:
            head.append(chunk)
            first = np.concatenate(head)
            if first.size <= pad:
                continue
            head = []
            started = True
            chunk = np.concatenate([first[pad:0:-1], first])
        buf = np.concatenate([buf, chunk])
        out, buf = frames(buf)
        if out is not None and len(out):
            yield out
    if not started:
        n = sum(h.size for h in head)
        raise ValueError(f"signal of {n} samples is too short for a {n_fft}-sample centred window")
    buf = np.concatenate([buf, tail[-2:-pad - 2:-1]])
    out, buf = frames(buf)
    if out is not None and len(out):
        yield out


def logmel_array(
    audio: np.ndarray, config: LogMelConfig | None = None, *, chunk_samples: int | None = None
) -> np.ndarray:
    """Log-mel frames (T, n_mels) float32 of an in-memory signal (chunked if ``chunk_samples``)."""
    config = config or LogMelConfig()
    audio = np.asarray(audio, np.float32).reshape(-1)
    step = chunk_samples or max(1, audio.size)
    parts = list(stream_logmel((audio[i:i + step] for i in range(0, audio.size, step)), config))
    return np.concatenate(parts) if parts else np.zeros((0, config.n_mels), np.float32)


def frame_times(n_frames: int, config: LogMelConfig) -> np.ndarray:
    """Centre time in seconds of each frame: ``i * hop / sr``."""
    return np.arange(n_frames, dtype=np.float64) * (config.hop_length / config.sample_rate)


@register
class LogMelExtractor(Extractor):
    """64-band log-mel spectrogram at 100 Hz of the decoded 16 kHz mono audio."""

    name: ClassVar[str] = "logmel"
    version: ClassVar[int] = 1
    config_cls: ClassVar[type] = LogMelConfig

    def __init__(self, config: LogMelConfig | None = None, *, device: str = "cpu") -> None:
        super().__init__(config)
        self.device = device

    def weights_checksum(self) -> str:
        """No weights: the torchaudio version names the implementation (read without importing torch)."""
        from importlib.metadata import version

        return "torchaudio" + version("torchaudio").split("+")[0]

    def sequence_dim(self) -> int:
        return self.config.n_mels

    def sequence_columns(self) -> list[str]:
        return [f"mel_{i:02d}" for i in range(self.config.n_mels)]

    def runtime_info(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": "float32"}

    def extract(self, media: MediaRef) -> ExtractResult:
        failed = missing_stream(media, "audio")
        if failed is not None:
            return failed
        level = _Level()
        try:
            values = self._frames(media, level)
        except DecodeError as e:
            return decode_failure(media.item_id, e)
        failed = self._check(media, level)
        if failed is not None:
            return failed
        seq = Sequence(times=frame_times(len(values), self.config), arrays={"values": values})
        return ExtractResult(item_id=media.item_id, status=Status.OK, sequence=seq, n_frames=len(values))

    def _min_samples(self) -> int:
        cfg = self.config
        return max(cfg.n_fft, int(round(cfg.min_seconds * cfg.sample_rate)))

    def _frames(self, media: MediaRef, level: "_Level") -> np.ndarray:
        """Log-mel frames of the item's audio, decoded and transformed chunk by chunk (``level``
        counts the samples); no frames when the audio is too short for one centred window."""
        cfg = self.config
        chunks = iter_audio(media.path, sr=cfg.sample_rate, chunk_seconds=cfg.chunk_seconds,
                            start=media.segment_start, end=media.segment_end)
        try:
            parts = list(stream_logmel(level.counted(chunks), cfg, device=self.device))
        except ValueError:
            if level.n >= self._min_samples():
                raise
            parts = []  # too short for one centred window: reported by _check
        return np.concatenate(parts) if parts else np.zeros((0, cfg.n_mels), np.float32)

    def _check(self, media: MediaRef, level: "_Level") -> ExtractResult | None:
        """The status of audio too short or too quiet to describe, else None."""
        cfg = self.config
        min_samples = self._min_samples()
        if level.n < min_samples:
            return ExtractResult.failed(
                media.item_id,
                Status.TOO_SHORT,
                f"{media.path}: {level.n / cfg.sample_rate:.3f} s of audio, "
                f"need at least {min_samples / cfg.sample_rate:.3f} s",
            )
        rms = (level.sumsq / level.n) ** 0.5
        if rms < cfg.silence_rms:
            return ExtractResult.failed(
                media.item_id,
                Status.NO_SPEECH,
                f"{media.path}: audio is silent (RMS {rms:.2e}, peak {level.peak:.2e} < {cfg.silence_rms:.0e})",
            )
        return None


@dataclass
class _Level:
    """Sample count, sum of squares and peak of the audio that streamed past."""

    n: int = 0
    sumsq: float = 0.0
    peak: float = 0.0

    def counted(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            self.n += chunk.size
            c64 = chunk.astype(np.float64)
            self.sumsq += float(np.dot(c64, c64))
            if chunk.size:
                self.peak = max(self.peak, float(np.abs(chunk).max()))
            yield chunk


__all__ = ["LogMelConfig", "LogMelExtractor", "frame_times", "logmel_array", "stream_logmel"]
