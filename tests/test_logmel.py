"""Log-mel extractor on media generated with PyAV: chunking, shape, frame rate, statuses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

from emofuse.catalog.schemas import Status
from emofuse.pipeline.dummies import write_audio, write_video
from emofuse.pipeline.logmel import LogMelConfig, LogMelExtractor, frame_times, logmel_array
from emofuse.pipeline.registry import MediaRef, get_extractor


def chirp(seconds: float, sr: int, f0: float = 200.0, f1: float = 6000.0, amp: float = 0.3) -> np.ndarray:
    """Linear sweep from f0 to f1 Hz."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))).astype(np.float32)


def write_video_only(path: Path) -> Path:
    """A short H.264 mp4 with no audio stream."""
    return write_video(path, [np.full((64, 64, 3), i * 20, np.uint8) for i in range(10)], fps=10)


def reference(x: np.ndarray) -> np.ndarray:
    """Whole-signal log-mel straight from torchaudio (centred STFT, reflect padding)."""
    mel = torchaudio.transforms.MelSpectrogram(
        16000, n_fft=400, win_length=400, hop_length=160, n_mels=64, center=True, pad_mode="reflect"
    )
    return torch.log(mel(torch.from_numpy(x)) + 1e-6).T.numpy()


@pytest.mark.parametrize("chunk", [137, 401, 1600, 16000])
def test_chunked_equals_whole(chunk: int) -> None:
    x = np.random.default_rng(0).standard_normal(16000 * 3 + 77).astype(np.float32) * 0.1
    whole = logmel_array(x)
    assert whole.shape == (1 + x.size // 160, 64)
    np.testing.assert_allclose(whole, reference(x), atol=1e-4)
    np.testing.assert_allclose(logmel_array(x, chunk_samples=chunk), whole, atol=1e-4)


def test_extractor_chunked_file_equals_whole(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.wav", chirp(4.3, 16000), 16000)
    small = LogMelExtractor(LogMelConfig(chunk_seconds=0.37)).extract(MediaRef("a", str(path)))
    big = LogMelExtractor(LogMelConfig(chunk_seconds=60.0)).extract(MediaRef("a", str(path)))
    assert small.status == big.status == Status.OK
    np.testing.assert_allclose(small.sequence.arrays["values"], big.sequence.arrays["values"], atol=1e-4)
    np.testing.assert_array_equal(small.sequence.times, big.sequence.times)


def test_shape_frame_rate_and_content(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "chirp.wav", chirp(3.0, 16000), 16000)
    ex = get_extractor("logmel")
    r = ex.extract(MediaRef("c", str(path)))
    assert r.status == Status.OK, r.message
    v = r.sequence.arrays["values"]
    assert v.dtype == np.float32 and v.shape == (301, 64) and r.n_frames == 301
    assert ex.sequence_dim() == 64 and len(ex.sequence_columns()) == 64
    t = r.sequence.times
    assert t[0] == 0.0 and np.allclose(np.diff(t), 0.01)  # frame centres, 100 per second
    # A rising chirp: the loudest band rises over time.
    assert v[20].argmax() < v[150].argmax() < v[280].argmax()
    assert np.isfinite(v).all()


def test_resampled_aac_gives_100_frames_per_second(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "tone.m4a", chirp(2.0, 44100), 44100, codec="aac")
    r = get_extractor("logmel").extract(MediaRef("m", str(path)))
    assert r.status == Status.OK, r.message
    assert abs(len(r.sequence) - 200) <= 6  # AAC priming/padding adds a few ms
    np.testing.assert_allclose(r.sequence.times, frame_times(len(r.sequence), LogMelConfig()))


def test_no_audio_stream(tmp_path: Path) -> None:
    path = write_video_only(tmp_path / "video_only.mp4")
    r = get_extractor("logmel").extract(MediaRef("v", str(path)))
    assert r.status == Status.NO_AUDIO and "no audio" in r.message


def test_silent_file_is_no_speech(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    r = get_extractor("logmel").extract(MediaRef("s", str(path)))
    assert r.status == Status.NO_SPEECH and "silent" in r.message


def test_too_short(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "blip.wav", chirp(0.05, 16000, f1=1000), 16000)
    r = get_extractor("logmel").extract(MediaRef("t", str(path)))
    assert r.status == Status.TOO_SHORT and "0.050 s" in r.message


def test_decode_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not media" * 50)
    r = get_extractor("logmel").extract(MediaRef("b", str(bad)))
    assert r.status == Status.DECODE_ERROR and "broken.mp4" in r.message


def test_key_names_config() -> None:
    a = get_extractor("logmel")
    b = get_extractor("logmel", {"n_mels": 80})
    assert a.key.startswith("logmel-v1-") and a.key != b.key
    assert a.key == get_extractor("logmel").key
