"""Tests that TACFN and RCMA match the official code where models.md says how.

Position table and head input of TACFN, RCMA's regressor per variant and its effective
TCN initialisation, and how runs saved before these changes are read back.
"""
from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn

from emofuse.fusion.models import build_model, saved_model_config, with_revision
from emofuse.fusion.models.common import MaskedBatchNorm, masked_mean, position_embedding, sinusoidal_table
from emofuse.fusion.models.rcma import RCMA, RCMAConfig, TemporalBlock
from emofuse.fusion.models.tacfn import TACFN, TACFNConfig
from emofuse.fusion.run_config import RunConfig

DIMS = {"audio": 5, "face": 7, "text": 3}
SMALL_TACFN = dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, attn_dim=16, n_classes=3)
SMALL_RCMA = dict(input_dims={"face": 7, "audio": 5, "text": 3}, seq_len=10, regressor_hidden=16,
                  channels={"face": 6, "audio": 4, "text": 5})


def inputs_and_masks(lengths: dict[str, int], n: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(n, lengths[m], d, generator=g) for m, d in DIMS.items() if m in lengths}
    masks = {m: torch.rand(n, length, generator=g) > 0.3 for m, length in lengths.items()}
    for mask in masks.values():
        mask[:, 0] = True
    return inputs, masks


# ----------------------------------------------------------------------------- TACFN positions


def fairseq_row(p: int, dim: int) -> list[float]:
    """Position p of the fairseq table, straight from the formula (position 0 = zeros)."""
    if p == 0:
        return [0.0] * dim
    half = dim // 2
    freqs = [math.exp(-i * math.log(10000) / (half - 1)) for i in range(half)]
    return [math.sin(p * f) for f in freqs] + [math.cos(p * f) for f in freqs] + [0.0] * (dim % 2)


@pytest.mark.parametrize("dim", [4, 7, 16, 64])
def test_position_table_is_the_fairseq_formula(dim: int):
    table = sinusoidal_table(40, dim)
    expected = torch.tensor([fairseq_row(p, dim) for p in range(40)], dtype=torch.float64)
    assert table.shape == (40, dim) and table.dtype == torch.float32
    torch.testing.assert_close(table.double(), expected, rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="dim >= 4"):
        sinusoidal_table(3, 3)


def test_positions_count_from_one_and_padding_is_position_zero():
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    emb = position_embedding(mask, 8, torch.float64)
    assert emb.shape == (3, 5, 8) and emb.dtype == torch.float64
    for i in range(3):
        for t in range(5):
            expected = torch.tensor(fairseq_row(t + 1 if mask[i, t] else 0, 8), dtype=torch.float64)
            torch.testing.assert_close(emb[i, t], expected, rtol=0, atol=2e-6)


def test_query_encoder_adds_the_table_to_the_scaled_front_end():
    """What enters the Transformer: sqrt(d) * W_in y + fairseq positions (padded steps: position 0)."""
    torch.manual_seed(0)
    enc = TACFN(TACFNConfig(input_dims=DIMS, **SMALL_TACFN)).eval().query_encoder
    y, mask = torch.randn(2, 6, 5), torch.tensor([[1, 1, 0, 1, 1, 0], [1] * 6], dtype=torch.bool)
    seen = {}
    hook = enc.encoder.register_forward_pre_hook(lambda m, args, kwargs: seen.update(h=args[0]), with_kwargs=True)
    f, _ = enc(y, mask)
    hook.remove()
    front = enc.proj(torch.where(mask[..., None], y, 0.0))
    rows = torch.tensor([[fairseq_row(t + 1 if mask[i, t] else 0, 16) for t in range(6)] for i in range(2)])
    torch.testing.assert_close(f, front)
    torch.testing.assert_close(seen["h"], front * 4.0 + rows, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- TACFN head


def head_input(model: TACFN, inputs, masks) -> torch.Tensor:
    seen = {}
    hook = model.head.register_forward_pre_hook(lambda m, args: seen.update(x=args[0].detach().clone()))
    model(inputs, masks)
    hook.remove()
    return seen["x"]


@pytest.mark.parametrize("options", [{}, {"bidirectional": True}, {"extra": ("text",)}],
                         ids=["default", "bidirectional", "extra"])
def test_tacfn_head_sees_the_query_front_end_not_the_transformer_summary(options):
    torch.manual_seed(0)
    model = TACFN(TACFNConfig(input_dims=DIMS, **SMALL_TACFN, **options)).eval()
    c, d = DIMS["face"], 16
    width = c + d + (DIMS["text"] if "extra" in options else 0)
    assert model.head.in_features == width
    inputs, masks = inputs_and_masks({"audio": 9, "face": 6, "text": 4})
    before = head_input(model, inputs, masks)
    assert before.shape == (3, width)
    if not options:  # the query half is the front end pooled over valid steps
        front = model.query_encoder.proj(torch.where(masks["audio"][..., None], inputs["audio"], 0.0))
        torch.testing.assert_close(before[:, c:], masked_mean(front, masks["audio"]))
    with torch.no_grad():  # a different query-side Transformer ...
        for p in model.query_encoder.encoder.parameters():
            p.add_(torch.randn_like(p))
    after = head_input(model, inputs, masks)
    torch.testing.assert_close(after[:, c:], before[:, c:])  # ... leaves the query half alone
    assert not torch.allclose(after[:, :c], before[:, :c], atol=1e-4)  # it only moves the attention


# ----------------------------------------------------------------------------- RCMA heads


@pytest.mark.parametrize("joint, regressor, kind", [
    ("all", None, "mlp"), ("others", None, "linear"), ("all", "linear", "linear"), ("others", "mlp", "mlp"),
])
def test_rcma_regressor_is_tied_to_the_variant(joint: str, regressor: str | None, kind: str):
    torch.manual_seed(0)
    model = RCMA(RCMAConfig(**SMALL_RCMA, joint=joint, regressor=regressor)).eval()
    assert model.config.regressor_kind() == kind
    heads = {name: type(m) for name, m in model.named_children() if name.startswith("reg_")}
    total = 6 + 4 + 5
    if kind == "mlp":  # RJCMA: Linear -> BatchNorm -> LeakyReLU -> Linear -> tanh
        assert heads == {"reg_in": nn.Linear, "reg_norm": MaskedBatchNorm, "reg_out": nn.Linear}
        assert (model.reg_in.in_features, model.reg_in.out_features, model.reg_norm.num_features,
                model.reg_out.in_features) == (total, 16, 16, 16)
    else:  # v1: one Linear -> tanh
        assert heads == {"reg_out": nn.Linear} and model.reg_out.in_features == total
    assert model.reg_out.out_features == 2
    fused = {}
    model.fusion[-1].register_forward_hook(lambda m, args, out: fused.update(out))
    inputs, masks = inputs_and_masks({m: 10 for m in SMALL_RCMA["input_dims"]})
    va = model(inputs, masks)["va"]
    z = torch.cat([fused[m] for m in model.names], dim=-1)
    if kind == "mlp":
        z = nn.functional.leaky_relu(model.reg_norm(model.reg_in(z)))
    torch.testing.assert_close(va, torch.tanh(model.reg_out(z)))
    with pytest.raises(ValueError, match="regressor"):
        RCMAConfig(**SMALL_RCMA, regressor="deep")


# ----------------------------------------------------------------------------- RCMA TCN init


@pytest.mark.parametrize("c_in, c_out", [(7, 12), (12, 12)])
def test_tcn_init_is_the_official_effective_one(c_in: int, c_out: int):
    """Dilated convs: PyTorch's default init (what the official xavier call leaves in effect);
    1x1 residual conv: xavier_uniform_ with gain sqrt(2)."""
    torch.manual_seed(3)
    block = TemporalBlock(c_in, c_out, kernel=5, dilation=2, dropout=0.1)
    torch.manual_seed(3)
    ref = [nn.Conv1d(c_in, c_out, 5), nn.Conv1d(c_out, c_out, 5)]
    ref_res = nn.Conv1d(c_in, c_out, 1)
    nn.init.xavier_uniform_(ref_res.weight, gain=math.sqrt(2.0))
    for conv, r, fan_in in zip((block.net[0], block.net[4]), ref, (c_in * 5, c_out * 5)):
        assert hasattr(conv, "parametrizations")  # weight-normalised
        torch.testing.assert_close(conv.weight, r.weight)  # the effective (g * v / |v|) weight
        torch.testing.assert_close(conv.bias, r.bias)
        assert conv.weight.abs().max() <= 1 / math.sqrt(fan_in)  # the default kaiming-uniform bound
        assert conv.weight.std() > 0.3 / math.sqrt(fan_in)  # not N(0, 0.01)
    if c_in == c_out:
        assert isinstance(block.residual, nn.Identity)
        return
    torch.testing.assert_close(block.residual.weight, ref_res.weight)
    torch.testing.assert_close(block.residual.bias, ref_res.bias)
    w = block.residual.weight.abs()
    assert w.max() <= math.sqrt(2.0) * math.sqrt(6 / (c_in + c_out))  # xavier bound, gain sqrt(2)
    assert w.max() > 1 / math.sqrt(c_in)  # beyond the default bound: really re-initialised


# ----------------------------------------------------------------------------- saved runs


def saved_config(model: str, model_config: dict) -> RunConfig:
    """A config.json as emofuse wrote it before models recorded their revision."""
    modalities = list(model_config["input_dims"])
    return RunConfig.from_json(json.dumps({
        "run_id": f"{model}-old", "model": model, "registry_model": model, "model_config": model_config,
        "feature_sets": {m: f"{m}-v1-x" for m in modalities},
        "data": {"modalities": [{"name": m, "feature_set": f"{m}-v1-x"} for m in modalities]},
        "dims": model_config["input_dims"], "classes": ["a", "b"],
        "task": {"n_classes": 2, "dimensional": []}, "folds": [], "fold_ids": [0], "train": {"epochs": 1},
    }))


def test_runs_saved_before_revisions_load_or_say_to_retrain():
    # RCMA v1: its old MLP head comes back, so the saved weights load unchanged.
    old_cfg = dict(SMALL_RCMA, joint="others")
    torch.manual_seed(0)
    weights = RCMA(RCMAConfig(**old_cfg, regressor="mlp")).state_dict()
    config = saved_config("rcma", copy.deepcopy(old_cfg))
    assert config.model_config["revision"] == 1
    model = config.build_model()
    model.load_state_dict(weights, strict=True)
    assert "revision" in json.loads(config.to_json())["model_config"]
    # A new run of the same config gets the official v1 head.
    assert not hasattr(build_model("rcma", **with_revision("rcma", old_cfg)), "reg_in")
    # TACFN: same shapes, different meaning -> a clear error instead of silently wrong scores.
    old = saved_config("tacfn", {"input_dims": {"face": 7, "audio": 5}, "target": "face", "query": "audio",
                                 "n_classes": 2})
    with pytest.raises(ValueError, match="retrain"):
        old.build_model()
    assert saved_model_config("tacfn", {"revision": 2}) == {"revision": 2}
