"""Can this process use a catalog root? Filesystem importable, store reachable, atomic create.

``emofuse doctor --catalog URL`` prints these checks; a run on a catalog that fails them
would stop at its first write, so the checks say the command that fixes each finding.
The exclusive-create probe writes one small file twice under ``locks/`` (the second
write must be refused: that is what claims rely on, see :mod:`emofuse.catalog.locks`)
and removes it.

Example:
    >>> import tempfile
    >>> [(c.name, c.ok) for c in check_catalog(tempfile.mkdtemp())]
    [('filesystem file', True), ('catalog reachable', True), ('create-if-absent (claims)', True)]
    >>> c = check_catalog("nosuchproto://bucket/cat")[0]
    >>> c.ok, c.name
    (False, 'filesystem nosuchproto')
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import fsspec

from emofuse.catalog import atomic, urls
from emofuse.catalog.layout import Layout

#: pip extra that brings each protocol's filesystem (``pip install 'emofuse[s3]'``).
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


@dataclass(frozen=True)
class StorageCheck:
    """One finding (about a catalog root here; ``emofuse doctor`` uses it for every check):
    what was checked, whether it holds, what was found, and the command that fixes it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _install_hint(protocol: str) -> str:
    extra = EXTRAS.get(protocol)
    if extra:
        return f"pip install 'emofuse[{extra}]'   (in a checkout: .venv/bin/pip install -e '.[{extra}]')"
    return f"install the fsspec implementation of {protocol}:// (see fsspec's list of known implementations)"


def check_catalog(root: str) -> list[StorageCheck]:
    """Filesystem importable, root reachable (created if missing), create-if-absent honoured."""
    layout = Layout.at(root)
    protocol = urls.protocol(layout.root)
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as e:
        return [StorageCheck(f"filesystem {protocol}", False, f"{type(e).__name__}: {e}", _install_hint(protocol))]
    checks = [StorageCheck(f"filesystem {protocol}", True, fsspec.get_filesystem_class(protocol).__name__)]
    try:
        fs = layout.fs
        path = urls.fs_path(layout.root)
        if not urls.is_local(layout.root):  # object stores have no folders: the bucket must exist
            bucket = path.split("/", 1)[0]
            if not fs.exists(bucket):
                raise FileNotFoundError(f"no bucket {bucket!r} (or no permission to see it)")
        else:
            fs.makedirs(path, exist_ok=True)
        fs.ls(path) if fs.exists(path) else None
    except Exception as e:  # noqa: BLE001 - any failure to reach the store is the finding
        fix = ("check the URL, credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS) "
               "and endpoint (AWS_ENDPOINT_URL for an S3-API server), and that the bucket exists")
        return checks + [StorageCheck("catalog reachable", False, f"{layout.root}: {type(e).__name__}: {e}", fix)]
    checks.append(StorageCheck("catalog reachable", True, layout.root))
    probe = layout.join("locks", f".doctor-{uuid.uuid4().hex}")
    try:
        first = atomic.write_bytes(probe, b"1", overwrite=False)
        second = atomic.write_bytes(probe, b"2", overwrite=False)
        ok = first and not second
        detail = "a second create of the same name is refused" if ok else \
            "the store accepted a second create of an existing name: two runs could both claim one item"
        checks.append(StorageCheck("create-if-absent (claims)", ok, detail,
                                   "" if ok else "use a store with conditional writes (S3, GCS) or one writer at a time"))
    except Exception as e:  # noqa: BLE001
        checks.append(StorageCheck("create-if-absent (claims)", False, f"{type(e).__name__}: {e}",
                                   "use a store with conditional writes (S3, GCS, a local folder)"))
    finally:
        try:
            fs.rm_file(urls.fs_path(probe))
        except Exception:  # noqa: BLE001 - best effort: the probe is tiny and under locks/
            pass
    return checks


__all__ = ["EXTRAS", "StorageCheck", "check_catalog"]
