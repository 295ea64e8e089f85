"""The model registry: every fusion model is one registered :class:`ModelSpec` subclass.

A spec declares, in the model's own module, everything training and scoring need to know:

* ``name``: the registry name (``registry_model`` in a run's ``config.json``);
* ``config_class``: the model's config dataclass, and :meth:`ModelSpec.build` (config -> module);
* ``abilities``: what it can train (:class:`Abilities`: per clip and/or per frame,
  categories and/or valence/arousal); training and scoring ask these, never the name;
* ``presets``: the names ``emofuse train --model`` offers (:class:`~emofuse.fusion.presets.Preset`:
  feature set per modality role, timeline, optimisation, role config);
* :meth:`ModelSpec.heads`: the config fields a run sets from its data (classes, targets, roles);
* ``demo_epochs``: the epoch cap of ``emofuse demo``.

Built-in models register in their own modules (every module of :mod:`emofuse.fusion.models`
is imported on the first lookup); models of other packages register through the entry-point
group ``emofuse.models`` (an entry point names a module or a :class:`ModelSpec` subclass),
loaded on the first lookup too. Adding a model is one module:

    >>> from dataclasses import dataclass
    >>> from torch import nn
    >>> from emofuse.fusion.presets import Preset
    >>> @dataclass
    ... class MeanConfig:
    ...     input_dims: dict
    ...     n_classes: int = 2
    >>> class Mean(nn.Module):
    ...     def __init__(self, config):
    ...         super().__init__()
    ...         self.config = config
    ...         self.head = nn.Linear(sum(config.input_dims.values()), config.n_classes)
    >>> @register_model
    ... class MeanModel(ModelSpec):
    ...     name = "doc_mean"
    ...     network = Mean
    ...     config_class = MeanConfig
    ...     presets = (Preset("doc_mean", {"audio": "egemaps"}),)
    >>> get_model("doc_mean").abilities
    Abilities(per_clip=True, per_frame=False, categorical=True, dimensional=False)
    >>> find_preset("doc_mean")[0].name, "doc_mean" in preset_names()
    ('doc_mean', True)
    >>> sorted(m for m in model_names() if not m.startswith("doc_"))
    ['concat_mlp', 'rcma', 'tacfn', 'unimodal']
    >>> unregister_model("doc_mean")
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the registry is imported by the package itself: no torch or fusion imports at load
    from torch import nn

    from emofuse.fusion.inference import Task
    from emofuse.fusion.presets import Preset

log = logging.getLogger(__name__)

#: Entry-point group through which other packages register models.
ENTRY_POINT_GROUP = "emofuse.models"


@dataclass(frozen=True)
class Abilities:
    """What a model can be trained on.

    ``per_clip``: one target per clip (the clip's class or its valence/arousal; windows of a
    clip share it). ``per_frame``: a target per model step (per-frame labels, e.g. Aff-Wild2;
    needs ``dimensional`` and a per-step ``"va"`` output). ``categorical``: classes (a
    ``"logits"`` output, cross-entropy). ``dimensional``: valence/arousal (a ``"va"``
    output (N, L, targets), 1 - CCC).
    """

    per_clip: bool = True
    per_frame: bool = False
    categorical: bool = True
    dimensional: bool = False

    def __post_init__(self) -> None:
        if not (self.per_clip or self.per_frame) or not (self.categorical or self.dimensional):
            raise ValueError(f"a model must train per clip or per frame, on classes or dimensions: {self}")
        if self.per_frame and not self.dimensional:
            raise ValueError("per-frame training regresses valence/arousal: per_frame needs dimensional")


@dataclass(frozen=True)
class ModelInputs:
    """What a run gives a model to configure itself: input widths (in training order), the steps
    of its timeline (``AlignConfig.steps``) and the task (classes, dimensional targets)."""

    dims: Mapping[str, int]
    steps: int
    task: Task


class ModelSpec:
    """One fusion model. Subclasses set the class attributes and register with :func:`register_model`.

    The module (``network``) takes ``forward(inputs, masks=None)``: ``inputs`` modality ->
    (N, L, d), ``masks`` modality -> bool (N, L); it returns ``"logits"`` (N, classes) when
    ``abilities.categorical`` and ``"va"`` (N, L, targets) when ``abilities.dimensional``.
    ``network(config_class(**config))`` builds it; override :meth:`build` otherwise.
    """

    name: ClassVar[str]
    network: ClassVar[type[nn.Module]]
    config_class: ClassVar[type]
    abilities: ClassVar[Abilities] = Abilities()
    presets: ClassVar[tuple[Preset, ...]] = ()
    #: Epoch cap of this model's runs in ``emofuse demo`` (early stopping may end them sooner).
    demo_epochs: ClassVar[int] = 40

    # -- config -------------------------------------------------------------------------
    def heads(self, inputs: ModelInputs, roles: Mapping[str, Any]) -> dict[str, Any]:
        """Config fields a run sets from its data (after ``input_dims`` and the preset's, before
        the caller's overrides): by default the number of classes. ``roles``: the config so far
        with the overrides applied (e.g. which modality is the target)."""
        return {"n_classes": inputs.task.n_classes}

    def run_config(self, preset: Preset, inputs: ModelInputs,
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The model config of a new run: ``input_dims``, the preset's role config, :meth:`heads`,
        then ``overrides``; stamped with the model's revision (:meth:`new_config`)."""
        cfg: dict[str, Any] = {"input_dims": dict(inputs.dims), **preset.model_config}
        cfg.update(self.heads(inputs, {**cfg, **(overrides or {})}))
        cfg.update(overrides or {})
        if not self.abilities.dimensional and not cfg.get("n_classes"):
            raise ValueError(f"model {preset.name!r} needs class labels; the catalog's media table has none")
        return self.new_config(cfg)

    def _has_revision(self) -> bool:
        return any(f.name == "revision" for f in dataclasses.fields(self.config_class))

    def new_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` for a new run, stamped with the current revision of the model definition (when the
        config class has a ``revision`` field and ``config`` names none): saved runs record the
        definition their weights were made for."""
        cfg = dict(config)
        if self._has_revision():
            cfg.setdefault("revision", self.config_class().revision)
        return cfg

    def saved_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A config read back from a saved run: no ``revision`` means revision 1 (saved before revisions)."""
        cfg = dict(config)
        if self._has_revision():
            cfg.setdefault("revision", 1)
        return cfg

    # -- module -------------------------------------------------------------------------
    def build(self, config: Mapping[str, Any] | Any) -> nn.Module:
        """The (untrained) module of a config: a dict of config fields (a run's ``model_config``)
        or a ``config_class`` instance."""
        if not isinstance(config, self.config_class):
            config = self.config_class(**config)
        return self.network(config)

    def __repr__(self) -> str:
        return f"<model {self.name!r} {self.abilities}>"


_MODELS: dict[str, ModelSpec] = {}
_LOCK = threading.RLock()
_LOADED = False
#: Entry points that failed to load: name -> reason (said when a lookup fails).
_BROKEN: dict[str, str] = {}


def register_model(cls: type[ModelSpec]) -> type[ModelSpec]:
    """Class decorator: make a model (and its presets) available by name.

    Registering the same class again is a no-op; another class under a taken model or
    preset name is an error.
    """
    spec = cls()
    with _LOCK:
        old = _MODELS.get(cls.name)
        if old is not None:
            if type(old) is cls or (type(old).__qualname__, type(old).__module__) == (cls.__qualname__,
                                                                                   cls.__module__):
                return cls
            raise ValueError(f"model {cls.name!r} registered twice ({type(old).__module__} and {cls.__module__})")
        names = [p.name for p in cls.presets]
        taken = {p.name: m.name for m in _MODELS.values() for p in m.presets}
        clash = [n for n in names if n in taken] + [n for n in set(names) if names.count(n) > 1]
        if clash:
            raise ValueError(f"model {cls.name!r}: preset names {sorted(set(clash))} are taken")
        _MODELS[cls.name] = spec
    return cls


def unregister_model(name: str) -> None:
    """Remove a registered model (tests register throw-away models)."""
    with _LOCK:
        _MODELS.pop(name, None)


def _load() -> None:
    """Import the built-in model modules and the ``emofuse.models`` entry points (once)."""
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        package = importlib.import_module(__name__.rpartition(".")[0])
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if isinstance(obj, type) and issubclass(obj, ModelSpec) and getattr(obj, "name", None):
                    register_model(obj)
            except Exception as e:  # noqa: BLE001 - one broken plug-in must not hide the other models
                _BROKEN[ep.name] = f"{ep.value}: {type(e).__name__}: {e}"
                log.warning("model entry point %r (%s) failed to load: %s", ep.name, ep.value, e)
        _LOADED = True


def models() -> dict[str, ModelSpec]:
    """Every registered model by name (built-ins and entry points loaded)."""
    _load()
    return dict(sorted(_MODELS.items()))


def model_names() -> list[str]:
    """Names of every registered model."""
    return list(models())


def get_model(name: str) -> ModelSpec:
    """The model registered as ``name``."""
    found = models().get(name)
    if found is None:
        broken = f"; entry points that failed to load: {_BROKEN}" if _BROKEN else ""
        raise ValueError(f"unknown model {name!r}; known: {model_names()}{broken}")
    return found


def preset_names() -> list[str]:
    """Every preset name (what ``emofuse train --model`` takes), sorted."""
    return sorted(p.name for m in models().values() for p in m.presets)


def find_preset(name: str) -> tuple[ModelSpec, Preset]:
    """The model that declares preset ``name``, and the preset."""
    for spec in models().values():
        for p in spec.presets:
            if p.name == name:
                return spec, p
    broken = f"; entry points that failed to load: {_BROKEN}" if _BROKEN else ""
    raise ValueError(f"unknown model {name!r}; choose one of {preset_names()}{broken}")


def build_model(name: str, **config: Any) -> nn.Module:
    """Build the model registered as ``name`` from keyword config fields."""
    return get_model(name).build(config)


__all__ = ["ENTRY_POINT_GROUP", "Abilities", "ModelInputs", "ModelSpec", "build_model", "find_preset", "get_model",
           "model_names", "models", "preset_names", "register_model", "unregister_model"]
