"""The command line's flow options, built from the flows' own parameter schemas.

A flow's parameters are defined once, by its signature and the ``Args:`` section of its
docstring. Prefect turns both into the parameter schema that deployments register
(``flow.parameters``: types, defaults, descriptions); the CLI builds its options from
that same schema, so every parameter a deployment takes is an option of the matching
command, with the same default and the same help text. The only CLI-specific facts
are in :data:`COMMANDS`: which parameters are positional, a required either/or pair,
spellings kept from earlier releases (``--workers``, ``--resume``, ``--run``) and
choices (model presets from the model registry, :mod:`emofuse.fusion.models.registry`; corpus recipes).

Types map as: string, integer, number -> one value; array -> one or more values;
object -> a repeatable ``KEY=VALUE`` option whose value is JSON when it parses
(``--model-option channels='{"face": 64}'``), else a string.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="emofuse train")
    >>> COMMANDS["train"].add_options(parser)
    >>> args = parser.parse_args(["--model", "rcma", "--model-option", "bidirectional=true",
    ...                           "--model-option", 'channels={"face": 64}', "--epochs", "3"])
    >>> kwargs = COMMANDS["train"].kwargs(args)
    >>> kwargs["model"], kwargs["model_options"], kwargs["epochs"], kwargs["seed"]
    ('rcma', {'bidirectional': True, 'channels': {'face': 64}}, 3, 0)
    >>> parse_key_value("face=faces")
    ('face', 'faces')
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


def parse_key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value): the value as JSON when it parses, else the string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


class _KeyValues(argparse.Action):
    """Collect repeated ``KEY=VALUE`` options into one dict (a fresh one per parse)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        key, value = values
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), key: value})


def _json_types(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a parameter's JSON schema."""
    alts = prop.get("anyOf") or [prop]
    return [a for a in alts if a.get("type") != "null"]


_SCALARS: dict[str, Callable[[str], Any]] = {"string": str, "integer": int, "number": float}


def _help_text(prop: dict[str, Any]) -> str:
    """The docstring description, as plain text, with the default when the text does not say it."""
    text = re.sub(r"\s+", " ", (prop.get("description") or "").replace("``", "")).strip().rstrip(".")
    default = prop.get("default")
    if default is not None and "default" not in text:
        text = f"{text} (default: {default})" if text else f"default: {default}"
    return text.replace("%", "%%")


def _presets() -> list[str]:
    from emofuse.fusion.models.registry import preset_names

    return preset_names()


def _recipes() -> list[str]:
    from emofuse.catalog.corpora.registry import corpus_names

    return corpus_names()


@dataclass(frozen=True)
class Command:
    """A CLI command that runs one flow with every one of the flow's parameters as an option."""

    flow: str
    #: Parameters taken as positional arguments (optional ones unless listed in ``required``).
    positional: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    #: Parameters of which exactly one must be given (a required mutually exclusive group).
    one_of: tuple[str, ...] = ()
    #: CLI spellings that differ from ``--name-with-dashes``.
    flags: dict[str, str] = field(default_factory=dict)
    choices: dict[str, Callable[[], Sequence[str]]] = field(default_factory=dict)

    def flow_object(self) -> Any:
        """The Prefect flow (``emofuse.flows.<flow>.<flow>``)."""
        return getattr(importlib.import_module(f"emofuse.flows.{self.flow}"), self.flow)

    def schema(self) -> dict[str, dict[str, Any]]:
        """Parameter name -> JSON schema, exactly as the flow's deployments register it."""
        return self.flow_object().parameters.model_dump()["properties"]

    def flag(self, name: str) -> str:
        return self.flags.get(name, "--" + name.replace("_", "-"))

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Add one argument per flow parameter to ``parser``."""
        group = parser.add_mutually_exclusive_group(required=True) if self.one_of else None
        for name, prop in self.schema().items():
            kwargs = self._argument(name, prop)
            if name in self.positional:
                kwargs.pop("dest")
                if name not in self.required:
                    kwargs["nargs"] = "?"
                parser.add_argument(name, **kwargs)
            elif name in self.one_of:
                kwargs.pop("default")
                group.add_argument(self.flag(name), **kwargs)  # type: ignore[union-attr]
            else:
                parser.add_argument(self.flag(name), **kwargs)

    def _argument(self, name: str, prop: dict[str, Any]) -> dict[str, Any]:
        (kind, *more) = _json_types(prop) or [{"type": "string"}]
        if more:
            raise TypeError(f"{self.flow}.{name}: a parameter of several types has no CLI form ({prop})")
        out: dict[str, Any] = {"dest": name, "default": prop.get("default"), "help": _help_text(prop)}
        if name in self.choices:
            out["choices"] = list(self.choices[name]())
        t = kind.get("type")
        if t in _SCALARS:
            out["type"] = _SCALARS[t]
        elif t == "boolean":
            out["action"] = argparse.BooleanOptionalAction
        elif t == "array":
            out.update(nargs="+", type=_SCALARS.get(kind.get("items", {}).get("type", "string"), str))
        elif t == "object":
            out.update(action=_KeyValues, type=parse_key_value, metavar="KEY=VALUE")
            out["help"] += " (repeat the option for more keys; values are JSON or plain strings)"
        else:
            raise TypeError(f"{self.flow}.{name}: no CLI form for JSON schema type {t!r}")
        return out

    def kwargs(self, args: argparse.Namespace) -> dict[str, Any]:
        """The flow's keyword arguments from parsed options (every parameter, defaults included)."""
        return {name: getattr(args, name) for name in self.schema()}


#: The commands that run a flow, by command name.
COMMANDS: dict[str, Command] = {
    "extract": Command("extract", positional=("source",), flags={"n_workers": "--workers", "configs": "--config"},
                       choices={"corpus": _recipes}),
    "train": Command("train", flags={"run_id": "--resume", "feature_sets": "--feature-set",
                                     "model_options": "--model-option"},
                     choices={"model": _presets}),
    "score": Command("score", one_of=("run_id", "model"), flags={"run_id": "--run", "n_workers": "--workers"},
                     choices={"corpus": _recipes}),
    "score-archive": Command("score", positional=("source",), required=("source",), one_of=("run_id", "model"),
                             flags={"run_id": "--run", "n_workers": "--workers"}, choices={"corpus": _recipes}),
    "evaluate": Command("evaluate", flags={"run_id": "--run"}, choices={"corpus": _recipes}),
}
