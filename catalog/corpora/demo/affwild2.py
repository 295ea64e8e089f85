"""A miniature Aff-Wild2 (ABAW release layout) whose per-frame labels the media carry.

:func:`generate` writes, under ``out``::

    videos/batch1/1-25-192x192.mp4 …            one subject per video (H.264 + AAC, 25 fps)
    videos/batch2/video4.avi                    one AVI (MPEG-4 + PCM), as the release has some
    videos/batch2/9-25-384x192.mp4              two subjects side by side
    videos/batch2/video11.mp4                   a test-set video: annotated in no set
    Annotations/VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>[_left|_right].txt
    Annotations/EXPR_Classification_Challenge/{Train_Set,Validation_Set}/<video>[_left|_right].txt

``actors`` subjects (default 10, at least 4): subjects 1..N-2 have a video each, subjects
N-1 and N share the two-subject video (left and right), which has ``_left``/``_right``
annotation files only. Subjects 2, 5, 8, … are in ``Validation_Set``, the others in
``Train_Set``; subject 1 has no expression annotations (VA only, as many real videos).
The annotation files have the real formats and quirks: VA files start with ``valence,arousal``
and have one ``v,a`` line per frame, ``-5,-5`` on frames "the annotators skipped" (a stretch
per file); expression files start with the 8 class names and have one class index per frame,
``-1`` where unannotated; subject 2's VA file has one line more than the video has frames,
and subject 3's expression file one line fewer (the ABAW files do that).

The labels follow each subject's latent valence/arousal (:mod:`.continuous`): the face's
expression follows valence, the voice's pitch, rate and loudness follow arousal, frame by
frame; the expression label is a function of (valence, arousal) (:func:`expression_of`).
Deterministic from ``seed``; existing files are kept (so a partial corpus is completed).
Needs ``espeak-ng`` on PATH.

Example:
    >>> files = generate("aw2", actors=4, seconds=1.0)
    >>> sorted(os.path.relpath(f, "aw2") for f in files if f.endswith((".mp4", ".avi")))
    ['videos/batch1/1-25-192x192.mp4', 'videos/batch2/2-25-192x192.mp4', 'videos/batch2/3-25-384x192.mp4', 'videos/batch2/video5.mp4']
    >>> open("aw2/Annotations/VA_Estimation_Challenge/Validation_Set/2-25-192x192.txt").readline().strip()
    'valence,arousal'
    >>> generate("aw2", actors=4, seconds=1.0) == files   # kept, not rewritten
    True
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from emofuse.catalog.atomic import write_bytes
from emofuse.catalog.corpora.affwild2 import CLASSES, EXPR_FOLDER, SPLIT_FOLDERS, VA_FOLDER
from emofuse.catalog.corpora.demo.actors import actor_identity
from emofuse.catalog.corpora.demo.continuous import latent, render, speak
from emofuse.catalog.corpora.demo.design import MediaFormat
from emofuse.catalog.corpora.demo.speech import espeak_command
from emofuse.catalog.corpora.demo.video import encode_mp4

FPS = 25
SAMPLE_RATE = 16_000
#: Side of one subject's face square (px); a two-subject frame is two squares wide.
SIDE = 192
DEFAULT_SUBJECTS = 10


@dataclass(frozen=True)
class DemoVideo:
    """One video of the demo corpus: its subjects (left to right), split (None: test set) and path."""

    relpath: str
    subjects: tuple[int, ...]
    split: str | None
    seconds: float
    expr: bool = True

    @property
    def stem(self) -> str:
        return os.path.splitext(os.path.basename(self.relpath))[0]

    def annotation_stems(self) -> list[tuple[str, int]]:
        """(annotation file stem, subject) per subject: ``<video>`` or ``<video>_left``/``_right``."""
        if len(self.subjects) == 1:
            return [(self.stem, self.subjects[0])]
        return [(f"{self.stem}_{side}", s) for side, s in zip(("left", "right"), self.subjects)]


def plan(actors: int | None = None, seconds: float = 12.0) -> list[DemoVideo]:
    """The videos of a demo corpus with ``actors`` subjects (see module)."""
    n = DEFAULT_SUBJECTS if actors is None else int(actors)
    if n < 4:
        raise ValueError(f"an Aff-Wild2 demo corpus needs at least 4 subjects (got {n}): "
                         "a two-subject video and train and validation subjects")
    videos = []
    singles = n - 2
    for k in range(1, singles + 1):
        batch = "batch1" if k <= singles // 2 else "batch2"
        name = f"video{k}.avi" if k == 4 else f"{k}-{FPS}-{SIDE}x{SIDE}.mp4"
        videos.append(DemoVideo(f"videos/{batch}/{name}", (k,), "validation" if k % 3 == 2 else "train",
                                seconds, expr=k != 1))
    videos.append(DemoVideo(f"videos/batch2/{n - 1}-{FPS}-{2 * SIDE}x{SIDE}.mp4", (n - 1, n), "train", seconds))
    videos.append(DemoVideo(f"videos/batch2/video{n + 1}.mp4", (n + 1,), None, min(seconds, 2.0)))
    return videos


def expression_of(valence: np.ndarray, arousal: np.ndarray) -> np.ndarray:
    """Class index (into :data:`CLASSES`) per frame from valence and arousal.

    >>> [CLASSES[i] for i in expression_of(np.array([0.5, -0.5, -0.5, -0.5, 0.0, 0.0]),
    ...                                     np.array([0.0, 0.6, -0.5, 0.0, 0.7, 0.0]))]
    ['Happiness', 'Anger', 'Sadness', 'Disgust', 'Surprise', 'Neutral']
    """
    idx = np.full(valence.shape, CLASSES.index("Neutral"), np.int64)
    neg, pos = valence <= -0.3, valence >= 0.3
    idx[pos] = CLASSES.index("Happiness")
    idx[neg] = CLASSES.index("Disgust")
    idx[neg & (arousal >= 0.4)] = CLASSES.index("Anger")
    idx[neg & (arousal <= -0.3)] = CLASSES.index("Sadness")
    idx[~neg & ~pos & (arousal >= 0.5)] = CLASSES.index("Surprise")
    return idx


def _gap(n: int, rng: np.random.Generator) -> slice:
    """A stretch of 0.3-0.7 s the annotators "skipped"."""
    length = min(n // 3, int(rng.uniform(0.3, 0.7) * FPS))
    start = int(rng.integers(0, max(1, n - length)))
    return slice(start, start + length)


def va_text(valence: np.ndarray, arousal: np.ndarray, rng: np.random.Generator, extra_line: bool = False) -> str:
    """A VA annotation file: header, one ``v,a`` line per frame, ``-5,-5`` over a skipped stretch."""
    lines = [f"{v:.3f},{a:.3f}" for v, a in zip(valence, arousal)]
    gap = _gap(len(lines), rng)
    lines[gap] = ["-5,-5"] * len(lines[gap])
    if extra_line:
        lines.append(lines[-1])
    return "valence,arousal\n" + "\n".join(lines) + "\n"


def expr_text(classes: np.ndarray, rng: np.random.Generator, short_line: bool = False) -> str:
    """An expression annotation file: the 8 class names, one index per frame, ``-1`` over a skipped stretch."""
    lines = [str(int(c)) for c in classes]
    gap = _gap(len(lines), rng)
    lines[gap] = ["-1"] * len(lines[gap])
    if short_line:
        lines = lines[:-1]
    return ",".join(CLASSES) + "\n" + "\n".join(lines) + "\n"


def _labels(video: DemoVideo, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(valence, arousal) per frame of each subject of ``video``."""
    n = int(round(video.seconds * FPS))
    return [latent(n, FPS, np.random.default_rng([seed, s, 0xAF2])) for s in video.subjects]


def render_video(video: DemoVideo, seed: int) -> bytes:
    """The video's bytes: its subjects side by side, each face and voice following its own labels."""
    n = int(round(video.seconds * FPS))
    rng = np.random.default_rng([seed, *video.subjects, 0xF11])
    labels = _labels(video, seed)
    actors = [actor_identity(s, seed) for s in video.subjects]
    audio, envelopes = speak([(a, ar) for a, (_v, ar) in zip(actors, labels)], n, FPS, SAMPLE_RATE, rng)
    streams = [render(a.aligned(), v, ar, env, rng, SIDE, FPS) for a, (v, ar), env in zip(actors, labels, envelopes)]
    frames = (np.concatenate(parts, axis=1) for parts in zip(*streams))
    media = MediaFormat(width=SIDE * len(actors), height=SIDE, fps=FPS, sample_rate=SAMPLE_RATE)
    if video.relpath.endswith(".avi"):
        return encode_avi(frames, audio, media)
    return encode_mp4(frames, audio, media)


def encode_avi(frames, audio: np.ndarray, media: MediaFormat) -> bytes:  # noqa: ANN001 - an iterable of frames
    """RGB frames and mono float audio as AVI bytes (MPEG-4 Part 2 video, 16-bit PCM audio)."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format="avi") as container:
        vs = container.add_stream("mpeg4", rate=media.fps)
        vs.width, vs.height, vs.pix_fmt = media.width, media.height, "yuv420p"
        vs.bit_rate = 600_000
        vs.codec_context.thread_count = 1
        aus = container.add_stream("pcm_s16le", rate=media.sample_rate, layout="mono")
        spf = media.samples_per_frame
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, media.fps)
            container.mux(vs.encode(vf))
            af = av.AudioFrame.from_ndarray(pcm[None, i * spf:(i + 1) * spf], format="s16", layout="mono")
            af.sample_rate, af.pts = media.sample_rate, i * spf
            container.mux(aus.encode(af))
        container.mux(vs.encode(None))
        container.mux(aus.encode(None))
    return out.getvalue()


def annotation_files(video: DemoVideo, seed: int) -> dict[str, str]:
    """Annotation file relpath -> text for ``video`` (none for a test-set video)."""
    if video.split is None:
        return {}
    folder = SPLIT_FOLDERS[video.split]
    out = {}
    for (stem, subject), (v, a) in zip(video.annotation_stems(), _labels(video, seed)):
        rng = np.random.default_rng([seed, subject, 0xA77])
        out[os.path.join("Annotations", VA_FOLDER, folder, f"{stem}.txt")] = va_text(v, a, rng, extra_line=subject == 2)
        if video.expr:
            out[os.path.join("Annotations", EXPR_FOLDER, folder, f"{stem}.txt")] = expr_text(
                expression_of(v, a), rng, short_line=subject == 3)
    return out


def generate(out: str, *, actors: int | None = None, seed: int = 0, seconds: float = 12.0,
             progress: Callable[[int, int, str], None] | None = None) -> list[str]:
    """Write the demo corpus under ``out`` (see module); return every file's path (videos and annotations).

    ``actors``: subjects (default 10, at least 4); ``seconds``: length of each annotated video
    (the test-set video is at most 2 s). A file that exists is kept as it is.
    """
    videos = plan(actors, seconds)
    if any(not os.path.exists(os.path.join(out, v.relpath)) for v in videos):
        espeak_command()  # fail early, before any work, with an install hint
    paths: list[str] = []
    for k, video in enumerate(videos, 1):
        for rel, text in annotation_files(video, seed).items():
            path = os.path.join(out, rel)
            if not os.path.exists(path):
                write_bytes(path, text.encode())
            paths.append(path)
        path = os.path.join(out, video.relpath)
        if not os.path.exists(path):
            write_bytes(path, render_video(video, seed))
        paths.append(path)
        if progress is not None:
            progress(k, len(videos), path)
    return paths


__all__ = ["DemoVideo", "annotation_files", "encode_avi", "expression_of", "generate", "plan", "render_video"]
