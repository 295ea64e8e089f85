"""eGeMAPS v02 with the real openSMILE: 88 functionals per clip and 25 LLDs at 100 Hz.

Functionals go to the per-clip Parquet table under their openSMILE names
(``F0semitoneFrom27.5Hz_sma3nz_amean`` …); LLDs go to Zarr shards as a
(T, 25) sequence whose times are the 10 ms frame starts.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import opensmile

from catalog.schemas import Status
from pipeline.decode import DEFAULT_SR, DecodeError, NoStream, load_audio
from pipeline.registry import ExtractResult, Extractor, MediaRef, Sequence, register


@dataclass(frozen=True)
class EgemapsConfig:
    """Options of the eGeMAPS extractor (part of the feature-set key)."""

    sample_rate: int = DEFAULT_SR
    #: Clips shorter than this get status ``too_short`` (openSMILE needs a few frames).
    min_duration: float = 0.5
    #: Clips whose RMS is below this (full scale 1.0) get status ``no_speech``.
    silence_rms: float = 1e-4
    #: Analyse at most this many seconds of a file (None: all of it).
    max_seconds: float | None = None


_local = threading.local()


def _smiles() -> tuple[opensmile.Smile, opensmile.Smile]:
    """One pair of openSMILE instances per thread (they hold native state)."""
    if not hasattr(_local, "smiles"):
        _local.smiles = (
            opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals),
            opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors),
        )
    return _local.smiles


@register
class EgemapsExtractor(Extractor):
    """openSMILE eGeMAPSv02 functionals (88) + LLDs (25 @ 100 Hz)."""

    name = "egemaps"
    version = 1
    config_cls = EgemapsConfig

    def weights_checksum(self) -> str:
        return f"opensmile{opensmile.__version__}"

    def row_columns(self) -> list[str]:
        return list(_smiles()[0].feature_names)

    def sequence_dim(self) -> int:
        return len(_smiles()[1].feature_names)

    def sequence_columns(self) -> list[str]:
        return list(_smiles()[1].feature_names)

    def extract(self, media: MediaRef) -> ExtractResult:
        cfg: EgemapsConfig = self.config
        t0 = time.perf_counter()
        try:
            audio = load_audio(media.path, sr=cfg.sample_rate, max_seconds=cfg.max_seconds)
        except NoStream as e:
            return ExtractResult.failed(media.item_id, Status.NO_AUDIO, str(e))
        except DecodeError as e:
            return ExtractResult.failed(media.item_id, Status.DECODE_ERROR, str(e))
        return self.process(media.item_id, audio, t0=t0)

    def process(self, item_id: str, audio: np.ndarray, *, t0: float | None = None) -> ExtractResult:
        """Features of already-decoded 16 kHz mono audio (the floor the benchmarks compare to)."""
        cfg: EgemapsConfig = self.config
        t0 = time.perf_counter() if t0 is None else t0
        duration = audio.size / cfg.sample_rate
        if audio.size == 0:
            return ExtractResult.failed(item_id, Status.NO_AUDIO, "the audio stream holds no samples")
        if duration < cfg.min_duration:
            return ExtractResult.failed(
                item_id, Status.TOO_SHORT, f"audio is {duration:.3f} s, eGeMAPS needs >= {cfg.min_duration} s")
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        if rms < cfg.silence_rms:
            return ExtractResult.failed(item_id, Status.NO_SPEECH, f"audio is silent (RMS {rms:.2e})")
        func, lld = _smiles()
        f = func.process_signal(audio, cfg.sample_rate)
        l = lld.process_signal(audio, cfg.sample_rate)
        times = l.index.get_level_values("start").total_seconds().to_numpy()
        row = {name: float(v) for name, v in zip(f.columns, f.to_numpy()[0])}
        row["duration"] = float(duration)
        seq = Sequence(times=times, arrays={"values": l.to_numpy(np.float32)})
        return ExtractResult(item_id=item_id, row=row, sequence=seq, n_frames=len(times),
                             wall_s=time.perf_counter() - t0)
