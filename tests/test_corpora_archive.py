"""The archive recipe (any media under a folder), recipe dispatch by name, and the storage/corpora boundary."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from emofuse.catalog.corpora import archive, corpus_names, discover
from tests._modules import REPO


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_archive_takes_media_of_every_kind_in_nested_folders(tmp_path: Path) -> None:
    _touch(tmp_path, "b.MKV", "a.mp4", "x/y/c.flac", "x/d.webm", "notes.txt", ".hidden.mp4", "x/.e.wav", "f.mp4.part")
    got = [os.path.relpath(p, tmp_path) for p in archive.files(str(tmp_path))]
    assert got == ["a.mp4", "b.MKV", "x/d.webm", "x/y/c.flac"]  # sorted per folder, folders after files
    assert all(os.path.isabs(p) for p in archive.files(str(tmp_path)))


def test_archive_of_one_file_and_of_nothing(tmp_path: Path) -> None:
    _touch(tmp_path, "clip.mov")
    assert list(archive.files(str(tmp_path / "clip.mov"))) == [str(tmp_path / "clip.mov")]
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        list(archive.files(str(tmp_path / "missing")))


def test_archive_follows_links_inside_the_tree_once_and_never_outside(tmp_path: Path) -> None:
    src, outside = tmp_path / "src", tmp_path / "outside"
    _touch(src, "a.mp4", "real/b.mp4")
    _touch(outside, "secret.mp4")
    os.symlink(src, src / "real" / "loop")  # a loop back to the root
    os.symlink(src / "real", src / "alias")  # a second way into one folder
    os.symlink(outside, src / "escape")  # a link leading out of the tree
    got = [os.path.relpath(p, src) for p in archive.files(str(src))]
    assert sorted(os.path.basename(p) for p in got) == ["a.mp4", "b.mp4"]


def test_recipes_by_name(tmp_path: Path) -> None:
    _touch(tmp_path, "Actor_01/01-01-03-01-01-01-01.mp4", "Actor_01/clip.mp4")
    assert corpus_names()[:6] == ["ravdess", "archive", "crema-d", "iemocap", "meld", "affwild2"]
    arch = list(discover("archive", str(tmp_path)))
    assert [e.columns for e in arch] == [{"corpus": "archive"}] * 2 and not any(e.error for e in arch)
    rav = list(discover("ravdess", str(tmp_path)))
    assert [(os.path.basename(e.path), bool(e.error)) for e in rav] == [
        ("01-01-03-01-01-01-01.mp4", False), ("clip.mp4", True)]
    assert rav[0].columns["emotion"] == "happy" and rav[1].columns == {}
    with pytest.raises(ValueError, match="unknown corpus recipe 'sewa'"):
        list(discover("sewa", str(tmp_path)))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_storage_never_imports_corpora() -> None:
    storage = [p for p in (REPO / "catalog").glob("*.py")]
    assert len(storage) > 5
    offenders = {p.name: sorted(n for n in _imports(p) if "corpora" in n) for p in storage}
    assert {k: v for k, v in offenders.items() if v} == {}
    # corpora may use storage (the demo corpus writes through the one atomic writer)
    assert "emofuse.catalog.atomic" in _imports(REPO / "catalog" / "corpora" / "demo" / "corpus.py")
