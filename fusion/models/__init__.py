"""Fusion models, one registered :class:`~emofuse.fusion.models.registry.ModelSpec` each.

Built in: ``tacfn`` (:mod:`.tacfn`), ``rcma`` (:mod:`.rcma`), ``concat_mlp`` and ``unimodal``
(:mod:`.baselines`); other packages add models through the ``emofuse.models`` entry points
(see :mod:`.registry`). ``build_model(name, **config)`` builds one.

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

This package imports no model module by itself (the registry loads them on its first lookup),
so :mod:`.common` can be imported by the training code without a cycle.

Example:
    >>> from emofuse.fusion.models import build_model, count_parameters
    >>> model = build_model("tacfn", input_dims={"audio": 25, "face": 512}, n_classes=8)
    >>> count_parameters(model) > 0
    True
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emofuse.fusion.models.common import count_parameters
from emofuse.fusion.models.registry import (
    Abilities,
    ModelInputs,
    ModelSpec,
    build_model,
    find_preset,
    get_model,
    model_names,
    models,
    preset_names,
    register_model,
)


def with_revision(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` for a new run of model ``name``, stamped with the current revision (unless it names one).

    >>> with_revision("tacfn", {"n_classes": 8})
    {'n_classes': 8, 'revision': 2}
    >>> with_revision("concat_mlp", {"n_classes": 8})
    {'n_classes': 8}
    """
    spec = models().get(name)
    return spec.new_config(config) if spec is not None else dict(config)


def saved_model_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A model config read back from a saved run: no ``revision`` means revision 1 (saved before revisions).

    >>> saved_model_config("rcma", {"joint": "others"})
    {'joint': 'others', 'revision': 1}
    >>> build_model("tacfn", **saved_model_config("tacfn", {}))
    Traceback (most recent call last):
    ...
    ValueError: TACFN revision 1 (e.g. a run trained by an older emofuse) cannot be built: ...
    """
    spec = models().get(name)  # an unknown name fails when the model is built
    return spec.saved_config(config) if spec is not None else dict(config)


__all__ = [
    "Abilities", "ModelInputs", "ModelSpec", "build_model", "count_parameters", "find_preset", "get_model",
    "model_names", "models", "preset_names", "register_model", "saved_model_config", "with_revision",
]
