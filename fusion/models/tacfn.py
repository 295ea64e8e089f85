"""TACFN: a query modality selects its useful part by self-attention and reweights a target.

Follows ``models.md`` (TACFN, arXiv 2505.06536; official code is CFN-SR, arXiv 2111.02172),
run on cached features. Default roles: target = face-embedding sequence (N, P, 512),
query = eGeMAPS LLD sequence (N, T, 25), no extra modality. Any other modality (e.g. text)
can be named in ``extra``: it is mean-pooled over its valid steps and concatenated into
the head.

Forward, for target x and query y:
    f   = W_in y  (the query's front end)                                 (N, T, 64)
    q   = last valid step of a causal pre-LN Transformer over
          sqrt(64) f + positions                                          (N, 64)
    s   = tanh(W_c x + W_q q);  e = w_a s;  a = softmax over valid P      (N, P)
    x'  = x * a + x
    out = Linear([masked-mean(x'), dropout(masked-mean(f)), (extras)])   (N, classes)

As in the official code: the positions are the fairseq sinusoidal table
(:func:`~emofuse.fusion.models.common.sinusoidal_table`: sines then cosines, positions from
1, a padded step gets position 0 = zeros), and the head sees the query's front-end features,
not q: q only shapes the attention weights. Weight names map one to one onto the official
encoder (``fc1``/``fc2`` -> ``linear1``/``linear2``, ``layer_norms[0/1]`` -> ``norm1/2``,
``self_attn.in_proj_*``/``out_proj`` alike, ``layer_norm`` -> ``encoder.norm``;
``channel_affine``/``y_affine``/``attn_weight_affine`` -> ``w_c``/``w_q``/``w_a``).

Remaining deviations from the official code (CFN-SR ``networks/msaf_ravdess.py``,
``modules/transformer.py``, ``modules/position_embedding.py``):

* Front ends: the official model runs a 3-D ResNeXt-50 on frames (target: a 2048-channel
  map, attention over its S x H x W positions) and a 1-D CNN on MFCCs (query: 64 channels
  x 26 steps). We start from cached features: the target is the face-embedding sequence
  (attention over its P time steps) and the query's front end is one Linear layer (W_in).
* Head, query side: the official head flattens the 64 x 26 front-end map (fixed length);
  we mean-pool f over its valid steps (clip lengths vary). Dropout 0.4 there as official.
* Padding: the official encoder marks a step as padding when its first input channel is
  exactly 0 and otherwise attends to every step, and q is the last step whatever it holds;
  we use the masks: invalid steps get position 0, are left out of attention, pooling and
  the softmax over P, and q is the last *valid* step.
* Attention map: the official code sums the N per-sample maps and applies that one map to
  every sample; we use each sample's own map (``batch_sum_attention=True`` restores it).
* ``w_a`` has no bias here (it cancels in the softmax); porting drops the official bias.
* Initialisation: the official Transformer initialises ``fc1``/``fc2`` and the attention
  output projection with xavier_uniform_ and zero biases; ours keeps PyTorch's
  ``nn.TransformerEncoderLayer`` defaults (same for ``in_proj``). Weights load one to one.
* Additions with no official counterpart: ``extra`` modalities in the head, ``bidirectional``
  (the query's front-end sequence f is also reinforced, by the target's mean, and the head
  pools the reinforced f), and roles other than target=face / query=audio.

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
from typing import Any

import torch
from torch import Tensor, nn

from emofuse.fusion.models.common import (
    as_sequence,
    count_parameters,
    get_mask,
    masked_mean,
    masked_softmax,
    position_embedding,
    zero_masked,
)
from emofuse.fusion.models.registry import Abilities, ModelInputs, ModelSpec, register_model
from emofuse.fusion.presets import Preset

#: Revision of this model's definition; saved runs record it (``revision`` in the config).
#: 1: interleaved position table from 0, head on the Transformer summary q. 2: as the
#: official code (fairseq positions, head on the query's front-end features).
REVISION = 2


@dataclass
class TACFNConfig:
    """TACFN hyper-parameters; defaults are the paper's (width 64, 5 layers, 8 heads, ff 256).

    ``batch_sum_attention`` reproduces the official code (one attention map summed over the
    batch and applied to every sample); ``bidirectional`` also reinforces the query's
    front-end sequence by the mean of the target before it is pooled into the head.
    ``revision`` is the model definition a config was made for (:data:`REVISION`); an older
    one cannot be built, since its weights would mean something else now.
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
    revision: int = REVISION

    def __post_init__(self) -> None:
        if self.revision != REVISION:
            raise ValueError(
                f"TACFN revision {self.revision} (e.g. a run trained by an older emofuse) cannot be built: emofuse "
                f"now builds revision {REVISION} (position table and head input as in the official code), and "
                "weights of another revision would mean something else; retrain (emofuse train --model tacfn)")
        self.extra = tuple(self.extra)
        roles = [self.target, self.query, *self.extra]
        if len(set(roles)) != len(roles):
            raise ValueError(f"modality roles must be distinct, got {roles}")
        missing = [m for m in roles if m not in self.input_dims]
        if missing:
            raise ValueError(f"no input_dims for modalities {missing}")


class QueryEncoder(nn.Module):
    """Front end (a projection), scaled fairseq positions and a causal pre-LN Transformer encoder."""

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
        """Encode y (N, T, d) -> (front-end features f (N, T, D), summary q (N, D)).

        q is the encoder's output at the last valid step (zeros when no step is valid).
        """
        n, t, _ = y.shape
        f = self.proj(zero_masked(y, mask))
        h = f * math.sqrt(self.d_model) + position_embedding(mask, self.d_model, f.dtype)
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
        return f, q


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
        f, q = self.query_encoder(y, y_mask)
        x_new, a = self.target_attention(x, q, x_mask, cfg.batch_sum_attention)
        out = {"attention": a}
        if cfg.bidirectional:
            f, out["query_attention"] = self.query_attention(f, masked_mean(x, x_mask), y_mask,
                                                             cfg.batch_sum_attention)
        # The head sees the query's own (front-end) features; q only shaped the weights a.
        parts = [masked_mean(x_new, x_mask), self.head_dropout(masked_mean(f, y_mask))]
        for name in cfg.extra:
            e = as_sequence(inputs[name])
            parts.append(self.head_dropout(masked_mean(e, get_mask(e, masks, name))))
        out["logits"] = self.head(torch.cat(parts, dim=-1))
        return out

    def n_parameters(self) -> int:
        """Trainable parameter count."""
        return count_parameters(self)


@register_model
class TACFNModel(ModelSpec):
    """TACFN in the registry: classes per clip; target = face, query = audio by default (text, when
    asked for, is an extra input of the head)."""

    name = "tacfn"
    network = TACFN
    config_class = TACFNConfig
    abilities = Abilities(per_clip=True, per_frame=False, categorical=True, dimensional=False)
    presets = (Preset("tacfn", {"face": "faces", "audio": "egemaps"},
                      model_config={"target": "face", "query": "audio"}),)
    demo_epochs = 40

    def heads(self, inputs: ModelInputs, roles: Mapping[str, Any]) -> dict[str, Any]:
        """The classes, and every input that is neither target nor query as an ``extra`` head input."""
        return {"n_classes": inputs.task.n_classes,
                "extra": [m for m in inputs.dims if m not in (roles["target"], roles["query"])]}
