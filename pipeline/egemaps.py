"""eGeMAPS v02 with the real openSMILE: 88 functionals per clip and 25 LLDs at 100 Hz.

Functionals go to the per-clip Parquet table under their openSMILE names
(``F0semitoneFrom27.5Hz_sma3nz_amean`` …); LLDs go to Zarr shards as a
(T, 25) sequence whose times are the 10 ms frame starts.

Long files (bounded memory). openSMILE holds about 37 MB per minute of audio while it
processes a signal (a 1-hour file peaked at 2.4 GB), and the decoded track itself is
3.84 MB per minute. Audio longer than ``1.5 * chunk_seconds`` (default 120 s, so 180 s)
is therefore streamed from the decoder and analysed in chunks of ``chunk_seconds`` (the
last chunk takes the remainder, between 0.5 and 1.5 chunks):

* LLDs: each chunk is analysed with :data:`CHUNK_CONTEXT` seconds of audio on either side
  and only the frames that start inside the chunk are kept. Chunk bounds fall on the 10 ms
  frame grid, so the frames and their times are the ones a whole-file analysis gives
  (measured: identical values on 60 s of speech cut every 20 s).
* Functionals: computed per chunk (without context) and combined as the duration-weighted
  mean of the chunks' values (functionals that are NaN in a chunk are left out of its
  mean). This equals the whole-file value for means of always-present LLDs and
  approximates the rest (standard deviations, percentiles, voiced-only statistics): for a
  long recording the 88 per-file numbers summarise chunks of ``chunk_seconds``.

Files up to ``1.5 * chunk_seconds`` are analysed whole, exactly as before. Peak memory is
then bounded by about 2.5 chunks of audio plus openSMILE's state for one chunk
(~300 MB), whatever the file's length; the LLD output (25 float32 at 100 Hz, 0.6 MB per
minute) is what grows. ``max_seconds`` still cuts a file to its first seconds.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import opensmile
import pandas as pd

from emofuse.catalog.schemas import Status
from emofuse.pipeline.decode import DEFAULT_SR, DecodeError, iter_audio
from emofuse.pipeline.outcomes import decode_failure, missing_stream
from emofuse.pipeline.registry import (
    ExtractResult,
    Extractor,
    MediaRef,
    Sequence,
    config_to_dict,
    feature_set_key,
    register,
)

#: Seconds of audio given to openSMILE on either side of a chunk for its LLDs (frames
#: depend on at most a few hundred ms around them; 1 s leaves a wide margin).
CHUNK_CONTEXT = 1.0
#: LLD frame period of eGeMAPSv02 (10 ms): chunk bounds are multiples of it.
FRAME_STEP = 0.01


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
    #: Audio longer than 1.5x this is analysed in chunks of this many seconds (see the module
    #: docstring; None: always whole, memory grows ~40 MB per minute). Enters the feature-set
    #: key only when it differs from the default, so the default key is the one of v1.
    chunk_seconds: float | None = 120.0

    def __post_init__(self) -> None:
        if self.chunk_seconds is not None and self.chunk_seconds < 4 * CHUNK_CONTEXT:
            raise ValueError(f"chunk_seconds must be >= {4 * CHUNK_CONTEXT:g} s (or None), got {self.chunk_seconds}")


#: Options added after version 1: left out of the key while they have their default value,
#: so catalogs extracted before they existed keep their feature-set key.
_KEY_OMIT_AT_DEFAULT = {"chunk_seconds": EgemapsConfig.chunk_seconds}

_local = threading.local()


def _smiles() -> tuple[opensmile.Smile, opensmile.Smile]:
    """One pair of openSMILE instances per thread (they hold native state)."""
    if not hasattr(_local, "smiles"):
        _local.smiles = (
            opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals),
            opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors),
        )
    return _local.smiles


def _lld_times(lld: pd.DataFrame, offset_samples: int = 0, sr: int = DEFAULT_SR) -> np.ndarray:
    """Frame start times in seconds (shifted by ``offset_samples``), computed as the whole-file path does."""
    start = lld.index.get_level_values("start")
    if offset_samples:
        start = start + pd.to_timedelta(int(round(offset_samples * 1e9 / sr)), unit="ns")
    return start.total_seconds().to_numpy()


@register
class EgemapsExtractor(Extractor):
    """openSMILE eGeMAPSv02 functionals (88) + LLDs (25 @ 100 Hz); long audio in chunks."""

    name = "egemaps"
    version = 1
    config_cls = EgemapsConfig

    def weights_checksum(self) -> str:
        return f"opensmile{opensmile.__version__}"

    @property
    def key(self) -> str:
        values = config_to_dict(self.config)
        for name, default in _KEY_OMIT_AT_DEFAULT.items():
            if values.get(name) == default:
                values.pop(name)
        return feature_set_key(self.name, self.version, values, self.weights_checksum())

    def row_columns(self) -> list[str]:
        return list(_smiles()[0].feature_names)

    def sequence_dim(self) -> int:
        return len(_smiles()[1].feature_names)

    def sequence_columns(self) -> list[str]:
        return list(_smiles()[1].feature_names)

    def extract(self, media: MediaRef) -> ExtractResult:
        t0 = time.perf_counter()
        failed = missing_stream(media, "audio")
        if failed is not None:
            return failed
        try:
            pieces = self._decoded(media.path, start=media.segment_start, end=media.segment_end)
            return self._process_stream(media.item_id, pieces, t0=t0)
        except DecodeError as e:
            return decode_failure(media.item_id, e)

    def _decoded(self, path: str, *, start: float | None = None, end: float | None = None) -> Iterator[np.ndarray]:
        """The file's audio (or its range ``[start, end)``) as consecutive mono float32 pieces, cut at ``max_seconds``."""
        cfg: EgemapsConfig = self.config
        limit = None if cfg.max_seconds is None else int(cfg.max_seconds * cfg.sample_rate)
        total = 0
        for piece in iter_audio(path, sr=cfg.sample_rate, start=start, end=end):
            if limit is not None and total + piece.size >= limit:
                yield piece[: limit - total]
                return
            total += piece.size
            yield piece

    def process(self, item_id: str, audio: np.ndarray, *, t0: float | None = None) -> ExtractResult:
        """Features of already-decoded 16 kHz mono audio (the floor the benchmarks compare to)."""
        return self._process_stream(item_id, [np.asarray(audio, np.float32)], t0=t0)

    # -- the work -------------------------------------------------------------------
    def _chunk_samples(self) -> int | None:
        cfg: EgemapsConfig = self.config
        if cfg.chunk_seconds is None:
            return None
        step = cfg.sample_rate * FRAME_STEP  # samples per LLD frame
        return int(round(max(1, round(cfg.chunk_seconds / FRAME_STEP)) * step))

    def _process_stream(self, item_id: str, pieces: Iterable[np.ndarray], *, t0: float | None = None) -> ExtractResult:
        """Whole-file analysis for short audio, chunked analysis for long audio (see module)."""
        cfg: EgemapsConfig = self.config
        t0 = time.perf_counter() if t0 is None else t0
        sr = cfg.sample_rate
        chunk = self._chunk_samples()
        ctx = int(round(CHUNK_CONTEXT * sr))
        it = iter(pieces)
        buf: list[np.ndarray] = []
        held = 0
        # Read until the audio is known to be long (more than 1.5 chunks) or ends.
        threshold = None if chunk is None else chunk + chunk // 2
        exhausted = False
        while threshold is None or held <= threshold:
            piece = next(it, None)
            if piece is None:
                exhausted = True
                break
            buf.append(piece)
            held += piece.size
        if exhausted:
            audio = np.concatenate(buf) if buf else np.zeros(0, np.float32)
            return self._whole(item_id, audio, t0)
        return self._chunked(item_id, np.concatenate(buf), it, chunk, ctx, t0)

    def _check(self, item_id: str, n_samples: int, sumsq: float) -> ExtractResult | None:
        """The status of audio that cannot be analysed (empty, too short, silent), else None."""
        cfg: EgemapsConfig = self.config
        duration = n_samples / cfg.sample_rate
        if n_samples == 0:
            return ExtractResult.failed(item_id, Status.NO_AUDIO, "the audio stream holds no samples")
        if duration < cfg.min_duration:
            return ExtractResult.failed(
                item_id, Status.TOO_SHORT, f"audio is {duration:.3f} s, eGeMAPS needs >= {cfg.min_duration} s")
        rms = float(np.sqrt(sumsq / n_samples))
        if rms < cfg.silence_rms:
            return ExtractResult.failed(item_id, Status.NO_SPEECH, f"audio is silent (RMS {rms:.2e})")
        return None

    def _whole(self, item_id: str, audio: np.ndarray, t0: float) -> ExtractResult:
        cfg: EgemapsConfig = self.config
        failed = self._check(item_id, audio.size, float(np.sum(np.square(audio, dtype=np.float64))) if audio.size else 0.0)
        if failed is not None:
            return failed
        func, lld = _smiles()
        f = func.process_signal(audio, cfg.sample_rate)
        l = lld.process_signal(audio, cfg.sample_rate)
        times = _lld_times(l)
        row = {name: float(v) for name, v in zip(f.columns, f.to_numpy()[0])}
        row["duration"] = float(audio.size / cfg.sample_rate)
        seq = Sequence(times=times, arrays={"values": l.to_numpy(np.float32)})
        return ExtractResult(item_id=item_id, row=row, sequence=seq, n_frames=len(times),
                             wall_s=time.perf_counter() - t0)

    def _chunked(self, item_id: str, head: np.ndarray, rest: Iterator[np.ndarray], chunk: int, ctx: int,
                 t0: float) -> ExtractResult:
        """Stream the audio through chunks of ``chunk`` samples (LLDs with ``ctx`` samples of context)."""
        cfg: EgemapsConfig = self.config
        sr = cfg.sample_rate
        func, lld = _smiles()
        # ``window`` holds samples [win_start, win_start + window.size) of the file.
        window, win_start = head, 0
        sumsq = 0.0
        counted = 0  # samples already added to sumsq
        a = 0  # start of the next chunk (absolute samples)
        times: list[np.ndarray] = []
        values: list[np.ndarray] = []
        f_sum: np.ndarray | None = None
        f_weight: np.ndarray | None = None
        names: list[str] = []
        exhausted = False

        def analyse(b: int, last: bool) -> None:
            nonlocal f_sum, f_weight, names
            s0 = max(0, a - ctx)
            s1 = b if last else b + ctx
            seg = window[s0 - win_start: s1 - win_start]
            l = lld.process_signal(seg, sr)
            t = _lld_times(l, s0, sr)
            keep = t >= (a - 0.5) / sr
            if not last:
                keep &= t < (b - 0.5) / sr
            times.append(t[keep])
            values.append(l.to_numpy(np.float32)[keep])
            f = func.process_signal(window[a - win_start: b - win_start], sr)
            fv = f.to_numpy(np.float64)[0]
            w = np.where(np.isfinite(fv), float(b - a), 0.0)
            names = list(f.columns)
            f_sum = np.where(w > 0, fv, 0.0) * w if f_sum is None else f_sum + np.where(w > 0, fv, 0.0) * w
            f_weight = w if f_weight is None else f_weight + w

        while True:
            end = win_start + window.size
            if counted < end:
                new = window[counted - win_start:]
                sumsq += float(np.sum(np.square(new, dtype=np.float64)))
                counted = end
            # a chunk [a, a + chunk) is final once half a chunk (and the context) follows it
            need = a + chunk + max(ctx, chunk // 2)
            if end > need or (exhausted and end - a > chunk + chunk // 2):
                analyse(a + chunk, last=False)
                a += chunk
                drop = max(0, a - ctx) - win_start
                if drop > 0:
                    window, win_start = window[drop:].copy(), win_start + drop
                continue
            if exhausted:
                break
            piece = next(rest, None)
            if piece is None:
                exhausted = True
                continue
            window = np.concatenate([window, piece])
        total = win_start + window.size
        failed = self._check(item_id, total, sumsq)
        if failed is not None:
            return failed
        analyse(total, last=True)
        assert f_sum is not None and f_weight is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            fmean = np.where(f_weight > 0, f_sum / np.maximum(f_weight, 1e-300), np.nan)
        row = {name: float(v) for name, v in zip(names, fmean)}
        row["duration"] = float(total / sr)
        t_all = np.concatenate(times)
        seq = Sequence(times=t_all, arrays={"values": np.concatenate(values)})
        return ExtractResult(item_id=item_id, row=row, sequence=seq, n_frames=len(t_all),
                             wall_s=time.perf_counter() - t0)
