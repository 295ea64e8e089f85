"""Model presets: the defaults behind each model name (inputs, timeline, optimisation, roles).

Models and their defaults (``PRESETS``):

=================  ====================================  =============================  ==============
model              inputs (modality <- feature set)      timeline                        optimisation
=================  ====================================  =============================  ==============
tacfn              face <- faces (target),               32 steps per clip (pool)        Adam 1e-3,
                   audio <- egemaps LLD (query);                                         batch 16, 70 ep.
                   text only when asked (extra input)
rcma               face <- faces, audio <- egemaps,      windows of 100 steps at 25 Hz,  Adam 1e-4, wd
                   text <- text when present             hop 50                          1e-3, batch 12,
                                                                                         50 epochs
concat_mlp         face, audio (+ text when present)     32 steps per clip               Adam 1e-3, 16
unimodal_audio     audio <- egemaps                      32 steps per clip               Adam 1e-3, 16
unimodal_face      face <- faces                         32 steps per clip               Adam 1e-3, 16
=================  ====================================  =============================  ==============

Model hyper-parameters are the papers' (``emofuse.fusion.models``); RCMA's learning rate is 1e-4
instead of the paper's 1e-5, which fine-tunes pre-trained backbones while ours trains from
scratch on features. RCMA predicts valence/arousal (1 - CCC) when the media table has both
columns and classes (cross-entropy) when it has an emotion label; RAVDESS has only classes.
Every argument can be overridden; small settings (``epochs=5``, a smaller
``model_config``) make a quick demo.

Example:
    >>> PRESETS["rcma"].align.mode, PRESETS["rcma"].train.lr, PRESETS["tacfn"].inputs
    ('window', 0.0001, {'face': 'faces', 'audio': 'egemaps'})
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emofuse.catalog.store import Catalog
from emofuse.fusion.data_config import DEFAULT_MODALITY_NAMES, AlignConfig, ModalitySpec
from emofuse.fusion.dataset import AlignedData
from emofuse.fusion.inference import Task
from emofuse.fusion.models import with_revision
from emofuse.fusion.train import TrainConfig


@dataclass
class Preset:
    """Defaults of one model name: registry model, inputs, timeline, optimisation, role config."""

    registry: str
    inputs: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    align: AlignConfig = field(default_factory=AlignConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_config: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "tacfn": Preset("tacfn", {"face": "faces", "audio": "egemaps"},
                    model_config={"target": "face", "query": "audio"}),
    "rcma": Preset("rcma", {"face": "faces", "audio": "egemaps"}, {"text": "text"},
                   align=AlignConfig(mode="window", steps=100, hop=50, rate=25.0),
                   train=TrainConfig(epochs=50, batch_size=12, lr=1e-4, weight_decay=1e-3)),
    "concat_mlp": Preset("concat_mlp", {"face": "faces", "audio": "egemaps"}, {"text": "text"}),
    "unimodal_audio": Preset("unimodal", {"audio": "egemaps"}, model_config={"modality": "audio"}),
    "unimodal_face": Preset("unimodal", {"face": "faces"}, model_config={"modality": "face"}),
}


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


def preset_model_config(model: str, preset: Preset, data: AlignedData, task: Task,
                        overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model's config: input widths of ``data``, the preset's roles, the task's heads, then ``overrides``.

    >>> from types import SimpleNamespace
    >>> data = SimpleNamespace(dims={"face": 128, "audio": 25, "text": 384})
    >>> preset_model_config("tacfn", PRESETS["tacfn"], data, Task(n_classes=8), {"n_layers": 1})
    {'input_dims': {'face': 128, 'audio': 25, 'text': 384}, 'target': 'face', 'query': 'audio', 'n_classes': 8, 'extra': ['text'], 'n_layers': 1, 'revision': 2}
    """
    mods = list(data.dims)
    cfg: dict[str, Any] = {"input_dims": dict(data.dims), **preset.model_config}
    if preset.registry == "tacfn":
        cfg["n_classes"] = task.n_classes
        roles = {**cfg, **(overrides or {})}
        cfg["extra"] = [m for m in mods if m not in (roles["target"], roles["query"])]
    elif preset.registry == "rcma":
        cfg.update(seq_len=data.config.align.steps, n_classes=task.n_classes or None,
                   n_targets=len(task.dimensional))
    else:
        cfg["n_classes"] = task.n_classes
    cfg.update(overrides or {})
    if preset.registry != "rcma" and not cfg.get("n_classes"):
        raise ValueError(f"model {model!r} needs class labels; the catalog's media table has none")
    return with_revision(preset.registry, cfg)  # saved runs record the model definition they were made for


__all__ = ["PRESETS", "Preset", "preset_model_config", "preset_modalities"]
