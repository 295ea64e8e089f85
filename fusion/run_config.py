"""A run's ``config.json`` as a typed record: :class:`RunConfig`, and what is recovered from it.

Training writes it (and rewrites it as folds finish); scoring, resuming, the score flow
and the reports read it back with :meth:`RunConfig.load`, which checks the file against
the run's manifest. The JSON keeps its key order (models concatenate modalities in the
order of their ``input_dims``), and :meth:`RunConfig.from_json` reads every
``config.json`` the previous code wrote: keys it does not know are kept in ``extra`` and
written back.

Example:
    >>> import json
    >>> saved = {"run_id": "tacfn-1", "model": "tacfn", "registry_model": "tacfn",
    ...          "model_config": {"input_dims": {"audio": 25, "face": 128}, "target": "face", "query": "audio"},
    ...          "n_parameters": 1000, "feature_sets": {"face": "faces-v1-x", "audio": "egemaps-v1-y"},
    ...          "data": {"modalities": [{"name": "face", "feature_set": "faces-v1-x"},
    ...                                  {"name": "audio", "feature_set": "egemaps-v1-y"}]},
    ...          "dims": {"face": 128, "audio": 25}, "classes": ["neutral", "happy"],
    ...          "task": {"n_classes": 2, "dimensional": [], "monitor": "uar"}, "folds": [], "fold_ids": [0],
    ...          "train": {"epochs": 5}, "seed": 0, "device": "cpu", "amp": False, "note": "kept"}
    >>> cfg = RunConfig.from_json(json.dumps(saved))
    >>> list(cfg.model_config["input_dims"])          # training order, from the data config
    ['face', 'audio']
    >>> cfg.task, cfg.train.epochs, cfg.completed_folds, cfg.extra
    (Task(n_classes=2, dimensional=()), 5, [], {'note': 'kept'})
    >>> RunConfig.from_json(cfg.to_json()) == cfg
    True
    >>> list(json.loads(cfg.to_json()))[:4]
    ['run_id', 'model', 'registry_model', 'model_config']
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from emofuse.catalog.corpora.evaluation import EvaluationPlan
from emofuse.catalog.runs import RunFolder, jsonable
from emofuse.catalog.store import Catalog
from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.inference import Task
from emofuse.fusion.models import ModelSpec, get_model, saved_model_config
from emofuse.fusion.train import TrainConfig

#: Name of the config file in a run folder.
CONFIG = "config.json"


def model_config_from_saved(config: dict[str, Any]) -> dict[str, Any]:
    """The model config of a saved ``config.json`` dict with its modality dicts in training order.

    Models concatenate modalities in the order of ``input_dims``; JSON readers need not keep
    key order, so it is restored from the data config's modality list. A config saved before
    models recorded their ``revision`` gets revision 1 (:func:`~emofuse.fusion.models.saved_model_config`).

    >>> model_config_from_saved({"data": {"modalities": [{"name": "face"}, {"name": "audio"}]},
    ...                          "model_config": {"input_dims": {"audio": 25, "face": 128}, "n_classes": 8}})
    {'input_dims': {'face': 128, 'audio': 25}, 'n_classes': 8}
    """
    order = [m["name"] for m in config["data"]["modalities"]]
    mcfg = saved_model_config(config.get("registry_model", ""), config["model_config"])
    for key in ("input_dims", "channels"):
        if isinstance(mcfg.get(key), dict):
            d = mcfg[key]
            mcfg[key] = {m: d[m] for m in order if m in d} | {m: v for m, v in d.items() if m not in order}
    return mcfg


@dataclass(kw_only=True)
class RunConfig:
    """Everything a run was trained with and on; fields in the order of ``config.json``."""

    run_id: str
    model: str
    registry_model: str
    model_config: dict[str, Any]
    n_parameters: int = 0
    #: modality -> exact feature-set key; ``feature_set_names``: modality -> extractor name.
    feature_sets: dict[str, str]
    feature_set_names: dict[str, str | None] = field(default_factory=dict)
    data: DataConfig
    dims: dict[str, int]
    classes: list[str]
    task: Task
    #: The fold plan (saved as a list of fold dicts) and the folds this run trains.
    folds: EvaluationPlan
    fold_ids: list[int]
    train: TrainConfig
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    dropped: dict[str, Any] = field(default_factory=dict)
    completed_folds: list[int] = field(default_factory=list)
    created: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Keys of the JSON this class does not know (written back unchanged).
    extra: dict[str, Any] = field(default_factory=dict)

    # -- JSON ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        t = d["task"]
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        kw: dict[str, Any] = {k: v for k, v in d.items() if k in known}
        kw.update(
            model_config=model_config_from_saved(d),
            data=DataConfig.from_dict(d["data"]),
            dims={k: int(v) for k, v in d["dims"].items()},
            classes=list(d["classes"]),
            task=Task(n_classes=int(t["n_classes"]), dimensional=tuple(t["dimensional"])),
            folds=EvaluationPlan.from_dicts(d["folds"]),
            fold_ids=[int(f) for f in d["fold_ids"]],
            train=TrainConfig(**{k: v for k, v in d["train"].items() if k in train_fields}),
            completed_folds=[int(f) for f in d.get("completed_folds", [])],
            feature_set_names=dict(d.get("feature_set_names") or {}),
        )
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if f.name == "data":
                value = value.to_dict()
            elif f.name == "task":
                value = {"n_classes": value.n_classes, "dimensional": list(value.dimensional),
                         "monitor": value.monitor}
            elif f.name == "train":
                value = dataclasses.asdict(value)
            elif f.name == "folds":
                value = value.to_dicts()
            out[f.name] = value
        return out | self.extra

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        """Parse a ``config.json`` (any written by emofuse so far)."""
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        """The ``config.json`` text: indented, keys in field order."""
        return json.dumps(self.to_dict(), indent=2, default=jsonable)

    # -- run folder ---------------------------------------------------------------
    @classmethod
    def load(cls, run: RunFolder) -> RunConfig:
        """The verified ``config.json`` of a run folder (:class:`~emofuse.catalog.runs.RunIntegrityError` if changed)."""
        return cls.from_json(run.read_verified(CONFIG))

    def save(self, run: RunFolder) -> str:
        """Write ``config.json`` to the run folder (atomically, recorded in its manifest)."""
        return run.write_bytes(CONFIG, self.to_json().encode())

    @property
    def model_spec(self) -> ModelSpec:
        """The registered model this run trains (:mod:`emofuse.fusion.models.registry`): its abilities, how
        it is built."""
        return get_model(self.registry_model)

    def build_model(self) -> nn.Module:
        """The run's model architecture (untrained)."""
        return self.model_spec.build(self.model_config)


def latest_run(cat: Catalog, model: str) -> str:
    """The most recent run of ``model`` in the catalog that finished all its folds.

    >>> import tempfile
    >>> latest_run(Catalog(tempfile.mkdtemp()), "tacfn")
    Traceback (most recent call last):
    ...
    ValueError: no finished tacfn run in .../runs; train one first: emofuse train --model tacfn
    """
    found = []
    for run_id in cat.runs():
        try:
            config = RunConfig.load(cat.run(run_id))
        except Exception:  # noqa: BLE001 - unfinished or foreign folders are not candidates
            continue
        if config.model == model and config.completed_folds:
            found.append((config.created, run_id))
    if not found:
        raise ValueError(f"no finished {model} run in {cat.layout.runs}; train one first: emofuse train --model {model}")
    return max(found)[1]


def run_feature_sets(cat: Catalog, run_id: str, *,
                     default_key: Callable[[str], str] | None = None) -> dict[str, dict[str, Any]]:
    """name -> extractor config of every feature set a run was trained on (so extraction reproduces its keys).

    A catalog that holds the run folder but not the feature set's description (the run
    was copied from another catalog) gets the extractor's default config when that
    reproduces the run's key; otherwise the error says what to copy. ``default_key`` gives
    the key of an extractor's default config by name (the caller passes the extractor
    registry's; fusion does not import the pipeline).
    """
    config = RunConfig.load(cat.run(run_id))
    out = {}
    for modality, key in config.feature_sets.items():
        if cat.exists(cat.layout.feature_set_info(key)):
            info = cat.feature_set_info(key)
            out[info.name] = info.config
            continue
        name = config.feature_set_names.get(modality) or key.split("-v", 1)[0]
        try:
            if default_key is None:
                raise LookupError("no extractor registry given")
            default = default_key(name)
        except Exception as e:  # noqa: BLE001 - an unknown extractor name ends in the message below
            default = f"? ({e})"
        if default != key:
            raise FileNotFoundError(
                f"run {run_id} was trained on feature set {key}, which {cat.root} does not describe and the "
                f"default {name} config does not reproduce (it gives {default_key}); copy "
                f"features/{key}/feature_set.json from the training catalog into this one")
        out[name] = {}
    return out


__all__ = ["CONFIG", "RunConfig", "latest_run", "model_config_from_saved", "run_feature_sets"]
