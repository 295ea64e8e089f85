"""Keep each worker to its share of the CPU (torch, OpenCV and BLAS all spawn threads)."""
from __future__ import annotations

import os


def limit_threads(n: int = 1) -> None:
    """Limit intra-op threads of the libraries already imported in this process to ``n``."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    try:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:  # pragma: no cover
        pass
