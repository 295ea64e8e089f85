"""A fast MELD-layout corpus for benchmarks at corpus size (10,000+ utterances in minutes).

The registered demo generator (``emofuse.catalog.corpora.demo.meld.generate``) renders every
clip's face animation and speech from scratch: ~2-3 utterances/s on one core here, over an
hour for 10,000. This one writes the same layout (``train_splits/``, ``dev_splits_complete/``,
``output_repeated_splits_test/``, the three ``*_sent_emo.csv`` written by the demo's own
:func:`~emofuse.catalog.corpora.demo.meld.annotation_csv`, the last test clip as
``final_videos_testdia{D}_utt{U}.mp4``) from the demo's own :func:`~emofuse.catalog.corpora.demo.meld.plan`,
but reuses the expensive parts:

* speech: one espeak-ng call per (speaker, line, emotion), as the demo speaks it, cached;
* frames: per (speaker, emotion) one loop of :data:`LOOP_FRAMES` frames rendered once by
  the demo's :func:`~emofuse.catalog.corpora.demo.faces.render_frames` (its face, expression
  and head motion; the mouth follows a generic syllable envelope), played forwards and
  backwards from a seeded offset for as long as the clip's audio lasts.

Every clip then costs one H.264 + AAC encode of small frames (default 112x112, 25 fps,
16 kHz). Each clip's audio gets its own seeded noise floor (the demo's ``clip_audio``), so
no two clips have the same bytes (items are identified by content). Deterministic from the
seed. Work is spread over ``processes`` (each keeps its own caches; the plan is cut in
contiguous chunks so a process sees few (speaker, emotion) pairs).

Example:
    >>> paths, made = generate("fast-meld", items=12, seed=0, processes=1)
    >>> sorted(os.path.relpath(p, "fast-meld") for p in paths if p.endswith(".csv"))
    ['dev_sent_emo.csv', 'test_sent_emo.csv', 'train_sent_emo.csv']
    >>> len([p for p in paths if p.endswith(".mp4")]), made
    (12, 12)
    >>> small, made = generate("fast-meld-4", items=4, universe=12, link_from="fast-meld")
    >>> made, os.path.samefile(small[0], os.path.join("fast-meld", os.path.relpath(small[0], "fast-meld-4")))
    (0, True)
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Sequence

import numpy as np

#: Frames in one rendered loop per (speaker, emotion): 2 s at 25 fps.
LOOP_FRAMES = 50
#: Longest clip (seconds); MELD's utterances are ~1-5 s, these ~1.5-3 s.
MAX_SECONDS = 3.0
#: Share of items per split (MELD's own: 9,989 / 1,109 / 2,610 of 13,708).
SPLIT_SHARE = {"train": 0.73, "dev": 0.08, "test": 0.19}
#: Utterances per dialogue (MELD's mean is ~9.6).
UTTERANCES = 10


def media_format(side: int = 112):
    """Square ``side`` frames at 25 fps with 16 kHz mono AAC (the pipeline decodes audio at 16 kHz)."""
    from emofuse.catalog.corpora.demo.design import MediaFormat

    return MediaFormat(width=side, height=side, fps=25, sample_rate=16000, audio_bit_rate=32_000)


def dialogues_for(items: int) -> dict[str, int]:
    """Dialogues per split so that about ``items`` utterances come out (MELD's split shares)."""
    n = max(1, round(items / UTTERANCES))
    dev, test = max(1, round(n * SPLIT_SHARE["dev"])), max(1, round(n * SPLIT_SHARE["test"]))
    return {"train": max(1, n - dev - test), "dev": dev, "test": test}


def plan(items: int, seed: int = 0, universe: int | None = None) -> list:
    """The first ``items`` utterances per split share of the demo's MELD plan for ``universe`` items
    (default ``items``): a smaller corpus cut from the same universe holds the same clips."""
    from emofuse.catalog.corpora.demo import meld

    rows = meld.plan(dialogues=dialogues_for(universe or items), utterances=UTTERANCES, seed=seed)
    if len(rows) > items:  # keep the start of each split, in proportion
        keep = {s: max(1, round(items * sum(r.split == s for r in rows) / len(rows))) for s in SPLIT_SHARE}
        keep["train"] += items - sum(keep.values())
        seen: dict[str, int] = {}
        out = []
        for r in rows:
            seen[r.split] = seen.get(r.split, 0) + 1
            if seen[r.split] <= keep[r.split]:
                out.append(r)
        rows = out
    return rows


@lru_cache(maxsize=None)
def _speech(speaker: str, text: str, emotion: str, seed: int, side: int) -> np.ndarray:
    from emofuse.catalog.corpora.demo import meld
    from emofuse.catalog.corpora.demo.actors import actor_identity, clip_prosody
    from emofuse.catalog.corpora.demo.speech import synthesize

    actor = actor_identity(meld.CHARACTERS.index(speaker) + 1, seed)
    rng = np.random.default_rng([seed, meld.CHARACTERS.index(speaker), meld.CLASSES.index(emotion), 0x5EEC])
    prosody = clip_prosody(actor, meld.CUES[emotion], 1, rng)
    return synthesize(text, voice=actor.voice, prosody=prosody, sample_rate=media_format(side).sample_rate)


@lru_cache(maxsize=None)
def _loop(speaker: str, emotion: str, seed: int, side: int) -> tuple[np.ndarray, ...]:
    """Frames played back and forth: the loop then its reverse (no jump where it wraps)."""
    from emofuse.catalog.corpora.demo import meld
    from emofuse.catalog.corpora.demo.actors import actor_identity
    from emofuse.catalog.corpora.demo.design import FACE_EDITS, FACE_GROUP
    from emofuse.catalog.corpora.demo.faces import render_frames

    actor = actor_identity(meld.CHARACTERS.index(speaker) + 1, seed)
    edit = FACE_EDITS[FACE_GROUP[meld.CUES[emotion]]]
    t = np.arange(LOOP_FRAMES) / 25.0
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0.0, 1.0)  # ~5 syllables a second
    rng = np.random.default_rng([seed, meld.CHARACTERS.index(speaker), meld.CLASSES.index(emotion), 0xF4CE])
    frames = tuple(render_frames(actor.aligned(), edit, envelope, rng, media_format(side)))
    return frames + frames[::-1]


def render(u, *, seed: int = 0, side: int = 112) -> bytes:
    """One utterance's clip as mp4 bytes (see module)."""
    from emofuse.catalog.corpora.demo.meld import SPLITS
    from emofuse.catalog.corpora.demo.speech import clip_audio
    from emofuse.catalog.corpora.demo.video import encode_mp4

    media = media_format(side)
    rng = np.random.default_rng([seed, list(SPLITS).index(u.split), u.dialogue, u.utterance, 0xFA57])
    audio = clip_audio(_speech(u.speaker, u.text, u.emotion, seed, side), rng, MAX_SECONDS, media)
    loop = _loop(u.speaker, u.emotion, seed, side)
    start = int(rng.integers(len(loop)))
    n = audio.size // media.samples_per_frame
    return encode_mp4((loop[(start + i) % len(loop)] for i in range(n)), audio, media)


def _path(out: str, u, last_test) -> str:
    from emofuse.catalog.corpora.meld import SPLITS, TEST_PREFIX

    name = f"{TEST_PREFIX if u is last_test else ''}dia{u.dialogue}_utt{u.utterance}.mp4"
    return os.path.join(out, SPLITS[u.split][0], name)


def _write_chunk(args: tuple[str | None, Sequence, int, int]) -> int:
    from emofuse.catalog.atomic import write_bytes
    from emofuse.catalog.corpora.meld import SPLITS, TEST_PREFIX

    link_from, chunk, seed, side = args
    made = 0
    for path, u in chunk:
        if os.path.exists(path):
            continue
        if link_from:  # the same clip in a larger corpus of the same universe (either name)
            folder = os.path.join(link_from, SPLITS[u.split][0])
            names = [f"{p}dia{u.dialogue}_utt{u.utterance}.mp4" for p in ("", TEST_PREFIX)]
            src = next((os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n))), None)
            if src:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.link(src, path)
                continue
        write_bytes(path, render(u, seed=seed, side=side))
        made += 1
    return made


def generate(out: str, *, items: int, seed: int = 0, side: int = 112, processes: int = 1,
             universe: int | None = None, link_from: str | None = None) -> tuple[list[str], int]:
    """Write (or keep) ``items`` utterances in MELD layout under ``out``; return the files (clips, then
    CSVs) and how many clips were rendered now.

    ``universe``: cut the corpus from the plan of this many items (see :func:`plan`);
    ``link_from``: a corpus of the same universe and seed whose clips are hard-linked instead
    of rendered again. Idempotent: clips that exist are kept (written atomically, so an
    existing one is complete).
    """
    from emofuse.catalog.atomic import write_bytes
    from emofuse.catalog.corpora.demo.meld import annotation_csv
    from emofuse.catalog.corpora.demo.speech import espeak_command
    from emofuse.catalog.corpora.meld import SPLITS

    rows = plan(items, seed, universe)
    last_test = max((r for r in rows if r.split == "test"), key=lambda r: (r.dialogue, r.utterance), default=None)
    todo = [(_path(out, u, last_test), u) for u in rows]
    if any(not os.path.exists(p) for p, _ in todo):
        espeak_command()  # fail early with the install hint
    if processes > 1:
        from multiprocessing import get_context

        step = -(-len(todo) // (processes * 8))
        chunks = [(link_from, todo[i:i + step], seed, side) for i in range(0, len(todo), step)]
        with get_context("fork").Pool(processes) as pool:
            made = sum(pool.map(_write_chunk, chunks, chunksize=1))
    else:
        made = _write_chunk((link_from, todo, seed, side))
    paths = [p for p, _ in todo]
    for split, (_, table) in SPLITS.items():
        mine = [u for u in rows if u.split == split]
        if mine:
            paths.append(os.path.join(out, table))
            write_bytes(paths[-1], annotation_csv(mine))
    return paths, made


__all__ = ["LOOP_FRAMES", "MAX_SECONDS", "dialogues_for", "generate", "media_format", "plan", "render"]
