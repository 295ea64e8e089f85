"""Small pieces shared by the fusion models: masks, masked pooling, masked BatchNorm.

Conventions used by every model in :mod:`emofuse.fusion.models`:

* inputs are a dict ``modality -> tensor (N, L, d)`` (a per-clip vector ``(N, d)`` is read
  as a sequence of one step);
* masks are a dict ``modality -> bool tensor (N, L)``, True where the step is valid
  (a modality without a mask is valid everywhere);
* masked steps never influence an output: their content is replaced by zeros with
  :func:`torch.where` (so even NaN there is harmless) and they are left out of every
  pooling, softmax and normalisation statistic.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def as_sequence(x: Tensor) -> Tensor:
    """Return ``x`` as (N, L, d); a per-clip vector (N, d) becomes one step."""
    if x.dim() == 2:
        return x.unsqueeze(1)
    if x.dim() != 3:
        raise ValueError(f"expected a (N, L, d) or (N, d) tensor, got shape {tuple(x.shape)}")
    return x


def get_mask(x: Tensor, masks: Mapping[str, Tensor] | None, name: str) -> Tensor:
    """Bool mask (N, L) for modality ``name`` on ``x``'s device; all True when absent."""
    n, length = x.shape[0], x.shape[1]
    mask = None if masks is None else masks.get(name)
    if mask is None:
        return torch.ones(n, length, dtype=torch.bool, device=x.device)
    if mask.dim() == 1 and length == 1:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape) != (n, length):
        raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, expected {(n, length)}")
    return mask.to(device=x.device, dtype=torch.bool)


def zero_masked(x: Tensor, mask: Tensor) -> Tensor:
    """Replace the content of invalid steps by zeros (NaN-safe, unlike multiplying)."""
    return torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x (N, L, d) over valid steps -> (N, d); zeros for a sample with no valid step."""
    m = mask.unsqueeze(-1).to(x.dtype)
    total = zero_masked(x, mask).sum(dim=1)
    return total / m.sum(dim=1).clamp_min(1.0)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis restricted to valid positions.

    Invalid positions get weight 0. A row with no valid position gets uniform weights over
    all positions (and no NaN, also in the backward pass).
    """
    any_valid = mask.any(dim=-1, keepdim=True)
    effective = mask | ~any_valid
    scores = torch.where(any_valid, scores, torch.zeros_like(scores))
    scores = scores.float().masked_fill(~effective, float("-inf"))
    return torch.softmax(scores, dim=-1)


def sinusoidal_table(n_positions: int, dim: int, *, device: torch.device | None = None) -> Tensor:
    """The fairseq/tensor2tensor sinusoidal table (n_positions, dim) in float32, row 0 all zeros.

    With half = dim // 2 and f_i = exp(-i * ln(10000) / (half - 1)), row p is
    ``[sin(p f_0) .. sin(p f_{half-1}) | cos(p f_0) .. cos(p f_{half-1})]`` (sines first, then
    cosines; a zero column is appended when dim is odd). Row 0 is the padding position and is
    zero. This is the table of the TACFN/CFN-SR (MulT) encoder, not the interleaved one of
    "Attention is all you need".

    >>> t = sinusoidal_table(3, 4)
    >>> t[0].tolist(), [round(v, 4) for v in t[1].tolist()]
    ([0.0, 0.0, 0.0, 0.0], [0.8415, 0.0001, 0.5403, 1.0])
    """
    half = dim // 2
    if half < 2:
        raise ValueError(f"a sinusoidal table needs dim >= 4, got {dim}")
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1)))
    angles = torch.arange(n_positions, device=device, dtype=torch.float32).unsqueeze(1) * freq.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(n_positions, 1, device=device)], dim=1)
    table[0] = 0.0
    return table


def position_embedding(mask: Tensor, dim: int, dtype: torch.dtype) -> Tensor:
    """Sinusoidal positions (N, L, dim) for a bool mask (N, L): valid step t gets row t + 1, others row 0.

    Positions count from 1 along the timeline (a gap does not renumber the steps after it);
    an invalid (padded) step gets position 0, the zero vector.
    """
    length = mask.shape[1]
    table = sinusoidal_table(length + 1, dim, device=mask.device)
    pos = torch.arange(1, length + 1, device=mask.device).expand_as(mask)
    pos = torch.where(mask, pos, torch.zeros_like(pos))
    return table[pos].to(dtype)


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels of a (N, L, C) sequence using valid steps only.

    Padded steps would otherwise pull the statistics toward zero (short clips are
    zero-padded to a fixed window). Statistics are computed in float32. Fewer than two
    valid steps in a training batch: the running statistics are used and not updated.
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """Normalise x (N, L, C); ``mask`` (N, L) marks the steps that count."""
        xf = x.float()
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        if self.training or self.running_mean is None:
            count = mask.to(torch.float32).sum()
            mean = zero_masked(xf, mask).sum(dim=(0, 1)) / count.clamp_min(1.0)
            var = zero_masked((xf - mean) ** 2, mask).sum(dim=(0, 1)) / count.clamp_min(1.0)
            if self.running_mean is not None:
                enough = count > 1  # stays on device: no host sync
                if self.track_running_stats:
                    self._update_running(mean, var, count, enough)
                mean = torch.where(enough, mean, self.running_mean.float())
                var = torch.where(enough, var, self.running_var.float())
        else:
            mean, var = self.running_mean.float(), self.running_var.float()
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight.float() + self.bias.float()
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, count: Tensor, enough: Tensor) -> None:
        """Exponential (or cumulative, momentum=None) update, skipped when ``enough`` is False."""
        self.num_batches_tracked += 1
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = var * count / (count - 1).clamp_min(1.0)
        new_mean = (1 - momentum) * self.running_mean + momentum * mean.to(self.running_mean.dtype)
        new_var = (1 - momentum) * self.running_var + momentum * unbiased.to(self.running_var.dtype)
        self.running_mean.copy_(torch.where(enough, new_mean, self.running_mean))
        self.running_var.copy_(torch.where(enough, new_var, self.running_var))
