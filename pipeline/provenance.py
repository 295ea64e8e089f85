"""Provenance: package versions, device, git revision — recorded with every feature set and run."""
from __future__ import annotations

import importlib.metadata as md
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = ("emofuse", "numpy", "torch", "torchaudio", "transformers", "opensmile", "onnxruntime",
            "insightface", "dlib-bin", "opencv-python-headless", "av", "zarr", "pyarrow", "prefect",
            "dask", "distributed")


def package_versions() -> dict[str, str]:
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
    try:
        import torch

        return f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "unknown"


def collect() -> dict[str, Any]:
    return {"packages": package_versions(), "git": git_revision(), "python": platform.python_version(),
            "host": socket.gethostname(), "platform": platform.platform(), "torch_device": torch_device()}
