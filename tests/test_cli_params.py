"""The command line and the deployments take the same parameters: checked on the real parser,
the real flows and the real deployments (their registered parameter schemas)."""
from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from emofuse.flows import cli
from emofuse.flows.params import COMMANDS


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _actions(command: str) -> dict[str, argparse.Action]:
    return {a.dest: a for a in _subparser(command)._actions if a.dest != "help"}


def _argv(command: str, params: dict[str, Any]) -> list[str]:
    """Command-line arguments that set ``params`` (plus what the command requires otherwise)."""
    actions, spec = _actions(command), COMMANDS[command]
    out = [command]
    for name, value in params.items():
        action = actions[name]
        if not action.option_strings:
            out.append(str(value))
        elif isinstance(value, dict):
            out += [a for k, v in value.items() for a in (action.option_strings[0], f"{k}={json.dumps(v)}")]
        elif isinstance(value, list):
            out += [action.option_strings[0], *map(str, value)]
        else:
            out += [action.option_strings[0], str(value)]
    for name in spec.required:
        if name not in params:
            out.append("/required")
    if spec.one_of and not set(spec.one_of) & set(params):
        out += [actions[spec.one_of[0]].option_strings[0], "given"]
    return out


class FakeFlow:
    """Stands in for a flow: records its keyword arguments, keeps the real flow's parameter schema."""

    def __init__(self, real: Any, result: dict[str, Any]) -> None:
        self.parameters, self.result, self.calls = real.parameters, result, []

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.result


def _kwargs(argv: list[str]) -> dict[str, Any]:
    args = cli.build_parser().parse_args(argv)
    return COMMANDS[args.cmd].kwargs(args)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flow_parameter_is_an_option_with_the_flow_default(command: str) -> None:
    schema = COMMANDS[command].flow_object().parameters.model_dump()["properties"]
    actions = _actions(command)
    assert set(actions) == set(schema)
    for name, prop in schema.items():
        assert actions[name].default == prop.get("default"), name
    spec = COMMANDS[command]
    filled = set(spec.required) | set(spec.one_of[:1])  # what _argv has to give for the command to parse
    got = _kwargs(_argv(command, {}))
    assert {k: v for k, v in got.items() if k not in filled} == {
        k: p.get("default") for k, p in schema.items() if k not in filled}


def test_every_deployment_parameter_is_an_option_and_takes_the_deployment_value(tmp_path) -> None:
    from emofuse.flows.deployments import deployments

    deps = deployments(str(tmp_path / "corpus"), str(tmp_path / "catalog"))
    assert {f"{d.flow_name}/{d.name}" for d in deps} >= {"extract/ravdess", "train/ravdess-rcma", "score/archive"}
    for dep in deps:
        commands = [c for c, spec in COMMANDS.items() if spec.flow == dep.flow_name]
        assert commands, f"no command runs the {dep.flow_name} flow"
        registered = dep._parameter_openapi_schema.model_dump()["properties"]  # what the server gets
        for command in commands:
            assert registered == COMMANDS[command].schema(), command
            assert set(_actions(command)) == set(registered)
            params = {k: v for k, v in dep.parameters.items() if k not in COMMANDS[command].positional}
            got = _kwargs(_argv(command, params))
            assert {k: got[k] for k in params} == params, (dep.name, command)


def test_help_shows_the_true_defaults() -> None:
    for command in COMMANDS:
        sub = _subparser(command)
        text = " ".join(sub.format_help().split())
        for name, action in _actions(command).items():
            if action.default is not None:
                assert f"default: {action.default}" in " ".join(action.help.split()), (command, name)
                assert f"default: {action.default}" in text
    train = _actions("train")
    from emofuse.fusion.models.registry import preset_names

    assert sorted(train["model"].choices) == preset_names()  # the presets exist once, in the model registry


def test_cli_train_sets_the_model_options_of_the_rcma_deployment(monkeypatch, tmp_path) -> None:
    import emofuse.flows.train as train_flow

    fake = FakeFlow(train_flow.train, {"run_id": "r1", "run_dir": str(tmp_path)})
    monkeypatch.setattr(train_flow, "train", fake)
    compact = {"face": 64, "audio": 32, "text": 64}
    assert cli.main(["train", "--model", "rcma", "--model-option", f"channels={json.dumps(compact)}",
                     "--model-option", "bidirectional=true", "--feature-set", "face=faces", "--epochs", "3",
                     "--catalog", str(tmp_path)]) == 0
    (kwargs,) = fake.calls
    assert kwargs["model_options"] == {"channels": compact, "bidirectional": True}
    assert kwargs["feature_sets"] == {"face": "faces"} and kwargs["epochs"] == 3 and kwargs["model"] == "rcma"
    assert set(kwargs) == set(COMMANDS["train"].schema())
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--model-option", "no-equals-sign"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--model", "not-a-preset"])


def test_cli_commands_pass_every_parameter_to_their_flow(monkeypatch, tmp_path) -> None:
    import emofuse.flows.extract as extract_flow
    import emofuse.flows.score as score_flow

    extract = FakeFlow(extract_flow.extract, {"catalog": str(tmp_path)})
    score = FakeFlow(score_flow.score, {})
    monkeypatch.setattr(extract_flow, "extract", extract)
    monkeypatch.setattr(score_flow, "score", score)
    assert cli.main(["extract", "/data", "--catalog", str(tmp_path), "--workers", "3", "--config",
                     'faces={"backend": "insightface"}', "--selection", "audio-only", "song"]) == 0
    assert set(extract.calls[0]) == set(COMMANDS["extract"].schema())
    assert extract.calls[0]["source"] == "/data" and extract.calls[0]["n_workers"] == 3
    assert extract.calls[0]["configs"] == {"faces": {"backend": "insightface"}}
    assert extract.calls[0]["selection"] == ["audio-only", "song"]
    assert cli.main(["score-archive", "/videos", "--model", "tacfn", "--window", "4", "--threads", "2"]) == 0
    assert set(score.calls[0]) == set(COMMANDS["score"].schema())
    assert (score.calls[0]["source"], score.calls[0]["model"], score.calls[0]["window"], score.calls[0]["threads"],
            score.calls[0]["corpus"]) == ("/videos", "tacfn", 4.0, 2, "archive")
