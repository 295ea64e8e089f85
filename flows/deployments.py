"""The deployments that ``emofuse serve`` serves (``extract/ravdess`` …) and their defaults.

Each deployment takes every parameter of its flow (``-p name=value``); the commands of
``emofuse`` take the same ones as options (:mod:`emofuse.flows.params`).

Example:
    >>> deps = deployments("/data/RAVDESS", "catalog")
    >>> [f"{d.flow_name}/{d.name}" for d in deps]  # doctest: +NORMALIZE_WHITESPACE
    ['extract/ravdess', 'extract/crema-d', 'extract/iemocap', 'extract/meld', 'extract/affwild2',
     'train/ravdess-tacfn', 'train/ravdess-rcma', 'score/catalog', 'score/archive']
    >>> deps[0].parameters["source"], deps[6].parameters["model"]
    ('/data/RAVDESS', 'rcma')
    >>> corpus_root_env("crema-d"), os.path.basename(demo_corpus_dir("crema-d"))
    ('EMOFUSE_CREMA_D_ROOT', 'demo-crema-d')
"""
from __future__ import annotations

import os
from typing import Any

from prefect.deployments.runner import EntrypointType

from emofuse.catalog.layout import Layout, data_dir

RAVDESS_ROOT_ENV = "EMOFUSE_RAVDESS_ROOT"

#: Labelled corpora with an ``extract/<corpus>`` deployment (recipes of :mod:`emofuse.catalog.corpora`).
CORPORA = ("ravdess", "crema-d", "iemocap", "meld", "affwild2")


def corpus_root_env(corpus: str = "ravdess") -> str:
    """The environment variable naming a real copy of ``corpus`` (``EMOFUSE_<CORPUS>_ROOT``)."""
    return f"EMOFUSE_{corpus.upper().replace('-', '_')}_ROOT"


def demo_corpus_dir(corpus: str = "ravdess") -> str:
    """Where ``emofuse demo``/``demo-corpus --layout`` put the generated corpus of that layout."""
    return os.path.join(data_dir(), "demo-corpus" if corpus == "ravdess" else f"demo-{corpus}")


def default_source(corpus: str = "ravdess") -> str:
    """``$EMOFUSE_<CORPUS>_ROOT``, else the generated demo corpus of that layout."""
    return os.path.abspath(os.environ.get(corpus_root_env(corpus)) or demo_corpus_dir(corpus))


def deployments(source: str | None = None, catalog: str | None = None) -> list[Any]:
    """Runner deployments with their default parameters (each overridable with ``--param``)."""
    from emofuse.flows.extract import extract
    from emofuse.flows.score import score
    from emofuse.flows.train import train

    root = Layout.at(catalog).root
    common = {"entrypoint_type": EntrypointType.MODULE_PATH}
    extracts = []
    for corpus in CORPORA:
        src = (source if corpus == "ravdess" else None) or default_source(corpus)
        extracts.append(extract.to_deployment(
            name=corpus, parameters={"source": src, "catalog": root, "corpus": corpus}, tags=["emofuse", "extract"],
            description=f"Extract every feature set of a {corpus}-layout corpus into the catalog "
                        f"(-p source=… or ${corpus_root_env(corpus)}; default: the generated demo copy).",
            **common))
    return [
        *extracts,
        train.to_deployment(
            name="ravdess-tacfn", parameters={"catalog": root, "model": "tacfn"}, tags=["emofuse", "train"],
            description="Train TACFN (faces target, eGeMAPS query) on the catalog's features.", **common),
        train.to_deployment(
            name="ravdess-rcma", parameters={"catalog": root, "model": "rcma"}, tags=["emofuse", "train"],
            description="Train RCMA (TCNs + recursive joint cross-attention) on the catalog's features.", **common),
        score.to_deployment(
            name="catalog", parameters={"catalog": root, "model": "tacfn"}, tags=["emofuse", "score"],
            description="Score every catalog item with a run (-p run_id=… or the latest run of -p model=…).",
            **common),
        score.to_deployment(
            name="archive", parameters={"catalog": root, "corpus": "archive"}, tags=["emofuse", "score"],
            description="Register, extract and score every media file under -p source=… with a run "
                        "(-p run_id=… or -p model=tacfn); -p window=4 -p hop=2 adds time windows.", **common),
    ]


def serve(source: str | None = None, catalog: str | None = None) -> None:
    """Serve all deployments in this process until interrupted (the long-running ``emofuse serve``)."""
    from prefect import serve as prefect_serve

    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    prefect_serve(*deployments(source, catalog))
