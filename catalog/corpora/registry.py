"""Corpus registry: name -> recipe, for the built-in corpora and those of other packages.

A recipe class (:class:`~emofuse.catalog.corpora.recipe.CorpusRecipe`) is registered with
the :func:`register_corpus` decorator in its own module. The built-in modules are imported
when a name is first looked up (:data:`BUILTIN_MODULES`, in the order commands list them);
other packages add corpora through the entry-point group ``emofuse.corpora``
(``name = package.module:RecipeClass`` in their ``entry_points.txt``), loaded on the first
:func:`corpus_names` or lookup of a name that is not built in.

Examples:
    >>> corpus_names()[:6]
    ['ravdess', 'archive', 'crema-d', 'iemocap', 'meld', 'affwild2']
    >>> get_corpus("meld").class_order()[:2], get_corpus("archive").labelled
    (('neutral', 'joy'), False)
    >>> get_corpus("sewa")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown corpus recipe 'sewa': use one of ['ravdess', 'archive', ...]
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from emofuse.catalog.corpora.recipe import CorpusRecipe

log = logging.getLogger(__name__)

#: The entry-point group through which other packages register corpora.
ENTRY_POINT_GROUP = "emofuse.corpora"
#: Built-in recipe name -> its module (imported on first use).
BUILTIN_MODULES = {
    "ravdess": "emofuse.catalog.corpora.ravdess",
    "archive": "emofuse.catalog.corpora.archive",
    "crema-d": "emofuse.catalog.corpora.crema_d",
    "iemocap": "emofuse.catalog.corpora.iemocap",
    "meld": "emofuse.catalog.corpora.meld",
    "affwild2": "emofuse.catalog.corpora.affwild2",
}

_REGISTRY: dict[str, CorpusRecipe] = {}
_entry_points_loaded = False
#: Entry points that failed to load: name -> why (said when that name is asked for).
_broken: dict[str, str] = {}


def register_corpus(cls: type[CorpusRecipe]) -> type[CorpusRecipe]:
    """Class decorator: register a recipe under its ``name`` (a second class of that name is an error)."""
    if not (isinstance(cls, type) and issubclass(cls, CorpusRecipe)):
        raise TypeError(f"{cls!r} is not a CorpusRecipe subclass")
    for attr in ("name", "naming_hint"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise TypeError(f"corpus recipe {cls.__qualname__} sets no {attr}")
    old = _REGISTRY.get(cls.name)
    if old is not None and type(old) is not cls:
        raise ValueError(f"corpus recipe {cls.name!r} registered twice ({type(old).__module__} and {cls.__module__})")
    _REGISTRY[cls.name] = cls()
    return cls


def unregister_corpus(name: str) -> None:
    """Remove a registered recipe (tests that register one in-process clean up with it)."""
    _REGISTRY.pop(name, None)


def _load_builtins() -> None:
    for module in BUILTIN_MODULES.values():
        importlib.import_module(module)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            if ep.name in _REGISTRY and type(_REGISTRY[ep.name]) is cls:
                continue  # its module registered it with @register_corpus
            if getattr(cls, "name", None) != ep.name:
                raise ValueError(f"it loads {cls!r}, whose name is {getattr(cls, 'name', None)!r}, not {ep.name!r}")
            register_corpus(cls)
        except Exception as e:  # noqa: BLE001 - a broken plug-in must not take the built-in corpora down
            _broken[ep.name] = f"entry point {ep.name} = {ep.value} of group {ENTRY_POINT_GROUP} failed: {e}"
            log.warning("%s", _broken[ep.name])


def corpus_names() -> list[str]:
    """Every registered recipe's name: the built-ins in :data:`BUILTIN_MODULES` order, then the others."""
    _load_builtins()
    _load_entry_points()
    return [*(n for n in BUILTIN_MODULES if n in _REGISTRY), *sorted(set(_REGISTRY) - set(BUILTIN_MODULES))]


def labelled_corpora() -> list[str]:
    """The names of the registered recipes whose items carry labels (each has an ``extract/<name>`` deployment)."""
    return [n for n in corpus_names() if _REGISTRY[n].labelled]


def demo_layouts() -> list[str]:
    """The names of the registered recipes with a demo generator (``emofuse demo-corpus --layout``)."""
    return [n for n in corpus_names() if _REGISTRY[n].has_demo]


def get_corpus(name: str) -> CorpusRecipe:
    """The recipe registered as ``name``; a built-in one imports only its own module."""
    if name not in _REGISTRY:
        if name in BUILTIN_MODULES:
            importlib.import_module(BUILTIN_MODULES[name])
        else:
            _load_entry_points()
    if name not in _REGISTRY:
        why = f" ({_broken[name]})" if name in _broken else ""
        raise ValueError(f"unknown corpus recipe {name!r}: use one of {corpus_names()}{why}")
    return _REGISTRY[name]


__all__ = ["BUILTIN_MODULES", "ENTRY_POINT_GROUP", "corpus_names", "demo_layouts", "get_corpus", "labelled_corpora",
           "register_corpus", "unregister_corpus"]
