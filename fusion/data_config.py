"""What the fusion stage loads: modalities (which feature set feeds which model input), timeline, labels.

These records are stored in a run's ``config.json`` (:meth:`DataConfig.to_dict`) and read
back when the run scores (:meth:`DataConfig.from_dict`), so a run reads exactly the
feature sets and timeline it was trained on.

Example:
    >>> cfg = DataConfig(modalities=[ModalitySpec("face", "faces"), {"name": "audio", "feature_set": "egemaps"}],
    ...                  align={"mode": "window", "steps": 40, "hop": 20, "rate": 10.0})
    >>> [m.name for m in cfg.modalities], cfg.align.mode
    (['face', 'audio'], 'window')
    >>> DataConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> DataConfig(modalities=[ModalitySpec("face", "faces")], missing="skip")
    Traceback (most recent call last):
    ...
    ValueError: missing must be 'mask' or 'drop', got 'skip'
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emofuse.catalog.store import Catalog

#: Modality name the models see, per feature-set name.
DEFAULT_MODALITY_NAMES: dict[str, str] = {"egemaps": "audio", "faces": "face", "text": "text", "logmel": "logmel"}


@dataclass
class ModalitySpec:
    """One model input: which feature set feeds modality ``name`` and how it is aligned.

    ``feature_set`` is a name (``faces``) or an exact key; runs store the key.
    ``source``: ``sequence`` (frame-level) or ``clip`` (per-clip vector repeated over steps).
    ``hop``: frame period in seconds (None: the median time step of the set).
    """

    name: str
    feature_set: str
    source: str = "sequence"
    method: str = "pool"
    hop: float | None = None

    def __post_init__(self) -> None:
        if self.source not in ("sequence", "clip"):
            raise ValueError(f"source must be 'sequence' or 'clip', got {self.source!r}")
        if self.method not in ("pool", "interp"):
            raise ValueError(f"method must be 'pool' or 'interp', got {self.method!r}")


@dataclass
class AlignConfig:
    """Common timeline: ``fixed`` L steps per clip, or ``window``s of ``steps`` bins at ``rate`` Hz every ``hop`` bins."""

    mode: str = "fixed"
    steps: int = 32
    hop: int = 16
    rate: float = 25.0
    steps_per_modality: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "window"):
            raise ValueError(f"mode must be 'fixed' or 'window', got {self.mode!r}")
        if self.steps < 1 or self.hop < 1 or self.rate <= 0:
            raise ValueError(f"steps, hop and rate must be positive: {self}")
        if self.mode == "window" and self.steps_per_modality:
            raise ValueError("steps_per_modality applies to mode='fixed' only")

    def steps_for(self, modality: str) -> int:
        """Steps of ``modality``'s timeline (``steps`` unless overridden).

        >>> AlignConfig(steps=16, steps_per_modality={"audio": 24}).steps_for("face")
        16
        """
        return int(self.steps_per_modality.get(modality, self.steps))


@dataclass
class DataConfig:
    """What to load: modalities, timeline, what to do with items lacking a modality, labels.

    ``missing``: ``mask`` keeps an item with the absent modality fully masked, ``drop``
    removes it (items with no modality at all are always dropped). ``classes``: label order
    (None: the class order of the one corpus the items come from, its registered recipe's, for the
    classes present, then the others sorted). ``targets``:
    ``clip`` (dimensional targets from the media table, one per clip) or ``frame``
    (per-frame labels of the catalog's labels table, aligned per step: :mod:`emofuse.fusion.targets`).
    ``corpora``: the corpora whose items train (None: every labelled item of the catalog), so one
    catalog holding two corpora can train on one and be evaluated on the other.
    """

    modalities: list[ModalitySpec]
    align: AlignConfig = field(default_factory=AlignConfig)
    missing: str = "mask"
    label: str = "emotion"
    classes: list[str] | None = None
    dimensional: tuple[str, ...] = ("valence", "arousal")
    targets: str = "clip"
    corpora: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.corpora is not None:
            self.corpora = tuple(self.corpora)
        self.modalities = [m if isinstance(m, ModalitySpec) else ModalitySpec(**m) for m in self.modalities]
        if isinstance(self.align, dict):
            self.align = AlignConfig(**self.align)
        self.dimensional = tuple(self.dimensional)
        if self.targets not in ("clip", "frame"):
            raise ValueError(f"targets must be 'clip' or 'frame', got {self.targets!r}")
        if self.missing not in ("mask", "drop"):
            raise ValueError(f"missing must be 'mask' or 'drop', got {self.missing!r}")
        names = [m.name for m in self.modalities]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"modality names must be distinct and non-empty: {names}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataConfig":
        return cls(**d)

    def resolved(self, catalog: Catalog) -> "DataConfig":
        """A copy whose feature sets are exact keys of ``catalog`` (names resolved).

        >>> import tempfile
        >>> from emofuse.catalog.store import Catalog
        >>> cat = Catalog(tempfile.mkdtemp()).init()
        >>> from emofuse.catalog.records import FeatureSetDescription
        >>> cat.register_feature_set(FeatureSetDescription(name="faces", key="faces-v1-abc"))
        >>> DataConfig([ModalitySpec("face", "faces")]).resolved(cat).modalities[0].feature_set
        'faces-v1-abc'
        """
        mods = [dataclasses.replace(m, feature_set=catalog.find_feature_set(m.feature_set)) for m in self.modalities]
        return dataclasses.replace(self, modalities=mods)
