"""Fusion models by name: ``build_model("tacfn" | "rcma" | "concat_mlp" | "unimodal", **config)``.

Every model takes ``forward(inputs, masks=None)`` with ``inputs`` a dict modality ->
(N, L, d) tensor and ``masks`` a dict modality -> bool (N, L) (True = valid step), and
returns a dict with ``"logits"`` (N, classes) and/or ``"va"`` (N, L, targets). The config
is a dataclass kept on ``model.config`` (``dataclasses.asdict`` gives a plain dict that
``build_model(name, **that_dict)`` accepts again).

Example:
    >>> from emofuse.fusion.models import build_model, count_parameters
    >>> model = build_model("tacfn", input_dims={"audio": 25, "face": 512}, n_classes=8)
    >>> count_parameters(model) > 0
    True
"""
from __future__ import annotations

from typing import Any

from torch import nn

from emofuse.fusion.models.baselines import ConcatMLP, ConcatMLPConfig, Unimodal, UnimodalConfig
from emofuse.fusion.models.common import count_parameters
from emofuse.fusion.models.rcma import RCMA, RCMAConfig
from emofuse.fusion.models.tacfn import TACFN, TACFNConfig

#: name -> (model class, config dataclass)
MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "tacfn": (TACFN, TACFNConfig),
    "rcma": (RCMA, RCMAConfig),
    "concat_mlp": (ConcatMLP, ConcatMLPConfig),
    "unimodal": (Unimodal, UnimodalConfig),
}


def build_model(name: str, **config: Any) -> nn.Module:
    """Build the model registered as ``name`` from keyword config fields."""
    try:
        model_cls, config_cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return model_cls(config_cls(**config))


__all__ = [
    "MODELS", "build_model", "count_parameters",
    "TACFN", "TACFNConfig", "RCMA", "RCMAConfig",
    "ConcatMLP", "ConcatMLPConfig", "Unimodal", "UnimodalConfig",
]
