"""Extractor registry: name -> (version, config dataclass, implementation).

An extractor turns one media item into an :class:`ExtractResult`: optional
per-clip columns (a Parquet row), optional frame-level sequences (Zarr rows with
their own time stamps) and a status. It never writes anything itself: the
catalog stores results, the flows schedule work.

The feature-set key (see :func:`feature_set_key`) names an extractor output
unambiguously: name, version, a hash of the config and the weights checksum. A
changed config gives a new key, so outputs never mix.

Example:
    >>> available()
    ['egemaps', 'faces', 'logmel', 'text']
    >>> get_extractor("egemaps").key
    'egemaps-v1-3cb11cdc-opensmile2.6.0'
    >>> get_extractor("egemaps", {"min_duration": 1.0}).key  # another config: another feature set
    'egemaps-v1-2f489e14-opensmile2.6.0'
    >>> get_extractor("egemaps", {"min_dur": 1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: EgemapsConfig has no option(s) ['min_dur']; options are [...]

    Options that change how, not what, an extractor computes stay out of the key:

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class DemoConfig:
    ...     n_mels: int = 64
    ...     batch_size: int = runtime_field(32)
    >>> feature_set_key("demo", 1, DemoConfig(), "none")
    'demo-v1-fe1c8dff-none'
    >>> feature_set_key("demo", 1, DemoConfig(batch_size=8), "none")
    'demo-v1-fe1c8dff-none'
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from emofuse.catalog.records import ExtractResult, FeatureSetDescription, Sequence
from emofuse.catalog.schemas import Status


@dataclass(frozen=True)
class MediaRef:
    """What an extractor gets to know about an item: tasks pass paths and ids, never arrays."""

    item_id: str
    path: str
    duration: float | None = None
    has_audio: bool | None = None
    has_video: bool | None = None
    transcript: str | None = None
    #: An item that is a time range of a file (an IEMOCAP turn): the range in seconds of the
    #: file's timeline; extractors decode only that range, and their times start at 0 at
    #: ``segment_start``. None for a whole-file item.
    segment_start: float | None = None
    segment_end: float | None = None
    #: One subject of a two-subject video (Aff-Wild2): ``"left"``/``"right"``, the face on that side
    #: of the frame is the item's; None: the main face.
    face_side: str | None = None


class Extractor:
    """Base class. Subclasses set ``name``, ``version``, ``config_cls`` and implement :meth:`extract`.

    :meth:`row_columns` names the per-clip columns (None: no per-clip row);
    :meth:`sequence_dim` gives the width of ``values`` (None: no sequence).
    """

    name: ClassVar[str]
    version: ClassVar[int]
    config_cls: ClassVar[type]

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.config_cls()

    # -- identity ---------------------------------------------------------------
    def weights_checksum(self) -> str:
        """Short checksum of the model files this extractor loads (or a library version)."""
        return "none"

    @property
    def key(self) -> str:
        return feature_set_key(self.name, self.version, self.config, self.weights_checksum())

    def describe(self) -> FeatureSetDescription:
        """What goes into ``feature_set.json``: enough to reproduce the output (provenance is the run's to add)."""
        return FeatureSetDescription(
            name=self.name,
            key=self.key,
            version=self.version,
            config=config_to_dict(self.config),
            weights_checksum=self.weights_checksum(),
            row_columns=self.row_columns(),
            sequence_dim=self.sequence_dim(),
            sequence_columns=self.sequence_columns(),
        )

    def row_columns(self) -> list[str] | None:
        return None

    def sequence_dim(self) -> int | None:
        return None

    def sequence_columns(self) -> list[str] | None:
        """Names of the ``values`` columns (e.g. the 25 LLD names), if meaningful."""
        return None

    def runtime_info(self) -> dict[str, Any]:
        """Provenance known only after loading (e.g. onnxruntime provider actually used)."""
        return {}

    # -- work -------------------------------------------------------------------
    def extract(self, media: MediaRef) -> ExtractResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def extract_many(self, items: list[MediaRef]) -> list[ExtractResult]:
        """Extract a batch; override to batch model calls across items (GPU)."""
        return [self.extract(m) for m in items]


_REGISTRY: dict[str, type[Extractor]] = {}


def register(cls: type[Extractor]) -> type[Extractor]:
    """Class decorator: make an extractor available by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"extractor {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    """Names of every extractor (imports all built-in extractor modules)."""
    _load_builtin()
    return sorted(_REGISTRY)


def extractor_class(name: str) -> type[Extractor]:
    """The extractor class registered as ``name``; a built-in one imports only its own module.

    A worker that runs eGeMAPS tasks thus never imports the face or text stacks.
    """
    if name not in _REGISTRY:
        module = _BUILTIN_MODULES.get(name)
        if module is not None:
            import importlib

            importlib.import_module(module)
        else:
            _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown feature set {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def get_extractor(name: str, config: dict[str, Any] | Any | None = None) -> Extractor:
    """Build a registered extractor; ``config`` may be a dict of overrides or a config instance."""
    cls = extractor_class(name)
    if config is None or isinstance(config, dict):
        cfg = config_from_dict(cls.config_cls, config or {})
    else:
        cfg = config
    return cls(cfg)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})


def config_from_dict(config_cls: type, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(
            f"{config_cls.__name__} has no option(s) {sorted(unknown)}; options are {sorted(names)}"
        )
    return config_cls(**values)


#: Field metadata for options that change how, not what, an extractor computes
#: (device, threads, batch size): they stay out of the feature-set key.
RUNTIME_ONLY = {"runtime_only": True}


def runtime_field(default: Any) -> Any:
    """A config field that does not change the output (excluded from the feature-set key)."""
    return field(default=default, metadata=RUNTIME_ONLY)


def config_hash(config: Any) -> str:
    """Hash of the config fields that determine the output (runtime-only fields excluded)."""
    values = config_to_dict(config)
    if dataclasses.is_dataclass(config):
        for f in dataclasses.fields(config):
            if f.metadata.get("runtime_only"):
                values.pop(f.name, None)
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def feature_set_key(name: str, version: int, config: Any, weights: str) -> str:
    """``<name>-v<version>-<config hash>-<weights checksum>``; safe as a folder name."""
    safe_weights = "".join(c if c.isalnum() or c in ".-_" else "_" for c in weights)[:16]
    return f"{name}-v{version}-{config_hash(config)}-{safe_weights}"


#: Built-in extractor name -> the module whose import registers it.
_BUILTIN_MODULES: dict[str, str] = {
    "egemaps": "emofuse.pipeline.egemaps",
    "faces": "emofuse.pipeline.faces",
    "text": "emofuse.pipeline.text",
    "logmel": "emofuse.pipeline.logmel",
}
_loaded = False


def _load_builtin() -> None:
    """Import the built-in extractor modules so their ``@register`` runs (missing ones are skipped)."""
    global _loaded
    if _loaded:
        return
    import importlib
    import importlib.util

    for mod in _BUILTIN_MODULES.values():
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod)
    _loaded = True


# Used by extractor modules for their config dataclasses.
__all__ = [
    "ExtractResult",
    "Extractor",
    "FeatureSetDescription",
    "MediaRef",
    "Sequence",
    "Status",
    "available",
    "config_hash",
    "extractor_class",
    "feature_set_key",
    "field",
    "get_extractor",
    "register",
    "runtime_field",
]
