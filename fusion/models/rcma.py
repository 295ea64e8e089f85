"""RCMA / RJCMA: per-modality causal TCNs, then recursive joint cross-modal attention.

Follows ``models.md`` (RCMA, arXiv 2403.13659). Each modality m is modelled in time by a
causal TCN, giving X_m (N, L, d_m). Each of ``n_iterations`` iterations (separate weights)
updates every X_m from the inputs of that iteration:

    K_m = W_k,m(X_m^T)                           (N, d_m, L)   W_k,m: L -> L over time
    C_m = dropout(tanh(K_m J / sqrt(D)))         (N, d_m, D)   J: joint representation (N, L, D)
    H_m = relu(tanh(W_v,m(X_m) C_m))             (N, L, D)
    X_m = X_m + dropout(relu(W_h,m(H_m)))

``joint="all"`` (RJCMA): J is the concatenation of all X_m. ``joint="others"`` (RCMA v1):
J for m is a learned projection of the concatenation of the other modalities.
Heads: a per-step regressor on the concatenated X_m (e.g. valence/arousal), tied to the
variant as in the official code: RJCMA (``joint="all"``) Linear -> BatchNorm -> LeakyReLU ->
Linear -> tanh, v1 (``joint="others"``) one Linear -> tanh (``regressor="mlp"|"linear"``
overrides); and/or a classifier on the X_m pooled over their valid steps.

Masks: the content of a modality's invalid steps is zeroed before the TCN, after it and
after each iteration ("absent = zero"), and BatchNorm statistics use valid steps only.
The time length is fixed per model (``seq_len``) because W_k acts over time.

Initialisation as the official code in effect: it calls ``xavier_uniform_`` on the weights of
the weight-normalised dilated convs, which the weight-norm re-parametrisation recomputes from
its (untouched) g and v on the next forward, so those convs keep PyTorch's default init; only
the 1x1 residual conv is really xavier-initialised (gain sqrt(2)). We do exactly that.

Remaining deviations from the official code (RJCMA repository: ``models/model.py`` class
``LFAN``, ``models/dense_coattn.py``, ``models/av_crossatten.py``; v1: the same files at the
RCMA commit):

* Inputs: the official model runs frozen backbones (IR-50 face embeddings 512, VGGish 128,
  BERT 768) and its TCN widths are per backbone; we start from cached features, with the
  widths of ``DEFAULT_CHANNELS`` unless ``channels`` says otherwise.
* Time length: the official W_k is ``Linear(300, 300)``; ours is ``seq_len`` (300 gives it).
* Masks: the official code has none (padding is processed as data and enters the BatchNorm
  statistics); we zero invalid steps around the TCN and after each iteration, and both
  BatchNorms (after the TCN, in the head) use valid steps only. Weights and running
  statistics port one to one.
* RJCMA computes ``query_linear(joint)`` and never uses it: we have no such layer (a port
  drops it). Its fusion and head widths are hard-coded (``DCNLayer(256, 128, 128)``,
  regressor 512 -> 256, v1 ``DCNLayer(512, 128, 512)``); ours follow the TCN widths.
* Targets: the official code trains one model per target (one output); ``n_targets=2``
  predicts valence and arousal from one model (``n_targets=1`` is the official shape).
* TCN: as the RJCMA repository's ``models/temporal_convolutional_model.py`` (plain source in
  every commit from the first upload on): element-wise ``nn.Dropout``, xavier gain sqrt(2)
  on the residual conv. (The authors' earlier JCA repository's TCN drops whole channels,
  ``Dropout2d``.)
* Weight norm uses ``torch.nn.utils.parametrizations.weight_norm``: the official
  ``weight_g``/``weight_v`` are our ``parametrizations.weight.original0``/``original1``.
* Additions with no official counterpart: the classification head (``n_classes``), any
  number (>= 2) of modalities in any order (the official code fixes video, audio, text;
  concatenations follow ``input_dims`` order, so a port lists them in that order), and
  ``others_dim`` (v1's projection keeps the width of its input, our default).

Example:
    >>> import torch
    >>> from emofuse.fusion.models.rcma import RCMA, RCMAConfig
    >>> cfg = RCMAConfig(input_dims={"audio": 25, "face": 512}, seq_len=32, n_classes=8)
    >>> out = RCMA(cfg)({"audio": torch.randn(2, 32, 25), "face": torch.randn(2, 32, 512)})
    >>> out["va"].shape, out["logits"].shape
    (torch.Size([2, 32, 2]), torch.Size([2, 8]))
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from emofuse.fusion.models.common import (
    MaskedBatchNorm,
    as_sequence,
    count_parameters,
    get_mask,
    masked_mean,
    zero_masked,
)
from emofuse.fusion.data_config import AlignConfig
from emofuse.fusion.models.registry import Abilities, ModelInputs, ModelSpec, register_model
from emofuse.fusion.presets import Preset
from emofuse.fusion.train import TrainConfig

#: TCN output width per modality when ``channels`` does not name it (models.md: official
#: video 512, eGeMAPS audio 64, text 512). Other modality names fall back to 128.
DEFAULT_CHANNELS: dict[str, int] = {"face": 512, "video": 512, "audio": 64, "text": 512}

#: Revision of this model's definition; saved runs record it (``revision`` in the config).
#: 1: MLP regressor for both variants, TCN convs initialised N(0, 0.01). 2: as the official
#: code (regressor tied to the variant, effective official TCN init). A revision-1 config
#: still builds its MLP head, so the weights of runs saved before load unchanged.
REVISION = 2
REGRESSORS = ("mlp", "linear")


@dataclass
class RCMAConfig:
    """RCMA hyper-parameters. ``channels``: modality -> width (all levels) or per-level list.

    ``regressor``: "mlp" (Linear -> BatchNorm -> LeakyReLU -> Linear, ``regressor_hidden``
    wide) or "linear"; None ties it to the variant as the official code does ("mlp" for
    ``joint="all"``, "linear" for ``joint="others"``). ``revision``: see :data:`REVISION`.
    """

    input_dims: dict[str, int] = field(default_factory=lambda: {"face": 512, "audio": 25, "text": 384})
    seq_len: int = 300
    channels: dict[str, int | list[int]] = field(default_factory=dict)
    kernel_size: int = 5
    n_levels: int = 4
    tcn_dropout: float = 0.1
    n_iterations: int = 2
    joint: str = "all"
    others_dim: int | None = None
    fusion_dropout: float = 0.6
    regressor_hidden: int = 256
    n_targets: int = 2
    n_classes: int | None = None
    regressor: str | None = None
    revision: int = REVISION

    def __post_init__(self) -> None:
        if self.joint not in ("all", "others"):
            raise ValueError(f"joint must be 'all' or 'others', got {self.joint!r}")
        if self.regressor is not None and self.regressor not in REGRESSORS:
            raise ValueError(f"regressor must be one of {REGRESSORS} or None (tied to joint), got {self.regressor!r}")
        if self.revision not in (1, REVISION):
            raise ValueError(f"RCMA revision {self.revision} is unknown; emofuse builds revisions 1 and {REVISION}")
        if len(self.input_dims) < 2:
            raise ValueError("RCMA needs at least two modalities")
        if self.n_targets <= 0 and not self.n_classes:
            raise ValueError("enable at least one head (n_targets > 0 or n_classes)")

    def regressor_kind(self) -> str:
        """The regressor head built: ``regressor``, else the variant's ("linear" for v1 from revision 2)."""
        if self.regressor is not None:
            return self.regressor
        return "linear" if self.joint == "others" and self.revision >= 2 else "mlp"

    def level_channels(self, modality: str) -> list[int]:
        """TCN widths of the levels for ``modality``."""
        c = self.channels.get(modality, DEFAULT_CHANNELS.get(modality, 128))
        return list(c) if isinstance(c, (list, tuple)) else [int(c)] * self.n_levels


class Chomp(nn.Module):
    """Drop the last ``size`` steps so that a symmetrically padded conv becomes causal."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C, L + size) -> (N, C, L)."""
        return x[..., : -self.size] if self.size else x


class TemporalBlock(nn.Module):
    """Two causal weight-normalised dilated convs with LeakyReLU/dropout and a residual.

    Init as the official code in effect: the dilated convs keep PyTorch's default init
    (weight norm starts with g = ||v||, so the effective weight is the default one), the
    1x1 residual conv gets ``xavier_uniform_`` with gain sqrt(2) (its bias keeps the default).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = (kernel - 1) * dilation
        layers: list[nn.Module] = []
        for c in (c_in, c_out):
            conv = nn.Conv1d(c, c_out, kernel, padding=pad, dilation=dilation)
            layers += [weight_norm(conv), Chomp(pad), nn.LeakyReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        self.residual: nn.Module = nn.Identity()
        if c_in != c_out:
            self.residual = nn.Conv1d(c_in, c_out, 1)
            nn.init.xavier_uniform_(self.residual.weight, gain=math.sqrt(2.0))
        self.act = nn.LeakyReLU()

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C_in, L) -> (N, C_out, L)."""
        return self.act(self.net(x) + self.residual(x))


class TemporalEncoder(nn.Module):
    """Causal TCN (dilations 1, 2, 4, ...) followed by masked BatchNorm over channels."""

    def __init__(self, d_in: int, channels: list[int], kernel: int, dropout: float) -> None:
        super().__init__()
        widths = [d_in, *channels]
        self.blocks = nn.Sequential(
            *(TemporalBlock(widths[i], widths[i + 1], kernel, 2**i, dropout) for i in range(len(channels)))
        )
        self.norm = MaskedBatchNorm(channels[-1])

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (N, L, d_in) -> (N, L, C); invalid steps are zero in input and output."""
        h = self.blocks(zero_masked(x, mask).transpose(1, 2)).transpose(1, 2)
        return zero_masked(self.norm(h, mask), mask)


class JointCrossAttention(nn.Module):
    """One recursion step: every modality attends to the joint representation."""

    def __init__(self, dims: dict[str, int], seq_len: int, joint: str, others_dim: int | None, dropout: float) -> None:
        super().__init__()
        self.names, self.joint = list(dims), joint
        total = sum(dims.values())
        jdim = {m: total if joint == "all" else (others_dim or total - dims[m]) for m in dims}
        self.jdim = jdim
        self.key = nn.ModuleDict({m: nn.Linear(seq_len, seq_len) for m in dims})
        self.value = nn.ModuleDict({m: nn.Linear(d, d) for m, d in dims.items()})
        self.out = nn.ModuleDict({m: nn.Linear(jdim[m], d) for m, d in dims.items()})
        self.corr_dropout = nn.Dropout(dropout)
        self.out_dropout = nn.Dropout(dropout)
        if joint == "others":
            self.proj = nn.ModuleDict({m: nn.Linear(total - dims[m], jdim[m]) for m in dims})

    def forward(self, xs: dict[str, Tensor], masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """xs/masks: modality -> (N, L, d_m) / (N, L). Returns the updated xs."""
        if self.joint == "all":
            joint_all = torch.cat([xs[m] for m in self.names], dim=-1)
        new: dict[str, Tensor] = {}
        for m in self.names:
            if self.joint == "all":
                j = joint_all
            else:
                others = [o for o in self.names if o != m]
                j = self.proj[m](torch.cat([xs[o] for o in others], dim=-1))
                j = zero_masked(j, torch.stack([masks[o] for o in others]).any(dim=0))
            k = self.key[m](xs[m].transpose(1, 2))                                   # (N, d_m, L)
            c = self.corr_dropout(torch.tanh(k @ j / math.sqrt(self.jdim[m])))    # (N, d_m, D)
            h = torch.relu(torch.tanh(self.value[m](xs[m]) @ c))                   # (N, L, D)
            upd = xs[m] + self.out_dropout(torch.relu(self.out[m](h)))
            new[m] = zero_masked(upd, masks[m])
        return new


class RCMA(nn.Module):
    """Recursive (joint) cross-modal attention with per-step regression and/or classification."""

    def __init__(self, config: RCMAConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else RCMAConfig()
        self.names = list(cfg.input_dims)
        widths = {m: cfg.level_channels(m) for m in self.names}
        self.temporal = nn.ModuleDict({
            m: TemporalEncoder(cfg.input_dims[m], widths[m], cfg.kernel_size, cfg.tcn_dropout) for m in self.names
        })
        dims = {m: widths[m][-1] for m in self.names}
        self.fusion = nn.ModuleList([
            JointCrossAttention(dims, cfg.seq_len, cfg.joint, cfg.others_dim, cfg.fusion_dropout)
            for _ in range(cfg.n_iterations)
        ])
        total = sum(dims.values())
        if cfg.n_targets > 0 and cfg.regressor_kind() == "mlp":
            self.reg_in = nn.Linear(total, cfg.regressor_hidden)
            self.reg_norm = MaskedBatchNorm(cfg.regressor_hidden)
            self.reg_out = nn.Linear(cfg.regressor_hidden, cfg.n_targets)
        elif cfg.n_targets > 0:
            self.reg_out = nn.Linear(total, cfg.n_targets)
        if cfg.n_classes:
            self.classifier = nn.Linear(total, cfg.n_classes)

    def forward(
        self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """inputs: modality -> (N, L, d) with L == seq_len. Returns {"va": (N, L, K)} and/or {"logits"}."""
        cfg = self.config
        xs, ms = {}, {}
        for m in self.names:
            x = as_sequence(inputs[m])
            if x.shape[1] != cfg.seq_len:
                raise ValueError(f"{m!r} has {x.shape[1]} steps; this model is built for seq_len={cfg.seq_len}")
            ms[m] = get_mask(x, masks, m)
            xs[m] = self.temporal[m](x, ms[m])
        for layer in self.fusion:
            xs = layer(xs, ms)
        out: dict[str, Tensor] = {}
        if cfg.n_targets > 0:
            z = torch.cat([xs[m] for m in self.names], dim=-1)
            if hasattr(self, "reg_in"):  # RJCMA's head; v1's is the Linear alone
                step_mask = torch.stack(list(ms.values())).any(dim=0)
                z = nn.functional.leaky_relu(self.reg_norm(self.reg_in(z), step_mask))
            out["va"] = torch.tanh(self.reg_out(z))
        if cfg.n_classes:
            pooled = torch.cat([masked_mean(xs[m], ms[m]) for m in self.names], dim=-1)
            out["logits"] = self.classifier(pooled)
        return out

    def n_parameters(self) -> int:
        """Trainable parameter count."""
        return count_parameters(self)


@register_model
class RCMAModel(ModelSpec):
    """RCMA in the registry: valence/arousal per clip or per frame (1 - CCC), classes per clip (the
    pooled classification head); face, audio and text (when the catalog has it) on windows."""

    name = "rcma"
    network = RCMA
    config_class = RCMAConfig
    abilities = Abilities(per_clip=True, per_frame=True, categorical=True, dimensional=True)
    presets = (Preset("rcma", {"face": "faces", "audio": "egemaps"}, {"text": "text"},
                      align=AlignConfig(mode="window", steps=100, hop=50, rate=25.0),
                      train=TrainConfig(epochs=50, batch_size=12, lr=1e-4, weight_decay=1e-3)),)
    demo_epochs = 30

    def heads(self, inputs: ModelInputs, roles: Mapping[str, Any]) -> dict[str, Any]:
        """W_k acts over time, so the window length is part of the model; a classifier when the run
        has classes, one regression output per dimensional target."""
        return {"seq_len": inputs.steps, "n_classes": inputs.task.n_classes or None,
                "n_targets": len(inputs.task.dimensional)}
