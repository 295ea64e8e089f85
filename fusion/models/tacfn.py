"""TACFN: a query modality selects its useful part by self-attention and reweights a target.

Follows ``models.md`` (TACFN, arXiv 2505.06536; official code is CFN-SR, arXiv 2111.02172),
run on cached features. Default roles: target = face-embedding sequence (N, P, 512),
query = eGeMAPS LLD sequence (N, T, 25), no extra modality. Any other modality (e.g. text)
can be named in ``extra``: it is mean-pooled over its valid steps and concatenated into
the head.

Forward, for target x and query y:
    q   = last valid step of a causal pre-LN Transformer over y          (N, 64)
    s   = tanh(W_c x + W_q q);  e = w_a s;  a = softmax over valid P      (N, P)
    x'  = x * a + x
    out = Linear([masked-mean(x'), dropout(q), (extras)])                 (N, classes)

Example:
    >>> import torch
    >>> from emofuse.fusion.models.tacfn import TACFN, TACFNConfig
    >>> model = TACFN(TACFNConfig(input_dims={"audio": 25, "face": 512}))
    >>> out = model({"audio": torch.randn(2, 40, 25), "face": torch.randn(2, 16, 512)})
    >>> out["logits"].shape
    torch.Size([2, 8])
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from emofuse.fusion.models.common import (
    as_sequence,
    count_parameters,
    get_mask,
    masked_mean,
    masked_softmax,
    sinusoidal_positions,
    zero_masked,
)


@dataclass
class TACFNConfig:
    """TACFN hyper-parameters; defaults are the paper's (width 64, 5 layers, 8 heads, ff 256).

    ``batch_sum_attention`` reproduces the official code (one attention map summed over the
    batch and applied to every sample); ``bidirectional`` also reinforces the query sequence
    by a summary of the target and adds its pooled result to the head.
    """

    input_dims: dict[str, int] = field(default_factory=lambda: {"audio": 25, "face": 512})
    n_classes: int = 8
    target: str = "face"
    query: str = "audio"
    extra: tuple[str, ...] = ()
    d_model: int = 64
    n_heads: int = 8
    n_layers: int = 5
    d_ff: int = 256
    attn_dim: int = 64
    embed_dropout: float = 0.3
    dropout: float = 0.1
    head_dropout: float = 0.4
    batch_sum_attention: bool = False
    bidirectional: bool = False

    def __post_init__(self) -> None:
        self.extra = tuple(self.extra)
        roles = [self.target, self.query, *self.extra]
        if len(set(roles)) != len(roles):
            raise ValueError(f"modality roles must be distinct, got {roles}")
        missing = [m for m in roles if m not in self.input_dims]
        if missing:
            raise ValueError(f"no input_dims for modalities {missing}")


class QueryEncoder(nn.Module):
    """Projection, scaled sinusoidal positions and a causal pre-LN Transformer encoder."""

    def __init__(self, cfg: TACFNConfig) -> None:
        super().__init__()
        self.d_model, self.n_heads = cfg.d_model, cfg.n_heads
        self.proj = nn.Linear(cfg.input_dims[cfg.query], cfg.d_model)
        self.embed_dropout = nn.Dropout(cfg.embed_dropout)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=cfg.dropout, activation="relu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, cfg.n_layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False
        )

    def forward(self, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode y (N, T, d) -> (sequence (N, T, D), last valid step (N, D); zeros if none)."""
        n, t, _ = y.shape
        h = self.proj(zero_masked(y, mask)) * math.sqrt(self.d_model)
        h = h + sinusoidal_positions(t, self.d_model, device=h.device, dtype=h.dtype)
        h = self.embed_dropout(h)
        # Step i may see valid steps j <= i; every step also sees itself so that no row is
        # empty (invalid steps then never feed a valid one).
        idx = torch.arange(t, device=y.device)
        allowed = (idx[None, :] <= idx[:, None])[None] & mask[:, None, :]
        allowed = allowed | torch.eye(t, dtype=torch.bool, device=y.device)[None]
        blocked = (~allowed).repeat_interleave(self.n_heads, dim=0)
        h = self.encoder(h, mask=blocked)
        last = (mask.long() * (idx + 1)[None]).argmax(dim=1)
        q = h[torch.arange(n, device=y.device), last]
        q = torch.where(mask.any(dim=1, keepdim=True), q, torch.zeros_like(q))
        return h, q


class SpliceAttention(nn.Module):
    """a = softmax_P(w_a tanh(W_c x + W_q q)); returns (x * a + x, a)."""

    def __init__(self, seq_dim: int, summary_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.w_c = nn.Linear(seq_dim, attn_dim)
        self.w_q = nn.Linear(summary_dim, attn_dim, bias=False)
        self.w_a = nn.Linear(attn_dim, 1, bias=False)  # a bias would cancel in the softmax

    def forward(self, x: Tensor, summary: Tensor, mask: Tensor, batch_sum: bool) -> tuple[Tensor, Tensor]:
        """x (N, P, C), summary (N, S), mask (N, P) -> reinforced x (N, P, C), weights (N, P)."""
        s = torch.tanh(self.w_c(x) + self.w_q(summary).unsqueeze(1))
        a = masked_softmax(self.w_a(s).squeeze(-1), mask)
        if batch_sum:  # official CFN-SR behaviour: one map for the whole batch
            a = a.sum(dim=0, keepdim=True).expand_as(a)
        a = a.to(x.dtype)
        return x * a.unsqueeze(-1) + x, a


class TACFN(nn.Module):
    """Target-aware cross-modal fusion network on feature sequences (see module docstring)."""

    def __init__(self, config: TACFNConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else TACFNConfig()
        c_target = cfg.input_dims[cfg.target]
        self.query_encoder = QueryEncoder(cfg)
        self.target_attention = SpliceAttention(c_target, cfg.d_model, cfg.attn_dim)
        head_in = c_target + cfg.d_model + sum(cfg.input_dims[m] for m in cfg.extra)
        if cfg.bidirectional:
            self.query_attention = SpliceAttention(cfg.d_model, c_target, cfg.attn_dim)
            head_in += cfg.d_model
        self.head_dropout = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(head_in, cfg.n_classes)

    def forward(
        self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """inputs/masks: modality -> (N, L, d) / (N, L) bool. Returns logits and attention maps."""
        cfg = self.config
        x = as_sequence(inputs[cfg.target])
        y = as_sequence(inputs[cfg.query])
        x_mask, y_mask = get_mask(x, masks, cfg.target), get_mask(y, masks, cfg.query)
        x = zero_masked(x, x_mask)
        h, q = self.query_encoder(y, y_mask)
        x_new, a = self.target_attention(x, q, x_mask, cfg.batch_sum_attention)
        parts = [masked_mean(x_new, x_mask), self.head_dropout(q)]
        out = {"attention": a}
        if cfg.bidirectional:
            h_new, a_q = self.query_attention(h, masked_mean(x, x_mask), y_mask, cfg.batch_sum_attention)
            parts.append(self.head_dropout(masked_mean(h_new, y_mask)))
            out["query_attention"] = a_q
        for name in cfg.extra:
            e = as_sequence(inputs[name])
            parts.append(self.head_dropout(masked_mean(e, get_mask(e, masks, name))))
        out["logits"] = self.head(torch.cat(parts, dim=-1))
        return out

    def n_parameters(self) -> int:
        """Trainable parameter count."""
        return count_parameters(self)
