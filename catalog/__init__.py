"""emofuse's catalog: the on-disk layout, schemas, atomic writes and reads of a catalog root.

Importing it changes no global state; opening a catalog on an object store configures
fsspec's listings for that store (see :mod:`emofuse.catalog.urls`).
"""
