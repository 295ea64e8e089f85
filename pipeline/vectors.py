"""Vector helpers shared by the embedding extractors (faces, text).

Example:
    >>> import numpy as np
    >>> l2_normalize(np.array([3.0, 4.0]))
    array([0.6, 0.8], dtype=float32)
    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
"""
from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


def l2_normalize(x: np.ndarray, eps: float = 1e-12, *, dtype: DTypeLike = np.float32) -> np.ndarray:
    """``x`` divided by its L2 norm along the last axis (rows of a matrix), as ``dtype``; zero vectors stay zero.

    A vector's norm is NumPy's ``norm(x)`` and a matrix's ``norm(x, axis=-1)``:
    the two sum in different orders, and extractors keep the order they always
    used, so stored embeddings do not change in their last bits.
    """
    x = np.asarray(x, dtype=dtype)
    n = np.linalg.norm(x) if x.ndim == 1 else np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, eps)).astype(dtype, copy=False)


__all__ = ["l2_normalize"]
