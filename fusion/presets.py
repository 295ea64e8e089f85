"""Model presets: the defaults behind each name ``emofuse train --model`` takes.

A preset belongs to one registered model (:mod:`emofuse.fusion.models.registry`; each model
declares its presets in its own module) and says which feature set feeds which modality
role, the timeline, the optimisation settings and the model's role config. The built-ins:

=================  ====================================  =============================  ==============
preset (model)     inputs (modality <- feature set)      timeline                        optimisation
=================  ====================================  =============================  ==============
tacfn              face <- faces (target),               32 steps per clip (pool)        Adam 1e-3,
                   audio <- egemaps LLD (query);                                         batch 16, 70 ep.
                   text only when asked (extra input)
rcma               face <- faces, audio <- egemaps,      windows of 100 steps at 25 Hz,  Adam 1e-4, wd
                   text <- text when present             hop 50                          1e-3, batch 12,
                                                                                         50 epochs
concat_mlp         face, audio (+ text when present)     32 steps per clip               Adam 1e-3, 16
unimodal_audio     audio <- egemaps (model unimodal)     32 steps per clip               Adam 1e-3, 16
unimodal_face      face <- faces (model unimodal)        32 steps per clip               Adam 1e-3, 16
=================  ====================================  =============================  ==============

Model hyper-parameters are the papers' (``emofuse.fusion.models``); RCMA's learning rate is 1e-4
instead of the paper's 1e-5, which fine-tunes pre-trained backbones while ours trains from
scratch on features. What a run predicts follows the model's abilities: valence/arousal
(1 - CCC) when the model regresses them and the media table has both columns, classes
(cross-entropy) when it has an emotion label; RAVDESS has only classes. Every argument can
be overridden; small settings (``epochs=5``, a smaller ``model_config``) make a quick demo.

Example:
    >>> from emofuse.fusion.models.registry import find_preset
    >>> model, rcma = find_preset("rcma")
    >>> rcma.align.mode, rcma.train.lr, find_preset("tacfn")[1].inputs, model.abilities.per_frame
    ('window', 0.0001, {'face': 'faces', 'audio': 'egemaps'}, True)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emofuse.catalog.store import Catalog
from emofuse.fusion.data_config import DEFAULT_MODALITY_NAMES, AlignConfig, ModalitySpec
from emofuse.fusion.train import TrainConfig


@dataclass(frozen=True)
class Preset:
    """The defaults of one ``--model`` name: inputs (modality role -> feature-set name), inputs
    used when the catalog has them (``optional``), timeline, optimisation and role config."""

    name: str
    inputs: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    align: AlignConfig = field(default_factory=AlignConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_config: dict[str, Any] = field(default_factory=dict)


def preset_modalities(cat: Catalog, preset: Preset,
                      feature_sets: Mapping[str, str] | Sequence[str | ModalitySpec] | None) -> list[ModalitySpec]:
    """The model inputs: ``feature_sets`` (modality -> name/key, or names) or the preset's
    (its optional inputs where the catalog has them)."""
    if feature_sets is None:
        present = {cat.feature_set_info(k).name for k in cat.feature_sets()}
        chosen = dict(preset.inputs)
        chosen.update({m: n for m, n in preset.optional.items() if n in present})
        return [ModalitySpec(m, n) for m, n in chosen.items()]
    if isinstance(feature_sets, Mapping):
        return [ModalitySpec(m, n) for m, n in feature_sets.items()]
    out = []
    for f in feature_sets:
        if isinstance(f, ModalitySpec):
            out.append(f)
        else:
            name = cat.feature_set_info(cat.find_feature_set(f)).name
            out.append(ModalitySpec(DEFAULT_MODALITY_NAMES.get(name, name), f))
    return out


__all__ = ["Preset", "preset_modalities"]
