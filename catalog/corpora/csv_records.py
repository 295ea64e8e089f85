"""Rows of an annotation CSV, each with the ``file:line`` it came from (CREMA-D, MELD).

The header must hold the columns a recipe needs; blank lines are skipped; a row with
another number of fields than the header is an error naming its line (an unquoted comma
in a transcript is the usual cause), never a guess.

Example:
    >>> rows = list(csv_records("t.csv", "ActorID,Age\\n1001,51\\n\\n1002,40\\n", ("Age",), what="CREMA-D"))
    >>> rows
    [('t.csv:2', {'Age': '51'}), ('t.csv:4', {'Age': '40'})]
    >>> list(csv_records("t.csv", "ActorID,Age\\n1001,51,x\\n", ("Age",), what="CREMA-D"))
    Traceback (most recent call last):
    ...
    ValueError: t.csv:2: 3 fields, the header has 2 (an unquoted comma?): ['1001', '51', 'x']
"""
from __future__ import annotations

import csv
import io
from typing import Iterator, Sequence


def csv_records(path: str, text: str, columns: Sequence[str], *, what: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(file:line, {column: stripped value})`` for each non-blank row of the CSV ``text`` read from ``path``.

    ``columns``: those the header must have (``what`` names the corpus in the error).
    The line is where the row starts (a quoted field may span lines).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}:1: the header lacks {what} columns {missing} (got {header})")
    col = {c: header.index(c) for c in columns}
    line = reader.line_num
    for rec in reader:
        start, line = line + 1, reader.line_num
        if not any(v.strip() for v in rec):
            continue
        where = f"{path}:{start}"
        if len(rec) != len(header):
            raise ValueError(f"{where}: {len(rec)} fields, the header has {len(header)} (an unquoted comma?): {rec}")
        yield where, {c: rec[i].strip() for c, i in col.items()}


__all__ = ["csv_records"]
