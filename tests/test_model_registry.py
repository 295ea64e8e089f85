"""A model is one registered class (issue 17, point 5): the registry and its built-ins, models registered
in process and from another package (the ``emofuse.models`` entry point), abilities that decide what a run
trains, and no model chosen by its name outside its own module.

The package of the end-to-end test is made here: ``emofuse_testmodel`` with one model module and a
``*.dist-info`` folder whose ``entry_points.txt`` names its spec, on ``PYTHONPATH`` of the real command
line (``emofuse train --model toy``, ``emofuse score``), as an installed distribution would be.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from emofuse.catalog.runs import RunFolder
from emofuse.catalog.store import Catalog
from emofuse.fusion import training_run
from emofuse.fusion.models import Abilities, ModelSpec, find_preset, get_model, model_names, register_model
from emofuse.fusion.models.common import as_sequence, get_mask, masked_mean
from emofuse.fusion.models.registry import preset_names, unregister_model
from emofuse.fusion.presets import Preset
from emofuse.fusion.run_config import RunConfig
from synthetic_catalog import build_synthetic_catalog

REPO = Path(__file__).resolve().parents[1]
PLAN = [{"fold": 0, "train": ["Actor_01", "Actor_02", "Actor_03", "Actor_06"], "val": ["Actor_04"],
         "test": ["Actor_05"]}]


# ----------------------------------------------------------------------------- a small model, in process
@dataclass
class PooledConfig:
    input_dims: dict[str, int] = field(default_factory=lambda: {"audio": 25})
    n_classes: int = 0
    n_targets: int = 0


class Pooled(nn.Module):
    """Every modality mean-pooled, one Linear per head; ``va`` is the clip's value at every step."""

    def __init__(self, config: PooledConfig) -> None:
        super().__init__()
        self.config = config
        width = sum(config.input_dims.values())
        self.logits = nn.Linear(width, config.n_classes) if config.n_classes else None
        self.va = nn.Linear(width, config.n_targets) if config.n_targets else None

    def forward(self, inputs, masks=None):  # noqa: ANN001, ANN201 - the models' interface
        xs = {m: as_sequence(inputs[m]) for m in self.config.input_dims}
        pooled = torch.cat([masked_mean(x, get_mask(x, masks, m)) for m, x in xs.items()], dim=-1)
        out = {}
        if self.logits is not None:
            out["logits"] = self.logits(pooled)
        if self.va is not None:
            steps = next(iter(xs.values())).shape[1]
            out["va"] = torch.tanh(self.va(pooled))[:, None, :].expand(-1, steps, -1)
        return out


class PooledBase(ModelSpec):
    network = Pooled
    config_class = PooledConfig

    def heads(self, inputs, roles):  # noqa: ANN001, ANN201
        return {"n_classes": inputs.task.n_classes, "n_targets": len(inputs.task.dimensional)}


class PooledClasses(PooledBase):
    name = "test_pooled_classes"
    abilities = Abilities(per_clip=True, categorical=True, dimensional=False)
    presets = (Preset("test_pooled_classes", {"face": "faces", "audio": "egemaps"}),)


class PooledBoth(PooledBase):
    name = "test_pooled_both"
    abilities = Abilities(per_clip=True, categorical=True, dimensional=True)
    presets = (Preset("test_pooled_both", {"face": "faces", "audio": "egemaps"}),)


@pytest.fixture
def registered():
    """The two in-process models, registered for one test."""
    for cls in (PooledClasses, PooledBoth):
        register_model(cls)
    yield
    for cls in (PooledClasses, PooledBoth):
        unregister_model(cls.name)


# ----------------------------------------------------------------------------- the registry
def test_the_registry_lists_the_builtins_with_their_abilities():
    assert {"tacfn", "rcma", "concat_mlp", "unimodal"} <= set(model_names())
    assert {"tacfn", "rcma", "concat_mlp", "unimodal_audio", "unimodal_face"} <= set(preset_names())
    tacfn, rcma = get_model("tacfn").abilities, get_model("rcma").abilities
    assert (tacfn.per_clip, tacfn.per_frame, tacfn.categorical, tacfn.dimensional) == (True, False, True, False)
    assert (rcma.per_clip, rcma.per_frame, rcma.categorical, rcma.dimensional) == (True, True, True, True)
    for name in ("concat_mlp", "unimodal"):
        assert not get_model(name).abilities.dimensional and not get_model(name).abilities.per_frame
    spec, preset = find_preset("unimodal_face")
    assert spec.name == "unimodal" and preset.inputs == {"face": "faces"}
    assert preset.model_config == {"modality": "face"}
    assert (get_model("tacfn").demo_epochs, get_model("rcma").demo_epochs) == (40, 30)
    # each built-in registers in its own module
    assert {n: type(get_model(n)).__module__.rsplit(".", 1)[-1] for n in ("tacfn", "rcma", "concat_mlp", "unimodal")} \
        == {"tacfn": "tacfn", "rcma": "rcma", "concat_mlp": "baselines", "unimodal": "baselines"}
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        find_preset("nope")


def test_a_taken_name_cannot_be_registered_again():
    class Other(PooledBase):
        name = "tacfn"

    class SamePreset(PooledBase):
        name = "test_same_preset"
        presets = (Preset("rcma", {"audio": "egemaps"}),)

    with pytest.raises(ValueError, match="registered twice"):
        register_model(Other)
    with pytest.raises(ValueError, match="preset names"):
        register_model(SamePreset)
    assert "test_same_preset" not in model_names()


def test_a_model_registered_in_process_is_a_cli_choice(registered):
    from emofuse.flows import cli

    parser = cli.build_parser(only="train")
    args = parser.parse_args(["train", "--model", "test_pooled_both", "--epochs", "1"])
    assert args.model == "test_pooled_both"
    unregister_model("test_pooled_both")
    with pytest.raises(SystemExit):  # gone from the registry: no longer a choice
        cli.build_parser(only="train").parse_args(["train", "--model", "test_pooled_both"])


# ----------------------------------------------------------------------------- abilities decide the task
@pytest.fixture(scope="module")
def both_labels(tmp_path_factory) -> str:
    """Synthetic catalog whose items have an emotion and valence/arousal."""
    root = tmp_path_factory.mktemp("registry") / "cat"
    build_synthetic_catalog(root, n_speakers=6, reps=2, dimensional=True, categorical=True, with_text=False)
    return str(root)


def test_abilities_decide_whether_a_run_regresses_valence_arousal(both_labels, registered):
    runs = {}
    for model in ("test_pooled_both", "test_pooled_classes"):
        res = training_run.train(both_labels, model=model, epochs=1, folds=PLAN, seed=0, threads=1)
        runs[model] = RunConfig.load(RunFolder(res.run_dir)), res
    both, _ = runs["test_pooled_both"]
    assert both.registry_model == "test_pooled_both"
    assert both.task.dimensional == ("valence", "arousal") and both.task.n_classes == 4
    assert both.model_config["n_targets"] == 2 and "ccc_mean" in runs["test_pooled_both"][1].metrics
    classes, res = runs["test_pooled_classes"]
    assert classes.task.dimensional == () and classes.task.n_classes == 4
    assert classes.model_config["n_targets"] == 0 and "ccc_mean" not in res.metrics and "accuracy" in res.metrics


def test_a_model_without_a_regression_head_refuses_a_catalog_of_valence_arousal_only(tmp_path, registered):
    root = str(tmp_path / "cat")
    build_synthetic_catalog(root, n_speakers=6, reps=1, dimensional=True, categorical=False, with_text=False)
    with pytest.raises(ValueError, match="trains on emotion labels"):
        training_run.train(root, model="test_pooled_classes", epochs=1, folds=PLAN, threads=1)
    res = training_run.train(root, model="test_pooled_both", epochs=1, folds=PLAN, threads=1)
    assert RunConfig.load(RunFolder(res.run_dir)).task.n_classes == 0


# ----------------------------------------------------------------------------- no name checks
NAME_CHECK = re.compile(r"""==\s?['"](tacfn|rcma|concat_mlp|unimodal\w*)['"]|['"](tacfn|rcma)['"]\s?[!=]=|"""
                        r"""registry\s?[!=]=|registry_model\s?[!=]=|\.name\s?[!=]=\s?['"](tacfn|rcma)""")


def test_no_code_chooses_a_model_by_its_name():
    found = []
    for folder in ("fusion", "flows", "catalog", "pipeline"):
        for path in (REPO / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if NAME_CHECK.search(line):
                    found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "model chosen by name (ask the model's abilities):\n" + "\n".join(found)


# ----------------------------------------------------------------------------- a model from another package
TOY = '''
"""A fusion model from another package: every input mean-pooled, one Linear to the classes."""
from dataclasses import dataclass, field

import torch
from torch import nn

from emofuse.fusion.models import Abilities, ModelSpec
from emofuse.fusion.models.common import as_sequence, get_mask, masked_mean
from emofuse.fusion.presets import Preset
from emofuse.fusion.train import TrainConfig


@dataclass
class ToyConfig:
    input_dims: dict = field(default_factory=dict)
    n_classes: int = 2


class Toy(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.head = nn.Linear(sum(config.input_dims.values()), config.n_classes)

    def forward(self, inputs, masks=None):
        xs = {m: as_sequence(inputs[m]) for m in self.config.input_dims}
        return {"logits": self.head(torch.cat([masked_mean(x, get_mask(x, masks, m)) for m, x in xs.items()], -1))}


class ToyModel(ModelSpec):
    name = "toy"
    network = Toy
    config_class = ToyConfig
    abilities = Abilities(per_clip=True, categorical=True)
    presets = (Preset("toy", {"face": "faces", "audio": "egemaps"}, train=TrainConfig(batch_size=8, lr=1e-2)),)
'''


def _package(site: Path) -> None:
    pkg = site / "emofuse_testmodel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(TOY)
    info = site / "emofuse_testmodel-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: emofuse-testmodel\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[emofuse.models]\ntoy = emofuse_testmodel.model:ToyModel\n")
    (info / "RECORD").write_text("")


def _emofuse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "emofuse.flows.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"emofuse {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_a_model_from_an_entry_point_trains_and_scores_with_the_command_line(tmp_path):
    site, catalog = tmp_path / "site", str(tmp_path / "cat")
    _package(site)
    _, media = build_synthetic_catalog(catalog, n_speakers=6, reps=1, with_text=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    assert "emofuse_testmodel" not in sys.modules  # nothing of it in this process

    usage = _emofuse(env, "train", "--help").stdout
    assert re.search(r"--model \{[^}]*\btoy\b", usage), usage  # a --model choice, from the entry point
    proc = _emofuse(env, "train", "--catalog", catalog, "--model", "toy", "--epochs", "3", "--threads", "1",
                    "--folds", "3")
    run_id = re.search(r"^run (\S+): ", proc.stdout, re.M).group(1)
    cfg = RunConfig.load(RunFolder(os.path.join(catalog, "runs", run_id)))
    assert (cfg.model, cfg.registry_model, cfg.completed_folds) == ("toy", "toy", [0, 1, 2])
    assert cfg.task.n_classes == 4 and cfg.train.batch_size == 8  # the package's preset
    assert cfg.model_config == {"input_dims": {"face": 64, "audio": 25}, "n_classes": 4}
    metrics = json.loads(open(os.path.join(catalog, "runs", run_id, "metrics.json")).read())
    assert "accuracy" in metrics["summary"]

    _emofuse(env, "score", "--run", run_id, "--catalog", catalog, "--threads", "1", "--no-report")
    preds = pd.read_parquet(Catalog(catalog).layout.predictions_dir("toy", run_id))
    clip = preds[preds["window"] == "clip"]
    assert sorted(clip["item_id"]) == sorted(m["item_id"] for m in media)
    assert set(clip["label"]) <= {"neutral", "happy", "sad", "angry"}
