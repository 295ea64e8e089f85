"""New face identities from the eight packaged photos, so actors beyond eight do not share a face.

The demo corpus has eight real face photos (four men, four women). Actors 1-8 use them as
they are; actor ``n`` uses photo ``(n - 1) // 2 % 4`` of its sex with identity variant
``(n - 1) // 8`` (:func:`variant_of`). Variant 0 is the photo itself; every other variant
changes the person, not just the picture, so a speaker-independent split does not see the
same face in training and test: the lower face (mouth, chin, lower cheeks) comes from
another photo of the same sex (colour-matched), the face is made wider or narrower and its
lower part shorter or longer, the eyes move apart, the skin tone shifts, variant 1 is
mirrored and variant 2 wears glasses (:class:`IdentityEdit`, :data:`VARIANTS`). Variants 3 and up (actors 25-99, beyond
RAVDESS's 24) draw their edit from a random stream fixed by the variant number; they are
not measured.

Measured with the faces extractor's embedder (YuNet + dlib's 5 landmarks + dlib ResNet, one
plain frame per identity, L2 distances): the eight photos lie 0.41-0.62 apart (mean 0.53)
and expression edits move a face by 0.13-0.45; a variant lies 0.32-0.49 from its own photo,
and each of the 24 identities of actors 1-24 has its nearest other identity 0.29-0.43 away
(mean distance 0.50). On clips (the extractor's per-clip mean embedding, 24 actors, neutral
and calm), an actor's two clips are at most 0.22 apart, two actors at least 0.29.

Example:
    >>> from emofuse.catalog.corpora.demo.photos import MALE_FACES, aligned_face
    >>> [variant_of(n) for n in (1, 8, 9, 16, 17, 24)]
    [0, 0, 1, 1, 2, 2]
    >>> identity_face(MALE_FACES[0], 0) is aligned_face(MALE_FACES[0])  # actors 1-8: the photo as it is
    True
    >>> v = identity_face(MALE_FACES[0], 1)
    >>> v.image.shape, bool(abs(v.eye_dist - 1.16 * aligned_face(MALE_FACES[0]).eye_dist) < 1e-3)
    ((384, 384, 3), True)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from emofuse.catalog.corpora.demo.faces import bilinear
from emofuse.catalog.corpora.demo.photos import EYE_MOUTH, FEMALE_FACES, MALE_FACES, Aligned, FaceSource, aligned_face

#: Photos per sex; actors cycle through them, then through the identity variants.
PHOTOS_PER_SEX = 4


@dataclass(frozen=True)
class IdentityEdit:
    """How one identity variant changes an aligned photo.

    ``donor_shift``: the lower face comes from the photo this many places on in the same-sex
    list; ``width``: horizontal scale about the eye midpoint; ``length``: vertical scale of the
    face below the eyes; ``eye_gap``: canvas pixels each eye moves outward; ``mirror``: flip
    left-right; ``glasses``: darkness of drawn glasses rims (0: none); ``tone``: RGB gain.
    """

    donor_shift: int
    width: float = 1.0
    length: float = 1.0
    eye_gap: float = 0.0
    mirror: bool = False
    glasses: float = 0.0
    tone: tuple[float, float, float] = (1.0, 1.0, 1.0)


#: Variants 1 and 2 (actors 9-16 and 17-24), chosen by the distances measured in the module docstring.
VARIANTS: dict[int, IdentityEdit] = {
    1: IdentityEdit(donor_shift=1, width=1.16, length=0.88, eye_gap=4.0, mirror=True, tone=(1.06, 1.0, 0.9)),
    2: IdentityEdit(donor_shift=2, width=0.86, length=1.14, glasses=0.85, tone=(0.8, 0.7, 0.62)),
}


def variant_of(actor: int) -> int:
    """The identity variant of an actor: 0 for actors 1-8, 1 for 9-16, 2 for 17-24, ..."""
    return (actor - 1) // (2 * PHOTOS_PER_SEX)


def identity_edit(variant: int) -> IdentityEdit:
    """The edit of ``variant`` (>= 1): :data:`VARIANTS`, else drawn from a stream fixed by the variant."""
    if variant in VARIANTS:
        return VARIANTS[variant]
    rng = np.random.default_rng([variant, 0x1D])
    return IdentityEdit(
        donor_shift=1 + variant % (PHOTOS_PER_SEX - 1),
        width=float(rng.choice([rng.uniform(0.84, 0.9), rng.uniform(1.1, 1.18)])),
        length=float(rng.choice([rng.uniform(0.86, 0.92), rng.uniform(1.08, 1.16)])),
        eye_gap=float(rng.uniform(-3.0, 5.0)),
        mirror=bool(variant % 2),
        glasses=0.85 if variant % 2 == 0 else 0.0,
        tone=tuple(float(g) for g in rng.uniform(0.75, 1.08, 3)),  # type: ignore[arg-type]
    )


def _grid(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def transplant_lower(face: Aligned, donor: Aligned) -> Aligned:
    """``face`` with ``donor``'s mouth, chin and lower cheeks (scaled to its mouth width, colour-matched)."""
    yy, xx = _grid(face.image)
    cx, cy = (float(v) for v in face.eye_mid)
    mx, my = (float(v) for v in face.mouth)
    k = face.mouth_width / donor.mouth_width
    dmx, dmy = (float(v) for v in donor.mouth)
    src = bilinear(donor.image, dmy + (yy - my) / k, dmx + (xx - mx) / k)
    r = np.sqrt(((xx - cx) / (0.78 * face.eye_dist)) ** 2 + ((yy - (my + 6.0)) / (0.72 * EYE_MOUTH)) ** 2)
    mask = np.clip((1.15 - r) / 0.3, 0.0, 1.0) / (1.0 + np.exp(-(yy - (cy + 0.5 * EYE_MOUTH)) / 4.0))
    inside = mask > 0.5
    for c in range(3):
        s, t = src[..., c][inside], face.image[..., c][inside]
        src[..., c] = (src[..., c] - s.mean()) / (s.std() + 1e-3) * t.std() + t.mean()
    image = face.image * (1.0 - mask[..., None]) + src * mask[..., None]
    return Aligned(np.clip(image, 0, 255).astype(np.float32), face.eye_mid, face.eye_dist, face.brow, face.mouth,
                   face.mouth_width)


def reshape(face: Aligned, edit: IdentityEdit) -> Aligned:
    """Width, lower-face length, eye gap, mirror, skin tone and glasses of ``edit`` applied to ``face``."""
    yy, xx = _grid(face.image)
    cx, cy = (float(v) for v in face.eye_mid)
    sx = cx + (xx - cx) / edit.width  # output pixel -> source pixel
    sy = np.where(yy > cy, cy + (yy - cy) / edit.length, yy)
    if edit.eye_gap:
        band = np.exp(-0.5 * ((yy - cy) / 18.0) ** 2) * np.exp(-0.5 * ((xx - cx) / 80.0) ** 2)
        sx = sx - edit.eye_gap * np.tanh((xx - cx) / 12.0) * band
    if edit.mirror:
        sx = 2 * cx - sx
    image = bilinear(face.image, sy, sx) * np.array(edit.tone, np.float32)
    eye_dist = face.eye_dist * edit.width
    if edit.glasses:
        rims = np.zeros_like(yy)
        for side in (-1.0, 1.0):
            ex = cx + side * eye_dist / 2
            r = np.sqrt(((xx - ex) / (0.42 * eye_dist)) ** 2 + ((yy - cy) / (0.30 * eye_dist)) ** 2)
            rims = np.maximum(rims, np.exp(-0.5 * ((r - 1.0) / 0.09) ** 2))
        bridge = np.exp(-0.5 * ((yy - cy + 2.0) / 2.5) ** 2) * (np.abs(xx - cx) < 0.12 * eye_dist)
        alpha = edit.glasses * np.maximum(rims, bridge)[..., None]
        image = image * (1.0 - alpha) + 20.0 * alpha

    def moved(p: np.ndarray) -> np.ndarray:
        x = cx + (float(p[0]) - cx) * edit.width
        y = cy + (float(p[1]) - cy) * edit.length if p[1] > cy else float(p[1])
        return np.array([2 * cx - x if edit.mirror else x, y])

    return Aligned(np.clip(image, 0, 255).astype(np.float32), moved(face.eye_mid), eye_dist, moved(face.brow),
                   moved(face.mouth), face.mouth_width * edit.width)


@lru_cache(maxsize=32)
def identity_face(src: FaceSource, variant: int) -> Aligned:
    """The aligned face of photo ``src`` as identity ``variant`` (0: the photo itself, cached as is)."""
    face = aligned_face(src)
    if variant == 0:
        return face
    edit = identity_edit(variant)
    same_sex = MALE_FACES if src in MALE_FACES else FEMALE_FACES
    donor = same_sex[(same_sex.index(src) + edit.donor_shift) % len(same_sex)]
    return reshape(transplant_lower(face, aligned_face(donor)), edit)
