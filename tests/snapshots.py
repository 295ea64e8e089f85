"""What "a re-run changes nothing" compares: every file under a catalog, by stamp or by content."""
from __future__ import annotations

import hashlib
import os


def file_snapshot(root: str, *, content: bool = False, skip: tuple[str, ...] = ("locks",)) -> dict[str, object]:
    """relative path -> (size, mtime_ns), or the MD5 of the bytes with ``content``, of every file under ``root``.

    Folders named in ``skip`` are left out (claims under ``locks/`` come and go while tasks run).
    """
    out: dict[str, object] = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in skip]
        for f in files:
            p = os.path.join(d, f)
            if content:
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = hashlib.md5(fh.read()).hexdigest()
            else:
                st = os.stat(p)
                out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out
