"""What a run took from its source: files seen, files taken, and the reasons for the rest, grouped.

A corpus recipe yields one :class:`~emofuse.catalog.corpora.entry.Entry` per candidate
item, with ``error`` set for a file it rejects. :class:`Intake` counts them by file and
groups the rejections by reason (the message without the file's own name, so 3,000 files
named ``clip000123.mp4`` are one reason with a few example paths). A run that took none of
its files is a mistake (a folder in another layout, or the wrong ``--corpus``), not a
finished corpus: :meth:`Intake.check` raises :class:`NothingTaken` with the fix.

Example:
    >>> from emofuse.catalog.corpora.entry import Entry
    >>> entries = [Entry(f"/v/clip{i}.mp4", error=f"'clip{i}.mp4' is not a RAVDESS name: expected MM-VV-…")
    ...            for i in range(3)] + [Entry("/v/Actor_01/01-01-03-01-01-01-01.mp4", {"corpus": "ravdess"})]
    >>> intake = Intake.of(entries)
    >>> intake.seen, intake.taken, intake.rejected
    (4, 1, 3)
    >>> intake.rejections
    {'is not a RAVDESS name: expected MM-VV-…': {'count': 3, 'examples': ['/v/clip0.mp4', '/v/clip1.mp4', '/v/clip2.mp4']}}
    >>> try:
    ...     Intake.of(entries[:3]).check("/v", "ravdess", hint="Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4", fallback="archive")
    ... except NothingTaken as e:
    ...     print(e)
    the ravdess recipe took none of the 3 media files under /v. It expects Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4. To take every media file whatever its name (no labels), pass --corpus archive.
      3 × is not a RAVDESS name: expected MM-VV-… (e.g. /v/clip0.mp4, /v/clip1.mp4, /v/clip2.mp4)
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emofuse.catalog.corpora.entry import Entry

#: Example paths kept per reason.
EXAMPLES = 3


class NothingTaken(ValueError):
    """A run over a source whose recipe took none of its files (the message says why and what to do)."""


def reason_of(entry: Entry) -> str:
    """The rejection reason of ``entry`` without the file's own name or path (so equal reasons group)."""
    text = str(entry.error or "")
    base = os.path.basename(entry.path)
    for name in (entry.path, base):
        text = text.replace(repr(name), "").replace(name, "")
    text = re.sub(r"\s+", " ", text).strip(" :,-")
    return text or "rejected"


@dataclass
class Intake:
    """Files a recipe saw under a source, those it took, and the rejected ones by reason."""

    seen: int = 0
    taken: int = 0
    #: reason -> {"count": files, "examples": a few paths}
    rejections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(g["count"] for g in self.rejections.values())

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> "Intake":
        """Count ``entries`` by file: a file is taken when the recipe took any item of it."""
        taken: set[str] = set()
        bad: dict[str, Entry] = {}
        for e in entries:
            if e.error:
                bad.setdefault(e.path, e)
            else:
                taken.add(e.path)
        out = cls(seen=len(taken | set(bad)), taken=len(taken))
        for path, e in bad.items():
            if path in taken:
                continue
            group = out.rejections.setdefault(reason_of(e), {"count": 0, "examples": []})
            group["count"] += 1
            if len(group["examples"]) < EXAMPLES:
                group["examples"].append(path)
        return out

    def lines(self) -> list[str]:
        """What the run did not take, one line per reason with its examples (none when it took everything)."""
        head = f"{self.seen} media files seen, {self.taken} taken, {self.rejected} rejected"
        if not self.rejections:
            return [head]
        out = [head + ":"]
        for reason, g in sorted(self.rejections.items(), key=lambda kv: -kv[1]["count"]):
            more = ", …" if g["count"] > len(g["examples"]) else ""
            out.append(f"  {g['count']} × {reason} (e.g. {', '.join(g['examples'])}{more})")
        return out

    def check(self, source: str, corpus: str, *, hint: str | None = None, fallback: str | None = None) -> None:
        """Raise :class:`NothingTaken` when the recipe took no file of ``source``; ``hint``: the naming it
        expects; ``fallback``: a recipe that takes any media file, offered as the fix."""
        if self.taken:
            return
        expects = f" It expects {hint}." if hint else ""
        other = (f" To take every media file whatever its name (no labels), pass --corpus {fallback}."
                 if fallback else "")
        if not self.seen:
            raise NothingTaken(f"no media files under {source} for the {corpus} recipe.{expects}{other}")
        detail = "\n".join(self.lines()[1:])
        raise NothingTaken(f"the {corpus} recipe took none of the {self.seen} media files under {source}."
                           f"{expects}{other}\n{detail}")


def explain_nothing_taken(intake: Intake, source: str, corpus: str) -> None:
    """:meth:`Intake.check` with what the recipe registry says: the naming ``corpus`` expects (its
    ``naming_hint``) and, unless ``corpus`` is one, a recipe without labels that takes any media file."""
    if intake.taken:
        return
    from emofuse.catalog.corpora.registry import corpus_names, get_corpus

    recipe = get_corpus(corpus)
    fallback = None
    if getattr(recipe, "labelled", True):
        fallback = next((n for n in corpus_names() if not getattr(get_corpus(n), "labelled", True)), None)
    intake.check(source, corpus, hint=getattr(recipe, "naming_hint", None) or None, fallback=fallback)


__all__ = ["Intake", "NothingTaken", "explain_nothing_taken", "reason_of"]
