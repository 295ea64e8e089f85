"""The deployments that ``emofuse serve`` serves (``extract/ravdess`` …) and their defaults."""
from __future__ import annotations

import os
from typing import Any

from prefect.deployments.runner import EntrypointType

from catalog.layout import Layout, data_dir

RAVDESS_ROOT_ENV = "EMOFUSE_RAVDESS_ROOT"


def demo_corpus_dir() -> str:
    return os.path.join(data_dir(), "demo-corpus")


def default_source() -> str:
    return os.path.abspath(os.environ.get(RAVDESS_ROOT_ENV) or demo_corpus_dir())


def deployments(source: str | None = None, catalog: str | None = None) -> list[Any]:
    """Runner deployments with their default parameters (each overridable with ``--param``)."""
    from flows.extract import extract

    params = {"source": source or default_source(), "catalog": Layout.at(catalog).root, "corpus": "ravdess"}
    return [
        extract.to_deployment(
            name="ravdess", parameters=params, entrypoint_type=EntrypointType.MODULE_PATH,
            description="Extract every feature set of a RAVDESS-layout corpus into the catalog.",
            tags=["emofuse", "extract"]),
    ]


def serve(source: str | None = None, catalog: str | None = None) -> None:
    """Serve all deployments in this process until interrupted (the long-running ``emofuse serve``)."""
    from prefect import serve as prefect_serve

    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    prefect_serve(*deployments(source, catalog))
