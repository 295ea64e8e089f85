"""The ``faces`` extractor: detection -> 5 landmarks -> alignment -> embedding of the main face.

Frames are sampled at ``fps`` and streamed from :func:`emofuse.pipeline.decode.iter_frames`;
only aligned crops wait for a batch, never whole frames. Per sampled frame the
sequence holds the main face's embedding (zeros where absent; ``mask`` is the
truth), its box, detector score and the number of faces; the per-clip row holds
the L2-normalised mean embedding of the masked frames.

Backends (``FacesConfig.backend``):

* ``"yunet_dlib"`` (default, offline on a fresh machine): YuNet + dlib ResNet, 128-d.
* ``"insightface"``: SCRFD + ArcFace (512-d for buffalo_l) from a local model pack
  (``model_dir``); ``detector="yunet"`` swaps SCRFD for YuNet, so only an ArcFace
  file is needed. Packs are never downloaded.

Example:
    >>> from pipeline.registry import get_extractor, MediaRef                    # doctest: +SKIP
    >>> ex = get_extractor("faces", {"fps": 5.0})                                  # doctest: +SKIP
    >>> r = ex.extract(MediaRef(item_id="x", path="clip.mp4"))                    # doctest: +SKIP
    >>> r.status, r.sequence.arrays["values"].shape, r.row["face_ratio"]          # doctest: +SKIP
    (<Status.OK: 'ok'>, (16, 128), 1.0)
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.pipeline import model_files
from emofuse.pipeline.decode import DecodeError, NoStream, iter_frames
from emofuse.pipeline.registry import ExtractResult, Extractor, MediaRef, Sequence, Status, register, runtime_field

from .detect import Detections
from .track import FrameFaces, MainFaceTracker, TrackParams

log = logging.getLogger(__name__)

BACKENDS = ("yunet_dlib", "insightface")
DETECTORS = ("yunet", "scrfd")

#: Cosine-similarity thresholds for tracking, per embedder: (same identity, same identity given box overlap).
#: dlib's normalised 128-d vectors sit close together (different people measured here at 0.81-0.90,
#: one person across frames >= 0.95); ArcFace separates more (different people usually < 0.25).
TRACK_DEFAULTS = {"dlib": (0.93, 0.75), "arcface": (0.40, 0.10)}


@dataclass
class FacesConfig:
    """Options of the ``faces`` extractor (all of them enter the feature-set key).

    backend: "yunet_dlib" (YuNet + dlib 128-d) or "insightface" (SCRFD/YuNet + ArcFace).
    fps: frames sampled per second of video.
    detector: None for the backend's own ("yunet" / "scrfd"), or "yunet" to run ArcFace without SCRFD.
    model_dir: local insightface model pack, e.g. ~/.insightface/models/buffalo_l (insightface only).
    det_model / rec_model: SCRFD / ArcFace file (name in model_dir or a path); None picks the pack's own.
    det_threshold / nms_threshold: detector score and NMS IoU thresholds.
    max_side: YuNet frames with a longer side are downscaled to it for detection (None: never).
    det_size: SCRFD input size (square).
    max_faces: faces per frame considered (largest first; all are aligned, embedded only as tracking needs);\n        n_faces counts all.
    batch_size: frames per tracking chunk and crops per embedder call (ArcFace: ONNX batch dim).
    device: "auto" (CUDA when onnxruntime has it), "cpu" or "cuda" for onnxruntime models.
    threads: onnxruntime intra-op threads (None: onnxruntime's default).
    track_sim / track_sim_box: tracking thresholds (None: the embedder's defaults, TRACK_DEFAULTS).
    init_frames: frames with faces used to choose the main face.
    """

    backend: str = "yunet_dlib"
    fps: float = 5.0
    detector: str | None = None
    model_dir: str | None = None
    det_model: str | None = None
    rec_model: str | None = None
    det_threshold: float = 0.6
    nms_threshold: float = 0.3
    max_side: int | None = 640
    det_size: int = 640
    max_faces: int = 16
    batch_size: int = runtime_field(32)
    device: str = runtime_field("auto")
    threads: int | None = runtime_field(None)
    track_sim: float | None = None
    track_sim_box: float | None = None
    init_frames: int = 5

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.detector is not None and self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS} or None, not {self.detector!r}")
        if self.backend == "yunet_dlib" and self.detector == "scrfd":
            raise ValueError("backend 'yunet_dlib' uses YuNet; use backend='insightface' for SCRFD")
        if self.fps <= 0:
            raise ValueError("fps must be positive")
        if self.max_faces < 1 or self.batch_size < 1 or self.init_frames < 1:
            raise ValueError("max_faces, batch_size and init_frames must be >= 1")

    @property
    def detector_name(self) -> str:
        return self.detector or ("yunet" if self.backend == "yunet_dlib" else "scrfd")

    @property
    def embedder_name(self) -> str:
        return "dlib" if self.backend == "yunet_dlib" else "arcface"


# -- insightface model packs -----------------------------------------------------------

_ROLE_CACHE: dict[tuple[str, int, int], tuple[str, int | None]] = {}


def onnx_role(path: str | Path) -> tuple[str, int | None]:
    """How insightface's ModelRouter would route an ONNX file, read from the graph (no session).

    Returns (role, output width): role is "detection", "landmark", "attribute",
    "swapper", "recognition" or "unknown".
    """
    import onnx

    p = os.path.realpath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    if key in _ROLE_CACHE:
        return _ROLE_CACHE[key]
    try:
        m = onnx.load(p, load_external_data=False)
    except TypeError:  # pragma: no cover - very old onnx
        m = onnx.load(p)
    g = m.graph
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]

    def dims(v: Any) -> list[int | None]:
        return [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]

    shape = dims(inputs[0]) if inputs else []
    out_w = None
    if g.output:
        od = dims(g.output[0])
        out_w = od[-1] if od else None
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
    if len(g.output) >= 5:
        role = "detection"
    elif h == 192 and w == 192:
        role = "landmark"
    elif h == 96 and w == 96:
        role = "attribute"
    elif len(inputs) == 2 and h == 128 and w == 128:
        role = "swapper"
    elif h is not None and h == w and h >= 112 and h % 16 == 0:
        role = "recognition"
    else:
        role = "unknown"
    _ROLE_CACHE[key] = (role, out_w)
    return role, out_w


def _pack_file(model_dir: str | None, name: str | None, role: str) -> Path:
    """The ``role`` model file: ``name`` (in ``model_dir`` or a path), else the one such file in ``model_dir``."""
    if name is not None:
        p = Path(name).expanduser()
        if not p.is_absolute() and model_dir is not None:
            p = Path(model_dir).expanduser() / p
        if not p.is_file():
            raise model_files.ModelFileError(f"{role} model {p} does not exist")
        return p
    if not model_dir:
        raise model_files.ModelFileError(
            f"backend 'insightface' needs a local model pack for its {role} model: set model_dir "
            "(e.g. ~/.insightface/models/buffalo_l) or rec_model/det_model; packs are never downloaded"
        )
    d = Path(model_dir).expanduser()
    if not d.is_dir():
        raise model_files.ModelFileError(f"model_dir {d} is not a folder (an unpacked insightface model pack)")
    found = [p for p in sorted(d.glob("*.onnx")) if onnx_role(p)[0] == role]
    if not found:
        raise model_files.ModelFileError(f"no {role} ONNX model in {d} ({[p.name for p in d.glob('*.onnx')]})")
    if len(found) > 1:
        raise model_files.ModelFileError(
            f"several {role} models in {d}: {[p.name for p in found]}; choose one with "
            f"{'rec_model' if role == 'recognition' else 'det_model'}"
        )
    return found[0]


# -- the extractor ---------------------------------------------------------------------


@register
class FacesExtractor(Extractor):
    """Main-face embeddings per sampled frame plus a pooled per-clip embedding.

    Thread-safe: OpenCV's YuNet and dlib's networks are not, so each thread
    that calls :meth:`extract` gets its own detector and embedder (loaded on
    first use; a worker process with N threads holds N copies, a few tens of MB
    each for the offline backend). Pickling drops loaded models.
    """

    name = "faces"
    version = 1
    config_cls = FacesConfig

    def __init__(self, config: FacesConfig | None = None) -> None:
        super().__init__(config)
        self._local = threading.local()
        self._checksum: str | None = None
        self._stats: dict[str, float] = {}

    @property
    def _detector(self) -> Any:
        """This thread's detector (None before :meth:`load`)."""
        return getattr(self._local, "detector", None)

    @property
    def _embedder(self) -> Any:
        """This thread's embedder (None before :meth:`load`)."""
        return getattr(self._local, "embedder", None)

    # -- pickling: tasks may ship an extractor to a worker; models are rebuilt there --
    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_checksum": self._checksum}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])
        self._checksum = state.get("_checksum")

    # -- model files -------------------------------------------------------------
    def model_paths(self) -> dict[str, Path]:
        """Files this configuration loads, by role (raises ModelFileError naming the fix)."""
        c = self.config
        paths: dict[str, Path] = {}
        if c.detector_name == "yunet":
            paths["yunet"] = model_files.yunet_path()
        else:
            paths["scrfd"] = _pack_file(c.model_dir, c.det_model, "detection")
        if c.embedder_name == "dlib":
            d = model_files.dlib_model_paths()
            paths["dlib_shape_predictor_5"] = d.shape_predictor_5
            paths["dlib_resnet"] = d.face_recognition
        else:
            paths["arcface"] = _pack_file(c.model_dir, c.rec_model, "recognition")
        return paths

    def weights_checksum(self) -> str:
        """First 12 hex of a sha256 over the (role, sha256) of every model file used."""
        if self._checksum is None:
            h = hashlib.sha256()
            for role, p in sorted(self.model_paths().items()):
                h.update(f"{role}:{model_files.cached_sha256(p)}\n".encode())
            self._checksum = h.hexdigest()[:12]
        return self._checksum

    def row_columns(self) -> list[str]:
        return ["embedding", "n_frames", "n_face_frames", "face_ratio"]

    def row_schema(self) -> Any:
        """pyarrow schema of the per-clip row (``embedding`` is list<float32>)."""
        import pyarrow as pa

        return pa.schema(
            [
                ("embedding", pa.list_(pa.float32())),
                ("n_frames", pa.int32()),
                ("n_face_frames", pa.int32()),
                ("face_ratio", pa.float32()),
            ]
        )

    def sequence_dim(self) -> int | None:
        if self.config.embedder_name == "dlib":
            return 128
        if self._embedder is not None and self._embedder.dim:
            return int(self._embedder.dim)
        try:
            return onnx_role(self.model_paths()["arcface"])[1]
        except (model_files.ModelFileError, OSError):
            return None

    def sequence_arrays(self) -> dict[str, str]:
        """Arrays stored beside ``values`` per sampled frame, with their meaning."""
        return {
            "values": "(T, D) float32 main-face embedding, L2-normalised; zeros where mask is False",
            "mask": "(T,) bool: the main face was found in this frame",
            "bbox": "(T, 4) float32 main-face box x1,y1,x2,y2 in source pixels; zeros where mask is False",
            "det_score": "(T,) float32 detector score of the main face; 0 where mask is False",
            "n_faces": "(T,) int16 number of faces detected in the frame",
        }

    # -- loading -----------------------------------------------------------------
    def load(self) -> None:
        """Build this thread's detector and embedder (idempotent)."""
        if self._detector is not None and self._embedder is not None:
            return
        from . import detect, embed

        c = self.config
        paths = self.model_paths()
        providers = embed.select_providers(c.device)
        so = embed.session_options(c.threads)
        if c.detector_name == "yunet":
            det = detect.YuNetDetector(
                paths["yunet"], score_threshold=c.det_threshold, nms_threshold=c.nms_threshold, max_side=c.max_side
            )
        else:
            det = detect.ScrfdDetector(
                paths["scrfd"], providers=providers, score_threshold=c.det_threshold,
                nms_threshold=c.nms_threshold, input_size=(c.det_size, c.det_size), sess_options=so,
            )
        if c.embedder_name == "dlib":
            emb: Any = embed.DlibEmbedder(paths["dlib_shape_predictor_5"], paths["dlib_resnet"])
        else:
            emb = embed.ArcFaceEmbedder(paths["arcface"], providers=providers, sess_options=so)
        self._local.detector, self._local.embedder = det, emb

    def track_params(self) -> TrackParams:
        hi, lo = TRACK_DEFAULTS[self.config.embedder_name]
        c = self.config
        return TrackParams(
            sim_high=hi if c.track_sim is None else c.track_sim,
            sim_low=lo if c.track_sim_box is None else c.track_sim_box,
            init_frames=c.init_frames,
            max_gap=max(1, int(round(2.0 * c.fps))),
            chunk=c.batch_size,
        )

    def runtime_info(self) -> dict[str, Any]:
        """Devices/providers actually used, library versions, model files and their sha256."""
        import cv2

        self.load()
        info: dict[str, Any] = {"backend": self.config.backend, "opencv_version": cv2.__version__}
        info.update(self._detector.info())
        info.update(self._embedder.info())
        info.setdefault("onnxruntime_provider", None)
        if "detector_providers" in info and info["onnxruntime_provider"] is None:
            info["onnxruntime_provider"] = info["detector_providers"][0]
        try:
            import onnxruntime as ort

            info["onnxruntime_version"] = ort.__version__
        except ImportError:  # pragma: no cover
            pass
        if self.config.backend == "insightface":
            import insightface

            info["insightface_version"] = insightface.__version__
        info["model_sha256"] = {r: model_files.cached_sha256(p) for r, p in self.model_paths().items()}
        info["stats"] = dict(self._stats)
        return info

    # -- work --------------------------------------------------------------------
    def embed_frames(self, frames: list[np.ndarray]) -> list[tuple[Detections, np.ndarray]]:
        """Detect and embed every face (up to ``max_faces``) of in-memory RGB frames; for tests and tools."""
        self.load()
        out = []
        for rgb in frames:
            d = self._detector.detect(rgb).largest(self.config.max_faces)
            out.append((d, self._embedder.embed_crops(self._embedder.align(rgb, d), self.config.batch_size)))
        return out

    def extract(self, media: MediaRef) -> ExtractResult:
        if media.has_video is False:
            return ExtractResult.failed(media.item_id, Status.NO_VIDEO, f"{media.path}: no video stream")
        self.load()
        stats: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            seq, n_all = self._run(media.path, stats)
        except NoStream as e:
            return ExtractResult.failed(media.item_id, Status.NO_VIDEO, str(e))
        except DecodeError as e:
            return ExtractResult.failed(media.item_id, Status.DECODE_ERROR, str(e))
        except Exception as e:  # noqa: BLE001 - per-item failures are data (status table), not crashes
            log.exception("faces: %s failed", media.path)
            return ExtractResult.failed(media.item_id, Status.ERROR, f"{type(e).__name__}: {e}")
        wall = time.perf_counter() - t0
        T = len(seq)
        stats.update(frames=float(T), wall_s=wall, frames_per_s=T / wall if wall > 0 else 0.0)
        self._stats = stats  # the last item's figures, for runtime_info()
        if T == 0:
            return ExtractResult.failed(media.item_id, Status.DECODE_ERROR, f"{media.path}: no video frame decoded")
        mask = seq.arrays["mask"]
        n_face = int(mask.sum())
        if n_face == 0:
            msg = (
                f"no face in {T} frames sampled at {self.config.fps:g} fps "
                f"({self.config.detector_name}, det_threshold={self.config.det_threshold:g})"
            )
            return ExtractResult(item_id=media.item_id, status=Status.NO_FACE, message=msg, n_frames=T)
        values = seq.arrays["values"]
        pooled = values[mask].mean(axis=0)
        pooled = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        row = {
            "embedding": pooled,
            "n_frames": T,
            "n_face_frames": n_face,
            "face_ratio": float(n_face) / T,
        }
        msg = "" if n_all == n_face else f"main face in {n_face}/{T} frames; faces seen in {n_all}"
        return ExtractResult(item_id=media.item_id, status=Status.OK, message=msg, row=row, sequence=seq, n_frames=T)

    def _run(self, path: str, stats: dict[str, float]) -> tuple[Sequence, int]:
        """Stream frames, align every face, track the main face (lazy, batched embedding).

        Returns the sequence and the number of frames with any face.
        """
        c = self.config
        det, emb = self._detector, self._embedder
        tracker = MainFaceTracker(self.track_params(), lambda crops: emb.embed_crops(crops, c.batch_size))
        times: list[float] = []
        vals: list[np.ndarray | None] = []
        boxes: list[np.ndarray | None] = []
        scores: list[float] = []
        nfaces: list[int] = []

        def consume(pairs: list[tuple[FrameFaces, int]]) -> None:
            for f, j in pairs:
                times.append(f.t)
                nfaces.append(f.n_faces)
                if j < 0:
                    vals.append(None)
                    boxes.append(None)
                    scores.append(0.0)
                else:
                    vals.append(f.emb[j])
                    boxes.append(f.boxes[j])
                    scores.append(float(f.scores[j]))
                f.emb = {}

        for t, rgb in iter_frames(path, fps=c.fps):
            d_all = det.detect(rgb)
            d = d_all.largest(c.max_faces)
            crops = emb.align(rgb, d) if len(d) else []
            consume(tracker.push(FrameFaces(t, rgb.shape[1], rgb.shape[0], d.boxes, d.scores, crops, len(d_all))))
        consume(tracker.finish())
        stats.update(embedded_faces=float(tracker.n_embedded), embed_calls=float(tracker.n_calls))

        T = len(times)
        dim = next((len(v) for v in vals if v is not None), emb.dim or 0)
        values = np.zeros((T, dim), np.float32)
        bbox = np.zeros((T, 4), np.float32)
        mask = np.zeros(T, bool)
        for i, (v, b) in enumerate(zip(vals, boxes)):
            if v is not None:
                values[i], bbox[i], mask[i] = v, b, True
        seq = Sequence(
            times=np.asarray(times, np.float64),
            arrays={
                "values": values,
                "mask": mask,
                "bbox": bbox,
                "det_score": np.asarray(scores, np.float32),
                "n_faces": np.asarray(nfaces, np.int16),
            },
        )
        return seq, int(sum(1 for n in nfaces if n > 0))
