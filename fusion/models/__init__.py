"""Fusion models by name: ``build_model("tacfn" | "rcma" | "concat_mlp" | "unimodal", **config)``.

Every model takes ``forward(inputs, masks=None)`` with ``inputs`` a dict modality ->
(N, L, d) tensor and ``masks`` a dict modality -> bool (N, L) (True = valid step), and
returns a dict with ``"logits"`` (N, classes) and/or ``"va"`` (N, L, targets). The config
is a dataclass kept on ``model.config`` (``dataclasses.asdict`` gives a plain dict that
``build_model(name, **that_dict)`` accepts again).

TACFN and RCMA configs carry the ``revision`` of the model definition they were made for, so
that a saved run's weights are never read by a different architecture: new configs get the
current one (:func:`with_revision`), a saved config without one predates revisions
(:func:`saved_model_config`: revision 1). An old RCMA still builds (its head is restored);
an old TACFN cannot be built and says to retrain.

Example:
    >>> from emofuse.fusion.models import build_model, count_parameters
    >>> model = build_model("tacfn", input_dims={"audio": 25, "face": 512}, n_classes=8)
    >>> count_parameters(model) > 0
    True
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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


def _has_revision(name: str) -> bool:
    return name in MODELS and any(f.name == "revision" for f in dataclasses.fields(MODELS[name][1]))


def with_revision(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` for a new run of model ``name``, stamped with the current revision (unless it names one).

    >>> with_revision("tacfn", {"n_classes": 8})
    {'n_classes': 8, 'revision': 2}
    >>> with_revision("concat_mlp", {"n_classes": 8})
    {'n_classes': 8}
    """
    cfg = dict(config)
    if _has_revision(name):
        cfg.setdefault("revision", MODELS[name][1]().revision)
    return cfg


def saved_model_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A model config read back from a saved run: no ``revision`` means revision 1 (saved before revisions).

    >>> saved_model_config("rcma", {"joint": "others"})
    {'joint': 'others', 'revision': 1}
    >>> build_model("tacfn", **saved_model_config("tacfn", {}))
    Traceback (most recent call last):
    ...
    ValueError: TACFN revision 1 (e.g. a run trained by an older emofuse) cannot be built: ...
    """
    cfg = dict(config)
    if _has_revision(name):
        cfg.setdefault("revision", 1)
    return cfg


__all__ = [
    "MODELS", "build_model", "count_parameters", "saved_model_config", "with_revision",
    "TACFN", "TACFNConfig", "RCMA", "RCMAConfig",
    "ConcatMLP", "ConcatMLPConfig", "Unimodal", "UnimodalConfig",
]
