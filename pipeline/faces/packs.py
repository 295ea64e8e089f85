"""Local insightface model packs: which ONNX file plays which role, found without a session.

Packs are never downloaded: the user points ``model_dir`` at an unpacked pack
(e.g. ``~/.insightface/models/buffalo_l``) or names the files.

Example:
    A recognition-shaped graph (one 112x112 image in, a 512-d vector out) is
    what insightface's router takes for ArcFace:

    >>> import os, tempfile
    >>> import onnx
    >>> from onnx import TensorProto, helper
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 112, 112])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 512])
    >>> graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    >>> path = os.path.join(tempfile.mkdtemp(), "rec.onnx")
    >>> onnx.save(helper.make_model(graph), path)
    >>> onnx_role(path)
    ('recognition', 512)
    >>> pack_file(os.path.dirname(path), None, "recognition").name
    'rec.onnx'
    >>> pack_file(None, None, "detection")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emofuse.pipeline.model_files.ModelFileError: backend 'insightface' needs a local model pack for its detection model: ...
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from emofuse.pipeline import model_files

_ROLE_CACHE: dict[tuple[str, int, int], tuple[str, int | None]] = {}


def onnx_role(path: str | Path) -> tuple[str, int | None]:
    """How insightface's ModelRouter would route an ONNX file, read from the graph (no session).

    Returns (role, output width): role is "detection", "landmark", "attribute",
    "swapper", "recognition" or "unknown".
    """
    import onnx

    p = os.path.realpath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    if key in _ROLE_CACHE:
        return _ROLE_CACHE[key]
    try:
        m = onnx.load(p, load_external_data=False)
    except TypeError:  # pragma: no cover - very old onnx
        m = onnx.load(p)
    g = m.graph
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]

    def dims(v: Any) -> list[int | None]:
        return [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]

    shape = dims(inputs[0]) if inputs else []
    out_w = None
    if g.output:
        od = dims(g.output[0])
        out_w = od[-1] if od else None
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
    if len(g.output) >= 5:
        role = "detection"
    elif h == 192 and w == 192:
        role = "landmark"
    elif h == 96 and w == 96:
        role = "attribute"
    elif len(inputs) == 2 and h == 128 and w == 128:
        role = "swapper"
    elif h is not None and h == w and h >= 112 and h % 16 == 0:
        role = "recognition"
    else:
        role = "unknown"
    _ROLE_CACHE[key] = (role, out_w)
    return role, out_w


def pack_file(model_dir: str | None, name: str | None, role: str) -> Path:
    """The ``role`` model file: ``name`` (in ``model_dir`` or a path), else the one such file in ``model_dir``."""
    if name is not None:
        p = Path(name).expanduser()
        if not p.is_absolute() and model_dir is not None:
            p = Path(model_dir).expanduser() / p
        if not p.is_file():
            raise model_files.ModelFileError(f"{role} model {p} does not exist")
        return p
    if not model_dir:
        raise model_files.ModelFileError(
            f"backend 'insightface' needs a local model pack for its {role} model: set model_dir "
            "(e.g. ~/.insightface/models/buffalo_l) or rec_model/det_model; packs are never downloaded"
        )
    d = Path(model_dir).expanduser()
    if not d.is_dir():
        raise model_files.ModelFileError(f"model_dir {d} is not a folder (an unpacked insightface model pack)")
    found = [p for p in sorted(d.glob("*.onnx")) if onnx_role(p)[0] == role]
    if not found:
        raise model_files.ModelFileError(f"no {role} ONNX model in {d} ({[p.name for p in d.glob('*.onnx')]})")
    if len(found) > 1:
        raise model_files.ModelFileError(
            f"several {role} models in {d}: {[p.name for p in found]}; choose one with "
            f"{'rec_model' if role == 'recognition' else 'det_model'}"
        )
    return found[0]


__all__ = ["onnx_role", "pack_file"]
