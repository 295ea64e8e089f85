"""Faces: detection -> 5 landmarks -> alignment -> embedding of each clip's main face.

Importing this package registers the ``faces`` extractor (see :mod:`emofuse.pipeline.faces.extractor`);
heavy libraries (OpenCV, dlib, insightface) load only when an extractor loads its models.
"""
from __future__ import annotations

from .config import BACKENDS, FacesConfig
from .extractor import FacesExtractor
from .packs import onnx_role

__all__ = ["BACKENDS", "FacesConfig", "FacesExtractor", "onnx_role"]
