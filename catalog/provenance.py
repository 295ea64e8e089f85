"""Provenance recorded with every feature set and run: package versions, git revision, device.

Both the pipeline (``feature_set.json``) and fusion (run folders) record it, and
both choose their torch device with :func:`pick_device`, so what is recorded is
what was used. torch is imported only inside the functions that need it: the
catalog package itself does not depend on torch.

Example:
    >>> pick_device("cpu")
    device(type='cpu')
    >>> package_versions()["pyarrow"].split(".")[0]
    '26'
    >>> sorted(collect())
    ['git', 'host', 'packages', 'platform', 'python', 'torch_device']
"""
from __future__ import annotations

import importlib.metadata as md
import platform
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

PACKAGES = ("emofuse", "numpy", "torch", "torchaudio", "transformers", "opensmile", "onnxruntime",
            "insightface", "dlib-bin", "opencv-python-headless", "av", "zarr", "pyarrow", "prefect",
            "dask", "distributed")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to use: the one given, else ``cuda`` when available, else ``cpu``.

    Asking for CUDA where torch sees none raises (rather than silently running on the CPU).
    """
    import torch

    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} requested but CUDA is not available here")
        return dev
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def package_versions() -> dict[str, str]:
    """Installed version of each package in :data:`PACKAGES` (``not installed`` where absent)."""
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def git_revision() -> str:
    """The project's git revision (with ``+dirty`` for local changes), or ``unknown``."""
    here = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (rev + ("+dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def torch_device() -> str:
    """The device :func:`pick_device` chooses by default: ``cuda:<GPU name>`` or ``cpu``."""
    try:
        import torch

        dev = pick_device()
    except ImportError:  # pragma: no cover
        return "unknown"
    return f"cuda:{torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "cpu"


def collect() -> dict[str, Any]:
    """Everything above plus Python version, host and platform, as one JSON-ready dict."""
    return {"packages": package_versions(), "git": git_revision(), "python": platform.python_version(),
            "host": socket.gethostname(), "platform": platform.platform(), "torch_device": torch_device()}


__all__ = ["PACKAGES", "collect", "git_revision", "package_versions", "pick_device", "torch_device"]
