"""MkDocs hooks: the reference pages that are generated from the code, so they cannot drift.

``<!-- generated: cli -->`` in a page becomes every ``emofuse`` command's ``--help`` (the
parser of :mod:`emofuse.flows.cli`, walked recursively); ``<!-- generated: deployments -->``
becomes every deployment ``emofuse serve`` serves with its default parameters and the
parameters of its flow (name, type, default, help: the schema Prefect registers).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from mkdocs.plugins import event_priority

#: The source tree as installed (emofuse/ + the folders pyproject's package-dir maps under it), as
#: symbolic links, for mkdocstrings to read statically (it cannot follow a package-dir mapping).
SOURCE_TREE = os.path.join("build", "docs-src")
PACKAGES = {"catalog": "catalog", "pipeline": "pipeline", "fusion": "fusion", "flows": "flows"}

MARKERS = {"<!-- generated: cli -->": "cli", "<!-- generated: deployments -->": "deployments"}


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((name, sub))
                out.extend((f"{name} {n}", s) for n, s in _subcommands(sub))
    return out


def cli_markdown() -> str:
    """Markdown of ``emofuse --help`` and of every sub-command's ``--help``, in parser order."""
    from emofuse.flows.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width: a fixed one
    parser = build_parser()
    parts = ["## emofuse\n", "```text\n" + parser.format_help().rstrip() + "\n```\n"]
    for name, sub in _subcommands(parser):
        parts += [f"## emofuse {name}\n", "```text\n" + sub.format_help().rstrip() + "\n```\n"]
    return "\n".join(parts)


def _cell(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def deployments_markdown() -> str:
    """Markdown of every deployment (flow/name, description, default parameters) and its flow's parameters."""
    from emofuse.flows.deployments import deployments

    here = os.getcwd() + os.sep
    parts: list[str] = []
    flows: dict[str, None] = {}
    for d in deployments():
        parts.append(f"## {d.flow_name}/{d.name}\n")
        parts.append((d.description or "") + "\n")
        defaults = {k: (v.replace(here, "./") if isinstance(v, str) else v) for k, v in d.parameters.items()}
        parts.append("Default parameters: " + ", ".join(f"`{k}={_cell(v)}`" for k, v in defaults.items()) + "\n")
        parts.append(f"Other parameters: those of the [`{d.flow_name}` flow](#flow-{d.flow_name}).\n")
        flows.setdefault(d.flow_name, None)
    from emofuse.flows.params import COMMANDS

    for flow in flows:
        schema = COMMANDS[flow].schema()  # the schema Prefect registers for the flow's deployments
        parts.append(f"## Parameters of the `{flow}` flow {{#flow-{flow}}}\n")
        parts.append("| parameter | type | default | what |\n|---|---|---|---|")
        for name, prop in schema.items():
            kind = prop.get("type") or " or ".join(t.get("type", "?") for t in prop.get("anyOf", []))
            default = prop.get("default")
            if isinstance(default, str):
                default = default.replace(here, "./")
            parts.append(f"| `{name}` | {kind} | `{_cell(default)}` | {_cell(prop.get('description', ''))} |")
        parts.append("")
    return "\n".join(parts)


@event_priority(100)  # before mkdocstrings' on_config, which drops search paths that do not exist yet
def on_config(config):  # noqa: ANN001, ANN201 - MkDocs's hook signature
    """Lay out ``build/docs-src/emofuse`` (links to emofuse/__init__.py and the sub-package folders)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository (docs/..)
    pkg = os.path.join(root, SOURCE_TREE, "emofuse")
    os.makedirs(pkg, exist_ok=True)
    links = {"__init__.py": os.path.join(root, "emofuse", "__init__.py"),
             **{name: os.path.join(root, folder) for name, folder in PACKAGES.items()}}
    for name, target in links.items():
        link = os.path.join(pkg, name)
        if not os.path.islink(link) or os.readlink(link) != target:
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(target, link)
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs's hook signature
    """Replace each generation marker with the Markdown it names."""
    for marker, kind in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generated(kind))
    return markdown


def generated(kind: str) -> str:
    """The Markdown of ``kind``, made in a fresh interpreter: importing the flows there keeps
    Prefect's settings and its griffe log lines (it reads the flows' docstrings) out of MkDocs."""
    out = subprocess.run([sys.executable, __file__, kind], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "100"})
    if out.returncode != 0:
        raise RuntimeError(f"generating the {kind} reference failed:\n{out.stderr[-3000:]}")
    return out.stdout


if __name__ == "__main__":
    print(cli_markdown() if sys.argv[1] == "cli" else deployments_markdown())
