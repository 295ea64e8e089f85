"""Read a dlib DNN model file (``dlib::serialize`` of a network) into plain numpy records.

dlib writes a network as nested objects, outermost layer first: the loss layer
(``version, loss details, subnetwork``), then for every layer down the stack only
its header (``add_layer`` version 2; tag/skip layers version 1 and nothing else),
then the bottom ``add_layer`` (version 3) with the input layer and its details, and
on the way back up each computational layer's details followed by its bookkeeping
(three ``bool`` as ASCII ``'0'``/``'1'`` and empty tensors). So after the headers
the computational layers come **bottom-up**, in the order the forward pass runs
them; :func:`read_dlib_net` returns them in that order and leaves the wiring
(tags, skips, which ``add_prev`` adds what) to the code that knows the network
definition (:mod:`.dlib_resnet`).

Encodings (dlib/serialize.h, dlib/dnn/tensor.h, dlib/float_details.h):

* integers and ``bool``-as-int: one byte ``size | 0x80 if negative``, then ``size``
  little-endian magnitude bytes;
* ``float``/``double``: an int64 mantissa and an int16 exponent, value
  ``mantissa * 2**exponent``;
* strings: a length (integer) and the bytes;
* tensors: version 2, ``num_samples, k, nr, nc`` (integers), then the values as
  little-endian IEEE float32;
* ``alias_tensor``: version 1, ``num_samples, k, nr, nc``.

Example (a hand-made byte string: an integer, a float, a string):
    >>> r = DlibReader(bytes([0x01, 0x96, 0x03, 0x62, 0x90, 0xF5, 0x81, 0x11, 0x01, 0x03]) + b"con")
    >>> r.int(), round(r.float(), 3), r.string()
    (150, 122.782, 'con')
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DlibFormatError(ValueError):
    """The bytes are not the dlib serialization this reader expects."""


class DlibReader:
    """A cursor over dlib-serialized bytes."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of data at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        head = self._take(1)[0]
        size, negative = head & 0x0F, bool(head & 0x80)
        if size > 8:
            raise DlibFormatError(f"integer of {size} bytes at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if negative else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise DlibFormatError(f"bool at byte {self.pos - 1} is {c!r}, not '0' or '1'")
        return c == b"1"

    def string(self) -> str:
        at = self.pos
        raw = self._take(self.int())
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise DlibFormatError(f"string at byte {at} is not ASCII: {raw[:20]!r}") from None

    def expect_version(self, allowed: tuple[int, ...], what: str) -> int:
        at = self.pos
        v = self.int()
        if v not in allowed:
            raise DlibFormatError(f"{what}: version {v} at byte {at}, expected one of {allowed}")
        return v

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor`` as a float32 array of shape (num_samples, k, nr, nc)."""
        self.expect_version((2,), "tensor")
        shape = tuple(self.int() for _ in range(4))
        n = int(np.prod(shape))
        return np.frombuffer(self._take(4 * n), dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        self.expect_version((1,), "alias_tensor")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


@dataclass
class InputSpec:
    """``input_rgb_image_sized``: per-channel means (subtracted, then divided by 256) and the image size."""

    avg_rgb: tuple[float, float, float]
    nr: int
    nc: int


@dataclass
class LayerRecord:
    """One computational layer: its dlib name (``con``, ``affine``, ...), arrays and settings."""

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed dlib network: loss settings, input layer and computational layers bottom-up."""

    loss: dict[str, Any]
    input: InputSpec
    layers: list[LayerRecord]
    headers: list[int]  # add_layer/tag/skip versions, outermost first (2: computational, 1: tag/skip)


def _con(r: DlibReader, version: str) -> LayerRecord:
    params = r.tensor().reshape(-1)
    num_filters, nr, nc = r.int(), r.int(), r.int()
    stride_y, stride_x, pad_y, pad_x = r.int(), r.int(), r.int(), r.int()
    filters = r.alias_tensor()
    biases = r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.bool() if version == "con_5" else True
    n_w = int(np.prod(filters))
    if filters[0] != num_filters or (filters[2], filters[3]) != (nr, nc):
        raise DlibFormatError(f"con filters {filters} disagree with num_filters={num_filters}, {nr}x{nc}")
    weight = params[:n_w].reshape(filters)
    bias = params[n_w : n_w + num_filters] if use_bias else np.zeros(num_filters, np.float32)
    if use_bias and biases[1] != num_filters:
        raise DlibFormatError(f"con biases {biases} disagree with num_filters={num_filters}")
    return LayerRecord("con", {"weight": weight, "bias": bias},
                       {"stride": (stride_y, stride_x), "padding": (pad_y, pad_x)})


def _affine(r: DlibReader) -> LayerRecord:
    params = r.tensor().reshape(-1)
    gamma, beta = r.alias_tensor(), r.alias_tensor()
    mode = r.int()  # 0: per channel (CONV_MODE), 1: per element (FC_MODE)
    n = int(np.prod(gamma))
    if int(np.prod(beta)) != n or params.size != 2 * n:
        raise DlibFormatError(f"affine params of {params.size} values for gamma {gamma} / beta {beta}")
    return LayerRecord("affine", {"gamma": params[:n].copy(), "beta": params[n:].copy()}, {"mode": mode})


def _pool(r: DlibReader, kind: str) -> LayerRecord:
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
    return LayerRecord(kind, attrs={"window": (nr, nc), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)})


def _fc(r: DlibReader) -> LayerRecord:
    num_outputs, num_inputs = r.int(), r.int()
    params = r.tensor().reshape(-1)
    weights, _biases = r.alias_tensor(), r.alias_tensor()
    bias_mode = r.int()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    n_w = num_inputs * num_outputs
    if weights[:2] != (num_inputs, num_outputs):
        raise DlibFormatError(f"fc weights {weights} disagree with {num_inputs} inputs, {num_outputs} outputs")
    weight = params[:n_w].reshape(num_inputs, num_outputs)  # dlib computes x @ W
    bias = params[n_w : n_w + num_outputs] if bias_mode == 0 else np.zeros(num_outputs, np.float32)
    return LayerRecord("fc", {"weight": weight, "bias": bias}, {"has_bias": bias_mode == 0})


def _details(r: DlibReader) -> LayerRecord:
    at = r.pos
    name = r.string()
    if name in ("con_4", "con_5"):
        return _con(r, name)
    if name == "affine_":
        return _affine(r)
    if name == "relu_":
        return LayerRecord("relu")
    if name == "add_prev_":
        return LayerRecord("add_prev")
    if name == "max_pool_2":
        return _pool(r, "max_pool")
    if name == "avg_pool_2":
        return _pool(r, "avg_pool")
    if name == "fc_2":
        return _fc(r)
    raise DlibFormatError(f"layer {name!r} at byte {at} is not supported by this reader")


def _read_bookkeeping(r: DlibReader, bottom: bool) -> None:
    for _ in range(3):  # setup called, gradient stale, output disabled
        r.bool()
    for _ in range(3):  # x_grad, cached_output, params_grad (bottom: grad_final)
        t = r.tensor()
        if t.size:
            raise DlibFormatError("a saved network with non-empty training state is not supported")
    if bottom:
        r.int()  # _sample_expansion_factor


def read_dlib_net(path: str | os.PathLike[str]) -> DlibNet:
    """Parse a dlib ``loss_metric`` network file (e.g. ``dlib_face_recognition_resnet_model_v1.dat``)."""
    with open(path, "rb") as f:
        r = DlibReader(f.read())
    r.expect_version((1,), "add_loss_layer")
    loss_name = r.string()
    if loss_name != "loss_metric_2":
        raise DlibFormatError(f"{path}: loss layer {loss_name!r}, expected 'loss_metric_2'")
    loss = {"name": loss_name, "margin": r.float(), "distance_threshold": r.float()}
    headers: list[int] = []
    while True:
        v = r.int()
        if v == 3:
            break
        if v not in (1, 2):
            raise DlibFormatError(f"{path}: layer header version {v} at byte {r.pos - 1}")
        headers.append(v)
    input_name = r.string()
    if input_name != "input_rgb_image_sized":
        raise DlibFormatError(f"{path}: input layer {input_name!r}, expected 'input_rgb_image_sized'")
    avg = (r.float(), r.float(), r.float())
    spec = InputSpec(avg, r.int(), r.int())
    layers = [_details(r)]
    _read_bookkeeping(r, bottom=True)
    for _ in range(headers.count(2)):
        layers.append(_details(r))
        _read_bookkeeping(r, bottom=False)
    if r.pos != len(r.data):
        raise DlibFormatError(f"{path}: {len(r.data) - r.pos} bytes left after the network")
    return DlibNet(loss, spec, layers, headers)
