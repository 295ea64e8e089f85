"""The ``faces`` extractor: detection -> 5 landmarks -> alignment -> embedding of the main face.

Frames are sampled at ``fps`` and streamed from :func:`emofuse.pipeline.decode.iter_frames`;
only aligned crops wait for a batch, never whole frames. Per sampled frame the
sequence holds the main face's embedding (zeros where absent; ``mask`` is the
truth), its box, detector score and the number of faces; the per-clip row holds
the L2-normalised mean embedding of the masked frames.

Backends (``FacesConfig.backend``):

* ``"yunet_resnet"`` (default, offline on a fresh machine): YuNet + dlib's alignment and
  ResNet weights (128-d), the network run batched by onnxruntime on CPU or torch on CUDA
  (:mod:`.face_engine`; 24x dlib-bin per face on one CPU thread, GIL released).
* ``"yunet_dlib"``: the same network run by dlib-bin (cosine > 0.99999 to the above; its own key).
* ``"insightface"``: SCRFD + ArcFace (512-d for buffalo_l) from a local model pack
  (``model_dir``); ``detector="yunet"`` swaps SCRFD for YuNet, so only an ArcFace
  file is needed. Packs are never downloaded.

Example:
    One second of scikit-image's astronaut photo at 10 fps, sampled at 5 fps
    (YuNet is fetched once per machine: a no-op when the verified file is there):

    >>> import os, tempfile
    >>> import numpy as np
    >>> from skimage import data
    >>> from emofuse.pipeline.dummies import write_video
    >>> _ = model_files.fetch_yunet()
    >>> face = np.ascontiguousarray(data.astronaut()[:256, 128:384])
    >>> clip = str(write_video(os.path.join(tempfile.mkdtemp(), "face.mp4"), [face] * 10, fps=10))
    >>> ex = FacesExtractor(FacesConfig(fps=5.0))
    >>> ex.key  # name, version, config hash, checksum of the YuNet and dlib files
    'faces-v1-...'
    >>> r = ex.extract(MediaRef(item_id="x", path=clip))
    >>> r.status.value, r.sequence.arrays["values"].shape, r.row["face_ratio"]
    ('ok', (5, 128), 1.0)
    >>> r.sequence.times[:3]
    array([0. , 0.2, 0.4])
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.catalog.identity import cached_file_digest
from emofuse.pipeline import model_files
from emofuse.pipeline.decode import DecodeError, iter_frames
from emofuse.pipeline.outcomes import decode_failure, missing_stream
from emofuse.pipeline.registry import ExtractResult, Extractor, MediaRef, Sequence, Status, register
from emofuse.pipeline.vectors import l2_normalize

from .config import TRACK_DEFAULTS, FacesConfig
from .packs import onnx_role, pack_file
from .track import FrameFaces, MainFaceTracker, TrackParams

log = logging.getLogger(__name__)


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
            paths["scrfd"] = pack_file(c.model_dir, c.det_model, "detection")
        if c.embedder_name == "dlib":
            d = model_files.dlib_model_paths()
            paths["dlib_shape_predictor_5"] = d.shape_predictor_5
            paths["dlib_resnet"] = d.face_recognition
        else:
            paths["arcface"] = pack_file(c.model_dir, c.rec_model, "recognition")
        return paths

    def weights_checksum(self) -> str:
        """First 12 hex of a sha256 over the (role, sha256) of every model file used."""
        if self._checksum is None:
            h = hashlib.sha256()
            for role, p in sorted(self.model_paths().items()):
                h.update(f"{role}:{cached_file_digest(p)}\n".encode())
            self._checksum = h.hexdigest()[:12]
        return self._checksum

    def row_columns(self) -> list[str]:
        return ["embedding", "n_frames", "n_face_frames", "face_ratio"]

    def sequence_dim(self) -> int | None:
        if self.config.embedder_name == "dlib":
            return 128
        if self._embedder is not None and self._embedder.dim:
            return int(self._embedder.dim)
        try:
            return onnx_role(self.model_paths()["arcface"])[1]
        except (model_files.ModelFileError, OSError):
            return None

    # -- loading -----------------------------------------------------------------
    def load(self) -> None:
        """Build this thread's detector and embedder (idempotent)."""
        if self._detector is not None and self._embedder is not None:
            return
        from . import detect, embed

        c = self.config
        paths = self.model_paths()
        # onnxruntime providers serve SCRFD and ArcFace only: YuNet runs in OpenCV and the dlib ResNet engine
        # picks its own runtime, so device="cuda" needs no CUDA build of onnxruntime for the yunet_* backends
        uses_ort = c.detector_name != "yunet" or c.embedder_name != "dlib"
        providers = embed.select_providers(c.device) if uses_ort else []
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
            engine = None
            if c.backend == "yunet_resnet":
                import torch

                from .face_engine import DlibResNetEmbedder

                engine = DlibResNetEmbedder(paths["dlib_resnet"], device=c.device, engine=c.engine,
                                            threads=c.threads or torch.get_num_threads(), batch_size=c.batch_size)
            emb: Any = embed.DlibEmbedder(paths["dlib_shape_predictor_5"], paths["dlib_resnet"], engine=engine)
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
        info["model_sha256"] = {r: cached_file_digest(p) for r, p in self.model_paths().items()}
        info["stats"] = dict(self._stats)
        return info

    # -- work --------------------------------------------------------------------
    def extract(self, media: MediaRef) -> ExtractResult:
        failed = missing_stream(media, "video")
        if failed is not None:
            return failed
        self.load()
        stats: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            seq, n_all = self._run(media.path, stats, start=media.segment_start, end=media.segment_end,
                                   side=media.face_side)
        except DecodeError as e:
            return decode_failure(media.item_id, e)
        except Exception as e:  # noqa: BLE001 - per-item failures are data (status table), not crashes
            log.exception("faces: %s failed", media.path)
            return ExtractResult.failed(media.item_id, Status.ERROR, f"{type(e).__name__}: {e}")
        wall = time.perf_counter() - t0
        T = len(seq)
        stats.update(frames=float(T), wall_s=wall, frames_per_s=T / wall if wall > 0 else 0.0)
        self._stats = stats  # the last item's figures, for runtime_info()
        return self._result(media, seq, n_all)

    def _result(self, media: MediaRef, seq: Sequence, n_all: int) -> ExtractResult:
        """The item's status and pooled row from its main-face sequence (``n_all``: frames with any face)."""
        T = len(seq)
        if T == 0:
            return decode_failure(media.item_id, DecodeError(f"{media.path}: no video frame decoded"))
        mask = seq.arrays["mask"]
        n_face = int(mask.sum())
        if n_face == 0:
            msg = (
                f"no face in {T} frames sampled at {self.config.fps:g} fps "
                f"({self.config.detector_name}, det_threshold={self.config.det_threshold:g})"
            )
            return ExtractResult(item_id=media.item_id, status=Status.NO_FACE, message=msg, n_frames=T)
        values = seq.arrays["values"]
        row = {
            "embedding": l2_normalize(values[mask].mean(axis=0)),
            "n_frames": T,
            "n_face_frames": n_face,
            "face_ratio": float(n_face) / T,
        }
        msg = "" if n_all == n_face else f"main face in {n_face}/{T} frames; faces seen in {n_all}"
        return ExtractResult(item_id=media.item_id, status=Status.OK, message=msg, row=row, sequence=seq, n_frames=T)

    def _run(self, path: str, stats: dict[str, float], *, start: float | None = None,
             end: float | None = None, side: str | None = None) -> tuple[Sequence, int]:
        """Stream frames, align every face, track the main face (lazy, batched embedding).

        ``side`` (an item that is one subject of a two-subject video): only the face on that
        side of each frame is a candidate (:meth:`.detect.Detections.on_side`).

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

        for t, rgb in iter_frames(path, fps=c.fps, start=start, end=end):
            d_all = det.detect(rgb)
            d = (d_all.on_side(side, rgb.shape[1]) if side else d_all).largest(c.max_faces)
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
