"""Every pyarrow schema that crosses a boundary, in one place.

Tables are Parquet datasets (folders of immutable part files). Readers such as
``pandas.read_parquet(folder)`` need no emofuse code; these schemas only make
sure every part of one table agrees, so a folder always reads as one frame.
"""
from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import pyarrow as pa

#: Version of the on-disk layout; written to ``<root>/catalog.json``.
#: 2: predictions in one fixed schema (list columns); ``Catalog.repair`` migrates version 1.
LAYOUT_VERSION = 2


class Status(str, Enum):
    """Outcome of one (item, feature set) extraction.

    ``ok`` and the failures the content decides (:data:`FINAL_FAILURES`: ``no_face``,
    ``no_speech``, ``no_audio``, ``no_video``, ``decode_error``, ``too_short``) are final: an
    item id is a hash of the bytes, so the same id gives the same outcome again, and a
    run does not try it again unless asked to (``retry_failed``). ``error`` (an unexpected
    failure) is transient and retried by the next run, as are items without a status (a
    killed worker, a storage failure).

    Scoring records its own outcome per (item, run) in the same table under the pseudo
    feature set ``score-<run_id>``: ``ok`` or ``no_features`` (see :class:`ScoreStatus`).

    >>> Status.NO_FACE.final, Status.DECODE_ERROR.final, Status.ERROR.final, Status.OK.final
    (True, True, False, False)
    """

    OK = "ok"
    NO_FACE = "no_face"
    NO_SPEECH = "no_speech"
    NO_AUDIO = "no_audio"
    NO_VIDEO = "no_video"
    DECODE_ERROR = "decode_error"
    TOO_SHORT = "too_short"
    ERROR = "error"

    @property
    def final(self) -> bool:
        """Whether this is a failure the content decides (see :data:`FINAL_FAILURES`)."""
        return self.value in FINAL_FAILURES


#: Failures the content decides: final for an unchanged file (not retried unless ``retry_failed``).
FINAL_FAILURES: frozenset[str] = frozenset(
    s.value for s in (Status.NO_FACE, Status.NO_SPEECH, Status.NO_AUDIO, Status.NO_VIDEO, Status.DECODE_ERROR,
                      Status.TOO_SHORT))


class ScoreStatus(str, Enum):
    """Outcome of scoring one item with one run (status table, ``feature_set=score-<run_id>``).

    ``ok``: predictions written (the message names modalities that were masked, and why);
    ``no_features``: none of the run's feature sets is usable for the item (the message
    gives each one's extraction status and reason). Items not ``ok`` are retried.
    """

    OK = "ok"
    NO_FEATURES = "no_features"


#: ``window`` value of per-clip predictions; windowed rows carry ``"<length>s/<hop>s"``.
CLIP_WINDOW = "clip"

#: ``window`` value of the per-step predictions of a model trained per frame: one row per
#: model step, ``start``/``end`` the step's seconds in the item.
FRAME_WINDOW = "frame"

#: One row per (item, path). ``item_id`` is a content hash, so copies of a file share it.
MEDIA_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("path", pa.string()),
        ("relpath", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.timestamp("us", tz="UTC")),
        ("registered_at", pa.timestamp("us", tz="UTC")),
        ("corpus", pa.string()),
        ("container", pa.string()),
        ("duration", pa.float64()),
        ("has_audio", pa.bool_()),
        ("has_video", pa.bool_()),
        ("sample_rate", pa.int32()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("probe_error", pa.string()),
        # Corpus fields (null where a corpus has none). RAVDESS fills all of them.
        ("speaker", pa.string()),
        ("sex", pa.string()),
        ("modality", pa.string()),
        ("vocal_channel", pa.string()),
        ("emotion", pa.string()),
        ("emotion_code", pa.int8()),
        ("intensity", pa.string()),
        ("statement", pa.int8()),
        ("transcript", pa.string()),
        ("repetition", pa.int8()),
        ("valence", pa.float32()),
        ("arousal", pa.float32()),
        # Added with the corpora beyond RAVDESS (null elsewhere; older parts read back as null).
        ("dominance", pa.float32()),
        ("emotion_full", pa.string()),  # the corpus's full label where ``emotion`` holds a mapped class set
        ("split", pa.string()),  # official split (train/dev/test, …) where the corpus defines one
        ("session", pa.string()),
        ("dialogue", pa.string()),
        ("utterance", pa.string()),
        ("sentiment", pa.string()),
        ("season", pa.int8()),
        ("episode", pa.int8()),
        # where the utterance lies in its episode, in seconds (MELD's StartTime/EndTime)
        ("episode_start", pa.float64()),
        ("episode_end", pa.float64()),
        ("age", pa.int16()),
        ("face_side", pa.string()),  # "left"/"right": which face of a two-subject video is the item's
        # Segment items (a time range of a file): the whole file's content id and the range in
        # seconds of the file's timeline; null for whole-file items.
        ("parent_id", pa.string()),
        ("segment_start", pa.float64()),
        ("segment_end", pa.float64()),
    ]
)

#: Time-continuous labels (Aff-Wild2 …): one row per (item, video frame). ``time`` is the
#: frame's presentation time in seconds on the item's timeline (from the container, not
#: index / fps); unannotated frames keep their row with NaN valence/arousal and a null
#: expression, so a reader sees exactly which frames the annotators skipped.
FRAME_LABELS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("frame", pa.int32()),
        ("time", pa.float64()),
        ("valence", pa.float32()),
        ("arousal", pa.float32()),
        ("expression", pa.string()),
    ]
)

#: Append-only log: one row per attempt. The current status is the newest row per key.
#: Stored under ``status/feature_set=<key>/``: the Hive partition supplies ``feature_set``.
STATUS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("status", pa.string()),
        ("message", pa.string()),
        ("task_id", pa.string()),
        ("run_id", pa.string()),
        ("n_frames", pa.int64()),
        ("wall_s", pa.float64()),
        ("attempted_at", pa.timestamp("us", tz="UTC")),
    ]
)

#: Where each item's rows sit in a Zarr shard of a feature set (frame-level sequences).
SEQ_INDEX_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("shard", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("t_start", pa.float64()),
        ("t_end", pa.float64()),
    ]
)

#: Predictions of fusion runs: ONE schema for every part of ``predictions/``, whatever the run's
#: classes, model, window kind or ``explain`` (pyarrow and DuckDB take a folder's schema from one
#: part, so parts that differed would lose columns). One row per (item, fold, window, start):
#: ``window`` is ``"clip"`` for the whole clip (start 0, end = duration),
#: ``"<length>s/<hop>s"`` (e.g. ``"4s/2s"``) for each time window of windowed scoring, or
#: ``"frame"`` for each model step of a model trained per frame; ``fold`` is ``"ensemble"`` or
#: a fold number. What varies between runs is in list columns: ``classes``/``probs`` (the run's
#: classes in its order and their probabilities, empty for runs without classes) and
#: ``attribution_modality``/``attribution_target``/``attribution`` (one entry per modality and
#: target of an explained scoring, see :func:`attribution_column`; null lists: not explained).
PREDICTION_BASE_FIELDS = [
    ("item_id", pa.string()),
    ("fold", pa.string()),
    ("window", pa.string()),
    ("start", pa.float64()),
    ("end", pa.float64()),
    ("label", pa.string()),
    ("score", pa.float32()),
    ("valence", pa.float32()),
    ("arousal", pa.float32()),
    ("scored_at", pa.timestamp("us", tz="UTC")),
]
PREDICTION_LIST_FIELDS = [
    ("classes", pa.list_(pa.string())),
    ("probs", pa.list_(pa.float32())),
    ("attribution_modality", pa.list_(pa.string())),
    ("attribution_target", pa.list_(pa.string())),
    ("attribution", pa.list_(pa.float32())),
]
PREDICTION_SCHEMA = pa.schema(PREDICTION_BASE_FIELDS + PREDICTION_LIST_FIELDS)

#: ``attribution_target`` of a class run's attribution: the predicted class (the row's ``label``).
LABEL_TARGET = "label"
#: Targets of valence/arousal attributions (``attr_<modality>_<target>`` in the wide frame).
DIMENSIONAL_TARGETS = ("valence", "arousal")


def prediction_schema(classes: list[str], attributions: Sequence[str] = ()) -> pa.Schema:
    """Schema of the wide frame of one run that scoring builds and ``Catalog.predictions`` gives back
    (not of the parts, see :data:`PREDICTION_SCHEMA`): base fields, ``p_<class>`` per class, then the
    attribution columns of an explained scoring (see :func:`attribution_columns`)."""
    return pa.schema(PREDICTION_BASE_FIELDS + [(f"p_{c}", pa.float32()) for c in classes]
                     + [(a, pa.float32()) for a in attributions])


def attribution_column(modality: str, target: str) -> str:
    """Wide-frame name of one attribution entry; :func:`split_attribution_column` is its inverse.

    >>> attribution_column("face", "label"), attribution_column("face", "valence")
    ('attr_face', 'attr_face_valence')
    >>> split_attribution_column("attr_face"), split_attribution_column("attr_audio_arousal")
    (('face', 'label'), ('audio', 'arousal'))
    """
    return f"attr_{modality}" if target == LABEL_TARGET else f"attr_{modality}_{target}"


def attribution_columns(modalities: Sequence[str], *, categorical: bool = True,
                        dimensional: Sequence[str] = ()) -> list[str]:
    """Names of the per-modality attribution columns of an explained scoring (the wide frame).

    ``attr_<modality>``: the predicted class's probability minus its probability with that
    modality masked (runs with classes); ``attr_<modality>_<target>``: the predicted value
    minus the value with it masked (valence/arousal). NaN where the modality is absent.

    >>> attribution_columns(["face", "audio"])
    ['attr_face', 'attr_audio']
    >>> attribution_columns(["face"], categorical=False, dimensional=["valence", "arousal"])
    ['attr_face_valence', 'attr_face_arousal']
    """
    cols = [attribution_column(m, LABEL_TARGET) for m in modalities] if categorical else []
    return cols + [attribution_column(m, t) for m in modalities for t in dimensional]


def split_attribution_column(name: str) -> tuple[str, str]:
    """(modality, target) of a wide attribution column ``attr_<modality>[_<target>]``."""
    rest = name[len("attr_"):]
    for t in DIMENSIONAL_TARGETS:
        if rest.endswith(f"_{t}"):
            return rest[:-len(t) - 1], t
    return rest, LABEL_TARGET


#: Where each (prediction row, target) profile sits in a Zarr shard of time attributions
#: (``attributions/run=<id>/``): the prediction row's keys, ``kind`` (``attention`` |
#: ``occlusion``), ``target`` (the predicted class, or ``valence``/``arousal``) and the rows.
TIME_ATTRIBUTION_INDEX_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("fold", pa.string()),
        ("window", pa.string()),
        ("window_start", pa.float64()),
        ("window_end", pa.float64()),
        ("kind", pa.string()),
        ("target", pa.string()),
        ("shard", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("t_start", pa.float64()),
        ("t_end", pa.float64()),
    ]
)

#: Columns of :meth:`~emofuse.catalog.store.Catalog.time_attributions` (one row per step).
TIME_ATTRIBUTION_COLUMNS = ["item_id", "fold", "window", "window_start", "window_end", "start", "end", "weight",
                            "kind", "target"]

#: Metrics of training runs and evaluations (``results/part-<evaluation>.parquet``, see
#: :mod:`emofuse.catalog.results`): one row per (evaluation, fold, split, metric). ``fold`` is a
#: fold number, ``"pooled"`` (every fold's test items together) or ``"ensemble"`` (the folds'
#: mean prediction, cross-corpus); ``low``/``high`` the bootstrap interval at ``level`` over
#: ``n_items`` test items (``n_boot`` draws, ``seed``); ``classes`` the classes scored (the
#: shared classes of a cross-corpus evaluation); ``n_left_out`` test items without a mapped label.
RESULTS_SCHEMA = pa.schema(
    [
        ("evaluation", pa.string()),
        ("kind", pa.string()),  # "train" (the run's own folds) or "cross-corpus"
        ("run", pa.string()),
        ("model", pa.string()),
        ("feature_sets", pa.string()),  # "modality=key,…"
        ("train_corpus", pa.string()),
        ("test_corpus", pa.string()),
        ("fold", pa.string()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("low", pa.float64()),
        ("high", pa.float64()),
        ("level", pa.float64()),
        ("n_items", pa.int64()),
        ("n_left_out", pa.int64()),
        ("n_boot", pa.int64()),
        ("seed", pa.int64()),
        ("classes", pa.list_(pa.string())),
        ("written_at", pa.timestamp("us", tz="UTC")),
    ]
)
