"""User-facing examples (README.md, getting started, concepts, guides) use the public API only.

A notebook user reads these pages: their Python blocks import ``emofuse`` (``emofuse.Catalog``,
``emofuse.extract`` …; ``tests/test_public_api.py`` checks that list) or plain pandas/zarr/duckdb,
never a module path such as ``emofuse.catalog.store``. The developer pages (how to extend,
architecture, contributing, reference) name module paths on purpose and are not checked.
"""
from __future__ import annotations

import os
import re

from tests.test_docs_examples import REPO, blocks, pages

#: Pages a user (not a contributor) reads.
USER_PAGES = ("README.md", "docs/index.md", "docs/getting-started.md", "docs/concepts/", "docs/guides/")
#: An import of an emofuse module below the facade: ``from emofuse.x import …`` / ``import emofuse.x``.
DEEP_IMPORT = re.compile(r"^\s*(from\s+emofuse\.\w|import\s+emofuse\.\w)", re.MULTILINE)


def deep_imports(page: str, text: str) -> list[str]:
    """``page:line`` of each Python block of ``text`` that imports below ``emofuse``."""
    return [f"{page}:{b['line']}" for b in blocks(text) if b["lang"] == "python" and DEEP_IMPORT.search(b["code"])]


def test_user_pages_import_from_emofuse_only() -> None:
    checked = [p for p in pages() if p.startswith(USER_PAGES)]
    assert "README.md" in checked and any(p.startswith("docs/guides/") for p in checked)
    found = [hit for p in checked for hit in deep_imports(p, open(os.path.join(REPO, p)).read())]
    assert not found, f"user-facing examples importing below emofuse (use `import emofuse`): {found}"


def test_a_deep_import_is_seen() -> None:
    text = "<!-- example: run -->\n```python\nimport pandas as pd\nfrom emofuse.catalog.store import Catalog\n```\n" \
           "```python\nimport emofuse\nemofuse.Catalog('x')\n```\n```bash\npython -m emofuse.flows.cli\n```\n"
    assert deep_imports("page.md", text) == ["page.md:2"]
