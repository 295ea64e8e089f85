"""The demo corpus's voice: real speech from the espeak-ng TTS, resampled and padded for a clip.

Only the ``espeak-ng`` (or legacy ``espeak``) binary must be on PATH; resampling is
FFmpeg's swresample through PyAV (deterministic). Song clips (RAVDESS vocal channel 02)
are :func:`sing`: each word spoken on its own note of :data:`~.design.MELODY`, slower,
with short rests between words.

Example:
    >>> from emofuse.catalog.corpora.demo.design import AUDIO_LEVELS
    >>> speech = synthesize("Kids are talking by the door", voice="en-us+m3", prosody=AUDIO_LEVELS[0])
    >>> speech.dtype, 0.5 < speech.size / SAMPLE_RATE < 4.0
    (dtype('float32'), True)
    >>> audio = clip_audio(speech, np.random.default_rng(0), None)
    >>> audio.size % DEMO_FORMAT.samples_per_frame, audio.size > speech.size
    (0, True)
    >>> song = sing("Kids are talking by the door", voice="en-us+m3", prosody=AUDIO_LEVELS[0])
    >>> song.size > speech.size  # slower, with rests
    True
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np

from emofuse.catalog.corpora.demo.design import (DEMO_FORMAT, MELODY, SAMPLE_RATE, MediaFormat,
                                                  Prosody)


class EspeakNotFound(RuntimeError):
    """Neither ``espeak-ng`` nor ``espeak`` is on PATH."""


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


def wav_pcm(data: bytes) -> tuple[np.ndarray, int]:
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


def synthesize(text: str, *, voice: str, prosody: Prosody, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``text`` with espeak-ng; float32 mono at ``sample_rate``, silence trimmed."""
    import av

    cmd = [
        espeak_command(), "--stdout", "-v", voice,
        "-s", str(int(prosody.rate)), "-p", str(int(prosody.pitch)), "-a", str(int(prosody.amplitude)),
        text,
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace').strip()}")
    pcm, rate = wav_pcm(proc.stdout)
    voiced = np.nonzero(np.abs(pcm.astype(np.int32)) > 200)[0]
    if voiced.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    pcm = pcm[voiced[0]: voiced[-1] + 1]
    # Resample with FFmpeg's swresample (deterministic).
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def sing(text: str, *, voice: str, prosody: Prosody, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Sing ``text``, after a fashion: each word on its own note of :data:`MELODY`, 25 % slower,
    with 0.12 s rests between words; float32 mono at ``sample_rate``."""
    rest = np.zeros(int(0.12 * sample_rate), np.float32)
    parts: list[np.ndarray] = []
    for k, word in enumerate(text.split()):
        note = Prosody(pitch=float(np.clip(prosody.pitch + MELODY[k % len(MELODY)], 0, 99)),
                       rate=round(0.75 * prosody.rate), amplitude=prosody.amplitude)
        if parts:
            parts.append(rest)
        parts.append(synthesize(word, voice=voice, prosody=note, sample_rate=sample_rate))
    return np.concatenate(parts)


def clip_audio(speech: np.ndarray, rng: np.random.Generator, duration_limit: float | None,
               media: MediaFormat = DEMO_FORMAT) -> np.ndarray:
    """Pad speech with silence (+ a faint seeded noise floor) to a whole number of video frames."""
    spf = media.samples_per_frame
    pad = int(media.pad_seconds * media.sample_rate)
    n = speech.size + 2 * pad
    n = -(-n // spf) * spf
    if duration_limit is not None:
        n = min(n, max(1, int(duration_limit * media.fps)) * spf)
    audio = np.zeros(n, np.float32)
    seg = speech[: max(0, n - pad)]
    audio[pad: pad + seg.size] = seg
    audio += rng.normal(0.0, 3e-4, n).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)
