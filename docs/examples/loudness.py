"""A worked example: the ``loudness`` extractor (one module, one ``@register``'d class).

tests/test_docs_extend.py imports this file, extracts generated media with it into a catalog
and reads the rows back, as docs/extend/extractor.md shows.
"""
from dataclasses import dataclass

import numpy as np

from emofuse.pipeline.decode import DecodeError, load_audio
from emofuse.pipeline.outcomes import decode_failure
from emofuse.pipeline.registry import Extractor, ExtractResult, MediaRef, register


@dataclass
class LoudnessConfig:
    sample_rate: int = 16_000           # every field is part of the feature-set key


@register
class LoudnessExtractor(Extractor):
    """Root-mean-square level of a clip's audio (one per-clip column, no sequence)."""

    name, version, config_cls = "loudness", 1, LoudnessConfig

    def row_columns(self) -> list[str]:  # per-clip Parquet columns (sequence_dim(): Zarr rows)
        return ["rms"]

    def extract(self, media: MediaRef) -> ExtractResult:
        try:
            audio = load_audio(media.path, sr=self.config.sample_rate,
                               start=media.segment_start, end=media.segment_end)
        except DecodeError as e:  # no audio stream, unreadable file: the shared statuses
            return decode_failure(media.item_id, e)
        return ExtractResult(media.item_id, row={"rms": float(np.sqrt(np.mean(audio**2)))})
