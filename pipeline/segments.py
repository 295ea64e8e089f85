"""A piece of transcript with its times: what every transcript source (sidecar, ASR) produces.

Its own module so that :mod:`emofuse.pipeline.transcripts` and :mod:`emofuse.pipeline.asr`
share it without importing each other.

Example:
    >>> Segment(0.5, 2.0, "Kids are talking by the door")
    Segment(start=0.5, end=2.0, text='Kids are talking by the door')
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """One piece of transcript: ``start``/``end`` in seconds (``None`` if unknown) and its text."""

    start: float | None
    end: float | None
    text: str


__all__ = ["Segment"]
