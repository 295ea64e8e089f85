"""Options of the ``faces`` extractor: backends, detectors and tracking defaults.

Example:
    >>> c = FacesConfig()
    >>> c.detector_name, c.embedder_name
    ('yunet', 'dlib')
    >>> FacesConfig(backend="insightface", detector="yunet").embedder_name
    'arcface'
    >>> FacesConfig(detector="scrfd")
    Traceback (most recent call last):
    ...
    ValueError: backend 'yunet_resnet' uses YuNet; use backend='insightface' for SCRFD
"""
from __future__ import annotations

from dataclasses import dataclass

from emofuse.pipeline.registry import runtime_field

#: yunet_resnet: YuNet + dlib's ResNet weights in emofuse's batched engine (onnxruntime/torch, GPU-ready);
#: yunet_dlib: the same network run by dlib-bin (slow, holds the GIL); insightface: SCRFD/YuNet + ArcFace.
BACKENDS = ("yunet_resnet", "yunet_dlib", "insightface")
#: Backends whose embedder is dlib's ResNet (128-d on dlib's 150x150 chips), whichever runtime runs it.
DLIB_BACKENDS = ("yunet_resnet", "yunet_dlib")
DETECTORS = ("yunet", "scrfd")

#: Cosine-similarity thresholds for tracking, per embedder: (same identity, same identity given box overlap).
#: dlib's normalised 128-d vectors sit close together (different people measured here at 0.81-0.90,
#: one person across frames >= 0.95); ArcFace separates more (different people usually < 0.25).
TRACK_DEFAULTS = {"dlib": (0.93, 0.75), "arcface": (0.40, 0.10)}


@dataclass
class FacesConfig:
    """Options of the ``faces`` extractor (all but the runtime-only ones enter the feature-set key).

    backend: "yunet_resnet" (YuNet + dlib's 128-d ResNet in a batched onnxruntime/torch engine),
        "yunet_dlib" (the same network run by dlib-bin: 24x slower on CPU, no GPU) or "insightface"
        (SCRFD/YuNet + ArcFace). The backend is part of the feature-set key, so the two dlib
        runtimes' embeddings (cosine > 0.99999 apart) never mix in one feature set.
    fps: frames sampled per second of video.
    detector: None for the backend's own ("yunet" / "scrfd"), or "yunet" to run ArcFace without SCRFD.
    model_dir: local insightface model pack, e.g. ~/.insightface/models/buffalo_l (insightface only).
    det_model / rec_model: SCRFD / ArcFace file (name in model_dir or a path); None picks the pack's own.
    det_threshold / nms_threshold: detector score and NMS IoU thresholds.
    max_side: YuNet frames with a longer side are downscaled to it for detection (None: never).
    det_size: SCRFD input size (square).
    max_faces: faces per frame considered (largest first; all are aligned, embedded only as tracking
        needs); n_faces counts all.
    batch_size: frames per tracking chunk and crops per embedder call (ArcFace: ONNX batch dim).
    device: "auto" (CUDA when available), "cpu" or "cuda" for the onnxruntime and torch models.
    threads: onnxruntime intra-op threads (None: onnxruntime's default; the yunet_resnet engine
        then uses torch's thread count, which the worker sets).
    engine: the yunet_resnet runtime: "auto" (onnxruntime on CPU, torch on CUDA), "onnxruntime", "torch".
    track_sim / track_sim_box: tracking thresholds (None: the embedder's defaults, TRACK_DEFAULTS).
    init_frames: frames with faces used to choose the main face.
    """

    backend: str = "yunet_resnet"
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
    engine: str = runtime_field("auto")
    track_sim: float | None = None
    track_sim_box: float | None = None
    init_frames: int = 5

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.detector is not None and self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS} or None, not {self.detector!r}")
        if self.backend in DLIB_BACKENDS and self.detector == "scrfd":
            raise ValueError(f"backend {self.backend!r} uses YuNet; use backend='insightface' for SCRFD")
        if self.engine not in ("auto", "onnxruntime", "torch"):
            raise ValueError(f"engine must be 'auto', 'onnxruntime' or 'torch', not {self.engine!r}")
        if self.fps <= 0:
            raise ValueError("fps must be positive")
        if self.max_faces < 1 or self.batch_size < 1 or self.init_frames < 1:
            raise ValueError("max_faces, batch_size and init_frames must be >= 1")

    @property
    def detector_name(self) -> str:
        return self.detector or ("yunet" if self.backend in DLIB_BACKENDS else "scrfd")

    @property
    def embedder_name(self) -> str:
        return "dlib" if self.backend in DLIB_BACKENDS else "arcface"



__all__ = ["BACKENDS", "DLIB_BACKENDS", "DETECTORS", "TRACK_DEFAULTS", "FacesConfig"]
