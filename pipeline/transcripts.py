"""Transcript sources for the text extractor: statement text, sidecar files, offline ASR.

A transcript is a list of :class:`Segment` (start, end, text); times are seconds
from the start of the media, or ``None`` where the source has none (plain text).
Sources are tried in a fixed order so a result is reproducible:

1. ``MediaRef.transcript`` -- the RAVDESS statement text that the catalog fills in
   (one segment spanning the clip);
2. a sidecar next to the media with the same stem: ``.srt``, then ``.vtt``, then
   ``.txt`` (timed formats first, so timings are kept when a folder has several);
3. offline ASR (:mod:`emofuse.pipeline.asr`, faster-whisper), only when asked for.

Sidecars must resolve inside the media's own folder: a symlink or an explicit
path that escapes it is refused (a catalog of untrusted archives must not read
arbitrary files). Malformed ``.srt``/``.vtt`` files raise :class:`TranscriptError`
naming the file and line, rather than being half-read.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.srt").write_text("1\\n00:00:01,000 --> 00:00:02,500\\nHello <i>there</i>\\n")
    >>> parse_srt(d / "a.srt")
    [Segment(start=1.0, end=2.5, text='Hello there')]
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emofuse.pipeline.segments import Segment

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.pipeline.asr import AsrConfig
    from emofuse.pipeline.registry import MediaRef

#: Sidecar extensions in the order they are looked for.
SIDECAR_EXTENSIONS: tuple[str, ...] = (".srt", ".vtt", ".txt")
#: Values of the ``source`` column.
SOURCE_STATEMENT = "statement"
SOURCE_SIDECAR = "sidecar"
SOURCE_ASR = "asr"


class TranscriptError(ValueError):
    """A transcript file that cannot be used (malformed, unreadable, or outside the media's folder)."""


@dataclass
class Transcript:
    """The segments of one item and where they came from (``statement`` | ``sidecar`` | ``asr``)."""

    segments: list[Segment]
    source: str
    path: str | None = None
    info: dict[str, object] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All segment texts joined by a space."""
        return " ".join(s.text for s in self.segments)


# -- parsing -----------------------------------------------------------------------
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# HH:MM:SS,mmm (SRT) or [HH:]MM:SS.mmm (VTT); we accept either separator in both.
_TS = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}(?:\s+(.*))?\s*$")


def _clean(text: str) -> str:
    """Drop markup (``<i>``, ``<v Speaker>``, ``<00:00:01.000>``), unescape entities, squeeze spaces."""
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = re.sub(r"\{\\[^}]*\}", "", text)  # SSA-style overrides some SRT files carry
    return _SPACE.sub(" ", text).strip()


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000.0


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TranscriptError(f"{path}: cannot read transcript ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # old subtitle files are often Latin-1; never fails
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _parse_timing(path: Path, lineno: int, line: str) -> tuple[float, float]:
    m = _TIMING.match(line)
    if not m:
        raise TranscriptError(
            f"{path}:{lineno}: expected a timing line like '00:00:01,000 --> 00:00:02,500', got {line.strip()!r}"
        )
    g = m.groups()
    start = _seconds(*g[0:4])
    end = _seconds(*g[4:8])
    for name, parts in (("start", g[0:4]), ("end", g[4:8])):
        if int(parts[2]) >= 60 or (parts[0] is not None and int(parts[1]) >= 60):
            raise TranscriptError(f"{path}:{lineno}: {name} time has minutes or seconds >= 60: {line.strip()!r}")
    if end < start:
        raise TranscriptError(f"{path}:{lineno}: cue ends ({end:.3f}s) before it starts ({start:.3f}s)")
    return start, end


def _cue(path: Path, lineno: int, block: list[str], i: int) -> list[Segment]:
    """The segment of a cue whose timing line is ``block[i]``; none when its text is empty once cleaned."""
    start, end = _parse_timing(path, lineno + i, block[i])
    text = _clean(" ".join(block[i + 1:]))
    return [Segment(start, end, text)] if text else []


def _blocks(lines: list[str], first: int = 0) -> list[tuple[int, list[str]]]:
    """Split lines into blank-line separated blocks: (1-based line number of first line, lines)."""
    out: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    start = 0
    for i in range(first, len(lines)):
        line = lines[i]
        if line.strip():
            if not cur:
                start = i + 1
            cur.append(line)
        elif cur:
            out.append((start, cur))
            cur = []
    if cur:
        out.append((start, cur))
    return out


def parse_srt(path: str | os.PathLike[str]) -> list[Segment]:
    """Parse a SubRip file into timed segments; raise :class:`TranscriptError` (file:line) if malformed.

    Each block is an optional numeric index, a timing line and one or more text
    lines. Markup is removed; cues whose text is empty after that are dropped.
    """
    p = Path(path)
    segments: list[Segment] = []
    for lineno, block in _blocks(_read_lines(p)):
        i = 0
        if "-->" not in block[0]:
            if not block[0].strip().isdigit():
                raise TranscriptError(
                    f"{p}:{lineno}: expected a cue number or a timing line, got {block[0].strip()!r}"
                )
            i = 1
            if len(block) < 2:
                raise TranscriptError(f"{p}:{lineno}: cue {block[0].strip()} has no timing line")
        segments.extend(_cue(p, lineno, block, i))
    return segments


def parse_vtt(path: str | os.PathLike[str]) -> list[Segment]:
    """Parse a WebVTT file into timed segments; raise :class:`TranscriptError` (file:line) if malformed.

    The file must start with ``WEBVTT``; ``NOTE``, ``STYLE`` and ``REGION`` blocks
    are skipped; cue identifiers and cue settings are accepted and ignored.
    """
    p = Path(path)
    lines = _read_lines(p)
    if not lines or not (lines[0].strip() == "WEBVTT" or lines[0].startswith(("WEBVTT ", "WEBVTT\t"))):
        raise TranscriptError(f"{p}:1: a WebVTT file must start with 'WEBVTT'")
    segments: list[Segment] = []
    blocks = _blocks(lines, first=1)
    for lineno, block in blocks:
        head = block[0].strip()
        if lineno == 2 and "-->" not in head and not any("-->" in b for b in block):
            continue  # header metadata lines directly under WEBVTT (e.g. "Kind: captions")
        if head.startswith(("NOTE", "STYLE", "REGION")) and not any("-->" in b for b in block):
            continue
        i = 0 if "-->" in block[0] else 1
        if i >= len(block) or "-->" not in block[i]:
            raise TranscriptError(f"{p}:{lineno}: cue has no timing line (got {head!r})")
        segments.extend(_cue(p, lineno, block, i))
    return segments


def parse_txt(path: str | os.PathLike[str]) -> list[Segment]:
    """Plain text: one untimed segment per non-empty line (keeps segments within the model's token limit)."""
    p = Path(path)
    return [Segment(None, None, t) for t in (_clean(line) for line in _read_lines(p)) if t]


_PARSERS = {".srt": parse_srt, ".vtt": parse_vtt, ".txt": parse_txt}


def parse_sidecar(path: str | os.PathLike[str]) -> list[Segment]:
    """Parse a ``.srt``/``.vtt``/``.txt`` file by its extension."""
    ext = Path(path).suffix.lower()
    if ext not in _PARSERS:
        raise TranscriptError(f"{path}: unsupported transcript type {ext!r}; use one of {', '.join(_PARSERS)}")
    return _PARSERS[ext](path)


# -- locating sidecars ---------------------------------------------------------------
def _inside(folder: str, path: str) -> bool:
    try:
        return os.path.commonpath([folder, path]) == folder
    except ValueError:  # different drives
        return False


def check_sidecar(media_path: str | os.PathLike[str], sidecar: str | os.PathLike[str]) -> Path:
    """Return ``sidecar`` if it resolves (symlinks followed) inside the media's folder, else raise.

    Relative sidecar paths are taken relative to the media's folder.
    """
    folder = os.path.realpath(os.path.dirname(os.path.abspath(media_path)))
    side = Path(sidecar)
    if not side.is_absolute():
        side = Path(os.path.dirname(os.path.abspath(media_path))) / side
    real = os.path.realpath(side)
    if not _inside(folder, real):
        raise TranscriptError(
            f"{side}: refusing transcript outside the media's folder {folder} (it resolves to {real})"
        )
    return side


def find_sidecar(media_path: str | os.PathLike[str]) -> Path | None:
    """The first ``<stem>.srt|.vtt|.txt`` beside the media, checked to stay in its folder; None if absent."""
    base = Path(os.path.abspath(media_path))
    for ext in SIDECAR_EXTENSIONS:
        for cand in (base.with_suffix(ext), base.with_suffix(ext.upper())):
            if cand.is_file() or cand.is_symlink():
                return check_sidecar(media_path, cand)
    return None


# -- the source chain ----------------------------------------------------------------
def load_transcript(
    media: MediaRef,
    *,
    use_asr: bool = False,
    asr_config: AsrConfig | None = None,
) -> Transcript:
    """Resolve an item's transcript: statement, else sidecar, else (if ``use_asr``) ASR.

    Returns a :class:`Transcript` whose ``segments`` may be empty (nothing said,
    no source found). Raises :class:`TranscriptError` for a bad sidecar, and the
    :mod:`emofuse.pipeline.decode` errors or :class:`emofuse.pipeline.asr.AsrUnavailable` from ASR.
    """
    if media.transcript is not None and media.transcript.strip():
        end = float(media.duration) if media.duration else None
        return Transcript([Segment(0.0, end, _clean(media.transcript))], SOURCE_STATEMENT)
    side = find_sidecar(media.path)
    if side is not None:
        segments = parse_sidecar(side)
        if media.segment_start is not None or media.segment_end is not None:
            segments = within(segments, media.segment_start or 0.0, media.segment_end)
        return Transcript(segments, SOURCE_SIDECAR, path=str(side))
    if use_asr:
        from emofuse.pipeline.asr import transcribe

        segments, info = transcribe(media.path, config=asr_config, start=media.segment_start,
                                    end=media.segment_end)
        return Transcript(segments, SOURCE_ASR, path=None, info=info)
    return Transcript([], "none")


def within(segments: list[Segment], start: float, end: float | None) -> list[Segment]:
    """The timed segments that overlap ``[start, end)``, clipped to it, on a timeline starting at ``start``.

    What a sidecar of a whole file says about an item that is a range of it; untimed
    segments (a ``.txt`` sidecar) cannot be placed in the range and are left out.

    >>> within([Segment(0.0, 2.0, "a"), Segment(2.5, 4.0, "b"), Segment(None, None, "c")], 1.5, 3.0)
    [Segment(start=0.0, end=0.5, text='a'), Segment(start=1.0, end=1.5, text='b')]
    """
    hi = float("inf") if end is None else end
    out = []
    for s in segments:
        if s.start is None or s.end is None or s.end <= start or s.start >= hi:
            continue
        out.append(Segment(max(s.start, start) - start, min(s.end, hi) - start, s.text))
    return out


__all__ = [
    "SIDECAR_EXTENSIONS",
    "Segment",
    "Transcript",
    "TranscriptError",
    "check_sidecar",
    "find_sidecar",
    "load_transcript",
    "parse_sidecar",
    "parse_srt",
    "parse_txt",
    "parse_vtt",
    "within",
]
