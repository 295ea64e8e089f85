"""The shape the developers' guide asks of the code (issue 17's "done when"), checked on every run.

* No corpus or model name is compared outside its own module: code asks the registries
  (a recipe's class order and plan, a model's abilities), never ``corpus == "ravdess"`` or
  ``model in ("tacfn", ...)``. The names are the registries' (built-in corpora, models and
  their presets), so a new plug-in is covered without editing this test. A corpus's own
  modules are its recipe module and its demo generator; a model's, the module of its spec.
* No module of ``catalog/``, ``pipeline/``, ``fusion/`` or ``flows/`` is over 400 lines.

Both read the source (``ast`` for the comparisons, so docstring examples do not count).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from emofuse.catalog.corpora import corpus_names, get_corpus
from emofuse.fusion.models import registry as models

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("catalog", "pipeline", "fusion", "flows")
MAX_LINES = 400


def _sources() -> list[Path]:
    return sorted(p for top in PACKAGES for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts)


def _file(module: str) -> Path:
    return Path(sys.modules[module].__file__).resolve()


def _owners() -> dict[str, set[Path]]:
    """Every registered corpus, model and preset name -> the files allowed to compare it."""
    owners: dict[str, set[Path]] = {}
    for name in corpus_names():
        recipe = _file(type(get_corpus(name)).__module__)
        demo = REPO / "catalog" / "corpora" / "demo" / recipe.name
        owners.setdefault(name, set()).update({recipe, demo.resolve()})
    for spec in models.models().values():
        own = _file(type(spec).__module__)
        for name in (spec.name, *(p.name for p in spec.presets)):
            owners.setdefault(name, set()).add(own)
    return owners


def _compared_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, string) of every string constant that is compared: ``==``/``!=``/``in`` operands and
    the members of a literal tuple, list or set they test, ``match`` cases, ``startswith``/``endswith``."""
    found: list[tuple[int, str]] = []

    def strings(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return [s for e in node.elts for s in strings(e)]
        return []

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += [(node.lineno, s) for s in strings(operand)]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, s) for s in strings(node.value)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith")):
            found += [(node.lineno, s) for arg in node.args for s in strings(arg)]
    return sorted(found)


def name_checks(sources: list[Path], owners: dict[str, set[Path]]) -> list[str]:
    """``path:line: name`` of every registered name compared outside the files that own it."""
    out = []
    for path in sources:
        for line, s in _compared_strings(ast.parse(path.read_text(), str(path))):
            if s in owners and path.resolve() not in owners[s]:
                shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                out.append(f"{shown}:{line}: {s!r}")
    return out


def test_the_check_sees_a_name_compared_and_where_it_may_be(tmp_path):
    """The checker itself: a comparison, a membership test, a match case and a prefix test are
    found; the same code in the owner's file, and names in docstrings or plain values, are not."""
    code = tmp_path / "elsewhere.py"
    code.write_text('"""x == "ravdess" in a docstring is documentation."""\n'
                    'DEFAULT = "ravdess"\n'
                    'if corpus == "ravdess": pass\n'
                    'if model in ("rcma", "other"): pass\n'
                    'match corpus:\n    case "meld": pass\n'
                    'if run.startswith("tacfn"): pass\n')
    found = name_checks([code], {"ravdess": set(), "rcma": set(), "meld": set(), "tacfn": set()})
    assert [f.split(":", 1)[1] for f in found] == ["3: 'ravdess'", "4: 'rcma'", "6: 'meld'", "7: 'tacfn'"]
    assert name_checks([code], {n: {code.resolve()} for n in ("ravdess", "rcma", "meld", "tacfn")}) == []


def test_no_corpus_or_model_name_is_compared_outside_its_own_module():
    owners = _owners()
    assert {"ravdess", "archive", "meld", "tacfn", "rcma", "unimodal_audio"} <= set(owners)  # the registries loaded
    found = name_checks(_sources(), owners)
    assert not found, ("a corpus or model chosen by its name (ask its recipe or its model's abilities):\n"
                       + "\n".join(found))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_400_lines(package):
    long = {str(p.relative_to(REPO)): n for p in _sources() if p.parts[len(REPO.parts)] == package
            and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split one job into its own module): {long}"
