"""Tests for fusion.models: shapes, masks, gradients, batch independence, tiny learning runs."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from emofuse.fusion.losses import ccc, ccc_loss, cross_entropy
from emofuse.fusion.models import build_model, count_parameters, model_names
from emofuse.fusion.models.common import MaskedBatchNorm, position_embedding
from emofuse.fusion.models.rcma import RCMA, RCMAConfig, TemporalEncoder
from emofuse.fusion.models.tacfn import TACFN, TACFNConfig

SMALL_TACFN = dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, attn_dim=16)
SMALL_RCMA = dict(regressor_hidden=16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest (and steadiest on a shared machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rand_inputs(dims: dict[str, int], n: int, lengths: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, lengths[m], d, generator=g) for m, d in dims.items()}


def gappy_masks(n: int, lengths: dict[str, int], seed: int = 1) -> dict[str, torch.Tensor]:
    """Random gaps, a padded tail on sample 0, and one sample with nothing valid per modality."""
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for i, (m, length) in enumerate(lengths.items()):
        mask = torch.rand(n, length, generator=g) > 0.3
        mask[0, length // 2:] = False
        mask[0, 0] = True
        if n > 2:
            mask[1 + i % (n - 1)] = False  # a different sample per modality has no valid step
        masks[m] = mask
    return masks


def tacfn(**overrides) -> TACFN:
    cfg = dict(input_dims={"audio": 5, "face": 7, "text": 3}, n_classes=3, **SMALL_TACFN)
    cfg.update(overrides)
    return TACFN(TACFNConfig(**cfg))


def rcma(**overrides) -> RCMA:
    cfg = dict(input_dims={"face": 7, "audio": 5, "text": 3}, seq_len=10, n_classes=3,
               channels={"face": 6, "audio": 4, "text": 5}, **SMALL_RCMA)
    cfg.update(overrides)
    return RCMA(RCMAConfig(**cfg))


TACFN_LENGTHS = {"audio": 9, "face": 6, "text": 4}
RCMA_LENGTHS = {"face": 10, "audio": 10, "text": 10}
TACFN_OPTIONS = [
    dict(),
    dict(batch_sum_attention=True),
    dict(bidirectional=True),
    dict(bidirectional=True, batch_sum_attention=True, extra=("text",)),
    dict(extra=("text",)),
    dict(target="audio", query="face"),
]
RCMA_OPTIONS = [
    dict(),
    dict(joint="others"),
    dict(joint="others", others_dim=6),
    dict(joint="others", regressor="mlp"),
    dict(regressor="linear"),
    dict(n_classes=None),
    dict(n_targets=0),
    dict(input_dims={"face": 7, "audio": 5}, channels={"face": 6, "audio": 4}),
    dict(input_dims={"face": 7, "audio": 5}, channels={"face": 6, "audio": 4}, joint="others"),
    dict(n_iterations=1, channels={"face": [3, 6], "audio": [4, 4], "text": 5}, n_levels=2),
]


def all_cases():
    for opt in TACFN_OPTIONS:
        yield pytest.param(lambda o=opt: tacfn(**o), TACFN_LENGTHS, id=f"tacfn-{opt}")
    for opt in RCMA_OPTIONS:
        yield pytest.param(lambda o=opt: rcma(**o), RCMA_LENGTHS, id=f"rcma-{opt}")
    dims = {"audio": 5, "face": 7, "text": 3}
    yield pytest.param(lambda: build_model("concat_mlp", input_dims=dims, n_classes=3, hidden=(8, 8)),
                       TACFN_LENGTHS, id="concat_mlp")
    yield pytest.param(lambda: build_model("unimodal", input_dims=dims, modality="audio", n_classes=3, hidden=(8,)),
                       TACFN_LENGTHS, id="unimodal")


def model_dims(model: torch.nn.Module) -> dict[str, int]:
    return dict(model.config.input_dims)


# ----------------------------------------------------------------------------- shapes


def test_tacfn_default_shapes_and_parameter_count():
    model = TACFN(TACFNConfig(input_dims={"audio": 25, "face": 512})).eval()
    out = model({"audio": torch.randn(3, 40, 25), "face": torch.randn(3, 16, 512)})
    assert out["logits"].shape == (3, 8)
    assert out["attention"].shape == (3, 16)
    torch.testing.assert_close(out["attention"].sum(-1), torch.ones(3))
    d, ff, layers = 64, 256, 5
    per_layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * 2 * d
    expected = (25 * d + d) + layers * per_layer + 2 * d + (512 * d + d) + d * d + d + (512 + d) * 8 + 8
    assert count_parameters(model) == model.n_parameters() == expected


@pytest.mark.parametrize("n_mod", [2, 3])
@pytest.mark.parametrize("joint", ["all", "others"])
def test_rcma_shapes(n_mod: int, joint: str):
    dims = dict(list({"face": 7, "audio": 5, "text": 3}.items())[:n_mod])
    model = rcma(input_dims=dims, joint=joint).eval()
    out = model(rand_inputs(dims, 4, RCMA_LENGTHS))
    assert out["va"].shape == (4, 10, 2)
    assert out["logits"].shape == (4, 3)
    assert out["va"].abs().max() <= 1.0
    with pytest.raises(ValueError, match="seq_len"):
        model(rand_inputs(dims, 2, {m: 11 for m in dims}))


def test_rcma_default_widths_build():
    model = RCMA(RCMAConfig(input_dims={"face": 512, "audio": 25, "text": 384}, seq_len=32, n_classes=8)).eval()
    out = model({"face": torch.randn(2, 32, 512), "audio": torch.randn(2, 32, 25), "text": torch.randn(2, 32, 384)})
    assert out["va"].shape == (2, 32, 2) and out["logits"].shape == (2, 8)
    assert [b.net[0].out_channels for b in model.temporal["audio"].blocks] == [64] * 4
    assert [b.net[0].dilation[0] for b in model.temporal["face"].blocks] == [1, 2, 4, 8]


def test_per_clip_vectors_are_one_step_sequences():
    model = tacfn(extra=("text",)).eval()
    inputs = rand_inputs({"audio": 5, "face": 7, "text": 3}, 2, TACFN_LENGTHS)
    as_vector = dict(inputs, text=inputs["text"][:, 0])
    as_step = dict(inputs, text=inputs["text"][:, :1])
    torch.testing.assert_close(model(as_vector)["logits"], model(as_step)["logits"])


# ----------------------------------------------------------------------------- masks


def _valid_outputs(out: dict[str, torch.Tensor], step_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    res = {}
    if "logits" in out:
        res["logits"] = out["logits"]
    if "va" in out:
        res["va"] = out["va"][step_mask]
    return res


@pytest.mark.parametrize("make, lengths", list(all_cases()))
@pytest.mark.parametrize("train", [False, True])
def test_masked_steps_do_not_change_outputs(make, lengths, train: bool):
    torch.manual_seed(0)
    model = make().train(train)
    dims = model_dims(model)
    inputs = rand_inputs(dims, 5, lengths)
    masks = gappy_masks(5, {m: lengths[m] for m in dims})
    other = {}
    for i, (m, x) in enumerate(inputs.items()):
        noise = torch.randn_like(x) * 10
        if i == 0:
            noise[~masks[m]] = float("nan")
        other[m] = torch.where(masks[m].unsqueeze(-1), x, noise)
    same_length = len({k.shape[1] for k in masks.values()}) == 1
    step_mask = torch.stack(list(masks.values())).any(0) if same_length else None
    torch.manual_seed(1)
    first = _valid_outputs(model(inputs, masks), step_mask)
    torch.manual_seed(1)
    second = _valid_outputs(model(other, masks), step_mask)
    assert first.keys() and first.keys() == second.keys()
    for key in first:
        assert torch.isfinite(first[key]).all()
        torch.testing.assert_close(first[key], second[key], rtol=1e-5, atol=1e-6)
    # The mask is not ignored: declaring every step valid changes the result.
    torch.manual_seed(1)
    unmasked = _valid_outputs(model(inputs, None), step_mask)
    assert any(not torch.allclose(first[k], unmasked[k]) for k in first)


def test_tacfn_attention_respects_mask_and_falls_back_to_uniform():
    model = tacfn().eval()
    inputs = rand_inputs({"audio": 5, "face": 7}, 3, TACFN_LENGTHS)
    face_mask = torch.tensor([[1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1] * 6], dtype=torch.bool)
    a = model(inputs, {"face": face_mask})["attention"]
    assert torch.all(a[0, ~face_mask[0]] == 0)
    torch.testing.assert_close(a[0].sum(), torch.tensor(1.0))
    torch.testing.assert_close(a[1], torch.full((6,), 1 / 6))


def test_tacfn_query_uses_last_valid_step_only():
    """Trailing invalid query steps: same logits as the sequence cut at its last valid step."""
    model = tacfn().eval()
    inputs = rand_inputs({"audio": 5, "face": 7}, 1, TACFN_LENGTHS)
    mask = torch.zeros(1, 9, dtype=torch.bool)
    mask[0, :6] = True
    full = model(inputs, {"audio": mask})["logits"]
    cut = model({"face": inputs["face"], "audio": inputs["audio"][:, :6]})["logits"]
    torch.testing.assert_close(full, cut, rtol=1e-5, atol=1e-6)


def test_tacfn_query_encoder_leaves_gaps_out_of_attention():
    """A gap is not a zero token: q equals the encoder run on the valid steps alone
    (each keeping its position on the timeline)."""
    model = tacfn().eval()
    enc = model.query_encoder
    y = torch.randn(1, 9, 5)
    mask = torch.tensor([[1, 1, 0, 0, 1, 0, 1, 1, 0]], dtype=torch.bool)
    _, q = enc(y, mask)
    h0 = enc.proj(y) * math.sqrt(enc.d_model)
    h0 = h0 + position_embedding(torch.ones_like(mask), enc.d_model, y.dtype)
    kept = h0[:, mask[0]]
    n = kept.shape[1]
    causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    reference = enc.encoder(kept, mask=causal)[:, -1]
    torch.testing.assert_close(q, reference, rtol=1e-5, atol=1e-5)


def test_tcn_is_causal():
    torch.manual_seed(0)
    enc = TemporalEncoder(4, [6, 6, 6, 6], kernel=5, dropout=0.1).eval()
    x = torch.randn(2, 40, 4)
    mask = torch.ones(2, 40, dtype=torch.bool)
    y = x.clone()
    y[:, 25:] = torch.randn(2, 15, 4)
    torch.testing.assert_close(enc(x, mask)[:, :25], enc(y, mask)[:, :25])
    assert not torch.allclose(enc(x, mask)[:, 25:], enc(y, mask)[:, 25:])


def test_masked_batchnorm_uses_valid_steps_only():
    bn = MaskedBatchNorm(3, momentum=1.0).train()
    x = torch.randn(4, 7, 3) * 2 + 5
    mask = torch.rand(4, 7) > 0.4
    y = bn(x, mask)
    valid = x[mask]
    expected = (valid - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + bn.eps)
    torch.testing.assert_close(y[mask], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, valid.mean(0))
    torch.testing.assert_close(bn.running_var, valid.var(0, unbiased=True))


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("make, lengths", list(all_cases()))
def test_gradients_reach_every_parameter(make, lengths):
    torch.manual_seed(0)
    model = make().train()
    dims = model_dims(model)
    inputs = rand_inputs(dims, 6, lengths)
    masks = gappy_masks(6, {m: lengths[m] for m in dims})
    out = model(inputs, masks)
    loss = torch.zeros(())
    if "logits" in out:
        loss = loss + cross_entropy(out["logits"], torch.arange(6) % out["logits"].shape[1])
    if "va" in out:
        step_mask = torch.stack(list(masks.values())).any(0)
        loss = loss + ccc_loss(out["va"], torch.rand_like(out["va"]) - 0.5, step_mask)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


# ----------------------------------------------------------------------------- batch composition


def _alone_vs_batch(model, inputs, masks) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (logits and va, flattened per sample) of each sample run alone and in the batch."""

    def flat(out: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([out[k].flatten(1) for k in ("logits", "va") if k in out], dim=1)

    batch = flat(model(inputs, masks))
    alone = torch.cat([
        flat(model({m: x[i:i + 1] for m, x in inputs.items()}, {m: k[i:i + 1] for m, k in masks.items()}))
        for i in range(batch.shape[0])
    ])
    return alone, batch


@pytest.mark.parametrize("make, lengths", [c for c in all_cases() if "'batch_sum_attention': True" not in c.id])
def test_outputs_do_not_depend_on_batch_composition(make, lengths):
    torch.manual_seed(0)
    model = make().eval()
    dims = model_dims(model)
    inputs = rand_inputs(dims, 4, lengths)
    masks = gappy_masks(4, {m: lengths[m] for m in dims})
    alone, batch = _alone_vs_batch(model, inputs, masks)
    torch.testing.assert_close(alone, batch, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_batch_sum_attention_makes_outputs_batch_dependent(bidirectional: bool):
    torch.manual_seed(0)
    model = tacfn(batch_sum_attention=True, bidirectional=bidirectional).eval()
    inputs = rand_inputs({"audio": 5, "face": 7}, 4, TACFN_LENGTHS)
    masks = gappy_masks(4, {"audio": 9, "face": 6})
    out = model(inputs, masks)
    # One map for the whole batch: the sum of the per-sample maps, identical in every row.
    per_sample = tacfn(batch_sum_attention=False, bidirectional=bidirectional)
    per_sample.load_state_dict(model.state_dict())
    a = per_sample.eval()(inputs, masks)["attention"]
    torch.testing.assert_close(out["attention"], a.sum(0, keepdim=True).expand_as(a))
    alone, batch = _alone_vs_batch(model, inputs, masks)
    assert not torch.allclose(alone, batch, atol=1e-4)


# ----------------------------------------------------------------------------- registry / devices


def test_registry_builds_every_model_and_round_trips_config():
    assert {"tacfn", "rcma", "concat_mlp", "unimodal"} <= set(model_names())
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")
    for name in ("tacfn", "rcma", "concat_mlp", "unimodal"):
        model = build_model(name)
        again = build_model(name, **dataclasses.asdict(model.config))
        assert again.config == model.config
        assert count_parameters(again) == count_parameters(model) > 0
    with pytest.raises(ValueError):
        TACFNConfig(target="face", query="face")
    with pytest.raises(ValueError):
        RCMAConfig(joint="some")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("make, lengths", list(all_cases()))
def test_runs_on_cuda_with_autocast(make, lengths):
    torch.manual_seed(0)
    model = make().cuda().train()
    dims = model_dims(model)
    inputs = {m: x.cuda() for m, x in rand_inputs(dims, 4, lengths).items()}
    masks = {m: k.cuda() for m, k in gappy_masks(4, {m: lengths[m] for m in dims}).items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(inputs, masks)
    loss = sum(v.float().sum() for k, v in out.items() if k in ("logits", "va"))
    loss.backward()
    assert all(torch.isfinite(v.float()).all() for v in out.values())
    model.eval()
    cpu = make()
    cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    with torch.no_grad():
        gpu_out = model(inputs, masks)
        cpu_out = cpu.eval()({m: x.cpu() for m, x in inputs.items()}, {m: k.cpu() for m, k in masks.items()})
    for key in ("logits", "va"):
        if key in cpu_out:
            torch.testing.assert_close(gpu_out[key].cpu(), cpu_out[key], rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- learning


def selection_task(n: int, seed: int, length: int = 4) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Label only determinable by combining modalities.

    Half of the face steps are of type A (marker in feature 2, sign s_A in feature 0), the
    other half of type B (marker in feature 3, sign s_B in feature 1), in random order.
    The audio carries a bit z at every step. Label = s_A if z else s_B. Audio alone: 50 %;
    face alone: at most 75 % (right only where s_A == s_B); both: 100 %.
    Returns (inputs, fusion label, face-only label s_A).
    """
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, (n, 2), generator=g) * 2.0 - 1
    z = torch.randint(0, 2, (n,), generator=g)
    face = 0.1 * torch.randn(n, length, 6, generator=g)
    order = torch.argsort(torch.rand(n, length, generator=g), dim=1)
    is_a = torch.zeros(n, length, dtype=torch.bool).scatter_(1, order[:, : length // 2], True)
    face[..., 0] += torch.where(is_a, s[:, :1], 0.0)
    face[..., 1] += torch.where(~is_a, s[:, 1:], 0.0)
    face[..., 2] += is_a.float()
    face[..., 3] += (~is_a).float()
    audio = 0.3 * torch.randn(n, length, 4, generator=g)
    audio[..., 0] += (2.0 * z - 1).unsqueeze(1)
    label = (torch.where(z == 1, s[:, 0], s[:, 1]) > 0).long()
    return {"face": face, "audio": audio}, label, (s[:, 0] > 0).long()


def train_classifier(model, steps: int, *, face_only_label: bool = False, lr: float = 3e-3) -> float:
    """Adam on the selection task; returns held-out accuracy."""
    x_tr, y_tr, f_tr = selection_task(512, seed=1)
    x_te, y_te, f_te = selection_task(256, seed=2)
    if face_only_label:
        y_tr, y_te = f_tr, f_te
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, 512, (64,), generator=g)
        loss = cross_entropy(model({m: v[idx] for m, v in x_tr.items()})["logits"], y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return (model(x_te)["logits"].argmax(-1) == y_te).float().mean().item()


DIMS = {"face": 6, "audio": 4}


@pytest.mark.parametrize("bidirectional", [False, True])
def test_tacfn_learns_a_fusion_only_task(bidirectional: bool):
    torch.manual_seed(0)
    model = TACFN(TACFNConfig(input_dims=DIMS, n_classes=2, bidirectional=bidirectional, **SMALL_TACFN))
    assert train_classifier(model, 200) > 0.85


@pytest.mark.parametrize("joint", ["all", "others"])
def test_rcma_classifier_learns_a_fusion_only_task(joint: str):
    torch.manual_seed(0)
    model = RCMA(RCMAConfig(input_dims=DIMS, seq_len=4, n_targets=0, n_classes=2, joint=joint,
                            channels={"face": 8, "audio": 8}, **SMALL_RCMA))
    assert train_classifier(model, 150) > 0.9


def test_concat_mlp_learns_and_unimodal_cannot_beat_its_ceiling():
    torch.manual_seed(0)
    assert train_classifier(build_model("concat_mlp", input_dims=DIMS, n_classes=2, hidden=(32,)), 150) > 0.9
    torch.manual_seed(0)
    face = build_model("unimodal", input_dims=DIMS, modality="face", n_classes=2, hidden=(32,))
    assert train_classifier(face, 150) < 0.85  # face alone is right at most 75 % of the time
    torch.manual_seed(0)
    face = build_model("unimodal", input_dims=DIMS, modality="face", n_classes=2, hidden=(32,))
    assert train_classifier(face, 150, face_only_label=True) > 0.9


@pytest.mark.parametrize("joint", ["all", "others"])
def test_rcma_regressor_learns_per_step_targets_that_need_both_modalities(joint: str):
    """valence_t = 0.5 tanh(face_t) * z with z a per-window sign carried by audio; CCC loss.

    Each variant with its official head. v1's single Linear sees the fusion's rectified
    (>= 0) updates, so the sign flip needs two units learnt in opposite directions: within
    the same 100 steps it needs a higher learning rate and less fusion dropout than RJCMA's.
    """

    def task(n: int, seed: int, length: int = 16):
        g = torch.Generator().manual_seed(seed)
        z = torch.randint(0, 2, (n,), generator=g) * 2.0 - 1
        face = torch.randn(n, length, 6, generator=g)
        audio = 0.3 * torch.randn(n, length, 4, generator=g)
        audio[..., 0] += z[:, None]
        valence = 0.5 * torch.tanh(face[..., 0]) * z[:, None]
        arousal = 0.5 * torch.tanh(3 * audio[..., 1])
        return {"face": face, "audio": audio}, torch.stack([valence, arousal], -1)

    torch.manual_seed(0)
    fit = {"all": dict(lr=3e-3, fusion_dropout=0.6), "others": dict(lr=1e-2, fusion_dropout=0.1)}[joint]
    model = RCMA(RCMAConfig(input_dims=DIMS, seq_len=16, joint=joint, channels={"face": 8, "audio": 8},
                            fusion_dropout=fit["fusion_dropout"], **SMALL_RCMA))
    x_tr, y_tr = task(256, 1)
    x_te, y_te = task(128, 2)
    opt = torch.optim.Adam(model.parameters(), lr=fit["lr"])
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randint(0, 256, (32,), generator=g)
        loss = ccc_loss(model({m: v[idx] for m, v in x_tr.items()})["va"], y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        per_window = ccc(model(x_te)["va"], y_te)
    # Ignoring the audio sign would give about +CCC on half the windows and -CCC on the rest.
    assert per_window[:, 0].mean() > 0.8 and per_window[:, 1].mean() > 0.8
    assert math.isfinite(loss.item())


# ----------------------------------------------------------------------------- CUDA training recipe

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def amp_train_classifier(model, steps: int, lr: float = 3e-3) -> float:
    """:func:`train_classifier` on CUDA with training's AMP recipe (float16 autocast + GradScaler).

    Returns the held-out accuracy."""
    from emofuse.fusion.inference import autocast

    dev = torch.device("cuda")
    x_tr, y_tr, _ = selection_task(512, seed=1)
    x_te, y_te, _ = selection_task(256, seed=2)
    x_tr, y_tr = {m: v.to(dev) for m, v in x_tr.items()}, y_tr.to(dev)
    model = model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cuda")
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, 512, (64,), generator=g).to(dev)
        opt.zero_grad(set_to_none=True)
        with autocast(dev, True):
            out = model({m: v[idx] for m, v in x_tr.items()})
        assert out["logits"].dtype == torch.float16  # autocast is really on
        scaler.scale(cross_entropy(out["logits"], y_tr[idx])).backward()
        scaler.step(opt)
        scaler.update()
    model.eval()
    with torch.no_grad(), autocast(dev, True):
        logits = model({m: v.to(dev) for m, v in x_te.items()})["logits"]
    return (logits.argmax(-1).cpu() == y_te).float().mean().item()


@needs_cuda
def test_models_learn_on_cuda_with_amp():
    """The CPU learning tests' bars, reached on the GPU with float16 autocast and a GradScaler."""
    torch.manual_seed(0)
    assert amp_train_classifier(TACFN(TACFNConfig(input_dims=DIMS, n_classes=2, **SMALL_TACFN)), 200) > 0.85
    torch.manual_seed(0)
    rcma_model = RCMA(RCMAConfig(input_dims=DIMS, seq_len=4, n_targets=0, n_classes=2,
                                 channels={"face": 8, "audio": 8}, **SMALL_RCMA))
    assert amp_train_classifier(rcma_model, 150) > 0.9


@needs_cuda
@pytest.mark.parametrize("name", ["tacfn", "rcma"])
def test_paper_width_models_take_amp_steps_on_cuda(name: str):
    """The papers' widths on the real input widths (dlib faces 128, eGeMAPS LLD 25, MiniLM text 384), in float16
    autocast: finite outputs and loss, and the GradScaler's steps change the weights."""
    from emofuse.fusion.inference import autocast

    dev = torch.device("cuda")
    dims = {"face": 128, "audio": 25, "text": 384}
    torch.manual_seed(0)
    if name == "tacfn":
        model, length = build_model("tacfn", input_dims=dims, n_classes=8, extra=["text"]), 32
    else:
        model, length = build_model("rcma", input_dims=dims, seq_len=100, n_classes=8, n_targets=0), 100
    model = model.to(dev).train()
    inputs = {m: x.to(dev) for m, x in rand_inputs(dims, 12, {m: length for m in dims}).items()}
    masks = {m: k.to(dev) for m, k in gappy_masks(12, {m: length for m in dims}).items()}
    labels = torch.randint(0, 8, (12,), generator=torch.Generator().manual_seed(0)).to(dev)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda")
    for _ in range(8):  # the scaler skips steps whose float16 gradients overflow, and lowers its scale
        opt.zero_grad(set_to_none=True)
        with autocast(dev, True):
            out = model(inputs, masks)
        loss = cross_entropy(out["logits"], labels)
        assert torch.isfinite(out["logits"].float()).all() and math.isfinite(loss.item())
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    changed = [k for k, p in model.named_parameters() if not torch.equal(p.detach(), before[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} parameters were updated"
