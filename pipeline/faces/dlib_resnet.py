"""dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``) as a batched torch module.

dlib's ``face_recognition_model_v1`` is the ``anet_type`` of dlib's
``examples/dnn_face_recognition_ex.cpp``::

    loss_metric< fc_no_bias<128, avg_pool_everything<
        alevel0< alevel1< alevel2< alevel3< alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150> >>>>>>>>>>>>

    ares<N>      = relu< add_prev1< affine<con<N,3,3,1,1, relu<affine<con<N,3,3,1,1, tag1<x> >>>>> >>
    ares_down<N> = relu< add_prev2< avg_pool<2,2,2,2, skip1< tag2<
                       affine<con<N,3,3,1,1, relu<affine<con<N,3,3,2,2, tag1<x> >>>>> >>> >>
    alevel0 = ares_down<256>;  alevel1 = 2 x ares<256> on ares_down<256>;
    alevel2 = 2 x ares<128> on ares_down<128>;  alevel3 = 3 x ares<64> on ares_down<64>;
    alevel4 = 3 x ares<32>

The details that decide equality with dlib:

* input: ``(pixel - avg) / 256`` per channel, RGB order, avg = (122.782, 117.001, 104.298)
  read from the file;
* ``con``: dlib's default padding is ``k // 2`` for stride 1 and **0** for stride 2 (the
  file stores it; 150 -> 72 after the 7x7/2 stem, 72 -> 35 after the 3x3/2 max pool);
* ``affine`` (batch norm frozen at inference) is ``gamma * x + beta`` per channel, folded
  here into the preceding convolution;
* ``add_prev`` adds two tensors of different shapes by treating missing elements as 0
  (dlib's ``tt::add``): the shortcut of a down block has fewer channels, and at 8x8 the
  stride-2 branch gives 3x3 while the 2x2 average pool gives 4x4, so the sum is 4x4 with
  the branch in its top-left corner (:class:`ResidualBlock`);
* ``fc_no_bias`` computes ``x @ W`` (W stored as inputs x outputs); ``loss_metric``
  returns that 128-d vector unchanged, which is what ``compute_face_descriptor`` gives.

:class:`~.face_engine.DlibResNetEmbedder` runs it (in torch, or exported to onnxruntime)
on 150x150 RGB chips made by ``dlib.get_face_chip``.

Example (random weights with the real layout; no model file needed):
    >>> import numpy as np, torch
    >>> net = DlibResNet.from_dlib(synthetic_dlib_net(seed=0)).eval()
    >>> chips = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    >>> with torch.inference_mode():
    ...     out = net(torch.from_numpy(chips))
    >>> tuple(out.shape), out.dtype
    ((2, 128), torch.float32)
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .dlib_weights import DlibFormatError, DlibNet, InputSpec, LayerRecord, read_dlib_net

CHIP_SIZE = 150
DIM = 128


def _pad_to(chw: Sequence[int], target: Sequence[int]) -> tuple[int, ...]:
    """``F.pad`` amounts (W, H, C; after the data only) taking a (C, H, W) tensor to ``target``."""
    c, h, w = (int(v) for v in chw)
    return (0, target[2] - w, 0, target[1] - h, 0, target[0] - c)


def _conv_out(size: int, conv: nn.Conv2d) -> int:
    """Output size along one axis (dlib and torch agree: ``1 + (n + 2p - k) // s``)."""
    return 1 + (size + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0]


def _folded_conv(con: LayerRecord, affine: LayerRecord) -> nn.Conv2d:
    """dlib ``affine<con<...>>`` as one Conv2d: weights scaled by gamma, bias ``b * gamma + beta``."""
    if con.kind != "con" or affine.kind != "affine" or affine.attrs["mode"] != 0:
        raise DlibFormatError(f"expected con + per-channel affine, got {con.kind} + {affine.kind}")
    w = con.arrays["weight"].astype(np.float64)
    gamma = affine.arrays["gamma"].astype(np.float64)
    beta = affine.arrays["beta"].astype(np.float64)
    out_c, in_c, kh, kw = w.shape
    conv = nn.Conv2d(in_c, out_c, (kh, kw), stride=con.attrs["stride"], padding=con.attrs["padding"], bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w * gamma[:, None, None, None]))
        conv.bias.copy_(torch.from_numpy(con.arrays["bias"].astype(np.float64) * gamma + beta))
    return conv


class ResidualBlock(nn.Module):
    """dlib ``ares`` / ``ares_down``: two folded convs, shortcut (2x2 average pool when down), zero-padded add, relu.

    The zero padding of the add is fixed by the input geometry (dlib's net takes 150x150 only),
    so it is computed once here, which keeps the forward pass free of shape tests (traceable).
    At 8x8 the stride-2 branch gives 3x3 and the pooled shortcut 4x4 (with half the channels):

    >>> conv = lambda cin, s, p: nn.Conv2d(cin, 256, 3, stride=s, padding=p)
    >>> b = ResidualBlock(conv(128, 2, 0), conv(256, 1, 1), down=True, in_chw=(128, 8, 8))
    >>> b.out_chw, b.pad_y, b.pad_shortcut
    ((256, 4, 4), (0, 1, 0, 1, 0, 0), (0, 0, 0, 0, 0, 128))
    """

    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, down: bool, in_chw: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1, self.conv2, self.down = conv1, conv2, down
        c, h, w = in_chw
        y = (conv2.out_channels, _conv_out(_conv_out(h, conv1), conv2), _conv_out(_conv_out(w, conv1), conv2))
        s = (c, 1 + (h - 2) // 2, 1 + (w - 2) // 2) if down else (c, h, w)
        self.out_chw = tuple(max(a, b) for a, b in zip(y, s))
        self.pad_y = _pad_to(y, self.out_chw)
        self.pad_shortcut = _pad_to(s, self.out_chw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        if any(self.pad_y):
            y = F.pad(y, self.pad_y)
        if any(self.pad_shortcut):
            shortcut = F.pad(shortcut, self.pad_shortcut)
        return F.relu(y + shortcut)


class DlibResNet(nn.Module):
    """The network of dlib's face descriptor: uint8 NHWC RGB chips (N,150,150,3) -> (N,128) descriptors."""

    def __init__(self, input_spec: InputSpec, stem: nn.Conv2d, pool: tuple[int, int], blocks: list[ResidualBlock],
                 fc_weight: np.ndarray) -> None:
        super().__init__()
        self.input_size = (input_spec.nr, input_spec.nc)
        self.register_buffer("mean", torch.tensor(input_spec.avg_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem = stem
        self.pool = pool  # max pool window, stride (padding 0)
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(fc_weight.shape[0], fc_weight.shape[1], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(fc_weight.T)))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "DlibResNet":
        """Read dlib's model file (``dlib_face_recognition_resnet_model_v1.dat``) and build the network."""
        return cls.from_dlib(read_dlib_net(path))

    @classmethod
    def from_dlib(cls, net: DlibNet) -> "DlibResNet":
        """Build from parsed layers, checking that they are the ``anet_type`` layout (stem, residual blocks, head)."""
        L = net.layers
        kinds = [l.kind for l in L]
        if kinds[:4] != ["con", "affine", "relu", "max_pool"] or kinds[-2:] != ["avg_pool", "fc"]:
            raise DlibFormatError(f"not dlib's face ResNet: layers start {kinds[:4]} and end {kinds[-2:]}")
        if L[-2].attrs["window"] != (0, 0):
            raise DlibFormatError("the head must be avg_pool_everything")
        mp = L[3].attrs
        if mp["window"][0] != mp["window"][1] or mp["stride"][0] != mp["stride"][1] or mp["padding"] != (0, 0):
            raise DlibFormatError(f"unsupported max pool {mp}")
        stem = _folded_conv(L[0], L[1])
        k, st = mp["window"][0], mp["stride"][0]
        chw = (stem.out_channels, *((1 + (_conv_out(n, stem) - k) // st) for n in (net.input.nr, net.input.nc)))
        blocks: list[ResidualBlock] = []
        i, body = 4, len(L) - 2
        while i < body:
            down = kinds[i + 5] == "avg_pool"
            want = ["con", "affine", "relu", "con", "affine"] + (["avg_pool"] if down else []) + ["add_prev", "relu"]
            if kinds[i : i + len(want)] != want:
                raise DlibFormatError(f"layers {i}..: {kinds[i:i + len(want)]}, expected a residual block {want}")
            if down and (L[i + 5].attrs["window"], L[i + 5].attrs["stride"]) != ((2, 2), (2, 2)):
                raise DlibFormatError(f"down block at layer {i}: shortcut pool {L[i + 5].attrs}, expected 2x2/2")
            blocks.append(ResidualBlock(_folded_conv(L[i], L[i + 1]), _folded_conv(L[i + 3], L[i + 4]), down, chw))
            chw = blocks[-1].out_chw
            i += len(want)
        # add_layer (L) and tag/skip (T) headers, top-down: fc, avg_pool_everything, each block as
        # relu, add_prev, [avg_pool, skip1, tag2,] affine, con, relu, affine, con, tag1; then max_pool, relu, affine.
        expected = "LL" + "".join("LLLTTLLLLLT" if b.down else "LLLLLLLT" for b in reversed(blocks)) + "LLL"
        got = "".join("L" if v == 2 else "T" for v in net.headers)
        if got != expected:
            raise DlibFormatError("the tag/skip wiring of this file is not dlib's face ResNet (anet_type)")
        return cls(net.input, stem, (k, st), blocks, L[-1].arrays["weight"])

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """``chips``: uint8 or float (N, 150, 150, 3) RGB (the file's size); returns (N, 128), dlib's descriptor."""
        x = chips.permute(0, 3, 1, 2).to(self.mean.dtype)
        x = (x - self.mean) / 256.0
        if self.stem.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.stem(x))
        x = F.max_pool2d(x, *self.pool)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


def synthetic_dlib_net(seed: int = 0) -> DlibNet:
    """A :class:`DlibNet` with dlib's face-ResNet layout and random weights (for doctests and shape tests)."""
    rng = np.random.default_rng(seed)

    def con(cin: int, cout: int, k: int, stride: int) -> LayerRecord:
        w = rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)).astype(np.float32)
        return LayerRecord("con", {"weight": w, "bias": np.zeros(cout, np.float32)},
                           {"stride": (stride, stride), "padding": (0, 0) if stride != 1 else (k // 2, k // 2)})

    def affine(c: int) -> LayerRecord:
        return LayerRecord("affine", {"gamma": rng.uniform(0.5, 1.0, c).astype(np.float32),
                                      "beta": rng.normal(0, 0.1, c).astype(np.float32)}, {"mode": 0})

    def pool(kind: str, k: int, s: int) -> LayerRecord:
        return LayerRecord(kind, attrs={"window": (k, k), "stride": (s, s), "padding": (0, 0)})

    layers = [con(3, 32, 7, 2), affine(32), LayerRecord("relu"), pool("max_pool", 3, 2)]
    plan = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 \
        + [(256, True)] + [(256, False)] * 2 + [(256, True)]
    cin = 32
    for cout, down in plan:
        layers += [con(cin, cout, 3, 2 if down else 1), affine(cout), LayerRecord("relu"),
                   con(cout, cout, 3, 1), affine(cout)]
        layers += ([pool("avg_pool", 2, 2)] if down else []) + [LayerRecord("add_prev"), LayerRecord("relu")]
        cin = cout
    fc = rng.normal(0, 256 ** -0.5, (256, DIM)).astype(np.float32)
    head = LayerRecord("fc", {"weight": fc, "bias": np.zeros(DIM, np.float32)}, {"has_bias": False})
    layers += [pool("avg_pool", 0, 1), head]
    headers = "LL" + "".join("LLLTTLLLLLT" if d else "LLLLLLLT" for _, d in reversed(plan)) + "LLL"
    return DlibNet({"name": "loss_metric_2", "margin": 0.04, "distance_threshold": 0.6},
                   InputSpec((122.782, 117.001, 104.298), CHIP_SIZE, CHIP_SIZE), layers,
                   [2 if h == "L" else 1 for h in headers])


__all__ = ["DlibResNet", "ResidualBlock", "synthetic_dlib_net", "CHIP_SIZE", "DIM"]
