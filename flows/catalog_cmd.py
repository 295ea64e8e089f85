"""``emofuse catalog compact``: its options and what it prints (the catalog side is :mod:`emofuse.catalog.compaction`).

Example:
    >>> import argparse
    >>> top = argparse.ArgumentParser().add_subparsers(dest="catalog_cmd")
    >>> add_compact_parser(top, lambda p: p.add_argument("--catalog"))
    >>> top.choices["compact"].parse_args(["--min-parts", "10"]).min_parts
    10
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

HELP = "merge many small parts of media, labels and status into one per folder (safe while runs write)"
DESCRIPTION = (
    "Merge the parts of the tables read whole (media/, labels/, status/feature_set=*/) into one part per folder, "
    "keeping every row (the status log included). Every task appends a status part per feature set, so a large "
    "corpus leaves tens of thousands of small parts and reading a folder costs per part: run this on demand when "
    "`emofuse catalog ls`, a run with nothing to do or pandas reads of media/status get slow (a million items in "
    "tasks of 32: ~31,000 status parts per feature set). It is safe while runs write: the merged part is written "
    "atomically and names the parts it replaces, which are deleted after it; emofuse's readers drop replaced "
    "parts, so they never see a row twice or miss one. Plain pandas/DuckDB readers of the folder can see the "
    "replaced rows twice for the moment between the merged part's rename and the old parts' deletion (or, if "
    "compaction is killed there, until the next compact or `emofuse catalog repair`). Feature sets' clips/index "
    "parts are not compacted.")


def add_compact_parser(csub: Any, catalog_arg: Callable[[argparse.ArgumentParser], Any]) -> None:
    """Add ``compact`` to the ``emofuse catalog`` subcommands."""
    p = csub.add_parser("compact", help=HELP, description=DESCRIPTION)
    catalog_arg(p)
    p.add_argument("--min-parts", type=int, default=None,  # the default lives in catalog.compaction (no pyarrow here)
                   help="compact a folder only when it holds at least this many parts (default: "
                   "emofuse.catalog.compaction.DEFAULT_MIN_PARTS)")


def cmd_compact(args: argparse.Namespace) -> int:
    """Compact the catalog and say what was merged."""
    from emofuse.catalog.compaction import DEFAULT_MIN_PARTS
    from emofuse.catalog.store import Catalog

    min_parts = DEFAULT_MIN_PARTS if args.min_parts is None else args.min_parts
    done = Catalog(args.catalog).compact(min_parts=min_parts)
    for c in done:
        print(f"{c.folder}: {c.parts} parts, {c.rows} rows -> {c.merged.rsplit('/', 1)[-1]}")
    print(f"compacted {len(done)} folders" if done else f"nothing to compact (no folder has {min_parts} parts)")
    return 0


__all__ = ["add_compact_parser", "cmd_compact"]
