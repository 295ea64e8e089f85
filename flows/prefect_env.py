"""Prefect settings emofuse applies when one of its flows or servers starts, never at import.

Nothing leaves the machine: the temporary Prefect server that a flow run starts when no
server is configured gets ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` (unless set). That
server may wait up to 90 s to come up (Prefect's default, 20 s, fails a run on a machine
whose cores are busy with another job) unless
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` says otherwise.

:func:`flow` is Prefect's ``@flow`` for emofuse's flows: calling one applies these
defaults first (:func:`apply_defaults`), so importing :mod:`emofuse.flows` changes no
global state; ``emofuse serve`` applies them before it serves.

Example:
    >>> @flow(name="tiny")
    ... def tiny() -> int:
    ...     return 1
    >>> type(tiny).__name__, tiny.name
    ('EmofuseFlow', 'tiny')
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from prefect import Flow

#: Environment defaults of the Prefect processes a flow run or ``emofuse serve`` starts.
DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}


def apply_defaults() -> None:
    """Set :data:`DEFAULTS` where the environment does not say otherwise, and let Prefect see them
    (its settings are read when ``prefect`` is imported; they are refreshed here when one changed)."""
    missing = {k: v for k, v in DEFAULTS.items() if k not in os.environ}
    if not missing:
        return
    os.environ.update(missing)
    context = sys.modules.get("prefect.context")
    if context is not None:
        context.refresh_global_settings_context()


class EmofuseFlow(Flow):
    """A Prefect flow that applies :data:`DEFAULTS` when it is called (before a temporary server starts)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        apply_defaults()
        return super().__call__(*args, **kwargs)


def flow(**options: Any) -> Callable[[Callable[..., Any]], EmofuseFlow]:
    """``@flow(name=..., log_prints=...)``: Prefect's flow decorator, giving an :class:`EmofuseFlow`."""
    def wrap(fn: Callable[..., Any]) -> EmofuseFlow:
        return EmofuseFlow(fn, **options)

    return wrap


__all__ = ["DEFAULTS", "EmofuseFlow", "apply_defaults", "flow"]
