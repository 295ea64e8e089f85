"""The ``emofuse demo-corpus`` options as :func:`~.corpus.generate` keyword arguments.

``--ravdess-shape`` is :data:`~.corpus.RAVDESS_SHAPE` (1280x720, 30 fps, 48 kHz AAC, speech
and song, both intensities and repetitions); the other options override single parts of it,
or of the default small format when it is not given. Options left out keep
:func:`~.corpus.generate`'s defaults, so ``emofuse demo-corpus OUT`` writes what it always did.

Example:
    >>> parse_size("1280x720")
    (1280, 720)
    >>> corpus_options()  # nothing given: generate()'s own defaults
    {}
    >>> kw = corpus_options(ravdess_shape=True, song=False)
    >>> kw["media"].width, kw["media"].fps, kw["vocal_channels"], kw["repetitions"]
    (1280, 30, (1,), (1, 2))
    >>> corpus_options(size=(320, 240), audio_rate=48000)["media"]
    MediaFormat(width=320, height=240, fps=25, sample_rate=48000, audio_bit_rate=64000, pad_seconds=0.3)
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any, Sequence

from emofuse.catalog.corpora.demo.corpus import RAVDESS_SHAPE
from emofuse.catalog.corpora.demo.design import DEMO_FORMAT, MediaFormat


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (width, height); an :class:`argparse.ArgumentTypeError` otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a frame size WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def corpus_options(*, ravdess_shape: bool = False, size: tuple[int, int] | None = None, fps: int | None = None,
                   audio_rate: int | None = None, song: bool | None = None,
                   intensities: Sequence[int] | None = None,
                   repetitions: Sequence[int] | None = None) -> dict[str, Any]:
    """:func:`~.corpus.generate` keyword arguments for these options (None: not given).

    ``song``: True adds song clips (vocal channel 02) to speech, False leaves them out
    (also from ``ravdess_shape``). Raises ValueError for a format that cannot be encoded
    (odd sides, an audio rate that is not a multiple of the frame rate).
    """
    out: dict[str, Any] = dict(RAVDESS_SHAPE) if ravdess_shape else {}
    media: MediaFormat = out.get("media", DEMO_FORMAT)
    changes: dict[str, Any] = {}
    if size is not None:
        changes.update(width=size[0], height=size[1])
    if fps is not None:
        changes["fps"] = fps
    if audio_rate is not None:
        changes.update(sample_rate=audio_rate, audio_bit_rate=32_000 if audio_rate <= 16_000 else 64_000)
    if changes:
        out["media"] = dataclasses.replace(media, **changes)
    if song is not None:
        out["vocal_channels"] = (1, 2) if song else (1,)
    if intensities is not None:
        out["intensities"] = tuple(intensities)
    if repetitions is not None:
        out["repetitions"] = tuple(repetitions)
    return out
