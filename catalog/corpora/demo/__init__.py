"""Demo corpus: a small RAVDESS-shaped audio-visual corpus generated from real material.

:func:`generate` writes ``out/Actor_XX/01-01-EE-II-SS-RR-XX.mp4`` (full-AV speech, RAVDESS
names from :func:`emofuse.catalog.corpora.ravdess.make_name`; with ``vocal_channels=(1, 2)``
also song, ``01-02-…``). Every clip is a real face
photo shipped by an installed package (six faces of insightface's ``t1.jpg``,
insightface's ``Tom_Hanks_54745.png``, scikit-image's astronaut), aligned, edited per
emotion and moved a little over time, together with real speech from the espeak-ng TTS
saying the RAVDESS statement. Video: H.264 (libx264; mpeg4 when PyAV's FFmpeg lacks libx264), 256x256,
25 fps, yuv420p. Audio: AAC, 16 kHz mono. Clip length is the speech length plus 0.3 s of
silence on either side (about 2-3 s); video and audio have the same length. Everything
is encoded by PyAV's bundled FFmpeg; only ``espeak-ng`` (or ``espeak``) must be on PATH.

``media=RAVDESS_FORMAT`` writes the real corpus's format instead (1280x720, 30 fps, 48 kHz
AAC: the face on a 720-pixel square in front of a plain light backdrop; 1 s of silence either
side of the statement, so a speech clip lasts ~3.7 s, RAVDESS's mean), and
``**RAVDESS_SHAPE`` its clips too: per actor 60 speech clips and 44 song clips (song has six
emotions, no disgust or surprise; actor 18 has no song, as in RAVDESS), so 24 actors make
1,440 speech + 1,012 song clips. Song is "sung" by espeak-ng one word per note
(:func:`~.speech.sing`), about 4-5 s a clip. Generating a RAVDESS-format clip takes about
one second per second of media on one core (libx264 at 720p dominates), so the full
2,452-clip corpus takes hours; ``bench.ravdess_scale`` measures a fraction.

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
each clip adds a smaller jitter. Actors 1-8 have the eight photos (four men for odd
actors, four women for even); actors 9-24 have new identities made from the same photos
(another photo's lower face, other proportions, skin tone, glasses: :mod:`.identity`), so
no face repeats across speaker folds. The mouth opens with the speech envelope, so the lips
move with the audio.

Measured on the eight photos (dlib ResNet embeddings of a mid-clip frame, distance to
the plain face): smile 0.17-0.31, raised 0.39-0.65, scowl 0.42-0.61; between two edit
groups 0.45-0.80; between people 0.61-0.90 (mean 0.79). Measured on the voice (median
F0 of a male / female actor): A0 82 / 153 Hz, A1 93 / 175 Hz, A2 109 / 204 Hz,
A3 129 / 239 Hz, with voiced RMS rising about 2.5x from A0 to A3.

Everything is deterministic: a clip's bytes depend only on the seed and its own codes
(not on which other clips are requested), given the same PyAV/FFmpeg and espeak-ng.

One module per job: :mod:`.design` (formats and emotion -> cue tables), :mod:`.actors`
(identities and prosody), :mod:`.speech` (espeak-ng), :mod:`.photos` (packaged face
photos, alignment), :mod:`.identity` (new people from the photos), :mod:`.faces`
(expression edits, mouth and head motion), :mod:`.video` (mp4 muxing), :mod:`.corpus`
(which clips, writing them).

Example:
    >>> paths = generate("demo", actors=1, emotions=(1, 5), statements=(1,), duration_limit=0.4)
    >>> [p.rsplit("/", 1)[1] for p in paths]
    ['01-01-01-01-01-01-01.mp4', '01-01-05-01-01-01-01.mp4']
"""
from emofuse.catalog.corpora.demo.actors import Actor, actor_identity, clip_prosody
from emofuse.catalog.corpora.demo.corpus import RAVDESS_CLIPS, RAVDESS_SHAPE, ClipSpec, generate, plan, render_clip
from emofuse.catalog.corpora.demo.design import (
    AUDIO_GROUP,
    AUDIO_LEVELS,
    DEMO_FORMAT,
    FACE_EDITS,
    FACE_GROUP,
    FACE_GROUP_NAMES,
    FPS,
    FRAME_SIZE,
    NO_SONG_ACTORS,
    RAVDESS_FORMAT,
    SAMPLE_RATE,
    SONG_EMOTIONS,
    FaceEdit,
    MediaFormat,
    Prosody,
)
from emofuse.catalog.corpora.demo.identity import identity_face, variant_of
from emofuse.catalog.corpora.demo.options import corpus_options, parse_size
from emofuse.catalog.corpora.demo.speech import EspeakNotFound, espeak_command
from emofuse.catalog.corpora.demo.video import video_codec

__all__ = [
    "AUDIO_GROUP", "AUDIO_LEVELS", "DEMO_FORMAT", "FACE_EDITS", "FACE_GROUP", "FACE_GROUP_NAMES", "FPS",
    "FRAME_SIZE", "NO_SONG_ACTORS", "RAVDESS_CLIPS", "RAVDESS_FORMAT", "RAVDESS_SHAPE", "SAMPLE_RATE",
    "SONG_EMOTIONS", "Actor", "ClipSpec", "EspeakNotFound", "FaceEdit", "MediaFormat", "Prosody",
    "actor_identity", "clip_prosody", "corpus_options", "espeak_command", "generate", "identity_face",
    "parse_size", "plan", "render_clip", "variant_of", "video_codec",
]
