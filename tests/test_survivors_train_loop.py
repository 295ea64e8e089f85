"""``train_fold``'s promises, checked directly on hand-made data with a tiny model (about a second in all).

The end-to-end protocol tests (``test_survivors_training.py``, ``test_fusion_train.py``) train
TACFN on a synthetic catalog; these feed :func:`emofuse.fusion.train.train_fold` a small
:class:`AlignedData` and a linear probe, so every rule of the loop can be checked against its
own definition: the best epoch is chosen on validation by the monitored metric (ties to the
lower validation loss, ``min_delta``, ``-val_loss`` when the metric is missing), training stops
after ``patience`` epochs without improvement, the best weights are restored and score
validation and test, the test split never steers anything, the history's figures are what
they say, and a fold interrupted and resumed ends bit for bit where an uninterrupted one does
(model, optimiser, best weights, every RNG).
"""
from __future__ import annotations

import json
import logging
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from emofuse.catalog.runs import Checkpoints
from emofuse.fusion.data_config import DataConfig, ModalitySpec
from emofuse.fusion.dataset import AlignedData, FusionDataset, NormStats
from emofuse.fusion.inference import Task, evaluate
from emofuse.fusion.train import TrainConfig, load_checkpoint, seed_everything, train_fold, train_step

CLASSES = ["neutral", "happy", "sad"]
TIMING = {"seconds", "train_items_per_s"}


def _data(seed: int = 0) -> AlignedData:
    """6 speakers × 9 clips (3 per class), 4 steps of 3 features: a class signal in noise."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"s{i}" for i in range(6)], 9)
    labels = np.tile(np.repeat(np.arange(3), 3), 6)
    n = len(labels)
    x = rng.normal(size=(n, 4, 3)).astype(np.float32) * 1.5
    x[np.arange(n), :, labels] += 1.0
    mask = np.ones((n, 4), bool)
    mask[::5, 3] = False
    items = pd.DataFrame({"item_id": [f"i{i:03d}" for i in range(n)], "speaker": speakers,
                          "duration": 1.0, "label": labels})
    return AlignedData(DataConfig([ModalitySpec("audio", "egemaps")]), items, row_item=np.arange(n),
                       row_start=np.zeros(n), row_end=np.ones(n), x={"audio": x}, mask={"audio": mask},
                       classes=CLASSES, dims={"audio": 3}, feature_sets={"audio": "egemaps-v1"})


def _splits(test: str = "s5") -> tuple[FusionDataset, FusionDataset, FusionDataset]:
    data = _data()
    rows = {part: data.rows_of_items(data.items_of_speakers(spk)) for part, spk in
            (("train", ["s0", "s1", "s2"]), ("val", ["s3"]), ("test", [test]))}
    norm = NormStats.compute(data, rows["train"])
    return tuple(FusionDataset(data, rows[p], norm) for p in ("train", "val", "test"))  # type: ignore[return-value]


class Probe(nn.Module):
    """Masked mean over steps, dropout, a linear layer: logits."""

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.drop = nn.Dropout(dropout)
        self.lin = nn.Linear(3, len(CLASSES))

    def forward(self, inputs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = masks["audio"].float().unsqueeze(-1)
        pooled = (inputs["audio"] * m).sum(1) / m.sum(1).clamp_min(1.0)
        return {"logits": self.lin(self.drop(pooled))}


TASK = Task(n_classes=len(CLASSES))
#: A large learning rate makes validation scores jump about: training stops early.
NOISY = dict(epochs=30, batch_size=4, lr=0.5, patience=3, seed=0, amp=False, eval_batch_size=5)


class Interrupted(Exception):
    """Raised by the progress hook to stop a fold (as a crash would) after a checkpoint."""


def _train(cfg: TrainConfig, test: str | None = "s5", task: Task = TASK, **kw):
    train_ds, val_ds, test_ds = _splits(test or "s5")
    model = kw.pop("model", None) or Probe()
    reports: list = []
    saved: list[dict[str, torch.Tensor]] = []
    stop_after = kw.pop("stop_after", None)

    def hook(r) -> None:
        reports.append(r)
        saved.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        if stop_after == r.epoch:
            raise Interrupted(r.epoch)

    out = train_fold(model, train_ds, val_ds, test_ds if test else None, cfg, task, progress=hook, **kw)
    return out, reports, saved, model, (train_ds, val_ds, test_ds)


def _selected(history: list[dict], key: str, min_delta: float, sign: float = 1.0) -> list[bool]:
    """The selection rule, by its definition: better by more than min_delta, or as good with a lower loss."""
    best, best_loss, out = float("-inf"), float("inf"), []
    for h in history:
        v = sign * h[key]
        better = v > best + min_delta
        tie = v >= best and not better and h["val_loss"] < best_loss
        out.append(better or tie or not out)
        if out[-1]:
            best, best_loss = v, h["val_loss"]
    return out


def _same_metrics(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def noisy():
    """Per test (not module-scoped): mutmut attributes a shared fixture to the first test only."""
    return _train(TrainConfig(**NOISY, min_delta=0.02))


def test_stops_after_patience_and_keeps_the_best_validation_epoch(noisy):
    out, reports, saved, model, (_, val_ds, test_ds) = noisy
    h = out.history
    assert out.stopped_early and out.epochs_run == out.best_epoch + NOISY["patience"] < NOISY["epochs"], h
    assert [e["epoch"] for e in h] == list(range(1, out.epochs_run + 1)) == [r.epoch for r in reports]
    chosen = _selected(h, "val_uar", 0.02)
    assert sum(chosen) >= 2 and [r.improved for r in reports] == chosen
    assert out.best_epoch == max(i + 1 for i, c in enumerate(chosen) if c)
    assert [r.best_epoch for r in reports] == [max(i + 1 for i, c in enumerate(chosen[:j + 1]) if c)
                                               for j in range(len(h))]
    assert reports[-1].best_value == h[out.best_epoch - 1]["val_uar"]
    # the best epoch's weights are kept, restored into the model, and they score validation and test
    assert not _same_state(saved[-1], saved[out.best_epoch - 1])
    assert _same_state(out.state, saved[out.best_epoch - 1]) and _same_state(model.state_dict(), out.state)
    assert out.val_metrics["uar"] == h[out.best_epoch - 1]["val_uar"]
    val_loss, val_metrics, _ = evaluate(model, val_ds, TASK)
    assert val_loss == pytest.approx(h[out.best_epoch - 1]["val_loss"]) and _same_metrics(val_metrics, out.val_metrics)
    _, test_metrics, preds = evaluate(model, test_ds, TASK)
    assert _same_metrics(test_metrics, out.test_metrics)
    np.testing.assert_array_equal(out.test_items, preds["items"])
    np.testing.assert_array_equal(out.test_probs, preds["probs"])
    assert out.test_va is None and out.fold == 0 and out.resumed_from == 0 and out.seconds > 0


def test_the_reports_and_the_history_say_the_same(noisy):
    out, reports, *_ = noisy
    for r, h in zip(reports, out.history):
        assert (r.fold, r.epochs, r.monitor) == (0, NOISY["epochs"], "uar")
        assert (r.train_loss, r.val_loss, r.seconds, r.train_items_per_s) == \
               (h["train_loss"], h["val_loss"], h["seconds"], h["train_items_per_s"])
        assert r.val_metrics == {k[4:]: v for k, v in h.items() if k.startswith("val_") and k != "val_loss"}
        assert {"val_uar", "val_accuracy", "val_macro_f1"} <= set(h) and "val_confusion" not in h
        assert h["seconds"] > 0 and h["train_items_per_s"] >= 27 / h["seconds"]  # 27 training clips


def test_the_test_split_never_steers_training(noisy):
    out = noisy[0]
    other, *_ = _train(TrainConfig(**NOISY, min_delta=0.02), test="s4")
    none, *_ = _train(TrainConfig(**NOISY, min_delta=0.02), test=None)
    for o in (other, none):
        assert [{k: v for k, v in h.items() if k not in TIMING} for h in o.history] == \
               [{k: v for k, v in h.items() if k not in TIMING} for h in out.history]
        assert (o.best_epoch, o.epochs_run) == (out.best_epoch, out.epochs_run)
        assert _same_metrics(o.val_metrics, out.val_metrics)
        assert _same_state(o.state, out.state)
    assert none.test_metrics == {} and none.test_probs is None and none.test_items.shape == (0,)
    assert none.test_items.dtype == np.int64
    assert not np.array_equal(other.test_items, out.test_items)


def test_a_still_model_keeps_its_first_epoch_and_train_loss_is_the_row_mean():
    """lr 0: every epoch scores the same, so no later epoch is better or a tie with a lower loss."""
    out, reports, *_, (train_ds, _, _) = _train(TrainConfig(**{**NOISY, "lr": 0.0, "patience": 2}),
                                                model=Probe(dropout=0.0))
    assert (out.best_epoch, out.epochs_run, out.stopped_early) == (1, 3, True)
    assert [r.improved for r in reports] == [True, False, False]
    loss, _, _ = evaluate(Probe(dropout=0.0), train_ds, TASK)  # 27 rows in batches of 4: no single left over
    assert all(h["train_loss"] == pytest.approx(loss, rel=1e-5) for h in out.history)


def test_ties_on_the_metric_go_to_the_lower_validation_loss():
    """A tiny learning rate: UAR stays put while the validation loss falls, so every epoch is the best."""
    out, reports, *_ = _train(TrainConfig(**{**NOISY, "lr": 1e-3, "epochs": 4, "patience": 1}),
                              model=Probe(dropout=0.0))
    h = out.history
    assert len({e["val_uar"] for e in h}) == 1 and all(a["val_loss"] > b["val_loss"] for a, b in zip(h, h[1:]))
    assert (out.best_epoch, out.stopped_early) == (4, False) and all(r.improved for r in reports)


class LossMonitored(Task):
    """A task whose monitored metric never appears among the scores: the validation loss decides."""

    @property
    def monitor(self) -> str:
        return "not-a-metric"


def test_without_the_metric_the_lowest_validation_loss_wins():
    task = LossMonitored(n_classes=len(CLASSES))
    out, reports, *_ = _train(TrainConfig(**NOISY), task=task)
    chosen = _selected([{**h, "neg": -h["val_loss"]} for h in out.history], "neg", 0.0)
    assert [r.improved for r in reports] == chosen and out.stopped_early
    assert reports[-1].best_value == -out.history[out.best_epoch - 1]["val_loss"]


def test_a_resumed_fold_ends_where_an_uninterrupted_one_does(tmp_path, caplog):
    cfg = TrainConfig(**{**NOISY, "min_delta": 0.02, "weight_decay": 0.01})
    whole, *_ = _train(cfg)
    ck = Checkpoints(str(tmp_path / "ck"))
    random.seed(5), np.random.seed(5), np.random.standard_normal()  # a cached Gaussian: every field set
    with pytest.raises(Interrupted):
        _train(cfg, checkpoints=ck, fold=0, stop_after=4)
    py_state, np_state = random.getstate(), np.random.get_state()
    meta = json.loads((tmp_path / "ck" / "fold-0.json").read_text())
    assert meta["epoch"] == 4 and len(meta["history"]) == 4
    assert meta["optimizer"]["param_groups"][0]["lr"] == 0.5
    assert meta["optimizer"]["param_groups"][0]["weight_decay"] == 0.01
    _, tensors = load_checkpoint(ck, 0)
    assert {k.split(".")[0] for k in tensors} == {"model", "optim", "best", "rng"}
    assert load_checkpoint(ck, 1) is None
    random.seed(9), np.random.seed(9), torch.manual_seed(9)  # scrambled: the checkpoint must restore them
    seen = []

    class Spy(Probe):
        def forward(self, inputs, masks):
            if not seen:
                seen.append((random.getstate(), np.random.get_state()))
            return super().forward(inputs, masks)

    with caplog.at_level(logging.INFO, logger="emofuse.fusion.train"):
        resumed, reports, *_ = _train(cfg, checkpoints=ck, fold=0, model=Spy())
    said = [r.getMessage() for r in caplog.records if r.name == "emofuse.fusion.train" and "resuming" in r.msg]
    assert said == [f"fold 0: resuming after epoch 4 (best uar={meta['best_value']:.4f} "
                    f"at epoch {meta['best_epoch']})"], said
    assert seen[0][0] == py_state and len(seen[0][1]) == len(np_state) == 5
    assert all(np.array_equal(a, b) for a, b in zip(seen[0][1], np_state))
    assert resumed.resumed_from == 4 and reports[0].epoch == 5
    assert [{k: v for k, v in h.items() if k not in TIMING} for h in resumed.history] == \
           [{k: v for k, v in h.items() if k not in TIMING} for h in whole.history]
    assert (resumed.best_epoch, resumed.epochs_run, resumed.stopped_early) == \
           (whole.best_epoch, whole.epochs_run, whole.stopped_early)
    assert _same_state(resumed.state, whole.state) and _same_metrics(resumed.test_metrics, whole.test_metrics)


def test_weight_decay_reaches_the_optimiser():
    a, *_ = _train(TrainConfig(**{**NOISY, "epochs": 2, "lr": 0.01}), model=Probe(dropout=0.0))
    b, *_ = _train(TrainConfig(**{**NOISY, "epochs": 2, "lr": 0.01, "weight_decay": 0.5}), model=Probe(dropout=0.0))
    assert not _same_state(a.state, b.state)


def test_an_empty_split_is_refused_with_its_sizes():
    train_ds, val_ds, _ = _splits()
    empty = FusionDataset(_data(), np.zeros(0, np.int64), NormStats({"audio": np.zeros(3, np.float32)},
                                                                     {"audio": np.ones(3, np.float32)}))
    for tr, va, msg in ((empty, val_ds, "train 0 rows, val 9 rows"), (train_ds, empty, "train 27 rows, val 0 rows")):
        with pytest.raises(ValueError, match=f"fold 3: empty split \\({msg}\\)"):
            train_fold(Probe(), tr, va, None, TrainConfig(**NOISY), TASK, fold=3)


def test_train_step_clips_the_gradient_norm():
    train_ds, _, _ = _splits()
    b = next(train_ds.batches(8))
    steps = {}
    for clip in (None, 1e-3):
        model = Probe(dropout=0.0)
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        loss = train_step(model, opt, b, TASK, device=torch.device("cpu"), amp=False, grad_clip=clip)
        assert loss.ndim == 0 and loss.item() > 0
        steps[clip] = torch.sqrt(sum(((p.detach() - q) ** 2).sum() for p, q in zip(model.parameters(), before)))
    assert steps[None] > 0.01 and steps[1e-3] == pytest.approx(1e-3, rel=1e-3)


def test_optimiser_state_round_trips_through_tensors_and_scalars():
    """Tensors go to safetensors, plain numbers (as older Adams kept ``step``) to the JSON: both come back."""
    from emofuse.fusion.train import _optimizer_state, _optimizer_tensors

    train_ds, _, _ = _splits()
    b = next(train_ds.batches(8))
    model = Probe(dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    train_step(model, opt, b, TASK, device=torch.device("cpu"), amp=False)
    for k, p in enumerate(model.parameters()):
        opt.state[p]["n_calls"] = 7 + k
    tensors, meta = _optimizer_tensors(opt)
    back = _optimizer_state(tensors, json.loads(json.dumps(meta)))
    want = opt.state_dict()
    assert back["param_groups"] == json.loads(json.dumps(want["param_groups"]))
    assert back["state"].keys() == want["state"].keys() == {0, 1}
    for idx, st in want["state"].items():
        assert back["state"][idx].keys() == st.keys() == {"step", "exp_avg", "exp_avg_sq", "n_calls"}
        assert back["state"][idx]["n_calls"] == 7 + idx
        assert all(torch.equal(back["state"][idx][k], st[k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_seed_everything_sets_the_cublas_workspace_for_deterministic_cuda(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seed_everything(0)
    import os
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.random()), float(torch.rand(()))

    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    seed_everything(4)
    assert all(a != b for a, b in zip(draw(), first))
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # a kernel without a deterministic twin warns
    for seed in (0, 2, 2**32 + 5):  # numpy takes 32 bits: larger seeds wrap around
        seed_everything(seed)
        assert float(np.random.random()) == np.random.RandomState(seed % 2**32).random_sample()


class VaProbe(Probe):
    """Logits and per-step valence/arousal."""

    def __init__(self) -> None:
        super().__init__(dropout=0.0)
        self.va = nn.Linear(3, 2)

    def forward(self, inputs, masks):
        return {**super().forward(inputs, masks), "va": self.va(inputs["audio"])}


@pytest.mark.parametrize("per_frame", [False, True], ids=["clip-targets", "frame-targets"])
def test_train_step_takes_the_loss_of_every_target_of_the_batch(per_frame):
    from emofuse.fusion.inference import batch_loss

    data = _data()
    rng = np.random.default_rng(1)
    data.items["valence"], data.items["arousal"] = rng.uniform(-1, 1, (2, data.n_items))
    if per_frame:
        data.frame_targets = rng.uniform(-1, 1, (data.n_rows, 4, 2)).astype(np.float32)
        data.frame_mask = rng.random((data.n_rows, 4)) > 0.2
    rows = data.rows_of_items(range(12))
    ds = FusionDataset(data, rows, NormStats.compute(data, rows))
    b = next(ds.batches(12))
    task = Task(n_classes=3, dimensional=("valence", "arousal"))
    model = VaProbe()
    with torch.no_grad():
        want = batch_loss(model(b.inputs, b.masks), b.labels, b.targets, b.masks, task,
                          frame_targets=b.frame_targets, frame_mask=b.frame_mask)
    loss = train_step(model, torch.optim.SGD(model.parameters(), lr=0.0), b, task, device=torch.device("cpu"),
                      amp=False)
    assert float(loss) == pytest.approx(float(want), rel=1e-6)
    assert (b.frame_targets is not None) == per_frame


def test_no_mixed_precision_on_the_cpu_even_when_asked(tmp_path):
    ck = Checkpoints(str(tmp_path / "ck"))
    with pytest.raises(Interrupted):
        _train(TrainConfig(**{**NOISY, "amp": True}), checkpoints=ck, stop_after=1)
    assert json.loads((tmp_path / "ck" / "fold-0.json").read_text())["scaler"] is None


def test_a_double_precision_model_is_trained_in_float32():
    out, *_ = _train(TrainConfig(**{**NOISY, "epochs": 1}), model=Probe(dropout=0.0).double())
    assert out.state and all(v.dtype == torch.float32 for v in out.state.values())


class _Clock:
    """``time`` for fusion/train.py: each ``perf_counter()`` call is 0.25 s after the last."""

    def __init__(self) -> None:
        self.t = 0.0

    def perf_counter(self) -> float:
        self.t += 0.25
        return self.t


def test_timings_reports_and_log_lines_follow_their_definitions(monkeypatch, caplog):
    """With a clock that ticks 0.25 s a read, every timing is known: an epoch reads it 3 times after t0."""
    import emofuse.fusion.train as train_mod

    monkeypatch.setattr(train_mod, "time", _Clock())
    cfg = TrainConfig(**{**NOISY, "lr": 0.0, "epochs": 5, "patience": 1})
    with caplog.at_level(logging.INFO, logger="emofuse.fusion.train"):
        out, reports, *_ = _train(cfg, model=Probe(dropout=0.0))
    assert (out.epochs_run, out.best_epoch, out.stopped_early) == (2, 1, True)
    for h in out.history:  # t_train = 0.25 s, the epoch 0.5 s, 27 training rows
        assert (h["seconds"], h["train_items_per_s"]) == (0.5, 27 / 0.25)
    assert out.seconds == 2.0 - 0.25  # 8 reads, the first at the start
    assert len(reports) == 2
    for r, h in zip(reports, out.history):
        assert (r.fold, r.epoch, r.epochs, r.monitor) == (0, h["epoch"], 5, "uar")
        assert (r.train_loss, r.val_loss, r.seconds, r.train_items_per_s) == \
               (h["train_loss"], h["val_loss"], 0.5, 108.0)
        assert r.val_metrics == {k[4:]: v for k, v in h.items() if k.startswith("val_") and k != "val_loss"}
        assert (r.best_epoch, r.best_value) == (1, out.history[0]["val_uar"])
    said = [r.getMessage() for r in caplog.records if r.name == "emofuse.fusion.train"]
    want = [f"fold 0 epoch {h['epoch']}/5: train loss {h['train_loss']:.4f}, val loss {h['val_loss']:.4f}, "
            f"val uar {h['val_uar']:.4f}{' *' if h['epoch'] == 1 else ''} (0.5 s, 108 items/s)"
            for h in out.history]
    assert said == want + ["fold 0: early stop after epoch 2 (best epoch 1)"], said


def test_a_one_row_training_split_reports_that_rows_loss(caplog):
    """A lone row is trained on (``drop_single`` keeps a split of one): its loss, not half of it."""
    data = _data()
    one = data.rows_of_items(data.items_of_speakers(["s0"]))[:1]
    val = data.rows_of_items(data.items_of_speakers(["s3"]))
    norm = NormStats.compute(data, data.rows_of_items(data.items_of_speakers(["s0", "s1", "s2"])))
    train_ds, val_ds = FusionDataset(data, one, norm), FusionDataset(data, val, norm)
    loss, _, _ = evaluate(Probe(dropout=0.0), train_ds, TASK)
    reports: list = []
    with caplog.at_level(logging.INFO, logger="emofuse.fusion.train"):
        out = train_fold(Probe(dropout=0.0), train_ds, val_ds, None, TrainConfig(**{**NOISY, "lr": 0.0, "epochs": 1}),
                         TASK, progress=reports.append)
    assert out.history[0]["train_loss"] == pytest.approx(loss, rel=1e-6)
    assert reports[0].train_loss == pytest.approx(loss, rel=1e-6)
    said = [r.getMessage() for r in caplog.records if r.name == "emofuse.fusion.train"]
    assert f"train loss {loss:.4f}," in said[0], said


class Recorder(Probe):
    """Records (training?, rows) of every forward."""

    def __init__(self) -> None:
        super().__init__(dropout=0.0)
        self.seen: list[tuple[bool, int]] = []

    def forward(self, inputs, masks):
        self.seen.append((self.training, int(masks["audio"].shape[0])))
        return super().forward(inputs, masks)


def test_batches_drop_a_lone_row_and_evaluation_keeps_its_batch_size():
    """27 training rows in pairs: 13 pairs, the 27th row dropped; validation/test (9 rows) in fives."""
    model = Recorder()
    _train(TrainConfig(**{**NOISY, "epochs": 2, "batch_size": 2, "eval_batch_size": 5}), model=model)
    train = [n for t, n in model.seen if t]
    evals = [n for t, n in model.seen if not t]
    assert train == [2] * 26
    # every evaluation (each epoch's validation, the best weights on validation and on test): 9 rows in fives
    assert evals and set(evals) == {5, 4} and len(evals) % 2 == 0


def test_the_shuffle_has_its_own_seeded_generator():
    """The batch order comes from the fold's generator, not torch's global one."""
    outs = []
    for g in (1, 2):
        model = Probe(dropout=0.0)
        torch.manual_seed(g)
        outs.append(_train(TrainConfig(**{**NOISY, "epochs": 2}), model=model)[0])
    assert _same_state(outs[0].state, outs[1].state)
    other = Probe(dropout=0.0)
    b, *_ = _train(TrainConfig(**{**NOISY, "epochs": 2, "seed": 1}), model=other)
    assert not _same_state(outs[0].state, b.state)


def test_the_fold_clips_gradients_when_asked():
    a, *_ = _train(TrainConfig(**{**NOISY, "epochs": 1}), model=Probe(dropout=0.0))
    b, *_ = _train(TrainConfig(**{**NOISY, "epochs": 1, "grad_clip": 1e-9}), model=Probe(dropout=0.0))
    assert not _same_state(a.state, b.state)


def test_a_valence_arousal_fold_returns_the_test_predictions():
    data = _data()
    rng = np.random.default_rng(2)
    data.items["valence"], data.items["arousal"] = rng.uniform(-1, 1, (2, data.n_items))
    rows = {p: data.rows_of_items(data.items_of_speakers(s)) for p, s in
            (("train", ["s0", "s1", "s2"]), ("val", ["s3"]), ("test", ["s5"]))}
    norm = NormStats.compute(data, rows["train"])
    train_ds, val_ds, test_ds = (FusionDataset(data, rows[p], norm) for p in ("train", "val", "test"))
    task = Task(n_classes=3, dimensional=("valence", "arousal"))
    model = VaProbe()
    out = train_fold(model, train_ds, val_ds, test_ds, TrainConfig(**{**NOISY, "epochs": 2}), task)
    _, _, preds = evaluate(model, test_ds, task)
    assert out.test_va is not None and out.test_va.shape == (9, 2)
    np.testing.assert_array_equal(out.test_va, preds["va"])


def test_optimiser_state_without_scalars_and_with_scalars_only():
    """A checkpoint's JSON written before plain numbers were kept has no "scalars"; a parameter may hold numbers only."""
    from emofuse.fusion.train import _optimizer_state

    groups = [{"lr": 0.1, "params": [0, 1]}]
    t = {"optim.0.exp_avg": torch.ones(2)}
    assert _optimizer_state(t, {"param_groups": groups})["state"].keys() == {0}
    back = _optimizer_state(t, {"param_groups": groups, "scalars": {"1": {"n_calls": 3}}})
    assert back["state"][1] == {"n_calls": 3} and torch.equal(back["state"][0]["exp_avg"], torch.ones(2))


def test_a_checkpoint_with_a_gpu_scaler_resumes_on_the_cpu(tmp_path):
    """A fold checkpointed with AMP on a GPU (a GradScaler state in its JSON) goes on without AMP here."""
    ck = Checkpoints(str(tmp_path / "ck"))
    cfg = TrainConfig(**{**NOISY, "epochs": 3})
    with pytest.raises(Interrupted):
        _train(cfg, checkpoints=ck, stop_after=1)
    meta, data = ck.load(0)
    meta = {k: v for k, v in meta.items() if k not in ("fold", "checkpoint", "sha256")}
    meta["scaler"] = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                      "_growth_tracker": 0}
    ck.save(0, meta["epoch"], data, meta)
    out, *_ = _train(cfg, checkpoints=ck)
    assert out.resumed_from == 1 and out.epochs_run == 3
