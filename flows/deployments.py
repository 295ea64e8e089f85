"""The deployments that ``emofuse serve`` serves (``extract/ravdess`` …) and their defaults.

Each deployment takes every parameter of its flow (``-p name=value``); the commands of
``emofuse`` take the same ones as options (:mod:`emofuse.flows.params`). Every registered
labelled corpus (:func:`emofuse.catalog.corpora.labelled_corpora`, third-party ones
included) has an ``extract/<corpus>`` deployment; its default source is the environment
variable its recipe names, else its generated demo copy.

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

import inspect
import os
from typing import Any

from prefect.deployments.runner import EntrypointType

from emofuse.catalog.corpora.registry import get_corpus, labelled_corpora
from emofuse.catalog.layout import Layout, data_dir


def default_corpus() -> str:
    """The corpus the extract flow takes when none is given (its ``corpus`` parameter's default);
    ``emofuse serve --source`` sets the source of its deployment."""
    from emofuse.flows.extract import extract

    return inspect.signature(extract.fn).parameters["corpus"].default


def corpus_root_env(corpus: str) -> str:
    """The environment variable naming a real copy of ``corpus`` (its recipe's ``root_env``)."""
    return get_corpus(corpus).root_env


def demo_corpus_dir(corpus: str) -> str:
    """Where ``emofuse demo``/``demo-corpus --layout`` put the generated corpus of that layout."""
    return os.path.join(data_dir(), get_corpus(corpus).demo_folder)


def default_source(corpus: str) -> str:
    """The corpus's root environment variable, else the generated demo corpus of that layout."""
    return os.path.abspath(os.environ.get(corpus_root_env(corpus)) or demo_corpus_dir(corpus))


def deployments(source: str | None = None, catalog: str | None = None) -> list[Any]:
    """Runner deployments with their default parameters (each overridable with ``--param``)."""
    from emofuse.flows.extract import extract
    from emofuse.flows.score import score
    from emofuse.flows.train import train

    root = Layout.at(catalog).root
    common = {"entrypoint_type": EntrypointType.MODULE_PATH}
    extracts = []
    given = {default_corpus(): source} if source else {}
    for corpus in labelled_corpora():
        src = given.get(corpus) or default_source(corpus)
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
    """Serve all deployments in this process until interrupted (the long-running ``emofuse serve``), with a Dask
    cluster kept warm for their runs and for commands against the same server (:mod:`emofuse.flows.warm_cluster`)."""
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL

    from emofuse.flows.prefect_env import apply_defaults
    from emofuse.flows.warm_cluster import warm_cluster

    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    apply_defaults()
    with warm_cluster(PREFECT_API_URL.value()) as address:
        if address:
            print(f"Dask cluster kept warm for flow runs at {address}", flush=True)
        prefect_serve(*deployments(source, catalog))
