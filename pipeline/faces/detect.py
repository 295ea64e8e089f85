"""Face detectors with 5 landmarks: YuNet (OpenCV ``FaceDetectorYN``) and SCRFD (insightface).

Both take an RGB uint8 frame and return :class:`Detections` in that frame's
pixel coordinates, landmarks in the ArcFace order (image-left eye, image-right
eye, nose, image-left mouth corner, image-right mouth corner).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Detections:
    """Faces found in one frame: ``boxes`` (N,4) x1,y1,x2,y2; ``scores`` (N,); ``kps`` (N,5,2)."""

    boxes: np.ndarray
    scores: np.ndarray
    kps: np.ndarray

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, idx: np.ndarray) -> "Detections":
        return Detections(self.boxes[idx], self.scores[idx], self.kps[idx])

    def largest(self, k: int) -> "Detections":
        """The ``k`` largest faces (by box area), largest first."""
        return self.take(np.argsort(-_areas(self.boxes), kind="stable")[:k])

    def on_side(self, side: str, width: int) -> "Detections":
        """The face of the subject on ``side`` (``"left"``/``"right"``) of a two-subject frame ``width`` px wide.

        Of two or more faces, the two largest are the subjects and the one further to that side
        is taken; a lone face is taken only when its centre lies in that half of the frame (the
        other subject may be the one still visible).

        >>> d = Detections(np.array([[200, 0, 300, 100], [10, 0, 90, 80], [150, 0, 160, 10]], np.float32),
        ...                np.ones(3, np.float32), np.zeros((3, 5, 2), np.float32))
        >>> d.on_side("left", 320).boxes[:, 0].tolist(), d.on_side("right", 320).boxes[:, 0].tolist()
        ([10.0], [200.0])
        >>> len(d.take(np.array([0])).on_side("left", 320)), len(d.take(np.array([0])).on_side("right", 320))
        (0, 1)
        """
        if side not in ("left", "right"):
            raise ValueError(f"face side {side!r}: use 'left' or 'right'")
        if len(self) == 0:
            return self
        cx = (self.boxes[:, 0] + self.boxes[:, 2]) / 2
        if len(self) == 1:
            inside = cx[0] < width / 2 if side == "left" else cx[0] >= width / 2
            return self if inside else self.take(np.zeros(0, np.int64))
        two = np.argsort(-_areas(self.boxes), kind="stable")[:2]
        pick = two[np.argmin(cx[two])] if side == "left" else two[np.argmax(cx[two])]
        return self.take(np.array([pick]))


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


class YuNetDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) on CPU.

    YuNet runs at the image's own resolution, so frames whose long side exceeds
    ``max_side`` are downscaled for detection (boxes are mapped back), which keeps
    the cost flat for HD video.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        max_side: int | None = 640,
    ) -> None:
        import cv2

        self.model_path = str(model_path)
        self.max_side = max_side
        self.score_threshold = score_threshold
        self._cv2 = cv2
        self._size: tuple[int, int] = (320, 320)
        # OpenCV 5 warns on every create that its new graph engine ignores the target; quiet just that call.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._det = cv2.FaceDetectorYN.create(
                self.model_path, "", self._size, score_threshold, nms_threshold, top_k,
                cv2.dnn.DNN_BACKEND_OPENCV, cv2.dnn.DNN_TARGET_CPU,
            )
        finally:
            cv2.utils.logging.setLogLevel(level)

    def detect(self, rgb: np.ndarray) -> Detections:
        cv2 = self._cv2
        h, w = rgb.shape[:2]
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / float(max(h, w))
            img = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        else:
            img = rgb
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, faces = self._det.detect(bgr)
        if faces is None or len(faces) == 0:
            return Detections.empty()
        faces = np.asarray(faces, dtype=np.float32)
        x, y, bw, bh = faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 3]
        boxes = np.stack([x, y, x + bw, y + bh], axis=1) / scale
        # YuNet order: right eye, left eye (the subject's, i.e. image-left first), nose,
        # right mouth corner, left mouth corner: the same order as ArcFace's template.
        kps = faces[:, 4:14].reshape(-1, 5, 2) / scale
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return Detections(boxes.astype(np.float32), faces[:, 14].astype(np.float32), kps.astype(np.float32))

    def info(self) -> dict[str, Any]:
        return {"detector": "yunet", "detector_model": self.model_path, "detector_device": "cpu (opencv dnn)"}


class ScrfdDetector:
    """insightface's SCRFD from a local ONNX file, through ``insightface.model_zoo.get_model``."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        providers: list[str],
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        input_size: tuple[int, int] = (640, 640),
        sess_options: Any = None,
    ) -> None:
        from insightface.model_zoo import get_model

        kwargs: dict[str, Any] = {"providers": providers}
        if sess_options is not None:
            kwargs["sess_options"] = sess_options
        model = get_model(str(model_path), **kwargs)
        if model is None or type(model).__name__ != "SCRFD":
            raise ValueError(f"{model_path} is not routed as an SCRFD detector by insightface (got {type(model).__name__})")
        model.prepare(0, det_thresh=score_threshold, nms_thresh=nms_threshold, input_size=input_size)
        self.model = model
        self.model_path = str(model_path)
        self.input_size = tuple(input_size)
        self.score_threshold = score_threshold

    def detect(self, rgb: np.ndarray) -> Detections:
        import cv2

        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        det, kps = self.model.detect(bgr, input_size=self.input_size, det_thresh=self.score_threshold)
        if det is None or len(det) == 0:
            return Detections.empty()
        det = np.asarray(det, np.float32)
        if kps is None:
            raise RuntimeError(f"{self.model_path} gives no landmarks; alignment needs a 5-point SCRFD model")
        h, w = rgb.shape[:2]
        boxes = det[:, :4].copy()
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return Detections(boxes, det[:, 4].copy(), np.asarray(kps, np.float32))

    def info(self) -> dict[str, Any]:
        return {
            "detector": "scrfd",
            "detector_model": self.model_path,
            "detector_providers": list(self.model.session.get_providers()),
        }
