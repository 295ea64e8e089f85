"""Decode failures: one opening step for every reader of :mod:`emofuse.pipeline.decode`, and one
decode-error → status mapping (:mod:`emofuse.pipeline.outcomes`) that every extractor goes through.

Each extractor meets an unreadable file and a file without the stream it reads (and, where it
checks the probe, an item probed without that stream); its status and message must be the
mapping's. Then the mapping is replaced: every extractor's result must follow, which proves it
has no copy of its own.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from emofuse.catalog.schemas import Status
from emofuse.pipeline import decode, outcomes
from emofuse.pipeline.decode import DecodeError, NoStream
from emofuse.pipeline.dummies import tone, write_audio, write_video
from emofuse.pipeline.registry import Extractor, MediaRef, get_extractor


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("decode-outcomes")
    corrupt, empty = d / "corrupt.mp4", d / "empty.mp4"
    corrupt.write_bytes(b"not a video at all" * 100)
    empty.write_bytes(b"")
    frames = [np.full((48, 64, 3), 40 * k, np.uint8) for k in range(6)]
    return {
        "corrupt": corrupt,
        "empty": empty,
        "video_only": write_video(d / "video_only.mp4", frames, fps=10),
        "audio_only": write_audio(d / "audio_only.wav", tone(0.5)),
    }


# -- the readers: one opening and validation step ------------------------------------------

READERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "iter_audio": ("audio", lambda p: list(decode.iter_audio(p))),
    "load_audio": ("audio", lambda p: decode.load_audio(p)),
    "iter_frames": ("video", lambda p: list(decode.iter_frames(p))),
    "frame_times": ("video", lambda p: decode.frame_times(p)),
    "frames_at": ("video", lambda p: list(decode.frames_at(p, [0.0]))),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_opens_and_validates_alike(reader: str, media: dict[str, Path]) -> None:
    kind, read = READERS[reader]
    with pytest.raises(DecodeError, match="empty file \\(0 bytes\\)"):
        read(str(media["empty"]))
    with pytest.raises(DecodeError, match="not readable as media"):
        read(str(media["corrupt"]))
    lacking = media["video_only"] if kind == "audio" else media["audio_only"]
    with pytest.raises(NoStream) as info:
        read(str(lacking))
    assert (info.value.kind, str(info.value)) == (kind, f"{lacking}: no {kind} stream")
    again = pickle.loads(pickle.dumps(info.value))  # a worker's error travels whole
    assert (again.kind, str(again)) == (kind, str(info.value))


# -- the extractors: one mapping ------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """An extractor meeting a file it cannot decode: the status and message it must give."""

    extractor: str
    media: str
    status: Status
    message: str  # the message's start; {path} is the file
    probe: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        probed = "-probed" if self.probe else ""
        return f"{self.extractor}-{self.media}{probed}"


ASR = {"use_asr": True}
CASES = [
    Case("egemaps", "corrupt", Status.DECODE_ERROR, "{path}: not readable as media"),
    Case("egemaps", "empty", Status.DECODE_ERROR, "{path}: empty file (0 bytes)"),
    Case("egemaps", "video_only", Status.NO_AUDIO, "{path}: no audio stream"),
    Case("egemaps", "video_only", Status.NO_AUDIO, "{path}: no audio stream", probe={"has_audio": False}),
    Case("logmel", "corrupt", Status.DECODE_ERROR, "{path}: not readable as media"),
    Case("logmel", "video_only", Status.NO_AUDIO, "{path}: no audio stream"),
    Case("logmel", "video_only", Status.NO_AUDIO, "{path}: no audio stream", probe={"has_audio": False}),
    Case("faces", "corrupt", Status.DECODE_ERROR, "{path}: not readable as media"),
    Case("faces", "audio_only", Status.NO_VIDEO, "{path}: no video stream"),
    Case("faces", "audio_only", Status.NO_VIDEO, "{path}: no video stream", probe={"has_video": False}),
    Case("text", "corrupt", Status.DECODE_ERROR, "ASR: {path}: not readable as media", config=ASR),
    Case("text", "video_only", Status.NO_AUDIO, "ASR: {path}: no audio stream", config=ASR),
]


@pytest.fixture(scope="module")
def extractors() -> Callable[[Case], Extractor]:
    """One extractor per (name, config), built on first use (faces and ASR load models)."""
    built: dict[str, Extractor] = {}

    def get(case: Case) -> Extractor:
        if case.extractor == "text" and case.config.get("use_asr"):
            pytest.importorskip("faster_whisper")
        key = f"{case.extractor}:{sorted(case.config.items())}"
        if key not in built:
            built[key] = get_extractor(case.extractor, case.config)
        return built[key]

    return get


def _extract(ex: Extractor, case: Case, media: dict[str, Path]):
    path = media[case.media]
    return ex.extract(MediaRef(item_id=case.media, path=str(path), **case.probe))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_extractor_maps_decode_failures_in_one_place(case: Case, media: dict[str, Path], extractors,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ex = extractors(case)
    expected = case.message.format(path=media[case.media])
    r = _extract(ex, case, media)
    assert r.status == case.status and r.message.startswith(expected), (r.status, r.message)
    assert r.row is None and r.sequence is None
    # another mapping in the one place: the extractor follows it (it keeps no mapping of its own)
    monkeypatch.setattr(outcomes, "decode_status", lambda error: Status.ERROR)
    again = _extract(ex, case, media)
    assert (again.status, again.message) == (Status.ERROR, r.message)


def test_every_builtin_extractor_is_covered() -> None:
    from emofuse.pipeline.registry import available

    assert {c.extractor for c in CASES} == set(available())
