"""What an extract run is asked to do: one typed record that the flows, the CLI and scoring share.

The ``extract`` flow and the ``score`` flow (when it extracts an archive) keep their keyword
parameters (Prefect deployments and the generated CLI options come from them), take their
defaults from :class:`ExtractRequest`, and build one request per run with
:meth:`ExtractRequest.resolve`: absolute paths, the default feature sets, a new run id.
Planning, the tasks and the run summary then read the request, never loose parameters.

Example:
    >>> req = ExtractRequest.resolve(source="videos", catalog="/tmp/cat", corpus="archive",
    ...                              feature_sets=["egemaps", "faces"])
    >>> os.path.isabs(req.source), req.catalog, req.fps, req.retry_failed, len(req.run_id) > 15
    (True, '/tmp/cat', 5.0, False, True)
    >>> req.feature_configs()["faces"]
    {'fps': 5.0}
    >>> ExtractRequest.fps, ExtractRequest.batch_size   # the flows' defaults
    (5.0, 32)
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from emofuse.catalog.layout import Layout
from emofuse.catalog.summaries import ExtractRunSummary
from emofuse.pipeline.registry import Extractor, extractor_class, get_extractor


@dataclass(frozen=True)
class ExtractRequest:
    """One extract run's parameters (the defaults here are the flows' defaults).

    ``catalog`` is a resolved root and ``source`` an absolute path (or a URL) once built with
    :meth:`resolve`; ``feature_sets`` names extractors, ``configs`` overrides their configs
    (name -> config), ``selection`` narrows a corpus recipe (e.g. RAVDESS's ``audio-only``).
    ``retry_failed``: attempt again the items whose earlier outcome the content decided
    (``no_face``, ``decode_error``, …; see :class:`~emofuse.catalog.schemas.Status`).
    """

    catalog: str = ""
    source: str | None = None
    corpus: str = "ravdess"
    feature_sets: tuple[str, ...] = ()
    fps: float = 5.0
    batch_size: int = 32
    batch_seconds: float | None = 120.0
    selection: tuple[str, ...] | None = None
    configs: dict[str, dict[str, Any]] | None = None
    retry_failed: bool = False
    run_id: str = ""

    @classmethod
    def resolve(cls, *, source: str | None = None, catalog: str | None = None,
                feature_sets: list[str] | tuple[str, ...] | None = None, selection: list[str] | None = None,
                run_id: str | None = None, **options: Any) -> "ExtractRequest":
        """The request for one run: ``source`` made absolute (URLs kept), ``catalog`` resolved
        (``$EMOFUSE_CATALOG`` or the default), every registered extractor when ``feature_sets``
        is empty, a new run id; ``options`` are the other fields."""
        return cls(source=os.path.abspath(source) if source and "://" not in source else source,
                   catalog=Layout.at(catalog).root, feature_sets=tuple(feature_sets or default_feature_sets()),
                   selection=tuple(selection) if selection else None,
                   run_id=run_id or ExtractRunSummary.new_run_id(), **options)

    def replace(self, **changes: Any) -> "ExtractRequest":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def feature_configs(self) -> dict[str, dict[str, Any]]:
        """Per feature set, its config overrides; ``fps`` is the default of extractors that sample video
        frames (those whose config has an ``fps`` field)."""
        out = {name: dict((self.configs or {}).get(name, {})) for name in self.feature_sets}
        for name, cfg in out.items():
            if "fps" in {f.name for f in dataclasses.fields(extractor_class(name).config_cls)}:
                cfg.setdefault("fps", self.fps)
        return out

    def extractors(self) -> dict[str, Extractor]:
        """name -> extractor of the run's feature sets, with the run's config overrides."""
        return {name: get_extractor(name, cfg) for name, cfg in self.feature_configs().items()}


def default_feature_sets() -> list[str]:
    """Every registered extractor: what a run extracts when it names no feature set."""
    from emofuse.pipeline.registry import available

    return available()


__all__ = ["ExtractRequest", "default_feature_sets"]
