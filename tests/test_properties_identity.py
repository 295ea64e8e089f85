"""Property-based checks (Hypothesis) of item identity: content ids, file digests and part (segment) ids."""
from __future__ import annotations

import hashlib
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from emofuse.catalog.identity import cached_file_digest, content_id, file_digest, part_id

FAST = settings(max_examples=60, deadline=None, database=None)
ids = st.binary(min_size=1, max_size=64).map(lambda b: hashlib.blake2b(b, digest_size=20).hexdigest())
seconds = st.floats(0, 36_000, allow_nan=False, allow_infinity=False)


def _write(folder: str, name: str, data: bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@FAST
@given(st.binary(max_size=4096), st.binary(max_size=4096))
def test_an_item_id_is_the_blake2b_160_of_its_bytes_wherever_it_lies(a, b):
    with tempfile.TemporaryDirectory() as d:
        pa, pa2, pb = _write(d, "a.mp4", a), _write(d, "copy of a.mp4", a), _write(d, "b.wav", b)
        assert content_id(pa) == hashlib.blake2b(a, digest_size=20).hexdigest() == content_id(pa2)
        assert len(content_id(pa)) == 40 and int(content_id(pa), 16) >= 0
        assert (content_id(pa) == content_id(pb)) == (a == b)
        assert file_digest(pa) == hashlib.sha256(a).hexdigest()
        assert file_digest(pb, "md5") == hashlib.md5(b).hexdigest()


@FAST
@given(st.binary(max_size=256), st.binary(min_size=1, max_size=256))
def test_a_cached_digest_follows_a_rewritten_file(a, extra):
    with tempfile.TemporaryDirectory() as d:
        p = _write(d, "weights.onnx", a)
        assert cached_file_digest(p) == hashlib.sha256(a).hexdigest()
        os.remove(p)
        p = _write(d, "weights.onnx", a + extra)  # a new file: another size (and inode)
        assert cached_file_digest(p) == hashlib.sha256(a + extra).hexdigest()
        assert cached_file_digest(p, "md5") == hashlib.md5(a + extra).hexdigest()


@FAST
@given(ids, seconds, seconds, st.sampled_from([None, "left", "right"]))
def test_part_ids_depend_on_the_parent_the_range_to_the_millisecond_and_the_side(parent, s, length, side):
    e = s + length
    pid = part_id(parent, start=s, end=e, side=side)
    assert len(pid) == 40 and pid != parent
    assert pid == part_id(parent, start=s, end=e, side=side)  # the same part, the same id
    assert pid == part_id(parent, start=float(f"{s:.3f}"), end=float(f"{e:.3f}"), side=side)  # to the millisecond
    assert pid != part_id(parent, start=s + 0.002, end=e, side=side)  # a millisecond apart: another part
    assert pid != part_id(parent, start=s, end=e + 0.002, side=side)
    assert pid != part_id(hashlib.blake2b(parent.encode(), digest_size=20).hexdigest(), start=s, end=e, side=side)
    other = {None: "left", "left": "right", "right": None}[side]
    assert pid != part_id(parent, start=s, end=e, side=other)
    assert part_id(parent, end=e, side=side) == part_id(parent, start=0.0, end=e, side=side)  # a range from 0
    assert part_id(parent, start=s, side=side) == part_id(parent, start=s, end=float("inf"), side=side)  # to the end
    assert part_id(parent, start=s, side=side) != part_id(parent, side=side)  # a range is not the whole file


def test_part_id_anchors():
    """Fixed values: changing the description format renames every part item in every catalog."""
    parent = "cf7baa4f57b03672cb793fff716f51e1dd65fee6"
    assert part_id(parent, start=1.5, end=3.25) == "ad3ba5ee3935c535037761cacea35f84d8c97027"
    assert part_id(parent) == hashlib.blake2b(parent.encode(), digest_size=20).hexdigest()
    assert part_id(parent, start=1.5, end=3.25, side="left") == hashlib.blake2b(
        f"{parent}|range=1.500-3.250|side=left".encode(), digest_size=20).hexdigest()
    assert part_id(parent, side="right") == hashlib.blake2b(f"{parent}|side=right".encode(), digest_size=20).hexdigest()


def test_a_cached_digest_notices_a_change_of_size_or_of_mtime_alone(tmp_path):
    p = _write(str(tmp_path), "w.bin", b"aaaa")
    assert cached_file_digest(p) == hashlib.sha256(b"aaaa").hexdigest()
    st = os.stat(p)
    _write(str(tmp_path), "w.bin", b"aaaaaa")  # a new size, the old modification time
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cached_file_digest(p) == hashlib.sha256(b"aaaaaa").hexdigest()
    st = os.stat(p)
    _write(str(tmp_path), "w.bin", b"bbbbbb")  # the same size, a new modification time
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cached_file_digest(p) == hashlib.sha256(b"bbbbbb").hexdigest()
