"""Run folders ``<catalog>/runs/<run_id>/``: files recorded in a sha256 manifest, and checkpoints.

What a training run writes there (config, weights, metrics, plots) is fusion's business
(:mod:`emofuse.fusion.runs`); this module stores the bytes. Every file goes through
:meth:`RunFolder.write_bytes`, which writes atomically and records the file's sha256 and
size in ``manifest.json``; :meth:`RunFolder.read_verified` hands a file back only if it
is recorded, unchanged, and — for tensors — a well-formed safetensors file, never a
pickle (:class:`RunIntegrityError` otherwise).

``checkpoints/`` (:class:`Checkpoints`) holds the last epoch of an unfinished fold: a
safetensors file and the JSON that names it with its sha256, written in that order, so a
crash between the two leaves the previous pair valid.

Example:
    >>> import tempfile
    >>> run = RunFolder(tempfile.mkdtemp() + "/runs/demo")
    >>> _ = run.write_json("config.json", {"model": "tacfn", "seed": 0})
    >>> run.read_json("config.json")
    {'model': 'tacfn', 'seed': 0}
    >>> sorted(run.manifest()["files"])
    ['config.json']
    >>> with open(run.path + "/config.json", "a") as f:
    ...     _ = f.write(" ")
    >>> run.read_verified("config.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emofuse.catalog.runs.RunIntegrityError: ...config.json has sha256 ..., but the run's manifest records ...
    >>> ckpt = run.checkpoints
    >>> ckpt.save(0, 3, b"tensors", {"best_epoch": 2})
    'fold-0.epoch-0003.safetensors'
    >>> meta, data = ckpt.load(0)
    >>> meta["checkpoint"], meta["best_epoch"], data
    ('fold-0.epoch-0003.safetensors', 2, b'tensors')
    >>> ckpt.clear(0); ckpt.remove_if_empty(); run.exists("checkpoints")
    False
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from typing import Any

from emofuse.catalog import atomic
from emofuse.catalog.atomic import new_id
from emofuse.catalog.urls import is_local, url_to_fs

MANIFEST = "manifest.json"
CHECKPOINTS = "checkpoints"
#: Suffixes of pickle-based weight formats: never loaded.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


class RunIntegrityError(RuntimeError):
    """A run file is missing, not safetensors (e.g. a pickle), or differs from its recorded checksum."""


def new_run_id(model: str) -> str:
    """``<model>-<UTC yyyymmdd-HHMMSS>-<6 hex>``: sortable, unique, never all digits.

    >>> new_run_id("tacfn").startswith("tacfn-20")
    True
    """
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{model}-{now}-{new_id()[:6]}"


def jsonable(o: Any) -> Any:
    """JSON fallback for numpy/torch values (``tolist``), sets, and anything else as ``str``."""
    if isinstance(o, (set, frozenset)):
        return list(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def _looks_like_pickle(data: bytes) -> str | None:
    if data[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save format, which holds a pickle)"
    if data[:1] == b"\x80" and len(data) > 1 and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    return None


def check_safetensors(name: str, data: bytes) -> None:
    """Raise RunIntegrityError unless ``data`` is a well-formed safetensors file (never unpickle).

    >>> check_safetensors("w.safetensors", b"\\x80\\x04K\\x01.")
    Traceback (most recent call last):
    ...
    emofuse.catalog.runs.RunIntegrityError: w.safetensors is a Python pickle; only safetensors files are loaded (pickles can run code)
    """
    what = _looks_like_pickle(data)
    if what:
        raise RunIntegrityError(f"{name} is {what}; only safetensors files are loaded (pickles can run code)")
    if len(data) < 10:
        raise RunIntegrityError(f"{name} is too short to be a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data) or data[8:9] != b"{":
        raise RunIntegrityError(f"{name} is not a safetensors file (bad header)")
    try:
        json.loads(data[8:8 + n])
    except ValueError as e:
        raise RunIntegrityError(f"{name} is not a safetensors file (header is not JSON: {e})") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Folder:
    """Raw access to the files of one folder (a local path or any fsspec URL)."""

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def local(self) -> bool:
        return is_local(self.path)

    def _fs(self, name: str = "") -> tuple[Any, str]:
        return url_to_fs(f"{self.path}/{name}" if name else self.path)

    def exists(self, name: str) -> bool:
        fs, p = self._fs(name)
        return bool(fs.exists(p))

    def read_bytes(self, name: str) -> bytes:
        fs, p = self._fs(name)
        if not fs.exists(p):
            raise FileNotFoundError(f"{self.path}/{name} does not exist")
        with fs.open(p, "rb") as f:
            return f.read()

    def names(self) -> list[str]:
        """Entry names of the folder (empty when it does not exist)."""
        fs, p = self._fs()
        if not fs.exists(p):
            return []
        return sorted(os.path.basename(x.rstrip("/")) for x in fs.ls(p, detail=False))

    def remove(self, name: str) -> None:
        fs, p = self._fs(name)
        if fs.exists(p):
            fs.rm(p)


class RunFolder(_Folder):
    """One run folder: atomic writes recorded in ``manifest.json``, verified reads."""

    def write_bytes(self, name: str, data: bytes, *, record: bool = True) -> str:
        """Write ``name`` atomically (:func:`emofuse.catalog.atomic.write_bytes`); record its sha256."""
        path = f"{self.path}/{name}"
        atomic.write_bytes(path, data)
        if record:
            man = self.manifest()
            man.setdefault("files", {})[name] = {"sha256": _sha256(data), "bytes": len(data)}
            self.write_bytes(MANIFEST, json.dumps(man, indent=2, sort_keys=True).encode(), record=False)
        return path

    def write_json(self, name: str, obj: Any) -> str:
        """Write JSON keeping key order (model configs rely on the order of their modality dicts)."""
        return self.write_bytes(name, json.dumps(obj, indent=2, default=jsonable).encode())

    def manifest(self) -> dict[str, Any]:
        """``{"files": {name: {"sha256", "bytes"}}}`` of every recorded file."""
        if not self.exists(MANIFEST):
            return {"files": {}}
        return json.loads(self.read_bytes(MANIFEST))

    def read_verified(self, name: str) -> bytes:
        """Bytes of ``name`` after checking them against the manifest (and their format for tensors)."""
        if name.endswith(PICKLE_SUFFIXES):
            raise RunIntegrityError(f"{name}: only safetensors weights are loaded, never pickle-based formats")
        man = self.manifest().get("files", {})
        where = f"{self.path}/{name}"
        if name not in man:
            raise RunIntegrityError(f"{where} is not recorded in {MANIFEST}; refusing to load it")
        try:
            data = self.read_bytes(name)
        except FileNotFoundError:
            raise RunIntegrityError(f"{where} is recorded in the manifest but missing") from None
        if name.endswith(".safetensors"):
            check_safetensors(where, data)
        digest = _sha256(data)
        if digest != man[name]["sha256"]:
            raise RunIntegrityError(
                f"{where} has sha256 {digest[:16]}…, but the run's manifest records "
                f"{man[name]['sha256'][:16]}…: the file was changed after training; refusing to load it")
        return data

    def read_json(self, name: str) -> Any:
        """A verified JSON file of the run."""
        return json.loads(self.read_verified(name))

    @property
    def checkpoints(self) -> "Checkpoints":
        return Checkpoints(f"{self.path}/{CHECKPOINTS}")


class Checkpoints(_Folder):
    """Per-epoch checkpoints of unfinished folds: ``fold-<k>.epoch-<e>.safetensors`` + ``fold-<k>.json``."""

    def save(self, fold: int, epoch: int, data: bytes, meta: dict[str, Any]) -> str:
        """Write the epoch's tensors, then the JSON that names them (with ``meta``); drop older epochs."""
        name = f"fold-{fold}.epoch-{epoch:04d}.safetensors"
        atomic.write_bytes(f"{self.path}/{name}", data)
        record = {"fold": fold, "checkpoint": name, "sha256": _sha256(data), **meta}
        atomic.write_bytes(f"{self.path}/fold-{fold}.json", json.dumps(record, default=jsonable).encode())
        for old in self.names():  # keep only the checkpoint the JSON names
            if old.startswith(f"fold-{fold}.epoch-") and old != name:
                self.remove(old)
        return name

    def load(self, fold: int) -> tuple[dict[str, Any], bytes] | None:
        """The fold's last checkpoint (meta, tensor bytes), or None; refuses a file whose sha256 differs."""
        meta_name = f"fold-{fold}.json"
        if not self.exists(meta_name):
            return None
        meta = json.loads(self.read_bytes(meta_name))
        path = f"{self.path}/{meta['checkpoint']}"
        if not meta["checkpoint"].endswith(".safetensors"):
            raise ValueError(f"checkpoint {path} is not a safetensors file; refusing to load it")
        data = self.read_bytes(meta["checkpoint"])
        if _sha256(data) != meta["sha256"]:
            raise ValueError(f"checkpoint {path} does not match the sha256 recorded in "
                             f"{self.path}/{meta_name}; refusing to load it")
        return meta, data

    def clear(self, fold: int) -> None:
        """Remove a finished fold's checkpoint files."""
        for name in self.names():
            if name.startswith(f"fold-{fold}.") and name.endswith((".safetensors", ".json")):
                self.remove(name)

    def remove_if_empty(self) -> None:
        """Remove the folder when no checkpoint is left in it."""
        fs, p = self._fs()
        if fs.exists(p) and not fs.ls(p, detail=False):
            fs.rmdir(p)


__all__ = ["CHECKPOINTS", "MANIFEST", "Checkpoints", "RunFolder", "RunIntegrityError", "check_safetensors",
           "jsonable", "new_run_id"]
