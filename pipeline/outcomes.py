"""The status of an item whose media cannot be decoded: the one decode-error → status mapping.

Every extractor hands the :class:`~emofuse.pipeline.decode.DecodeError` its decoding raised
(a :class:`~emofuse.pipeline.decode.NoStream` included) to :func:`decode_failure`, and asks
:func:`missing_stream` before decoding a stream the item is already known to lack. So a file's
status and message do not depend on which extractor read it, and the status rows stay what the
catalog and the report expect (``no_audio``, ``no_video``, ``decode_error``).

Example:
    >>> from emofuse.pipeline.decode import DecodeError, NoStream
    >>> r = decode_failure("a", NoStream("/m/a.wav", "video"))
    >>> r.status.value, r.message
    ('no_video', '/m/a.wav: no video stream')
    >>> decode_failure("b", DecodeError("/m/b.mp4: empty file (0 bytes)"), context="ASR").message
    'ASR: /m/b.mp4: empty file (0 bytes)'
    >>> missing_stream(MediaRef("c", "/m/c.wav", has_video=False), "video").status.value
    'no_video'
    >>> missing_stream(MediaRef("c", "/m/c.wav"), "video") is None   # not probed: decoding will tell
    True
"""
from __future__ import annotations

from emofuse.catalog.records import ExtractResult
from emofuse.catalog.schemas import Status
from emofuse.pipeline.decode import DecodeError, NoStream, StreamKind
from emofuse.pipeline.registry import MediaRef

#: The status of an item that lacks the kind of stream an extractor reads.
MISSING_STREAM_STATUS: dict[str, Status] = {"audio": Status.NO_AUDIO, "video": Status.NO_VIDEO}


def decode_status(error: DecodeError) -> Status:
    """``no_audio``/``no_video`` for a missing stream, ``decode_error`` for media that cannot be read."""
    if isinstance(error, NoStream):
        return MISSING_STREAM_STATUS[error.kind]
    return Status.DECODE_ERROR


def decode_failure(item_id: str, error: DecodeError, *, context: str = "") -> ExtractResult:
    """The failed result of an item whose decoding raised ``error``; ``context`` prefixes the
    message with the step that decoded (e.g. ``ASR``)."""
    message = f"{context}: {error}" if context else str(error)
    return ExtractResult.failed(item_id, decode_status(error), message)


def missing_stream(media: MediaRef, kind: StreamKind) -> ExtractResult | None:
    """The failed result of an item whose probe found no ``kind`` stream; None when it has one
    or was not probed (decoding then tells)."""
    present = media.has_audio if kind == "audio" else media.has_video
    return decode_failure(media.item_id, NoStream(media.path, kind)) if present is False else None


__all__ = ["MISSING_STREAM_STATUS", "decode_failure", "decode_status", "missing_stream"]
