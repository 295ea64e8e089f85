"""The base class of a corpus recipe: everything the project knows about one corpus, in its module.

A recipe declares, as class attributes and methods: its ``name`` (the ``--corpus`` value,
the media table's ``corpus`` column), whether its items carry labels (``labelled``: an
``extract/<name>`` deployment and a fold plan), the file naming it expects (``naming_hint``,
one line, said when a folder matches nothing), its class order (``classes``), how it finds
items and labels in a source tree (:meth:`~CorpusRecipe.discover`, yielding
:class:`~emofuse.catalog.corpora.entry.Entry`), its evaluation plan
(:meth:`~CorpusRecipe.evaluation_plan`, an
:class:`~emofuse.catalog.corpora.evaluation.EvaluationPlan`), per-frame labels
(:meth:`~CorpusRecipe.frame_labels`, if its annotations have them), its deployment defaults
(``root_env``: the environment variable naming a real copy; ``demo_folder``: where its
generated demo copy goes) and its demo generator (:meth:`~CorpusRecipe.generate_demo`, with
the ``emofuse demo-corpus`` options it takes in ``demo_options``). Registered with
:func:`~emofuse.catalog.corpora.registry.register_corpus`, it is a choice of every command,
deployment and training run; nothing else names it.

Example:
    >>> class Tiny(CorpusRecipe):
    ...     name = "tiny-corpus"
    ...     naming_hint = "<speaker>_<emotion>.wav"
    ...     classes = ("sad", "happy")
    >>> t = Tiny()
    >>> t.root_env, t.demo_folder, t.has_demo, t.has_frame_labels
    ('EMOFUSE_TINY_CORPUS_ROOT', 'demo-tiny-corpus', False, False)
    >>> t.evaluation_plan(None) is None, t.class_order()
    (True, ('sad', 'happy'))
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan

#: ``progress(done, total, path)`` of a demo generator.
Progress = Callable[[int, int, str], None]

#: The classes that cross-corpus evaluation maps every corpus's labels to (``CorpusRecipe.class_map``).
SHARED_CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry")
#: The class map of corpora that name the shared classes as they are.
IDENTITY_MAP: dict[str, str] = {c: c for c in SHARED_CLASSES}


class CorpusRecipe:
    """Base class of a corpus recipe; subclasses set ``name`` and ``naming_hint`` and implement :meth:`discover`."""

    #: The recipe's name: the ``--corpus`` value and the media table's ``corpus`` column.
    name: ClassVar[str]
    #: One line naming the files the recipe takes, said when a folder holds none of them.
    naming_hint: ClassVar[str]
    #: Whether items carry labels (then the corpus has an ``extract/<name>`` deployment).
    labelled: ClassVar[bool] = True
    #: The order of the ``emotion`` classes of models trained on the corpus (None: it has none).
    classes: ClassVar[tuple[str, ...] | None] = None
    #: The corpus's ``emotion`` labels -> the shared classes (:data:`SHARED_CLASSES`) that
    #: cross-corpus evaluation scores (:mod:`emofuse.fusion.evaluate`); labels not in it are left out.
    class_map: ClassVar[dict[str, str]] = {}
    #: The ``emofuse demo-corpus`` options :meth:`generate_demo` takes beyond ``actors`` and ``seed``.
    demo_options: ClassVar[tuple[str, ...]] = ()
    #: The module of :mod:`emofuse.catalog.corpora.demo` whose ``generate(out, actors=, seed=)``
    #: writes the demo copy (the default :meth:`generate_demo`); None: the recipe has none, or
    #: overrides :meth:`generate_demo`.
    demo_module: ClassVar[str | None] = None

    @property
    def root_env(self) -> str:
        """The environment variable naming a real copy of the corpus (``EMOFUSE_<NAME>_ROOT``)."""
        return f"EMOFUSE_{self.name.upper().replace('-', '_')}_ROOT"

    @property
    def demo_folder(self) -> str:
        """The folder (under the data directory) of the generated demo copy."""
        return f"demo-{self.name}"

    @property
    def has_demo(self) -> bool:
        """Whether ``emofuse demo-corpus --layout <name>`` can generate a copy."""
        return self.demo_module is not None or _overrides(self, "generate_demo")

    @property
    def has_frame_labels(self) -> bool:
        """Whether the corpus's annotations label video frames (read by :meth:`frame_labels`)."""
        return _overrides(self, "frame_labels")

    def discover(self, source: str, selection: list[str] | None = None) -> Iterator[Entry]:  # pragma: no cover
        """The items (and rejected files, with ``error``) under ``source``; ``selection`` narrows the run."""
        raise NotImplementedError

    def class_order(self) -> tuple[str, ...] | None:
        """The order of the ``emotion`` classes of models trained on the corpus (None: none)."""
        return tuple(self.classes) if self.classes is not None else None

    def evaluation_plan(self, media: pd.DataFrame) -> EvaluationPlan | None:
        """The standard folds over these labelled media rows, None where the corpus has none.

        Raises ValueError saying why when these rows cannot make the corpus's plan.
        """
        return None

    def frame_labels(self, annotations: dict[str, str], times: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
        """(One label row per frame at ``times``, media columns summarising them) of one item.

        ``annotations`` is the item's :attr:`Entry.annotations`. Raises ValueError naming
        ``file:line`` for a malformed annotation line.
        """
        raise ValueError(f"corpus recipe {self.name!r} has no per-frame annotations")

    def generate_demo(self, out: str, *, actors: int | None = None, seed: int = 0,
                      progress: Progress | None = None, **options: Any) -> list[str]:
        """Write a small generated copy in the corpus's layout under ``out``; the paths written.

        ``options``: those of :attr:`demo_options` the user gave. ValueError for options the
        layout cannot make (too few actors, a bad code). By default, :attr:`demo_module`'s
        ``generate`` (which takes no options).
        """
        if self.demo_module is None:
            raise NotImplementedError(f"corpus recipe {self.name!r} has no demo generator")
        demo = importlib.import_module(f"emofuse.catalog.corpora.demo.{self.demo_module}")
        return demo.generate(out, actors=actors, seed=seed)


def _overrides(recipe: CorpusRecipe, method: str) -> bool:
    return getattr(type(recipe), method) is not getattr(CorpusRecipe, method)


__all__ = ["CorpusRecipe", "Progress"]
