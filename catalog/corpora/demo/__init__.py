"""Demo corpus: a small RAVDESS-shaped audio-visual corpus generated from real material.

:func:`generate` writes ``out/Actor_XX/01-01-EE-II-SS-RR-XX.mp4`` (full-AV speech, RAVDESS
names from :func:`emofuse.catalog.corpora.ravdess.make_name`). Every clip is a real face
photo shipped by an installed package (six faces of insightface's ``t1.jpg``,
insightface's ``Tom_Hanks_54745.png``, scikit-image's astronaut), aligned, edited per
emotion and moved a little over time, together with real speech from the espeak-ng TTS
saying the RAVDESS statement. Video: H.264 (libx264; mpeg4 when PyAV's FFmpeg lacks libx264), 256x256,
25 fps, yuv420p. Audio: AAC, 16 kHz mono. Clip length is the speech length plus 0.3 s of
silence on either side (about 2-3 s); video and audio have the same length. Everything
is encoded by PyAV's bundled FFmpeg; only ``espeak-ng`` (or ``espeak``) must be on PATH.

Emotion is split across the modalities so that neither separates all eight classes on
its own but together they do: the voice carries an arousal-like level (four prosody
groups), the face a valence-like expression (four edit groups), and every emotion has
its own (audio group, face group) pair. Each modality alone confuses two emotions.

=========  ====  ===========================  ====  ==========================================
emotion    code  audio group (prosody)        face  face group (visible edit)
=========  ====  ===========================  ====  ==========================================
neutral    01    A0 low                        F0    plain: no edit
calm       02    A0 low                        F1    smile: mouth stretched wide, warm tint
sad        04    A1 low-mid                    F0    plain: no edit
disgust    07    A1 low-mid                    F3    scowl: dark band over eyes, brows down,
                                                     mouth narrowed, green-grey tint
happy      03    A2 high-mid                   F1    smile
surprised  08    A2 high-mid                   F2    raised: brows up, mouth open, cool tint
angry      05    A3 high                       F3    scowl
fearful    06    A3 high                       F2    raised
=========  ====  ===========================  ====  ==========================================

Prosody per audio group (espeak-ng ``-p`` pitch 0-99, ``-s`` rate in words/min, ``-a``
amplitude): A0 (28, 120, 45), A1 (42, 140, 60), A2 (58, 160, 80), A3 (74, 182, 100).
Strong intensity (code 02) adds +5 pitch, +8 wpm, x1.12 amplitude and makes the face
edit 1.5x stronger. Each actor has its own espeak voice variant (odd actors male, even
female, as in RAVDESS) and a small fixed pitch/rate/loudness offset drawn from the seed;
each clip adds a smaller jitter. Face identities cycle through the eight photos (four
men for odd actors, four women for even), so with more than eight actors faces repeat
(voices still differ). The mouth opens with the speech envelope, so the lips move with
the audio.

Measured on the eight photos (dlib ResNet embeddings of a mid-clip frame, distance to
the plain face): smile 0.17-0.31, raised 0.39-0.65, scowl 0.42-0.61; between two edit
groups 0.45-0.80; between people 0.61-0.90 (mean 0.79). Measured on the voice (median
F0 of a male / female actor): A0 82 / 153 Hz, A1 93 / 175 Hz, A2 109 / 204 Hz,
A3 129 / 239 Hz, with voiced RMS rising about 2.5x from A0 to A3.

Everything is deterministic: a clip's bytes depend only on the seed and its own codes
(not on which other clips are requested), given the same PyAV/FFmpeg and espeak-ng.

One module per job: :mod:`.design` (format and emotion -> cue tables), :mod:`.actors`
(identities and prosody), :mod:`.speech` (espeak-ng), :mod:`.photos` (packaged face
photos, alignment), :mod:`.faces` (expression edits, mouth and head motion),
:mod:`.video` (mp4 muxing), :mod:`.corpus` (which clips, writing them).

Example:
    >>> paths = generate("demo", actors=1, emotions=(1, 5), statements=(1,), duration_limit=0.4)
    >>> [p.rsplit("/", 1)[1] for p in paths]
    ['01-01-01-01-01-01-01.mp4', '01-01-05-01-01-01-01.mp4']
"""
from emofuse.catalog.corpora.demo.actors import Actor, actor_identity, clip_prosody
from emofuse.catalog.corpora.demo.corpus import ClipSpec, generate, plan, render_clip
from emofuse.catalog.corpora.demo.design import (
    AUDIO_GROUP,
    AUDIO_LEVELS,
    FACE_EDITS,
    FACE_GROUP,
    FACE_GROUP_NAMES,
    FPS,
    FRAME_SIZE,
    SAMPLE_RATE,
    FaceEdit,
    Prosody,
)
from emofuse.catalog.corpora.demo.speech import EspeakNotFound, espeak_command
from emofuse.catalog.corpora.demo.video import video_codec

__all__ = [
    "AUDIO_GROUP", "AUDIO_LEVELS", "FACE_EDITS", "FACE_GROUP", "FACE_GROUP_NAMES", "FPS", "FRAME_SIZE",
    "SAMPLE_RATE", "Actor", "ClipSpec", "EspeakNotFound", "FaceEdit", "Prosody", "actor_identity",
    "clip_prosody", "espeak_command", "generate", "plan", "render_clip", "video_codec",
]
