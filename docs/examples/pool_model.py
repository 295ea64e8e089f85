"""A worked example: the ``pool`` model (one module, one ``@register_model``'d spec).

tests/test_docs_extend.py imports this file, trains the model on a small catalog and scores
with the run, as docs/extend/model.md shows.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from emofuse.fusion.models import Abilities, ModelSpec, register_model
from emofuse.fusion.models.common import get_mask, masked_mean
from emofuse.fusion.presets import Preset


@dataclass
class PoolConfig:                                      # saved in the run's config.json
    input_dims: dict[str, int] = field(default_factory=dict)
    n_classes: int = 8


class Pool(nn.Module):                                 # forward(inputs, masks) -> {"logits": (N, C)}
    def __init__(self, config: PoolConfig):
        super().__init__()
        self.config, self.head = config, nn.Linear(sum(config.input_dims.values()), config.n_classes)

    def forward(self, inputs, masks=None):
        return {"logits": self.head(torch.cat([masked_mean(inputs[m], get_mask(inputs[m], masks, m))
                                               for m in self.config.input_dims], dim=-1))}


@register_model
class PoolModel(ModelSpec):
    name, network, config_class = "pool", Pool, PoolConfig
    abilities = Abilities(per_clip=True, categorical=True)    # no "va" output: no regression
    presets = (Preset("pool", {"face": "faces", "audio": "egemaps"}),)
