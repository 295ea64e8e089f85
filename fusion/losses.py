"""Training losses: concordance correlation (per window, masked) and cross-entropy.

CCC is computed along time within each window, over its valid steps, as in RCMA
training (loss 1 - CCC). Windows with fewer than two valid steps carry no signal and are
left out of the mean.

Example:
    >>> import torch
    >>> from emofuse.fusion.losses import ccc_loss
    >>> y = torch.randn(4, 50, 2)
    >>> float(ccc_loss(y, y)) < 1e-6
    True
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _as_3d(x: Tensor) -> Tensor:
    return x.unsqueeze(-1) if x.dim() == 2 else x


def ccc(pred: Tensor, target: Tensor, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """CCC per window and target: pred/target (N, L, K) or (N, L), mask (N, L) -> (N, K).

    CCC = 2 cov / (var_p + var_t + (mean_p - mean_t)^2) with population moments over the
    valid steps, in float32.
    """
    p, t = _as_3d(pred).float(), _as_3d(target).float()
    if mask is None:
        mask = torch.ones(p.shape[:2], dtype=torch.bool, device=p.device)
    m = mask.to(device=p.device, dtype=torch.float32).unsqueeze(-1)
    zero = torch.zeros((), device=p.device)
    p = torch.where(m > 0, p, zero)  # NaN-safe for padded steps
    t = torch.where(m > 0, t, zero)
    n = m.sum(dim=1).clamp_min(1.0)
    mp, mt = (p * m).sum(1) / n, (t * m).sum(1) / n
    dp, dt = (p - mp.unsqueeze(1)) * m, (t - mt.unsqueeze(1)) * m
    vp, vt = (dp**2).sum(1) / n, (dt**2).sum(1) / n
    cov = (dp * dt).sum(1) / n
    return 2 * cov / (vp + vt + (mp - mt) ** 2 + eps)


def ccc_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """1 - CCC, averaged over targets and over windows with at least two valid steps."""
    values = ccc(pred, target, mask)
    if mask is None:
        valid = torch.full((values.shape[0],), _as_3d(pred).shape[1] > 1, device=values.device)
    else:
        valid = mask.to(values.device).sum(dim=1) > 1
    w = valid.to(values.dtype).unsqueeze(-1).expand_as(values)
    return 1.0 - (values * w).sum() / w.sum().clamp_min(1.0)


def cross_entropy(
    logits: Tensor, labels: Tensor, *, class_weights: Tensor | None = None, label_smoothing: float = 0.0
) -> Tensor:
    """Mean cross-entropy of logits (N, C) against integer labels (N,), computed in float32."""
    weight = None if class_weights is None else class_weights.to(device=logits.device, dtype=torch.float32)
    return F.cross_entropy(logits.float(), labels.to(logits.device).long(), weight=weight,
                           label_smoothing=label_smoothing)
