"""Face embedders, each with its own alignment.

* :class:`DlibEmbedder`: dlib's 5-point ``shape_predictor`` inside the detector
  box, ``get_face_chip`` (150x150), ResNet ``face_recognition_model_v1`` (128-d).
* :class:`ArcFaceEmbedder`: insightface ``face_align.norm_crop`` (112x112) from the
  detector's 5 landmarks, ArcFace ONNX loaded with ``insightface.model_zoo.get_model``
  and run in batches on an explicit onnxruntime provider.

Both split the work in two: :meth:`align` (per frame, needs the full image) and
:meth:`embed_crops` (batched, L2-normalised float32 rows), so the extractor can
collect crops over several frames and embed them in one call.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emofuse.pipeline.vectors import l2_normalize

from .detect import Detections


def select_providers(device: str = "auto") -> list[str]:
    """onnxruntime providers for ``device`` ('auto' | 'cpu' | 'cuda'); CUDA only when this onnxruntime has it."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if not has_cuda:
            raise RuntimeError(
                f"device='cuda' but this onnxruntime has no CUDAExecutionProvider (available: {available}); "
                "install onnxruntime-gpu instead of onnxruntime, or use device='auto'/'cpu'"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device != "auto":
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if has_cuda else ["CPUExecutionProvider"]


def session_options(threads: int | None) -> Any:
    """onnxruntime SessionOptions with ``threads`` intra-op threads (None: onnxruntime's default)."""
    if threads is None:
        return None
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    return so


class DlibEmbedder:
    """dlib ResNet 128-d descriptors on dlib's own 150x150 chips.

    ``engine``: None runs the network in dlib-bin (CPU unless dlib was built with CUDA,
    holds the GIL); a :class:`~.face_engine.DlibResNetEmbedder` runs the same weights batched
    in onnxruntime or torch (CPU or CUDA). Alignment is dlib's in both cases.
    """

    dim = 128
    name = "dlib"

    def __init__(self, shape_predictor_path: str | Path, recognition_path: str | Path, *, chip_size: int = 150,
                 padding: float = 0.25, engine: Any = None) -> None:
        import dlib

        self._dlib = dlib
        self.shape_predictor_path = str(shape_predictor_path)
        self.recognition_path = str(recognition_path)
        self.sp = dlib.shape_predictor(self.shape_predictor_path)
        self.engine = engine
        self.rec = dlib.face_recognition_model_v1(self.recognition_path) if engine is None else None
        self.chip_size = chip_size
        self.padding = padding

    def align(self, rgb: np.ndarray, dets: Detections) -> list[np.ndarray]:
        """One 150x150 RGB chip per detection: 5-point shape inside the detector box, then ``get_face_chip``."""
        dlib = self._dlib
        rgb = np.ascontiguousarray(rgb)
        chips = []
        for x1, y1, x2, y2 in dets.boxes:
            rect = dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
            shape = self.sp(rgb, rect)
            chips.append(dlib.get_face_chip(rgb, shape, size=self.chip_size, padding=self.padding))
        return chips

    def embed_crops(self, crops: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        if self.engine is not None:
            return self.engine.embed_crops(crops, batch_size)
        out = []
        for i in range(0, len(crops), max(1, batch_size)):
            vecs = self.rec.compute_face_descriptor(list(crops[i : i + batch_size]))
            out.append(np.asarray([np.asarray(v) for v in vecs], dtype=np.float32))
        return l2_normalize(np.concatenate(out, axis=0))

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "embedder": "dlib",
            "embedder_models": [self.shape_predictor_path, self.recognition_path],
            "embedder_device": "cuda" if bool(self._dlib.DLIB_USE_CUDA) else "cpu",
            "dlib_version": self._dlib.__version__,
            "embedder_runtime": "dlib-bin",
        }
        if self.engine is not None:  # same network and alignment; the runtime and device are the engine's
            engine = self.engine.info()
            out["embedder_runtime"] = f"{engine.pop('embedder')}/{engine['embedder_engine']}"
            out.update(engine)
        return out


class ArcFaceEmbedder:
    """ArcFace ONNX (e.g. buffalo_l's ``w600k_r50.onnx``, 512-d) on ``norm_crop`` crops, batched."""

    name = "arcface"

    def __init__(self, model_path: str | Path, *, providers: list[str], sess_options: Any = None) -> None:
        from insightface.model_zoo import get_model

        kwargs: dict[str, Any] = {"providers": providers}
        if sess_options is not None:
            kwargs["sess_options"] = sess_options
        model = get_model(str(model_path), **kwargs)
        if model is None or type(model).__name__ != "ArcFaceONNX":
            raise ValueError(
                f"{model_path} is not routed as an ArcFace recognition model by insightface "
                f"(got {type(model).__name__}); expected a square >=112 input and one output"
            )
        self.model = model
        self.model_path = str(model_path)
        self.session = model.session
        self.input_name: str = model.input_name
        self.output_name: str = model.output_names[0]
        self.image_size = int(model.input_size[0])
        self.mean = float(model.input_mean)
        self.std = float(model.input_std)
        bdim = model.input_shape[0]
        self.fixed_batch: int | None = bdim if isinstance(bdim, int) and bdim > 0 else None
        out_dim = model.output_shape[-1] if model.output_shape else None
        self.dim: int | None = out_dim if isinstance(out_dim, int) else None

    def align(self, rgb: np.ndarray, dets: Detections) -> list[np.ndarray]:
        """One ``image_size``-square RGB crop per detection, warped onto ArcFace's 5-point template."""
        import warnings

        from insightface.utils.face_align import norm_crop

        with warnings.catch_warnings():  # skimage's SimilarityTransform.estimate deprecation, inside insightface
            warnings.simplefilter("ignore", FutureWarning)
            return [norm_crop(rgb, kps.astype(np.float32), image_size=self.image_size) for kps in dets.kps]

    def _blob(self, crops: list[np.ndarray]) -> np.ndarray:
        # Crops are RGB already, which is what insightface's BGR input + swapRB yields.
        x = np.stack(crops).astype(np.float32)
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)

    def embed_crops(self, crops: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim or 0), np.float32)
        step = self.fixed_batch or max(1, batch_size)
        out = []
        for i in range(0, len(crops), step):
            chunk = list(crops[i : i + step])
            n = len(chunk)
            if self.fixed_batch and n < self.fixed_batch:  # a fixed-batch export: pad, then drop the padding
                chunk += [np.zeros_like(chunk[0])] * (self.fixed_batch - n)
            res = self.session.run([self.output_name], {self.input_name: self._blob(chunk)})[0]
            out.append(np.asarray(res, np.float32).reshape(len(chunk), -1)[:n])
        emb = np.concatenate(out, axis=0).reshape(len(crops), -1)
        self.dim = emb.shape[1]
        return l2_normalize(emb)

    def info(self) -> dict[str, Any]:
        return {
            "embedder": "arcface",
            "embedder_model": self.model_path,
            "onnxruntime_providers": list(self.session.get_providers()),
            "onnxruntime_provider": self.session.get_providers()[0],
        }
