"""Baselines with the same interface as the fusion models: early fusion and unimodal.

``ConcatMLP`` (the "Concat+FC" line of the published tables): each modality is mean-pooled
over its valid steps, the pools are concatenated and classified by an MLP. ``Unimodal`` is
the same model restricted to one modality, to measure what fusion adds.

Example:
    >>> import torch
    >>> from emofuse.fusion.models.baselines import Unimodal, UnimodalConfig
    >>> model = Unimodal(UnimodalConfig(input_dims={"face": 512}, modality="face"))
    >>> model({"face": torch.randn(3, 10, 512)})["logits"].shape
    torch.Size([3, 8])
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from emofuse.fusion.models.common import as_sequence, count_parameters, get_mask, masked_mean
from emofuse.fusion.models.registry import Abilities, ModelSpec, register_model
from emofuse.fusion.presets import Preset


@dataclass
class ConcatMLPConfig:
    """Early fusion. ``modalities``: which inputs to use (default: all of ``input_dims``)."""

    input_dims: dict[str, int] = field(default_factory=lambda: {"audio": 25, "face": 512})
    modalities: tuple[str, ...] | None = None
    n_classes: int = 8
    hidden: tuple[int, ...] = (256,)
    dropout: float = 0.3

    def __post_init__(self) -> None:
        self.modalities = tuple(self.modalities) if self.modalities is not None else tuple(self.input_dims)
        self.hidden = tuple(self.hidden)
        missing = [m for m in self.modalities if m not in self.input_dims]
        if missing or not self.modalities:
            raise ValueError(f"no input_dims for modalities {missing or '(none given)'}")


@dataclass
class UnimodalConfig:
    """One modality, pooled and classified by an MLP."""

    input_dims: dict[str, int] = field(default_factory=lambda: {"face": 512})
    modality: str = "face"
    n_classes: int = 8
    hidden: tuple[int, ...] = (256,)
    dropout: float = 0.3


class ConcatMLP(nn.Module):
    """Masked mean pool per modality -> concatenation -> MLP -> logits."""

    def __init__(self, config: ConcatMLPConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else ConcatMLPConfig()
        self._build(cfg.input_dims, tuple(cfg.modalities or ()), cfg.n_classes, cfg.hidden, cfg.dropout)

    def _build(
        self, dims: dict[str, int], modalities: tuple[str, ...], n_classes: int,
        hidden: tuple[int, ...], dropout: float,
    ) -> None:
        self.modalities = modalities
        layers: list[nn.Module] = []
        width = sum(dims[m] for m in modalities)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(
        self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """inputs/masks: modality -> (N, L, d) / (N, L) bool. Returns {"logits": (N, C)}."""
        pools = []
        for m in self.modalities:
            x = as_sequence(inputs[m])
            pools.append(masked_mean(x, get_mask(x, masks, m)))
        return {"logits": self.mlp(torch.cat(pools, dim=-1))}

    def n_parameters(self) -> int:
        """Trainable parameter count."""
        return count_parameters(self)


class Unimodal(ConcatMLP):
    """:class:`ConcatMLP` on a single modality (other inputs are ignored)."""

    def __init__(self, config: UnimodalConfig | None = None) -> None:
        nn.Module.__init__(self)
        self.config = cfg = config if config is not None else UnimodalConfig()  # type: ignore[assignment]
        if cfg.modality not in cfg.input_dims:
            raise ValueError(f"no input_dims for modality {cfg.modality!r}")
        self._build(cfg.input_dims, (cfg.modality,), cfg.n_classes, tuple(cfg.hidden), cfg.dropout)


@register_model
class ConcatMLPModel(ModelSpec):
    """Early fusion in the registry: classes per clip, from face and audio (and text when present)."""

    name = "concat_mlp"
    network = ConcatMLP
    config_class = ConcatMLPConfig
    abilities = Abilities(per_clip=True, categorical=True)
    presets = (Preset("concat_mlp", {"face": "faces", "audio": "egemaps"}, {"text": "text"}),)
    demo_epochs = 40


@register_model
class UnimodalModel(ModelSpec):
    """One modality alone in the registry (what fusion adds is measured against it)."""

    name = "unimodal"
    network = Unimodal
    config_class = UnimodalConfig
    abilities = Abilities(per_clip=True, categorical=True)
    presets = (Preset("unimodal_audio", {"audio": "egemaps"}, model_config={"modality": "audio"}),
               Preset("unimodal_face", {"face": "faces"}, model_config={"modality": "face"}))
    demo_epochs = 40
