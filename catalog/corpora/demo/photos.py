"""Face photos of the demo corpus: packaged photos, their landmarks, and alignment on a canvas.

The photos ship inside installed packages (six faces of insightface's ``t1.jpg``,
insightface's ``Tom_Hanks_54745.png``, scikit-image's astronaut). :func:`aligned_face`
rotates and scales one face so the eyes are level and the eye-mouth distance is
:data:`EYE_MOUTH` pixels on a :data:`CANVAS`-pixel square; the output frames view its
central :data:`VIEW` pixels (1.25x the frame size, so the per-frame warp keeps detail)
and the margin absorbs the head motion.

Example:
    >>> face = aligned_face(MALE_FACES[2])  # Tom Hanks, from insightface's data folder
    >>> face.image.shape, face.image.dtype
    ((384, 384, 3), dtype('float32'))
    >>> [round(float(v)) for v in face.eye_mid], round(float(face.mouth[1] - face.eye_mid[1]))
    ([192, 165], 64)
"""
from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CANVAS = 384  # aligned face canvas (px)
VIEW = 320  # the part of the canvas an output frame shows
EYE_MID = (192.0, 165.0)  # where the eye midpoint lands on the canvas
EYE_MOUTH = 64.0  # eye-midpoint to mouth-centre distance on the canvas (px)


@dataclass(frozen=True)
class FaceSource:
    """One face in a packaged photo, with landmarks (dlib 68-point means) in photo pixels."""

    name: str
    image: str  # "insightface:t1.jpg", "insightface:Tom_Hanks_54745.png" or "skimage:astronaut"
    sex: str
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    brow: tuple[float, float]
    mouth: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]


# Landmarks measured once with dlib's frontal detector + 68-point shape predictor
# (face_recognition_models); tests check that dlib finds the face in generated frames.
MALE_FACES: tuple[FaceSource, ...] = (
    FaceSource("t1_centre_left", "insightface:t1.jpg", "male", (491.7, 320.3), (540.5, 333.7),
               (519.7, 316.6), (504.9, 382.9), (481.0, 369.0), (531.0, 380.0)),
    FaceSource("t1_top_right", "insightface:t1.jpg", "male", (916.8, 117.8), (950.3, 114.7),
               (928.6, 102.9), (939.4, 173.1), (929.0, 176.0), (959.0, 169.0)),
    FaceSource("tom_hanks", "insightface:Tom_Hanks_54745.png", "male", (36.0, 51.7), (72.2, 50.0),
               (55.6, 40.9), (55.5, 94.0), (37.0, 92.0), (66.0, 91.0)),
    FaceSource("t1_laughing", "insightface:t1.jpg", "male", (761.8, 398.7), (800.5, 403.8),
               (780.4, 390.7), (780.4, 445.1), (764.0, 436.0), (807.0, 442.0)),
)
FEMALE_FACES: tuple[FaceSource, ...] = (
    FaceSource("astronaut", "skimage:astronaut", "female", (203.2, 101.5), (246.5, 104.2),
               (225.9, 91.6), (223.3, 145.5), (201.0, 139.0), (246.0, 141.0)),
    FaceSource("t1_right", "insightface:t1.jpg", "female", (1149.3, 327.7), (1192.0, 324.8),
               (1169.5, 309.4), (1171.1, 368.5), (1153.0, 367.0), (1196.0, 364.0)),
    FaceSource("t1_left", "insightface:t1.jpg", "female", (87.7, 330.2), (128.8, 310.5),
               (100.2, 301.9), (131.8, 362.1), (114.0, 372.0), (148.0, 352.0)),
    FaceSource("t1_dark_hair", "insightface:t1.jpg", "female", (291.8, 212.3), (320.5, 194.3),
               (298.3, 191.7), (321.3, 243.7), (313.0, 249.0), (338.0, 234.0)),
)


def package_dir(package: str) -> str:
    """The folder of an installed package (the photos are data files inside it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the demo corpus takes face photos from the {package!r} package; install it")
    return list(spec.submodule_search_locations)[0]


@lru_cache(maxsize=4)
def photo(image: str) -> np.ndarray:
    """A packaged photo as RGB uint8."""
    kind, name = image.split(":", 1)
    if kind == "skimage":
        import skimage.data

        return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    from PIL import Image

    path = os.path.join(package_dir(kind), "data", "images", name)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


@dataclass(frozen=True)
class Aligned:
    """A face aligned on the canvas (float32 RGB) with its landmarks in canvas pixels."""

    image: np.ndarray
    eye_mid: np.ndarray
    eye_dist: float
    brow: np.ndarray
    mouth: np.ndarray
    mouth_width: float


@lru_cache(maxsize=16)
def aligned_face(src: FaceSource) -> Aligned:
    """Rotate/scale the photo so the eyes are level and the face has a standard size."""
    from PIL import Image, ImageFilter

    img = photo(src.image)
    h, w = img.shape[:2]
    le, re_ = np.array(src.left_eye), np.array(src.right_eye)
    eye_mid = (le + re_) / 2
    angle = math.atan2(re_[1] - le[1], re_[0] - le[0])
    scale = EYE_MOUTH / float(np.linalg.norm(np.array(src.mouth) - eye_mid))
    c, s = math.cos(angle) / scale, math.sin(angle) / scale
    a = np.array([[c, -s], [s, c]])  # canvas -> photo (rotation by the eye-line angle)
    b = eye_mid - a @ np.array(EYE_MID)

    def tophoto(p: np.ndarray) -> np.ndarray:
        return p @ a.T + b

    corners = tophoto(np.array([[0, 0], [CANVAS, 0], [0, CANVAS], [CANVAS, CANVAS]], float))
    x0, y0 = np.floor(corners.min(0)).astype(int) - 8
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 8
    region = img[max(y0, 0): min(y1, h), max(x0, 0): min(x1, w)]
    pads = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0))
    if any(p for pair in pads[:2] for p in pair):
        # Outside the photo: its blurred edge colours, blended in over a soft border.
        padded = np.pad(region, pads, mode="edge")
        blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(12)), np.float32)
        inside = np.zeros(padded.shape[:2], np.uint8)
        inside[pads[0][0]: pads[0][0] + region.shape[0], pads[1][0]: pads[1][0] + region.shape[1]] = 255
        inside_img = Image.fromarray(inside).filter(ImageFilter.MinFilter(9)).filter(ImageFilter.GaussianBlur(3))
        alpha = np.asarray(inside_img, np.float32)[..., None] / 255.0
        region = np.clip(padded * alpha + blurred * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    origin = np.array([x0, y0], float)
    b_local = b - origin
    coeffs = (a[0, 0], a[0, 1], b_local[0], a[1, 0], a[1, 1], b_local[1])
    canvas = Image.fromarray(np.ascontiguousarray(region)).transform(
        (CANVAS, CANVAS), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)
    inv = np.linalg.inv(a)

    def to_canvas(p: tuple[float, float]) -> np.ndarray:
        return inv @ (np.array(p) - b)

    ml, mr = to_canvas(src.mouth_left), to_canvas(src.mouth_right)
    return Aligned(
        image=np.asarray(canvas, np.float32),
        eye_mid=to_canvas(tuple(eye_mid)),
        eye_dist=float(np.linalg.norm(to_canvas(src.right_eye) - to_canvas(src.left_eye))),
        brow=to_canvas(src.brow),
        mouth=to_canvas(src.mouth),
        mouth_width=float(np.linalg.norm(mr - ml)),
    )
