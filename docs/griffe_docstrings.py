"""A Griffe extension (mkdocs.yml loads it for mkdocstrings): the code's docstrings as the API pages show them.

The docstrings are written for ``help()`` and doctest as much as for the site, in two habits that
Griffe's Google-style parser does not know:

- ``Example:`` and ``Example (what it shows):`` headings. Griffe reads only ``Examples:`` as the
  examples section; any other ``Word:`` heading becomes an admonition whose ``>>>`` lines Markdown
  turns into nested quotes. Both forms become ``Examples:`` (the caption kept as the section's
  title, as plain text), so the doctests render as highlighted Python console blocks.
- Sphinx roles (``:func:`~emofuse.x.name```, ``:mod:`emofuse.x```), which Markdown shows verbatim
  as ``:func:`` before the code. Each becomes inline code (``name`` when the target starts with
  ``~``, as Sphinx shows it).
- Doctests with no heading at all (``>>>`` at the left margin): each such block gets an
  ``Examples:`` heading and is indented under it; so does a run indented under a plain paragraph.

Only the text handed to the renderer changes; the source, ``help()`` and the doctests are untouched.

Examples:
    >>> rewrite("Text.\\n\\nExample (two rows):\\n    >>> 1 + 1").splitlines()
    ['Text.', '', 'Examples: Example (two rows):', '    >>> 1 + 1']
    >>> rewrite("Text.\\n>>> 1 + 1\\n2\\n\\nMore text.").splitlines()
    ['Text.', '', 'Examples:', '    >>> 1 + 1', '    2', '', 'More text.']
    >>> rewrite("Example (a wrapped\\n``caption``):\\n    >>> 1").splitlines()
    ['Examples: Example (a wrapped caption):', '    >>> 1']
    >>> rewrite("A paragraph, then:\\n    >>> 1\\n\\nArgs:\\n    >>> 2").splitlines()
    ['A paragraph, then:', '', 'Examples:', '    >>> 1', '', 'Args:', '    >>> 2']
    >>> rewrite("Example:"), rewrite("See :func:`~emofuse.fusion.stats.bootstrap` and :mod:`emofuse.catalog`.")
    ('Examples:', 'See `bootstrap` and `emofuse.catalog`.')
"""
from __future__ import annotations

import re
from typing import Any

#: ``Example:`` / ``Example (caption):`` alone on a line (any indentation).
#: The caption may wrap over lines (not over a blank one).
HEADING = re.compile(r"^(?P<indent>[ \t]*)Example(?:[ \t]*(?P<caption>\((?:(?!\n[ \t]*\n).)*?\)))?:[ \t]*$",
                     re.MULTILINE | re.DOTALL)
#: A line Griffe may read as a section or admonition heading (its pattern).
SECTION = re.compile(r"^[\w][\s\w-]*:(\s+[^\s].*)?\s*$")
#: A Sphinx cross-reference role and its target.
ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|exc|obj|const):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _heading(m: re.Match) -> str:
    caption = m.group("caption") and " ".join(m.group("caption").replace("`", "").split())  # a plain-text title
    return m.group("indent") + ("Examples: Example " + caption + ":" if caption else "Examples:")


def _role(m: re.Match) -> str:
    target = m.group("target")
    return "`" + (target.rsplit(".", 1)[-1] if m.group("tilde") else target) + "`"


def _headed_doctests(text: str) -> str:
    """Each doctest run outside a section (``>>>`` at the left margin, or indented under a plain
    paragraph) under an ``Examples:`` heading of its own."""
    out: list[str] = []
    shift: str | None = None  # while in a run being headed: what each of its lines is indented by
    in_section = False  # the last left-margin line is a section heading (its block is indented)
    for line in text.split("\n"):
        if not line.strip():
            shift = None
        elif shift is None and (line.startswith(">>>") or (line.startswith("    >>>") and not in_section)):
            out += ([""] if out and out[-1].strip() else []) + ["Examples:"]
            shift = "    " if line.startswith(">>>") else ""
        elif shift is None and not line.startswith(" "):
            in_section = bool(SECTION.match(line)) and (not out or not out[-1].strip())
        out.append(shift + line if shift else line)
    return "\n".join(out)


def rewrite(text: str) -> str:
    """``text`` with its example headings made ``Examples:``, its bare doctests headed and its Sphinx roles made inline code."""
    return ROLE.sub(_role, _headed_doctests(HEADING.sub(_heading, text)))


try:  # the extension class needs Griffe (the docs extra); ``rewrite`` above does not
    from griffe import Extension
except ImportError:  # pragma: no cover
    Extension = object  # type: ignore[assignment,misc]


class DocstringsForTheSite(Extension):  # type: ignore[misc,valid-type]
    """Rewrite every object's docstring (modules, classes, functions, attributes) before it is parsed."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:  # noqa: ARG002 - Griffe's hook signature
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
