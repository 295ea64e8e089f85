"""The batched dlib face descriptor (dlib's weights in torch / onnxruntime) against dlib itself.

Chips are real faces from photos that installed packages ship (insightface's ``t1.jpg``
with six people and ``Tom_Hanks_54745.png``, scikit-image's astronaut), aligned the way
the faces extractor aligns them for dlib: dlib's 5-point ``shape_predictor`` inside a face
box, then ``dlib.get_face_chip`` (150x150, padding 0.25). Each person appears three times:
in the photo, in a rotated and scaled copy of the photo, and mirrored, so same-person and
other-person distances can be compared. No timed assertions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")
dlib = pytest.importorskip("dlib")

from emofuse.pipeline import model_files  # noqa: E402
from emofuse.pipeline.faces.dlib_resnet import DlibResNet, synthetic_dlib_net  # noqa: E402
from emofuse.pipeline.faces.dlib_weights import DlibFormatError, DlibReader, read_dlib_net  # noqa: E402
from emofuse.pipeline.faces.face_engine import DlibResNetEmbedder, as_chip_batch, cached_onnx_path  # noqa: E402

IMAGES = Path(__import__("insightface").__file__).parent / "data" / "images"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def paths() -> model_files.DlibModelPaths:
    return model_files.dlib_model_paths()


def _photos() -> list[np.ndarray]:
    from skimage import data

    out = []
    for name in ("t1.jpg", "Tom_Hanks_54745.png"):
        bgr = cv2.imread(str(IMAGES / name))
        assert bgr is not None, f"packaged photo {name} not found in {IMAGES}"
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    out.append(np.ascontiguousarray(data.astronaut()))
    return out


@pytest.fixture(scope="module")
def faces(paths: model_files.DlibModelPaths) -> tuple[np.ndarray, np.ndarray]:
    """(chips (N,150,150,3) uint8, person id per chip): 8 people x (photo, rotated+scaled copy, mirror)."""
    detector = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(paths.shape_predictor_5))
    chips, person = [], []
    for img in _photos():
        rects = detector(img, 0)
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 7.0, 0.85)
        warped = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        for r in rects:
            pid = len(set(person))
            chip = dlib.get_face_chip(img, sp(img, r), size=150, padding=0.25)
            corners = np.array([[r.left(), r.top(), 1], [r.right(), r.top(), 1],
                                [r.left(), r.bottom(), 1], [r.right(), r.bottom(), 1]], float) @ m.T
            (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
            rw = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
            chips += [chip, dlib.get_face_chip(warped, sp(warped, rw), size=150, padding=0.25),
                      np.ascontiguousarray(chip[:, ::-1])]
            person += [pid] * 3
    assert len(set(person)) == 8, f"expected 8 faces (6 in t1.jpg, Tom Hanks, astronaut), found {len(set(person))}"
    return np.stack(chips), np.array(person)


@pytest.fixture(scope="module")
def dlib_desc(paths: model_files.DlibModelPaths, faces: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    rec = dlib.face_recognition_model_v1(str(paths.face_recognition))
    return np.array([np.asarray(v) for v in rec.compute_face_descriptor(list(faces[0]))], np.float32)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module", params=["onnxruntime", "torch"])
def engine(request: pytest.FixtureRequest, paths: model_files.DlibModelPaths, onnx_cache: Path) -> DlibResNetEmbedder:
    return DlibResNetEmbedder(paths.face_recognition, device="cpu", engine=request.param, threads=1,
                              cache_dir=onnx_cache)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _distances(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)


# -- equality with dlib ---------------------------------------------------------------------


def test_equals_dlib_on_real_faces(engine: DlibResNetEmbedder, faces, dlib_desc: np.ndarray) -> None:
    out = engine.embed(faces[0])
    assert out.shape == (len(faces[0]), 128) and out.dtype == np.float32
    cos = _cosine(out, dlib_desc)
    assert cos.min() >= 0.999, f"{engine.engine}: cosine to dlib down to {cos.min():.6f}"
    assert np.abs(out - dlib_desc).max() < 1e-4  # same scale too: descriptors are not normalised


def test_equals_dlibs_full_image_call(engine: DlibResNetEmbedder, paths: model_files.DlibModelPaths) -> None:
    """``compute_face_descriptor(img, shape)`` cuts the chip itself: get_face_chip with size 150, padding 0.25."""
    img = _photos()[1]  # Tom Hanks
    sp = dlib.shape_predictor(str(paths.shape_predictor_5))
    rec = dlib.face_recognition_model_v1(str(paths.face_recognition))
    shape = sp(img, dlib.get_frontal_face_detector()(img, 0)[0])
    ref = np.asarray(rec.compute_face_descriptor(img, shape), np.float32)
    got = engine.embed([dlib.get_face_chip(img, shape, size=150, padding=0.25)])[0]
    assert np.abs(got - ref).max() < 1e-4


def test_same_and_other_person_geometry_unchanged(engine: DlibResNetEmbedder, faces, dlib_desc: np.ndarray) -> None:
    chips, person = faces
    mine, ref = _distances(engine.embed(chips)), _distances(dlib_desc)
    assert np.abs(mine - ref).max() < 0.01
    same = person[:, None] == person[None, :]
    off_diag = ~np.eye(len(person), dtype=bool)
    # dlib's rule (same person below 0.6) decides every pair the same way, and is right here
    assert np.array_equal(mine < 0.6, ref < 0.6)
    assert (mine[same & off_diag] < 0.6).all() and (mine[~same] >= 0.6).all()
    masked = np.where(off_diag, mine, np.inf)
    assert (person[masked.argmin(1)] == person).all()  # every chip's nearest other chip is the same person


def test_batches_equal_single_chips(engine: DlibResNetEmbedder, faces) -> None:
    chips = faces[0][:9]
    whole = engine.embed(chips)
    one_by_one = np.concatenate([engine.embed(c[None]) for c in chips])
    assert np.allclose(whole, one_by_one, atol=1e-5)
    assert np.allclose(whole, engine.embed(list(chips), batch_size=4), atol=1e-5)


def test_embed_crops_is_normalised_for_the_extractor(engine: DlibResNetEmbedder, faces) -> None:
    raw, unit = engine.embed(faces[0][:3]), engine.embed_crops(list(faces[0][:3]))
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert np.allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    assert engine.embed_crops([]).shape == (0, 128)


# -- device, dtype, engines -------------------------------------------------------------------


def test_device_dtype_and_engine_are_explicit(paths: model_files.DlibModelPaths, onnx_cache: Path) -> None:
    e = DlibResNetEmbedder(paths.face_recognition, device="cpu", engine="torch", dtype=torch.float64)
    p = next(e.model.parameters())
    assert (p.device.type, p.dtype) == ("cpu", torch.float64)
    assert e.info()["embedder_dtype"] == "float64" and e.info()["embedder_device"] == "cpu"
    assert e.embed(np.zeros((2, 150, 150, 3), np.uint8)).dtype == np.float32
    auto = DlibResNetEmbedder(paths.face_recognition, device="cpu", threads=1, cache_dir=onnx_cache)
    assert auto.engine == "onnxruntime" and auto.info()["onnxruntime_provider"] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="float32"):
        DlibResNetEmbedder(paths.face_recognition, device="cpu", engine="onnxruntime", dtype=torch.float16)
    with pytest.raises(ValueError, match="engine"):
        DlibResNetEmbedder(paths.face_recognition, engine="tensorrt")


def test_rejects_chips_dlib_would_reject() -> None:
    with pytest.raises(ValueError, match="150x150"):
        as_chip_batch(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        as_chip_batch(np.zeros((1, 150, 150, 3), np.float32))
    gray = as_chip_batch([np.full((150, 150), 7, np.uint8)])
    assert gray.shape == (1, 150, 150, 3) and (gray == 7).all()


def test_onnx_export_is_cached_and_a_damaged_cache_is_replaced(paths: model_files.DlibModelPaths, tmp_path: Path,
                                                               faces) -> None:
    first = DlibResNetEmbedder(paths.face_recognition, device="cpu", threads=1, cache_dir=tmp_path)
    cached = cached_onnx_path(paths.face_recognition, tmp_path)
    assert first.onnx_path == str(cached) and cached.stat().st_size > 20_000_000
    want = first.embed(faces[0][:2])
    mtime = cached.stat().st_mtime_ns
    second = DlibResNetEmbedder(paths.face_recognition, device="cpu", cache_dir=tmp_path)
    assert np.array_equal(second.embed(faces[0][:2]), want)
    assert cached.stat().st_mtime_ns == mtime  # read, not exported again
    cached.write_bytes(b"not an onnx graph")
    again = DlibResNetEmbedder(paths.face_recognition, device="cpu", cache_dir=tmp_path)
    assert np.allclose(again.embed(faces[0][:2]), want, atol=1e-6)
    assert cached.stat().st_size > 20_000_000


@needs_cuda
@pytest.mark.parametrize("dtype,min_cos", [(torch.float32, 0.999), (torch.float16, 0.99)])
def test_cuda_equals_dlib(paths: model_files.DlibModelPaths, faces, dlib_desc: np.ndarray, dtype: torch.dtype,
                          min_cos: float) -> None:
    e = DlibResNetEmbedder(paths.face_recognition, device="auto", dtype=dtype)
    assert e.engine == "torch" and e.device.type == "cuda"
    out = e.embed(faces[0])
    assert out.dtype == np.float32 and next(e.model.parameters()).dtype == dtype
    assert _cosine(out, dlib_desc).min() >= min_cos
    one_by_one = np.concatenate([e.embed(c[None]) for c in faces[0][:4]])
    assert _cosine(out[:4], one_by_one).min() >= 0.9999


@needs_cuda
def test_faces_extractor_embeds_on_cuda(tmp_path: Path) -> None:
    """The faces extractor end to end (decode, YuNet, dlib alignment, the engine) picks the GPU by itself
    and gives the CPU extractor's embeddings under the same feature-set key."""
    from emofuse.pipeline.dummies import write_video
    from emofuse.pipeline.faces import FacesConfig, FacesExtractor
    from emofuse.pipeline.registry import MediaRef, Status

    model_files.yunet_path()  # present beforehand: a GPU machine may have no network to fetch it
    face = cv2.resize(_photos()[1], None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)  # Tom Hanks
    frames = []
    for i in range(8):  # 8 frames at 10 fps, the face moving: 4 frames sampled at 5 fps
        f = np.full((240, 320, 3), 90, np.uint8)
        y, x = 30 + (i % 3) * 2, 70 + i * 3
        f[y : y + face.shape[0], x : x + face.shape[1]] = face
        frames.append(f)
    media = MediaRef(item_id="hanks", path=str(write_video(tmp_path / "hanks.mp4", frames)))
    auto, gpu, cpu = (FacesExtractor(FacesConfig(device=d)) for d in ("auto", "cuda", "cpu"))
    assert auto.key == gpu.key == cpu.key  # the device is a runtime setting, not part of the features
    results = {}
    for name, ex in (("auto", auto), ("cuda", gpu), ("cpu", cpu)):
        r = ex.extract(media)
        assert r.status == Status.OK, r.message
        info = ex.runtime_info()
        assert info["embedder_device"].startswith("cpu" if name == "cpu" else "cuda"), info
        assert info["embedder_engine"] == ("onnxruntime" if name == "cpu" else "torch"), info
        results[name] = r.sequence.arrays
    ref = results["cpu"]
    assert ref["mask"].sum() == 4
    for name in ("auto", "cuda"):
        got = results[name]
        assert np.array_equal(got["mask"], ref["mask"]) and np.allclose(got["bbox"], ref["bbox"])
        m = ref["mask"]
        assert _cosine(got["values"][m], ref["values"][m]).min() >= 0.999


# -- the model file ---------------------------------------------------------------------------


def test_reads_dlibs_model_file(paths: model_files.DlibModelPaths) -> None:
    net = read_dlib_net(paths.face_recognition)
    kinds = [layer.kind for layer in net.layers]
    assert {k: kinds.count(k) for k in set(kinds)} == {"con": 29, "affine": 29, "relu": 29, "add_prev": 14,
                                                        "avg_pool": 5, "max_pool": 1, "fc": 1}
    assert np.allclose(net.input.avg_rgb, (122.782, 117.001, 104.298), atol=1e-3)
    assert (net.input.nr, net.input.nc) == (150, 150)
    assert net.layers[0].arrays["weight"].shape == (32, 3, 7, 7) and net.layers[0].attrs["padding"] == (0, 0)
    assert net.layers[-1].arrays["weight"].shape == (256, 128)
    model = DlibResNet.from_dlib(net)
    assert [b.out_chw for b in model.blocks if b.down] == [(64, 17, 17), (128, 8, 8), (256, 4, 4), (256, 2, 2)]


def test_truncated_or_foreign_files_are_refused(paths: model_files.DlibModelPaths, tmp_path: Path) -> None:
    data = paths.face_recognition.read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match="end of data"):
        read_dlib_net(cut)
    longer = tmp_path / "longer.dat"
    longer.write_bytes(data + b"\x00")
    with pytest.raises(DlibFormatError, match="left after"):
        read_dlib_net(longer)
    shape_predictor = paths.shape_predictor_5  # a dlib file, but not a network
    with pytest.raises(DlibFormatError):
        read_dlib_net(shape_predictor)
    with pytest.raises(DlibFormatError, match="bool"):
        DlibReader(b"x").bool()


def test_other_wiring_is_refused() -> None:
    net = synthetic_dlib_net()
    net.headers[5] = 2  # a tag turned into a computational layer: not the anet_type wiring
    with pytest.raises(DlibFormatError, match="wiring"):
        DlibResNet.from_dlib(net)
    net = synthetic_dlib_net()
    del net.layers[10]
    with pytest.raises(DlibFormatError, match="residual block"):
        DlibResNet.from_dlib(net)
